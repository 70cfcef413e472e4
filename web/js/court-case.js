// Court portal: one application — agreement, signatures and their check, transcript, recordings, audit trail,
// clocks — and the judge's decisions: accept / decline, extend, questioning (hosted by the judge), rule (R25, R26).
// Decisions that cannot be undone (not accepting, the ruling) are read back in the page before they are sent; every
// outcome is shown at the top of the view with the focus on it.
import { h, mount, field, fmtTime } from "./dom.js";
import { t, getLang } from "./i18n.js";
import * as http from "./api.js";
import { explain } from "./errors.js";
import { agreementDoc, agreementStatus } from "./agreement-view.js";
import { applicationStatus } from "./agreement-application.js";
import { invitesList } from "./console-case.js";
import { exportControl } from "./export-job.js";
import "./strings-public.js";

const DECLINE = ["out_of_scope", "no_jurisdiction", "personal_status", "special_procedure", "ownership"];
const REJECT = ["violates_mandatory_law", "harms_state_public_or_others", "against_public_order", "not_voluntary",
  "unclear_content", "inadmissible", "other"];

let flash = null;  // {id, text}: the outcome of the last decision, shown once at the top of the re-rendered view
let lastQuestioning = null;
const drafts = {};  // application id -> {reasoning}  // {app, res}: the questioning just scheduled (its links are shown only once)

export async function courtCaseView(id, rerender) {
  const base = "/api/court/applications/" + encodeURIComponent(id);
  const d = await http.get(base);
  const lang = getLang();
  const err = h("p", { class: "error", role: "alert", hidden: true, tabindex: "-1" });
  const out = h("div", { id: "questioning-out" });
  const showErr = (e) => { err.textContent = typeof e === "string" ? e : explain(e); err.hidden = false; err.focus(); };
  const act = async (path, body) => {
    err.hidden = true;
    try { return await http.post(base + path, body); } catch (e) { showErr(e); return null; }
  };
  const redo = async (path, body, okKey) => {
    if (await act(path, body)) { flash = { id: String(id), text: t(okKey) }; rerender(); }
  };
  const app = d.application;
  const ground = (list, idName) => h("select", { name: "ground", id: idName }, list.map((g) => h("option", { value: g }, t("ground." + g))));
  const declineGround = ground(DECLINE, "decline-ground");
  const ruleGround = ground(REJECT, "reject-ground");
  const extendReason = h("input", { type: "text", maxlength: "2000" });
  const qNote = h("input", { type: "text", maxlength: "2000" });
  const qWhen = h("input", { type: "datetime-local" });
  // what the judge is writing survives a redraw (a language switch, a decision elsewhere on the page)
  const draft = drafts[String(id)] || (drafts[String(id)] = {});
  const reasoning = h("textarea", { id: "reasoning", maxlength: "5000", oninput: (e) => { draft.reasoning = e.target.value; } });
  reasoning.value = draft.reasoning || "";
  const open = ["submitted", "accepted"].includes(app.status);

  // Ruling: nothing is sent until the judge has read back what will be signed (outcome, ground, reasoning).
  const confirmBox = h("div", { id: "rule-confirm", class: "card confirm", hidden: true, role: "group",
    "aria-labelledby": "rule-confirm-h" });
  const askRule = (outcome) => {
    err.hidden = true;
    const text = reasoning.value.trim();
    if (!text) { showErr(t("ruling.need_reasoning")); reasoning.focus(); return; }
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
          onclick: () => redo("/rule", body, "court.ruled_ok") }, t("ruling.sign")),
        h("button", { type: "button", id: "rule-cancel", onclick: () => { confirmBox.hidden = true; reasoning.focus(); } },
          t("ruling.cancel"))));
    confirmBox.hidden = false;
    confirmBox.querySelector("h3").focus();
  };

  // Not accepting ends the application: read back the ground first.
  const declineBox = h("div", { id: "decline-confirm", class: "confirm danger-zone", hidden: true, role: "group",
    "aria-labelledby": "decline-confirm-h" });
  const askDecline = () => {
    mount(declineBox, h("h3", { id: "decline-confirm-h", tabindex: "-1" }, t("court.decline_title")),
      h("p", {}, t("court.decline_text", { ground: t("ground." + declineGround.value) })),
      h("div", { class: "row" },
        h("button", { type: "button", class: "danger", id: "decline-yes",
          onclick: () => redo("/decline", { ground: declineGround.value }, "court.declined_ok") }, t("court.decline_yes")),
        h("button", { type: "button", id: "decline-no", onclick: () => { declineBox.hidden = true; declineGround.focus(); } }, t("ruling.cancel"))));
    declineBox.hidden = false;
    declineBox.querySelector("h3").focus();
  };

  const joinLink = (sessionId) => h("a", { class: "button primary", id: "join-questioning",
    href: `#/session/${encodeURIComponent(sessionId)}/${encodeURIComponent(id)}` }, t("court.join_q"));
  const showQuestioning = (res) => out.replaceChildren(h("p", { class: "okmsg", role: "status" }, t("court.q_created")),
    joinLink(res.session.id), invitesList(res.invites, "court.q_links") || "");
  // after a reload (or on another device) the links are gone, but the server knows the questioning: the latest
  // one whose session has not ended keeps its "join" button
  const pending = (d.questionings || []).filter((q) => q.session && q.session.state !== "ended").pop();
  const ended = (d.questionings || []).filter((q) => q.session && q.session.state === "ended").map((q) => q.session.id);
  if (lastQuestioning && ended.includes(lastQuestioning.res.session.id)) lastQuestioning = null;  // over: no join
  if (lastQuestioning && lastQuestioning.app === String(id)) showQuestioning(lastQuestioning.res);
  else if (pending) out.replaceChildren(h("p", { class: "notice", id: "questioning-scheduled" },
    t("court.q_scheduled", { at: fmtTime(pending.scheduled_at, lang) })), joinLink(pending.session.id));

  const ruling = app.ruling;
  const shown = flash && flash.id === String(id) ? flash.text : "";
  flash = null;
  const parties = (d.agreement.content && d.agreement.content.parties) || [];
  return h("section", { id: "application-view", dataset: { application: String(app.id) } },
    shown ? h("p", { class: "okmsg flash", id: "court-flash", role: "status", tabindex: "-1", autofocus: true }, "✔ " + shown) : null,
    h("p", {}, h("a", { href: "#" }, t("court.back"))),
    h("h1", {}, t("court.app_n", { id: app.id, code: d.case.code })),
    h("p", { class: "case-line" }, h("span", { class: "strong" }, d.case.title), " · ", t("cat." + d.case.category)),
    parties.length ? h("p", { class: "muted", id: "case-parties" }, parties.filter((p) => p.kind === "party")
      .map((p) => `${t("side." + p.side)}：${p.name}`).join(t("list.sep"))) : null,
    applicationStatus({ ...app, missing: [] }), err,
    open ? h("section", { class: "card", id: "decide" }, h("h2", {}, t("court.actions")),
      app.status === "submitted" ? h("div", { class: "stack" },
        h("p", {}, t("court.accept_text")),
        h("button", { type: "button", class: "primary", id: "court-accept", onclick: () => redo("/accept", undefined, "court.accepted_ok") }, t("court.accept")),
        h("div", { class: "row align-end" }, field(t("court.decline_ground"), declineGround),
          h("button", { type: "button", class: "danger", id: "court-decline", onclick: askDecline }, t("court.decline"))),
        declineBox) : null,
      app.status === "accepted" ? h("div", { class: "stack" },
        h("h3", {}, t("court.rule")), field(t("court.reasoning"), reasoning),
        field(t("court.reject_ground"), ruleGround),
        h("div", { class: "row" },
          h("button", { type: "button", class: "primary", id: "court-confirm", onclick: () => askRule("confirmed") }, t("court.confirm")),
          h("button", { type: "button", class: "danger", id: "court-reject", onclick: () => askRule("rejected") }, t("court.reject"))),
        confirmBox,
        app.extended ? null : h("div", { class: "row align-end" }, field(t("court.extend_reason"), extendReason),
          h("button", { type: "button", id: "court-extend", onclick: () => {
            if (!extendReason.value.trim()) { showErr(t("err.reason_required")); extendReason.focus(); return; }
            redo("/extend", { reason: extendReason.value.trim() }, "court.extended_ok");
          } }, t("court.extend"))),
        h("h3", {}, t("court.questioning")), field(t("court.q_when"), qWhen), field(t("court.q_note"), qNote),
        h("button", { type: "button", id: "court-questioning", onclick: async () => {
          const body = { note: qNote.value.trim() };
          if (qWhen.value) body.at = new Date(qWhen.value).toISOString();
          const res = await act("/questioning", body);
          if (res) { lastQuestioning = { app: String(id), res }; showQuestioning(res); out.querySelector("#join-questioning").focus(); }
        } }, t("court.questioning")), out) : null) : null,
    ruling ? h("section", { class: "card", id: "ruling" }, h("h2", {}, t("pub.ruling")),
      h("p", { class: "strong" }, t("app.status." + ruling.outcome)),
      ruling.ground ? h("p", {}, t("court.ruling_ground", { ground: t("ground." + ruling.ground) })) : null,
      h("p", { class: "prewrap", lang: "zh-CN" }, ruling.document.reasoning),
      ruling.objections && ruling.objections.party ? h("p", { class: "muted", id: "objection-windows" }, t("ruling.windows", {
        party: fmtTime(ruling.objections.party.due, lang), third: fmtTime(ruling.objections.third_party.due, lang) })) : null,
      h("p", {}, h("a", { href: base + "/ruling.pdf", id: "ruling-pdf" }, t("ruling.pdf")))) : null,
    h("section", { class: "card" }, h("h2", {}, t("ag.title")), agreementStatus(d.agreement),
      d.integrity && d.integrity.length ? h("div", { class: "error", id: "integrity-bad" }, t("court.integrity_bad"),
        h("ul", {}, d.integrity.map((x, i) => h("li", {}, t("court.integrity_item", { n: i + 1 }),
          h("code", { class: "raw", dataset: { scanSkip: "1" } }, " " + (typeof x === "string" ? x : JSON.stringify(x)))))))
        : h("p", { class: "okmsg", id: "integrity" }, t("court.integrity_ok")),
      h("p", { class: "row" }, h("a", { href: d.links.pdf, target: "_blank", rel: "noopener" }, t("ag.pdf_sealed")),
        h("a", { href: d.links.bundle + "?reason=" + encodeURIComponent("judicial confirmation review") }, t("court.bundle"))),
      agreementDoc(d.agreement.content)),
    h("section", { class: "card" }, h("h2", {}, t("court.recordings")),
      d.recordings.length ? h("ul", {}, d.recordings.map((r) => h("li", {}, `${fmtTime(r.started_at, lang)} · ${Math.round((r.duration_ms || 0) / 1000)} s · `,
        exportControl(r.id, () => "court review", { label: "court.play" }))))
        : h("p", { class: "muted" }, t("court.no_recordings"))),
    h("section", { class: "card" }, h("h2", {}, t("court.transcript")),
      d.transcript.length ? h("ol", { class: "chat-list", lang: "zh-CN" }, d.transcript.map((m) => h("li", {}, h("span", { class: "who" }, m.name), " ",
        h("time", {}, fmtTime(m.at, lang)), h("div", { class: "text" }, m.text))))
        : h("p", { class: "muted", id: "no-transcript" }, t("court.no_transcript"))),
    h("details", { class: "card", dataset: { scanSkip: "1" } }, h("summary", {}, t("court.audit"), ` (${d.audit.length}) · ${t("court.audit_raw")}`),
      h("div", { class: "scroll-x" }, h("table", {}, h("tbody", {}, d.audit.map((e) => h("tr", {},
        h("td", {}, fmtTime(e.at, lang)), h("td", {}, e.actor), h("td", {}, e.action), h("td", {}, e.subject))))))));
}
