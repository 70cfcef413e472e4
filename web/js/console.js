// Mediator console entry (console.html): login, then a small hash router over the console's views.
import "./strings-common.js";
import "./strings-console.js";
import "./strings-agreement.js";
import { applyStatic, installSwitch, onLangChange, t } from "./i18n.js";
import { h, mount, $, field, focusFirst } from "./dom.js";
import * as http from "./api.js";
import { explain } from "./errors.js";
import { casesView, intakeView } from "./console-cases.js";
import { caseView } from "./console-case.js";
import { HostView } from "./console-session.js";

const ctx = { user: null, host: null, render: () => route() };

function loginView() {
  const user = h("input", { type: "text", id: "username", autocomplete: "username", required: true });
  const pass = h("input", { type: "password", id: "password", autocomplete: "current-password", required: true });
  const err = h("p", { class: "error", role: "alert", hidden: true });
  async function submit(e) {
    e.preventDefault();
    err.hidden = true;
    try {
      ctx.user = await http.login(user.value.trim(), pass.value);
      paintUser();
      if (!location.hash || location.hash === "#/login") location.hash = "#/cases";
      else route();
    } catch (e2) {
      err.textContent = explain(e2);
      err.hidden = false;
      pass.select();
    }
  }
  return h("section", { class: "card login" }, h("h1", {}, t("login.title")),
    h("form", { onsubmit: submit }, field(t("common.username"), user), field(t("common.password"), pass), err,
      h("button", { type: "submit", class: "primary" }, t("common.login"))));
}

/** A psychologist joins sessions only (private talks): the session number comes from the mediator. */
function psychologistView() {
  const num = h("input", { type: "number", id: "session-number", min: "1", required: true });
  return h("section", { class: "card login" }, h("h1", {}, t("psy.title")), h("p", {}, t("psy.hint")),
    h("form", { onsubmit: (e) => { e.preventDefault(); location.hash = "#/session/" + Number(num.value); } },
      field(t("psy.session"), num), h("button", { type: "submit", class: "primary" }, t("psy.go"))));
}

function paintUser() {
  $("#who").textContent = ctx.user ? `${ctx.user.name} · ${t("role." + ctx.user.role)}` : "";
  $("#logout").hidden = !ctx.user;
  $("#nav").hidden = !ctx.user || ctx.user.role === "staff_psychologist";
}

let routeSeq = 0;  // renders overlap (a hash change, then an action's re-render): only the latest one may mount

async function route() {
  const main = $("#main");
  const seq = ++routeSeq;
  const show = (view) => { if (seq === routeSeq) mount(main, view); };
  paintUser();
  if (!ctx.user) { show(loginView()); focusFirst(main); return; }
  const [, view, arg] = (location.hash || "#/cases").split("/");
  if (ctx.host && !(view === "session" && Number(arg) === ctx.host.sessionId)) { ctx.host.close(); ctx.host = null; }
  try {
    if (ctx.user.role === "staff_psychologist" && view !== "session") show(psychologistView());
    else if (view === "new") show(intakeView(ctx));
    else if (view === "case" && arg) show(await caseView(ctx, decodeURIComponent(arg)));
    else if (view === "session" && arg) {
      if (!ctx.host) { ctx.host = new HostView(ctx, Number(arg)); ctx.host.start(); }
      show(ctx.host.root);
      ctx.host.paint();
    } else show(await casesView(ctx));
  } catch (err) {
    if (seq !== routeSeq) return;
    if (err.code === "login_required") { ctx.user = null; route(); return; }
    show(h("p", { class: "error", role: "alert" }, explain(err)));
  }
  if (seq === routeSeq) focusFirst(main);
}

async function main() {
  applyStatic(document);
  installSwitch();
  onLangChange(() => { paintUser(); if (ctx.host && ctx.host.root.isConnected) ctx.host.paint(); else route(); });
  window.addEventListener("hashchange", route);
  $("#logout").addEventListener("click", async () => {
    if (ctx.host) { ctx.host.close(); ctx.host = null; }
    try { await http.logout(); } catch { /* logged out anyway */ }
    ctx.user = null;
    location.hash = "#/login";
    route();
  });
  try { ctx.user = await http.me(); } catch (err) { mount($("#main"), h("p", { class: "error" }, explain(err))); return; }
  route();
}

window.__onedoor = {
  get pc() { return ctx.host && ctx.host.media.pc; },
  get media() { return ctx.host && ctx.host.media; },
  get socket() { return ctx.host && ctx.host.socket; },
  get state() { return ctx.host && ctx.host.state; },
};

main();
