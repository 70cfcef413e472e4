// Console: one case — people, clocks, stage moves, termination (R28), violence flag (R31), sessions and invites.
import { h, field, fmtTime } from "./dom.js";
import { confirmDialog } from "./confirm.js";
import { t, getLang, has } from "./i18n.js";
import * as http from "./api.js";
import { explain } from "./errors.js";
import { clockTags } from "./console-cases.js";
import { AgreementEditor } from "./agreement-editor.js";
import { agreementSteps, namesOf, promptBox } from "./console-next.js";
import { peopleCard } from "./console-people.js";
import { DocumentsPanel } from "./documents.js";
import { exportControl } from "./export-job.js";

const NEXT = { intake: ["triage"], triage: ["handling"], handling: ["feedback", "triage"], feedback: ["archived", "handling"], archived: [] };
const REASONS = ["agreement_reached", "party_refused_to_sign", "party_withdrew", "no_agreement", "party_absent",
  "transferred_to_litigation", "out_of_scope", "time_limit_expired", "other"];
const GUEST_ROLES = ["psychologist", "interpreter", "observer", "judge"];
const issued = new Map();  // session id -> invites (links are shown once; kept only in this page's memory)

function errorBox() {
  const el = h("p", { class: "error", role: "alert", hidden: true });
  el.show = (e) => { el.textContent = explain(e); el.hidden = false; };
  return el;
}

/** POST, then re-render the case view; errors shown in `err`. */
function action(ctx, err, path, body) {
  return http.post(path, body).then(() => ctx.render(), (e) => err.show(e));
}

export async function caseView(ctx, code) {
  const data = await http.get("/api/cases/" + encodeURIComponent(code));
  const c = data.case;
  const base = "/api/cases/" + encodeURIComponent(c.code);
  const prompt = h("div", { id: "prompt-slot" });
  const live = data.sessions.some((s) => s.state !== "ended");
  const repaint = (ed) => {
    const steps = agreementSteps(ed.data, namesOf(ed.data, c.people));
    if (live) steps.now = steps.now.filter((x) => x !== t("next.schedule_session"));
    prompt.replaceChildren(promptBox([steps]));
  };
  const editor = await new AgreementEditor(c.code, { onChange: repaint }).load();
  const docs = new DocumentsPanel({ code: c.code, people: c.people.filter((p) => p.kind === "agent") });
  docs.load();
  return h("section", { class: "caseview", dataset: { case: c.code } },
    h("h1", {}, c.title, " ", h("span", { class: "muted" }, c.code)),
    h("p", {}, h("span", { class: "tag", id: "stage" }, t("case.stage_now", { stage: t("stage." + c.stage) })), " ",
      t("channel." + c.channel), " · ", t("cat." + c.category),
      c.personal_matter && c.personal_matter !== "none" ? [" · ", h("span", { class: "tag warn" }, t("pm." + c.personal_matter))] : null,
      c.flagged_violence ? h("span", { class: "tag bad" }, " ⚠ " + t("case.flagged")) : null),
    prompt,
    c.summary ? h("p", {}, c.summary) : null,
    h("div", { class: "grid2" }, peopleCard(ctx, c),
      h("div", {}, sessionsCard(ctx, c, data.sessions, base),
        h("section", { class: "card" }, h("h2", {}, t("case.clocks")), clockTags(c.clocks)))),
    editor.root,
    h("div", { class: "grid2" }, docs.root, recordingsCard(c)),
    h("div", { class: "grid2" }, stageCard(ctx, c, data.history, base), endCard(ctx, c, base)));
}

/** The case's recordings (GET …/recordings), each with an export job (progress, then the download) that says why
 * it is read (logged). */
function recordingsCard(c) {
  const box = h("section", { class: "card", id: "recordings" }, h("h2", {}, t("recs.title")), h("p", { class: "muted" }, t("common.loading")));
  http.get(`/api/cases/${encodeURIComponent(c.code)}/recordings`).then(({ recordings }) => {
    const reason = h("input", { type: "text", id: "rec-export-reason", maxlength: "300", value: t("recs.default_reason") });
    const items = recordings.map((r) => h("li", { dataset: { recording: String(r.id) } },
      h("div", { class: "row" }, h("strong", {}, t("recs.item", { session: r.session_id ?? "" })),
        h("span", { class: "tag" + (r.status === "stopped" ? " ok" : "") }, has("recs.status." + r.status) ? t("recs.status." + r.status) : t("recs.status.other")),
        h("span", { class: "muted" }, fmtTime(r.started_at, getLang())),
        r.privileged ? h("span", { class: "tag warn" }, t("recs.privileged")) : null,
        h("span", { class: "muted" }, t("recs.duration", { min: Math.round((r.duration_ms || 0) / 60000) })),
        exportControl(r.id, () => {
          if (!reason.value.trim()) { reason.focus(); return ""; }
          return reason.value.trim();
        }))));
    box.replaceChildren(h("h2", {}, t("recs.title")),
      ...(items.length ? [h("ul", { class: "plist" }, items), field(t("recs.reason"), reason)]
        : [h("p", { class: "muted", id: "recordings-empty" }, t("recs.empty"))]));
  }, (err) => box.replaceChildren(h("h2", {}, t("recs.title")), h("p", { class: "error" }, explain(err))));
  return box;
}

function stageCard(ctx, c, history, base) {
  const err = errorBox();
  const note = h("input", { type: "text", maxlength: "2000" });
  return h("section", { class: "card" }, h("h2", {}, t("cases.stage")),
    field(t("case.stage_note"), note),
    h("div", { class: "row" }, NEXT[c.stage].map((to) => h("button", { type: "button", dataset: { to },
      onclick: () => action(ctx, err, base + "/stage", { to, note: note.value.trim() }) }, t("case.move_to", { stage: t("stage." + to) })))),
    err,
    h("h3", {}, t("case.history")),
    h("ol", {}, history.map((x) => h("li", {}, `${fmtTime(x.at, getLang())} ${x.from ? t("stage." + x.from) + " → " : ""}${t("stage." + x.to)}`,
      x.note ? " — " + x.note : ""))));
}

function endCard(ctx, c, base) {
  const err = errorBox();
  const reason = h("select", { required: true, id: "term-reason" }, h("option", { value: "" }, t("intake.choose")),
    REASONS.map((r) => h("option", { value: r, selected: r === c.termination_reason }, t("term." + r))));
  const note = h("textarea", { maxlength: "5000" });
  const flagNote = h("input", { type: "text", maxlength: "2000" });
  return h("section", { class: "card", id: "end-case" }, h("h2", {}, t("case.terminate")),
    c.termination_reason ? h("p", { class: "okmsg" }, t("case.terminated", { reason: t("term." + c.termination_reason) })) : null,
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      const label = reason.selectedOptions[0].textContent;
      if (!(await confirmDialog(t("case.terminate_confirm", { reason: label }),
        { title: t("case.terminate_title"), confirm: t("case.terminate_yes") }))) return;
      action(ctx, err, base + "/terminate", { reason: reason.value, note: note.value.trim() });
    } },
      field(t("case.reason"), reason), field(t("case.term_note"), note),
      h("button", { type: "submit" }, t("case.terminate"))),
    c.flagged_violence ? null : h("form", { onsubmit: (e) => { e.preventDefault(); action(ctx, err, base + "/flag", { note: flagNote.value.trim() }); } },
      field(t("case.flag_note"), flagNote), h("button", { type: "submit", class: "danger" }, t("case.flag"))),
    err);
}

function guestRow(list) {
  const row = h("div", { class: "row guest" },
    h("select", { name: "role", "aria-label": t("case.guest_role") }, GUEST_ROLES.map((r) => h("option", { value: r }, t("role." + r)))),
    h("input", { type: "text", name: "name", maxlength: "200", "aria-label": t("case.guest_name"), placeholder: t("case.guest_name") }),
    h("button", { type: "button", onclick: () => row.remove() }, t("intake.remove")));
  list.append(row);
}

function sessionsCard(ctx, c, sessions, base) {
  const err = errorBox();
  const when = h("input", { type: "datetime-local" });
  const guests = h("div", { class: "stack" });
  async function schedule(e) {
    e.preventDefault();
    const body = { guests: [...guests.querySelectorAll(".guest")].map((g) => ({ role: g.querySelector("select").value,
      name: g.querySelector("input").value.trim() })).filter((g) => g.name) };
    if (when.value) body.scheduled_at = new Date(when.value).toISOString();
    try {
      const out = await http.post(base + "/sessions", body);
      issued.set(out.session.id, out.invites);
      ctx.render();
    } catch (e2) { err.show(e2); }
  }
  return h("section", { class: "card" }, h("h2", {}, t("case.sessions")),
    sessions.length ? h("ul", { class: "plist" }, sessions.map((s) => h("li", { dataset: { session: String(s.id) } },
      h("div", { class: "stack", style: "flex:1" },
        h("div", { class: "row" }, `#${s.id} · ${fmtTime(s.scheduled_at, getLang())} · ${t("case.session_state", { state: t("sstate." + s.state) })}`,
          s.state !== "ended" ? h("a", { class: "button primary", href: "#/session/" + s.id }, t("case.join_host")) : null),
        invitesList(issued.get(s.id)),
        s.state !== "ended" ? invitesManager(s.id) : null)))) : h("p", { class: "muted" }, t("case.no_sessions")),
    c.stage === "archived" ? null : h("form", { onsubmit: schedule, id: "schedule" },
      h("h3", {}, t("case.schedule")), field(t("case.when"), when),
      h("p", {}, t("case.guests")), guests,
      h("div", { class: "row" }, h("button", { type: "button", onclick: () => guestRow(guests) }, t("case.add_guest")),
        h("button", { type: "submit", class: "primary" }, t("case.do_schedule")))),
    err);
}

/** "Links and reissue": the session's invites (GET /api/sessions/{id}) with a new-link button each. */
export function invitesManager(sessionId) {
  const box = h("div", { class: "invites-manager", hidden: true, id: "invites-" + sessionId });
  const toggle = h("button", { type: "button", class: "small", id: "manage-invites-" + sessionId, "aria-expanded": "false",
    "aria-controls": "invites-" + sessionId, onclick: async () => {
      box.hidden = !box.hidden;
      toggle.setAttribute("aria-expanded", String(!box.hidden));
      if (!box.hidden) await paintInvites(sessionId, box);
    } }, t("inv.manage"));
  return h("div", {}, toggle, box);
}

export async function paintInvites(sessionId, box) {
  box.replaceChildren(h("p", { class: "muted" }, t("common.loading")));
  let out;
  try { out = await http.get("/api/sessions/" + sessionId); } catch (err) { box.replaceChildren(h("p", { class: "error" }, explain(err))); return; }
  const lang = getLang();
  box.replaceChildren(h("p", { class: "hint" }, t("inv.hint")), h("ul", { class: "plist" }, out.invites.map((i) => {
    const slot = h("div", { class: "reissued" });
    const msg = h("p", { role: "status", class: "okmsg", hidden: true, tabindex: "-1" });
    const err = h("p", { role: "alert", class: "error", hidden: true });
    const btn = h("button", { type: "button", class: "small", id: `reissue-${i.id}`, "aria-label": t("inv.reissue_for", { name: i.name }), onclick: async () => {
      if (!(await confirmDialog(t("inv.reissue_confirm", { name: i.name }),
        { title: t("inv.reissue_title", { name: i.name }), confirm: t("inv.reissue_yes"), danger: true }))) return;
      err.hidden = true;
      try {
        const res = await http.post(`/api/sessions/${sessionId}/invites/${i.id}/reissue`);
        slot.replaceChildren(invitesList([{ ...res.invite, name: i.name }], "inv.new_link"));
        msg.textContent = t("inv.reissued", { name: i.name });
        msg.hidden = false;
        msg.focus();
      } catch (e2) { err.textContent = explain(e2); err.hidden = false; }
    } }, t("inv.reissue"));
    return h("li", { dataset: { invite: String(i.id) } }, h("div", { class: "stack", style: "flex:1" },
      h("div", { class: "row" }, h("strong", {}, `${i.name} · ${t("role." + i.role)}`),
        h("span", { class: "tag" + (i.bound ? " ok" : "") }, i.bound ? t("inv.bound") : t("inv.unbound")),
        h("span", { class: "muted" }, t("inv.expires", { at: fmtTime(i.expires_at, lang) })), btn),
      msg, err, slot));
  })));
}

export function invitesList(invites, titleKey = "case.invites") {
  if (!invites) return null;
  return h("div", { class: "invites" }, h("p", { class: "notice" }, t(titleKey)),
    invites.map((i) => {
      const copy = h("button", { type: "button", onclick: async () => {
        try { await navigator.clipboard.writeText(i.link); copy.textContent = t("case.copied"); } catch { /* select instead */ }
      } }, t("case.copy"));
      return h("div", { class: "invite", dataset: { invite: String(i.id), role: i.role } },
        h("img", { src: i.qr, alt: t("case.qr_alt", { name: i.name }), width: "120", height: "120" }),
        h("div", { class: "stack" }, h("strong", {}, `${i.name} · ${t("role." + i.role)}`),
          h("a", { href: i.link, class: "invite-link", target: "_blank", rel: "noopener" }, h("code", {}, i.link)), copy));
    }));
}
