// Side panels of the host view: lobby (a list of people with their readiness and actions: check ID, admit,
// refuse with a reason), people in the session (mute, hands), recording, caucus / private talk, end.
import { h } from "./dom.js";
import { confirmDialog } from "./confirm.js";
import { t, has } from "./i18n.js";

const DOCS = ["id_card", "passport", "other"];
const who = (p) => `${p.name} · ${t("role." + p.role)}${p.side ? " · " + t("side." + p.side) : ""}`;
const blockText = (b) => (has("block." + b) ? t("block." + b) : t("block.other"));
const MEDIATORS = new Set(["host", "co_mediator"]);

/** One readiness item: "身份 ✓" / "告知 ✗"; `null` (does not apply) is left out. */
function chip(label, v) {
  if (v === null || v === undefined) return null;
  return h("li", { class: "chip " + (v ? "ok" : "bad") }, h("span", { "aria-hidden": "true" }, v ? "✓ " : "✗ "),
    label, h("span", { class: "visually-hidden" }, v ? t("host.chip_yes") : t("host.chip_no")));
}

export function lobbyPanel(view) {
  const lobby = (view.state && view.state.lobby) || [];
  const reasons = view.reasons || (view.reasons = {});
  const refusing = view.refusing || (view.refusing = new Set());
  const items = lobby.map((p) => {
    const ready = !p.blocking.length;
    const doc = h("select", { id: "doc-" + p.id, "aria-label": t("host.document_of", { name: p.name }) },
      DOCS.map((d) => h("option", { value: t("host.doc." + d) }, t("host.doc." + d))));
    const attest = (matched) => view.act("identity:attest", { participant: p.id, document: doc.value, matched });
    const reason = h("textarea", { id: "reason-" + p.id, maxlength: "500", rows: "2", value: reasons[p.id] || "",
      oninput: (e) => { reasons[p.id] = e.target.value; } });
    const refuseBox = h("div", { class: "refuse-box", id: "refuse-box-" + p.id, hidden: !refusing.has(p.id) },
      h("label", { for: "reason-" + p.id, class: "block" }, t("host.refuse_reason_of", { name: p.name })), reason,
      h("div", { class: "row" },
        h("button", { type: "button", class: "danger", id: "refuse-" + p.id, onclick: async () => {
          if (!(await confirmDialog(t("host.refuse_confirm", { name: p.name }),
            { title: t("host.refuse_title", { name: p.name }), confirm: t("host.refuse_yes"), danger: true }))) return;
          if (await view.act("lobby:refuse", { participant: p.id, reason: reason.value.trim() })) {
            refusing.delete(p.id); delete reasons[p.id];
            view.say(t("host.refused_ok", { name: p.name }));
          }
        } }, t("host.refuse_do")),
        h("button", { type: "button", onclick: () => { refusing.delete(p.id); view.paint(); } }, t("common.cancel"))));
    return h("li", { class: "lobby-person" + (ready ? " ready" : ""), dataset: { participant: p.id, ready: String(ready) } },
      h("div", { class: "row head" }, h("strong", {}, who(p)),
        ready ? h("span", { class: "tag ok" }, t("host.ready")) : null),
      h("ul", { class: "chips", "aria-label": t("host.readiness_of", { name: p.name }) },
        chip(t("host.identity"), p.identity), chip(t("host.notices"), p.notices),
        chip(t("host.online"), p.online_consent), chip(t("host.recording"), p.recording_consent),
        p.role !== "party" && p.role !== "agent" ? chip(t("host.third_ok"), p.third_party_ok) : null),
      ready ? null : h("p", { class: "missing" }, t("host.missing", { items: p.blocking.map(blockText).join(t("list.sep")) })),
      p.identity ? null : h("div", { class: "attest row" }, h("span", {}, t("host.attest_hint")), doc,
        h("button", { type: "button", id: "attest-" + p.id, onclick: () => attest(true) }, t("host.matched")),
        h("button", { type: "button", onclick: () => attest(false) }, t("host.not_matched"))),
      h("div", { class: "row actions" },
        h("button", { type: "button", class: "primary", id: "admit-" + p.id, disabled: !ready,
          "aria-label": t("host.admit_named", { name: p.name }),
          onclick: async () => { if (await view.act("lobby:admit", { participant: p.id })) view.say(t("host.admitted_ok", { name: p.name })); } }, t("host.admit")),
        refusing.has(p.id) ? null : h("button", { type: "button", class: "danger", id: "refuse-open-" + p.id,
          "aria-label": t("host.refuse_named", { name: p.name }), "aria-controls": "refuse-box-" + p.id,
          onclick: () => { refusing.add(p.id); view.paint(); const el = document.getElementById("reason-" + p.id); if (el) el.focus(); } }, t("host.refuse"))),
      refuseBox);
  });
  const admitAll = async () => {
    const ack = await view.act("lobby:admit-all", {});
    if (!ack) return;
    const names = Object.fromEntries(lobby.map((p) => [p.id, p.name]));
    if (ack.not_ready && ack.not_ready.length) {
      view.showError(t("host.not_all") + " " + ack.not_ready.map((x) =>
        t("host.not_ready_item", { name: names[x.participant] || t("next.someone"), why: x.blocking.map(blockText).join(t("list.sep")) })).join(t("host.semi")));
    }
    if (ack.admitted && ack.admitted.length) view.say(t("host.admitted_ok", { name: ack.admitted.map((id) => names[id] || "").join(t("list.sep")) }));
  };
  return h("section", { class: "card", id: "lobby", "aria-labelledby": "lobby-h" },
    h("div", { class: "row" }, h("h2", { id: "lobby-h" }, t("host.lobby_n", { n: lobby.length })),
      lobby.length ? h("button", { type: "button", id: "admit-all", onclick: admitAll }, t("host.admit_all")) : null),
    lobby.length ? h("ul", { class: "lobby-list" }, items) : h("p", { class: "muted" }, t("host.lobby_empty")));
}

export function peoplePanel(view) {
  const st = view.state || {};
  const me = (st.you || {}).id;
  const myRole = (st.you || {}).role;
  const people = st.participants || [];
  return h("section", { class: "card", id: "people", "aria-labelledby": "people-h" }, h("h2", { id: "people-h" }, t("host.in_session_n", { n: people.length })),
    h("ul", { class: "plist" }, people.map((p) => h("li", { dataset: { participant: p.id } },
      h("span", {}, who(p), p.id === me ? t("common.you") : ""),
      p.hand ? h("span", { class: "tag warn" }, "✋ " + t("sess.hand")) : null,
      p.muted ? h("span", { class: "tag" }, "🔇 " + t("sess.muted")) : null,
      p.audio_only ? h("span", { class: "tag" }, t("sess.audio_only")) : null,
      MEDIATORS.has(myRole) && p.id !== me && !p.muted && !MEDIATORS.has(p.role)
        ? h("button", { type: "button", id: "mute-" + p.id, "aria-label": t("host.mute_named", { name: p.name }),
          onclick: () => view.act("mute:other", { participant: p.id }) }, t("host.mute_other")) : null))));
}

/** Who is in the caucus, never naming the person looking ("you" instead). */
export function caucusNames(view) {
  const st = view.state || {};
  const c = st.caucus || {};
  const me = st.you || {};
  const ids = c.member_ids || [];
  const byId = Object.fromEntries((st.participants || []).map((p) => [p.id, p.name]));
  const names = ids.length ? ids.filter((id) => id !== me.id).map((id) => byId[id] || "") : (c.members || []).filter((n) => n !== me.name);
  return names.filter(Boolean).join(t("list.sep"));
}

export function caucusPanel(view) {
  const st = view.state || {};
  const me = (st.you || {}).id;
  const myRole = (st.you || {}).role;
  const others = (st.participants || []).filter((p) => p.id !== me);
  const parties = others.filter((p) => p.role === "party" || p.role === "agent");
  const c = st.caucus || {};
  if (c.active) {
    const mine = (c.member_ids || []).includes(me) || c.you_inside;
    return h("section", { class: "card", id: "caucus" }, h("h2", {}, t("host.caucus")),
      h("p", {}, t(c.kind === "private_talk" ? "host.private_now" : "host.caucus_now", { names: caucusNames(view) })),
      myRole === "host" || mine ? h("button", { type: "button", class: "primary", id: "caucus-close", onclick: async () => {
        if (await view.act("caucus:close", {})) { view.caucusIds = null; view.say(t("host.caucus_closed")); }
      } }, t(c.kind === "private_talk" ? "host.private_close" : "host.caucus_close")) : null);
  }
  const talk = parties.map((p) => h("button", { type: "button", id: "private-" + p.id, onclick: async () => {
    if (await view.act("caucus:private-talk", { participant: p.id })) view.say(t("host.private_started", { name: p.name }));
  } }, t("host.private_with", { name: p.name })));
  if (myRole !== "host") {  // a psychologist: private talks only
    return h("section", { class: "card", id: "caucus" }, h("h2", {}, t("host.private")), h("p", { class: "muted" }, t("host.private_hint")),
      parties.length ? h("div", { class: "row" }, talk) : h("p", { class: "muted" }, t("host.no_parties")));
  }
  const open = async (ids) => {
    const ack = await view.act("caucus:open", { members: [me, ...ids] });
    if (ack) { view.caucusIds = ack.members; pick.clear(); }
  };
  const pick = view.caucusPick || (view.caucusPick = new Set());
  const boxes = others.map((p) => h("label", { class: "choice" },
    h("input", { type: "checkbox", value: p.id, name: "caucus-member", id: "pick-" + p.id, checked: pick.has(p.id),
      onchange: (e) => (e.target.checked ? pick.add(p.id) : pick.delete(p.id)) }), who(p)));
  const sideButtons = ["A", "B"].map((side) => {
    const ids = others.filter((p) => p.side === side).map((p) => p.id);
    return ids.length ? h("button", { type: "button", id: "caucus-side-" + side, onclick: () => open(ids) },
      t("host.caucus_side", { side: t("side." + side) })) : null;
  });
  const form = h("form", { onsubmit: (e) => {
    e.preventDefault();
    open([...form.querySelectorAll("input:checked")].map((i) => i.value));
  } }, h("fieldset", {}, h("legend", {}, t("host.caucus_pick")), boxes),
  h("button", { type: "submit" }, t("host.caucus_open")));
  return h("section", { class: "card", id: "caucus" }, h("h2", {}, t("host.caucus")), h("p", { class: "muted" }, t("host.caucus_none")),
    h("div", { class: "row" }, sideButtons), others.length ? h("details", {}, h("summary", {}, t("host.caucus_custom")), form) : null);
}

export function endPanel(view) {
  const reason = h("input", { type: "text", id: "end-reason", maxlength: "500", value: view.endReason || "",
    oninput: (e) => { view.endReason = e.target.value; } });
  const end = async () => {
    if (!(await confirmDialog(t("host.end_confirm"), { title: t("host.end_title"), confirm: t("host.end_yes"), danger: true }))) return;
    if (await view.act("session:end", { reason: reason.value.trim() })) view.onEnded();
  };
  return h("section", { class: "card", id: "end" }, h("h2", {}, t("host.end")),
    h("label", { for: "end-reason", class: "block" }, t("host.end_reason")), reason,
    h("p", {}, h("button", { type: "button", class: "danger", id: "end-session", onclick: end }, t("host.end"))));
}

/** Recording controls (R1, R12): start needs everyone's consent; pause/resume/stop need a reason. */
export function recordingPanel(view) {
  const mode = (view.state && view.state.recording) || "off";
  const note = view.recNote || { text: "", bad: false };
  const reason = h("input", { type: "text", id: "rec-reason", maxlength: "500", value: view.recReason || "",
    "aria-invalid": note.bad ? "true" : null, "aria-describedby": "rec-note",
    placeholder: mode === "off" ? t("rec.start_default") : "", oninput: (e) => { view.recReason = e.target.value; } });
  const send = async (event) => {
    const text = reason.value.trim();
    if (event !== "recording:start" && !text) {
      view.recNote = { text: t("rec.reason_required_for", { what: t("rec.what." + event.split(":")[1]) }), bad: true };
      view.paint();
      const el = document.getElementById("rec-reason");
      if (el) el.focus();
      return;
    }
    const payload = text ? { reason: text } : {};
    view.recNote = null;
    const here = (msg) => { view.recNote = { text: msg, bad: true }; view.paint(); };
    if (await view.act(event, payload, here)) {
      view.recReason = "";  // an old reason must not stay in the box for the next action
      view.recNote = { text: t("rec.done." + event.split(":")[1]), bad: false };
      view.paint();
    }
  };
  const btn = (event, label, cls) => h("button", { type: "button", class: cls || "", id: event.replace(":", "-"),
    onclick: () => send(event) }, t(label));
  return h("section", { class: "card", id: "recording" }, h("h2", {}, t("rec.controls")),
    h("p", { role: "status" }, h("span", { class: "rec " + mode }, t("rec." + mode))),
    h("label", { for: "rec-reason", class: "block" }, mode === "off" ? t("rec.reason_start") : t("rec.reason")), reason,
    h("p", { id: "rec-note", class: note.bad ? "error" : "okmsg", role: note.bad ? "alert" : "status", hidden: !note.text }, note.text),
    h("div", { class: "row" },
      mode === "off" ? btn("recording:start", "rec.start", "primary") : null,
      mode === "running" ? btn("recording:pause", "rec.pause") : null,
      mode === "paused" ? btn("recording:resume", "rec.resume", "primary") : null,
      mode !== "off" ? btn("recording:stop", "rec.stop", "danger") : null));
}
