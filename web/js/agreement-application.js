// Console: the joint application for judicial confirmation (R21-R24): eligibility, the 30-day deadline, the
// courts that may confirm it (R22), starting the application; then its status until the court rules.
import { h, field, fmtTime } from "./dom.js";
import { t, getLang } from "./i18n.js";
import * as http from "./api.js";

export function applicationStatus(app) {
  const lang = getLang();
  return h("div", { class: "application", dataset: { status: app.status } },
    h("p", {}, h("span", { class: "tag " + (app.status === "confirmed" ? "ok" : ["rejected", "not_accepted"].includes(app.status) ? "bad" : "warn"),
      id: "application-status" }, t("app.status." + app.status))),
    h("p", {}, t("app.court", { court: (app.document && app.document.court && app.document.court.name) || app.court_id })),
    app.status === "draft" ? h("p", {}, t("app.deadline", { at: fmtTime(app.deadline_at, lang) })) : null,
    app.missing && app.missing.length ? h("p", { class: "muted" }, t("app.missing", { items: app.missing.join(t("list.sep")) })) : null,
    app.ruling ? h("p", { class: app.ruling.outcome === "confirmed" ? "okmsg" : "error" }, t("app.status." + app.ruling.outcome)) : null);
}

export function applicationBox(editor) {
  const d = editor.data;
  const box = h("section", { class: "stack", id: "application" }, h("h3", {}, t("app.title")));
  if (d.application && d.application.status !== "withdrawn") {
    box.append(applicationStatus(d.application));
    return box;
  }
  const elig = d.eligibility || {};
  if (elig.eligible === false) {
    box.append(h("p", { class: "error" }, t("app.not_eligible", { why: (elig.reasons || []).map((r) => r.message).join(t("list.sep")) })));
    return box;
  }
  if (d.deadline) box.append(h("p", {}, t("app.deadline", { at: fmtTime(d.deadline.deadline_at, getLang()) })));
  const courts = d.courts || [];
  const sel = h("select", { id: "court" }, courts.map((c) => h("option", { value: c.court_id }, c.name + (c.reasons && c.reasons.length ? `（${c.reasons.join("；")}）` : ""))));
  box.append(h("form", { onsubmit: (e) => { e.preventDefault(); editor.act(async () => {
    await http.post("/api/cases/" + encodeURIComponent(editor.code) + "/application", { court_id: sel.value });
    await editor.load();
  }); } }, field(t("app.choose_court"), sel), h("button", { type: "submit", class: "primary", id: "application-start" }, t("app.start"))));
  return box;
}
