// Court portal: one application — agreement, signatures and their check, transcript, recordings, audit trail,
// clocks — and the judge's decisions: accept / decline, extend, questioning, rule (R25, R26).
import { h, mount, field, fmtTime } from "./dom.js";
import { t, getLang } from "./i18n.js";
import * as http from "./api.js";
import { explain } from "./errors.js";
import { agreementDoc, agreementStatus } from "./agreement-view.js";
import { applicationStatus } from "./agreement-application.js";
import { invitesList } from "./console-case.js";
import "./strings-public.js";

const DECLINE = ["out_of_scope", "no_jurisdiction", "personal_status", "special_procedure", "ownership"];
const REJECT = ["violates_mandatory_law", "harms_state_public_or_others", "against_public_order", "not_voluntary",
  "unclear_content", "inadmissible", "other"];

export async function courtCaseView(id, rerender) {
  const base = "/api/court/applications/" + encodeURIComponent(id);
  const d = await http.get(base);
  const lang = getLang();
  const err = h("p", { class: "error", role: "alert", hidden: true });
  const out = h("div", {});
  const act = async (path, body) => {
    err.hidden = true;
    try { return await http.post(base + path, body); } catch (e) { err.textContent = explain(e); err.hidden = false; return null; }
  };
  const redo = async (path, body) => { if (await act(path, body)) rerender(); };
  const app = d.application;
  const ground = (list) => h("select", { name: "ground" }, list.map((g) => h("option", { value: g }, t("ground." + g))));
  const declineGround = ground(DECLINE);
  const ruleGround = ground(REJECT);
  const extendReason = h("input", { type: "text", maxlength: "2000" });
  const qNote = h("input", { type: "text", maxlength: "2000" });
  const qWhen = h("input", { type: "datetime-local" });
  const reasoning = h("textarea", { id: "reasoning", maxlength: "5000" });
  const open = ["submitted", "accepted"].includes(app.status);
  // Ruling: nothing is sent until the judge has read back what will be signed (outcome, ground, reasoning).
  const confirmBox = h("div", { id: "rule-confirm", class: "card", hidden: true, role: "dialog", "aria-modal": "false",
    "aria-labelledby": "rule-confirm-h" });
  const askRule = (outcome) => {
    err.hidden = true;
    const text = reasoning.value.trim();
    if (!text) { err.textContent = t("ruling.need_reasoning"); err.hidden = false; reasoning.focus(); return; }
    const body = { outcome, reasoning: text };
    if (outcome === "rejected") body.ground = ruleGround.value;
    mount(confirmBox,
      h("h3", { id: "rule-confirm-h", tabindex: "-1" }, t("ruling.confirm_title")),
      h("p", {}, t("ruling.confirm_text")),
      h("p", { class: "strong" }, t("ruling.outcome", { label: t(outcome === "confirmed" ? "court.confirm" : "court.reject") })),
      body.ground ? h("p", {}, t("ruling.ground", { label: t("ground." + body.ground) })) : null,
      h("p", { class: "prewrap" }, t("ruling.reasoning_shown", { text })),
      h("div", { class: "row" },
        h("button", { type: "button", class: outcome === "confirmed" ? "primary" : "danger", id: "rule-sign",
          onclick: () => redo("/rule", body) }, t("ruling.sign")),
        h("button", { type: "button", id: "rule-cancel", onclick: () => { confirmBox.hidden = true; reasoning.focus(); } },
          t("ruling.cancel"))));
    confirmBox.hidden = false;
    confirmBox.querySelector("h3").focus();
  };
  const ruling = app.ruling;
  return h("section", { id: "application-view", dataset: { application: String(app.id) } },
    h("p", {}, h("a", { href: "#" }, t("court.back"))),
    h("h1", {}, t("court.app_n", { id: app.id, code: d.case.code })),
    h("p", {}, d.case.title, " · ", t("cat." + d.case.category)),
    applicationStatus(app), err,
    open ? h("section", { class: "card", id: "decide" }, h("h2", {}, t("court.actions")),
      app.status === "submitted" ? h("div", { class: "stack" },
        h("button", { type: "button", class: "primary", id: "court-accept", onclick: () => redo("/accept") }, t("court.accept")),
        h("div", { class: "row" }, declineGround, h("button", { type: "button", onclick: () => redo("/decline", { ground: declineGround.value }) }, t("court.decline")))) : null,
      app.status === "accepted" ? h("div", { class: "stack" },
        h("h3", {}, t("court.rule")), field(t("court.reasoning"), reasoning),
        h("div", { class: "row" },
          h("button", { type: "button", class: "primary", id: "court-confirm", onclick: () => askRule("confirmed") }, t("court.confirm")),
          ruleGround,
          h("button", { type: "button", class: "danger", id: "court-reject", onclick: () => askRule("rejected") }, t("court.reject"))),
        confirmBox,
        app.extended ? null : h("div", { class: "row" }, field(t("court.extend_reason"), extendReason),
          h("button", { type: "button", onclick: () => redo("/extend", { reason: extendReason.value.trim() }) }, t("court.extend"))),
        h("h3", {}, t("court.questioning")), field(t("court.q_when"), qWhen), field(t("court.q_note"), qNote),
        h("button", { type: "button", onclick: async () => {
          const body = { note: qNote.value.trim() };
          if (qWhen.value) body.at = new Date(qWhen.value).toISOString();
          const res = await act("/questioning", body);
          if (res) out.replaceChildren(invitesList(res.invites) || "");
        } }, t("court.questioning")), out) : null) : null,
    ruling ? h("section", { class: "card", id: "ruling" }, h("h2", {}, t("pub.ruling")),
      h("p", { class: "strong" }, ruling.document.outcome_label, ruling.document.ground_label ? "：" + ruling.document.ground_label : ""),
      h("p", { class: "prewrap" }, ruling.document.reasoning),
      ruling.objections && ruling.objections.party ? h("p", { class: "muted", id: "objection-windows" }, t("ruling.windows", {
        party: fmtTime(ruling.objections.party.due, lang), third: fmtTime(ruling.objections.third_party.due, lang) })) : null,
      h("p", {}, h("a", { href: base + "/ruling.pdf", id: "ruling-pdf" }, t("ruling.pdf")))) : null,
    h("section", { class: "card" }, h("h2", {}, t("ag.title")), agreementStatus(d.agreement),
      d.integrity && d.integrity.length ? h("div", { class: "error" }, t("court.integrity_bad"), h("ul", {}, d.integrity.map((x) => h("li", {}, typeof x === "string" ? x : JSON.stringify(x)))))
        : h("p", { class: "okmsg", id: "integrity" }, t("court.integrity_ok")),
      h("p", { class: "row" }, h("a", { href: d.links.pdf, target: "_blank", rel: "noopener" }, t("ag.pdf_sealed")),
        h("a", { href: d.links.bundle + "?reason=" + encodeURIComponent("judicial confirmation review") }, t("court.bundle"))),
      agreementDoc(d.agreement.content)),
    h("section", { class: "card" }, h("h2", {}, t("court.recordings")),
      d.recordings.length ? h("ul", {}, d.recordings.map((r) => h("li", {}, `${fmtTime(r.started_at, lang)} · ${Math.round((r.duration_ms || 0) / 1000)} s · `,
        h("a", { href: `/api/recordings/${encodeURIComponent(r.id)}/export?reason=${encodeURIComponent("court review")}` }, t("court.play")))))
        : h("p", { class: "muted" }, t("court.no_recordings"))),
    h("section", { class: "card" }, h("h2", {}, t("court.transcript")),
      h("ol", { class: "chat-list" }, d.transcript.map((m) => h("li", {}, h("span", { class: "who" }, m.name), " ",
        h("time", {}, fmtTime(m.at, lang)), h("div", { class: "text" }, m.text))))),
    h("details", { class: "card" }, h("summary", {}, t("court.audit"), ` (${d.audit.length})`),
      h("div", { class: "scroll-x" }, h("table", {}, h("tbody", {}, d.audit.map((e) => h("tr", {},
        h("td", {}, fmtTime(e.at, lang)), h("td", {}, e.actor), h("td", {}, e.action), h("td", {}, e.subject))))))));
}
