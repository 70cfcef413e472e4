// Console: the joint application for judicial confirmation (R21-R24): eligibility, the 30-day deadline, the
// courts that may confirm it (R22), starting the application; then its status until the court rules.
import { h, field, fmtTime } from "./dom.js";
import { t, getLang, has } from "./i18n.js";
import * as http from "./api.js";
import { missingText } from "./errors.js";

/** What a court's suggestion reason means (CPL 205), from the server's fixed reasons. */
const COURT_REASONS = [["当事人住所地", "app.why.domicile"], ["标的物所在地", "app.why.property"], ["调解组织所在地", "app.why.organization"]];
export function courtReason(r) {
  const hit = COURT_REASONS.find(([zh]) => String(r).startsWith(zh));
  return hit ? t(hit[1]) : t("app.why.other");
}

/** "待双方签名" only while both still have to sign: after that, who is left, or that it waits for the seal. */
function statusWord(app, names) {
  if (app.status !== "draft") return t("app.status." + app.status);
  const left = app.unsigned_parties || [];
  const signed = (app.signed_by || []).length;
  if (left.length && !signed) return t("app.status.draft");
  if (left.length) return t("app.status.draft_some", { names: left.map((id) => names[id] || t("next.someone")).join(t("list.sep")) });
  return t("app.status.draft_signed");
}

/** The application's status; `names` (person id → name) words who has still to sign. */
export function applicationStatus(app, names = {}) {
  const lang = getLang();
  const missing = (app.missing || []).map((x) => missingText(x, names));
  return h("div", { class: "application", dataset: { status: app.status } },
    h("p", {}, h("span", { class: "tag " + (app.status === "confirmed" ? "ok" : ["rejected", "not_accepted"].includes(app.status) ? "bad" : "warn"),
      id: "application-status" }, statusWord(app, names))),
    h("p", {}, t("app.court", { court: (app.document && app.document.court && app.document.court.name) || app.court_id })),
    app.status === "draft" ? h("p", {}, t("app.deadline", { at: fmtTime(app.deadline_at, lang) })) : null,
    app.status === "draft" && missing.length ? h("div", { class: "muted", id: "application-missing" }, h("p", {}, t("app.missing_title")),
      h("ul", {}, missing.map((x) => h("li", {}, x)))) : null,
    app.ruling ? h("p", { class: app.ruling.outcome === "confirmed" ? "okmsg" : "error" }, t("app.status." + app.ruling.outcome)) : null);
}

export function applicationBox(editor) {
  const d = editor.data;
  const box = h("section", { class: "stack", id: "application" }, h("h3", {}, t("app.title")));
  if (d.application && d.application.status !== "withdrawn") {
    box.append(applicationStatus(d.application, editor.names()));
    return box;
  }
  const elig = d.eligibility || {};
  if (elig.eligible === false) {
    box.append(h("p", { class: "error" }, t("app.not_eligible", { why: (elig.reasons || []).map((r) => (has("inel." + r.code) ? t("inel." + r.code) : t("app.why.other"))).join(t("list.sep")) })));
    return box;
  }
  if (d.deadline) box.append(h("p", {}, t("app.deadline", { at: fmtTime(d.deadline.deadline_at, getLang()) })));
  const courts = d.courts || [];
  const sel = h("select", { id: "court" }, courts.map((c) => h("option", { value: c.court_id }, c.name + (c.reasons && c.reasons.length ? t("app.court_why", { why: c.reasons.map(courtReason).join(t("list.sep")) }) : ""))));
  box.append(h("form", { onsubmit: (e) => { e.preventDefault(); editor.act(async () => {
    await http.post("/api/cases/" + encodeURIComponent(editor.code) + "/application", { court_id: sel.value });
    await editor.load();
    editor.say(t("app.started"));
  }); } }, field(t("app.choose_court"), sel), h("button", { type: "submit", class: "primary", id: "application-start" }, t("app.start"))));
  return box;
}
