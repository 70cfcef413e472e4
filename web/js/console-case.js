// Console: one case — people, clocks, stage moves, termination (R28), violence flag (R31), sessions and invites.
import { h, field, fmtTime } from "./dom.js";
import { t, getLang } from "./i18n.js";
import * as http from "./api.js";
import { explain } from "./errors.js";
import { clockTags } from "./console-cases.js";
import { AgreementEditor } from "./agreement-editor.js";

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
  return h("section", { dataset: { case: c.code } },
    h("h1", {}, c.title, " ", h("span", { class: "muted" }, c.code)),
    h("p", {}, h("span", { class: "tag", id: "stage" }, t("case.stage_now", { stage: t("stage." + c.stage) })), " ",
      t("channel." + c.channel), " · ", t("cat." + c.category),
      c.flagged_violence ? h("span", { class: "tag bad" }, " ⚠ " + t("case.flagged")) : null),
    c.summary ? h("p", {}, c.summary) : null,
    h("div", { class: "grid2" },
      h("section", { class: "card" }, h("h2", {}, t("case.people")),
        h("ul", {}, c.people.map((p) => h("li", {}, `${t("side." + p.side)} · ${t("role." + p.kind)} · ${p.name}`)))),
      h("section", { class: "card" }, h("h2", {}, t("case.clocks")), clockTags(c.clocks))),
    sessionsCard(ctx, c, data.sessions, base),
    (await new AgreementEditor(c.code).load()).root,
    h("div", { class: "grid2" }, stageCard(ctx, c, data.history, base), endCard(ctx, c, base)));
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
    h("form", { onsubmit: (e) => { e.preventDefault(); action(ctx, err, base + "/terminate", { reason: reason.value, note: note.value.trim() }); } },
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
        invitesList(issued.get(s.id)))))) : h("p", { class: "muted" }, t("case.no_sessions")),
    c.stage === "archived" ? null : h("form", { onsubmit: schedule, id: "schedule" },
      h("h3", {}, t("case.schedule")), field(t("case.when"), when),
      h("p", {}, t("case.guests")), guests,
      h("div", { class: "row" }, h("button", { type: "button", onclick: () => guestRow(guests) }, t("case.add_guest")),
        h("button", { type: "submit", class: "primary" }, t("case.do_schedule")))),
    err);
}

export function invitesList(invites) {
  if (!invites) return null;
  return h("div", { class: "invites" }, h("p", { class: "notice" }, t("case.invites")),
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
