// Court portal (court.html): judge login and the queue of applications for judicial confirmation (R21-R26).
import "./strings-common.js";
import "./strings-console.js";
import "./strings-agreement.js";
import "./court-strings.js";
import { applyStatic, installSwitch, onLangChange, t, getLang } from "./i18n.js";
import { h, mount, $, field, focusFirst, fmtTime } from "./dom.js";
import * as http from "./api.js";
import { explain } from "./errors.js";
import { courtCaseView } from "./court-case.js";
import { CourtSessionView } from "./court-session.js";

let user = null;
let live = null;  // the questioning the judge hosts (#/session/<id>/<application>)

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

async function queueView() {
  if (user.role !== "court_judge") {
    return h("section", { class: "card" }, h("p", { class: "error", role: "alert" }, t("court.not_judge")));
  }
  const { queue } = await http.get("/api/court/queue");
  const lang = getLang();
  const parties = (q) => (q.parties || []).map((p) => `${t("side." + p.side)}：${p.name}`).join(t("list.sep"));
  return h("section", { id: "queue" }, h("h1", {}, t("court.queue")),
    queue.length ? h("div", { class: "card scroll-x" }, h("p", { class: "muted" }, t("court.queue_intro")), h("table", {},
      h("thead", {}, h("tr", {}, ["court.case", "court.parties", "court.status", "court.submitted", "court.due", ""].map((k) => h("th", { scope: "col" }, k ? t(k) : h("span", { class: "visually-hidden" }, t("court.open")))))),
      h("tbody", {}, queue.map((q) => h("tr", { dataset: { application: String(q.application_id) } },
        h("td", { class: "case-cell" }, h("div", { class: "strong" }, q.title || q.case_code),
          h("div", { class: "muted" }, q.category ? t("cat." + q.category) + " · " : "", q.case_code)),
        h("td", { class: "parties-cell" }, parties(q)),
        h("td", {}, t("app.status." + q.status)), h("td", {}, fmtTime(q.submitted_at, lang)),
        h("td", { class: "clock" + (q.overdue ? " overdue" : "") }, fmtTime(q.due_at, lang), q.overdue ? " · " + t("clock.overdue") : ""),
        h("td", {}, h("a", { class: "button", href: "#/app/" + q.application_id,
          "aria-label": t("court.open") + " " + (q.title || q.case_code) }, t("court.open"))))))))
      : h("p", { class: "card muted", id: "queue-empty" }, t("court.none")));
}

async function render() {
  $("#who").textContent = user ? `${user.name} · ${t("role." + user.role)}` : "";
  $("#logout").hidden = !user;
  const main = $("#main");
  main.setAttribute("aria-busy", "true");  // until the view is drawn (screen readers wait; so do the tests)
  try {
    const [, view, id, appId] = (location.hash || "#").split("/");
    if (live && !(view === "session" && id === live.sessionId)) { live.stop(); live = null; }
    if (!user) mount(main, loginView());
    else if (view === "session" && id && user.role === "court_judge") {
      if (!live) { live = new CourtSessionView(id, appId); mount(main, live.root); live.start(); } else live.paint();
      main.removeAttribute("aria-busy");
      return;
    } else if (view === "app" && id && user.role === "court_judge") mount(main, await courtCaseView(id, render));
    else mount(main, await queueView());
  } catch (err) {
    if (err.code === "login_required") { user = null; render(); return; }
    mount(main, h("p", { class: "error", role: "alert" }, explain(err)));
  }
  main.removeAttribute("aria-busy");
  focusFirst(main);
}

async function main() {
  applyStatic(document);
  installSwitch();
  onLangChange(render);
  window.addEventListener("hashchange", render);
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
