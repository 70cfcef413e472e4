// Court portal (court.html): judge login and the queue of applications for judicial confirmation (R21-R26).
// The server has no court API yet (see docs/web.md, "Needs from the server"): the queue says so plainly.
import "./strings-common.js";
import "./strings-console.js";
import { applyStatic, installSwitch, onLangChange, t } from "./i18n.js";
import { h, mount, $, field, focusFirst } from "./dom.js";
import * as http from "./api.js";
import { explain } from "./errors.js";

let user = null;

function loginView() {
  const name = h("input", { type: "text", id: "username", autocomplete: "username", required: true });
  const pass = h("input", { type: "password", id: "password", autocomplete: "current-password", required: true });
  const err = h("p", { class: "error", role: "alert", hidden: true });
  async function submit(e) {
    e.preventDefault();
    err.hidden = true;
    try {
      user = await http.login(name.value.trim(), pass.value);
      render();
    } catch (e2) {
      err.textContent = explain(e2);
      err.hidden = false;
    }
  }
  return h("section", { class: "card login" }, h("h1", {}, t("login.title")),
    h("form", { onsubmit: submit }, field(t("common.username"), name), field(t("common.password"), pass), err,
      h("button", { type: "submit", class: "primary" }, t("common.login"))));
}

function queueView() {
  if (user.role !== "court_judge") {
    return h("section", { class: "card" }, h("p", { class: "error", role: "alert" }, t("court.not_judge")));
  }
  return h("section", { id: "queue" }, h("h1", {}, t("court.queue")),
    h("p", { class: "card muted", id: "queue-empty" }, t("court.none")));
}

function render() {
  $("#who").textContent = user ? `${user.name} · ${t("role." + user.role)}` : "";
  $("#logout").hidden = !user;
  const main = $("#main");
  mount(main, user ? queueView() : loginView());
  focusFirst(main);
}

async function main() {
  applyStatic(document);
  installSwitch();
  onLangChange(render);
  $("#logout").addEventListener("click", async () => {
    try { await http.logout(); } catch { /* logged out anyway */ }
    user = null;
    render();
  });
  try {
    user = await http.me();
  } catch (err) {
    mount($("#main"), h("p", { class: "error", role: "alert" }, explain(err)));
    return;
  }
  render();
}

main();
