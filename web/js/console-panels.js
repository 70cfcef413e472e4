// Side panels of the host view: lobby (readiness, attest, admit/refuse), people (mute, hands), caucus, end.
import { h } from "./dom.js";
import { t } from "./i18n.js";

const DOCS = ["id_card", "passport", "other"];
const yes = (v) => (v === true ? h("span", { class: "tag ok" }, "✓") : v === false ? h("span", { class: "tag bad" }, "✗") : h("span", { class: "tag" }, "—"));
const who = (p) => `${p.name} · ${t("role." + p.role)}${p.side ? " · " + t("side." + p.side) : ""}`;

export function lobbyPanel(view) {
  const lobby = (view.state && view.state.lobby) || [];
  const rows = lobby.map((p) => {
    const doc = h("select", { id: "doc-" + p.id, "aria-label": t("host.document") },
      DOCS.map((d) => h("option", { value: t("host.doc." + d) }, t("host.doc." + d))));
    const attest = (matched) => view.act("identity:attest", { participant: p.id, document: doc.value, matched });
    const reasons = view.reasons || (view.reasons = {});
    const reason = h("input", { type: "text", id: "reason-" + p.id, maxlength: "500", "aria-label": t("host.refuse_reason"),
      placeholder: t("host.refuse_reason"), value: reasons[p.id] || "", oninput: (e) => { reasons[p.id] = e.target.value; } });
    return h("tr", { dataset: { participant: p.id, ready: String(!p.blocking.length) } },
      h("th", { scope: "row" }, who(p)),
      h("td", {}, yes(p.identity), p.identity ? null : h("div", { class: "attest" }, doc,
        h("button", { type: "button", id: "attest-" + p.id, onclick: () => attest(true) }, t("host.matched")),
        h("button", { type: "button", onclick: () => attest(false) }, t("host.not_matched")))),
      h("td", {}, yes(p.notices)),
      h("td", {}, yes(p.recording_consent)),
      h("td", {}, yes(p.third_party_ok)),
      h("td", {}, p.blocking.length ? p.blocking.map((b) => t("block." + b)).join(t("list.sep")) : h("span", { class: "okmsg" }, t("host.ready"))),
      h("td", { class: "actions" },
        h("button", { type: "button", class: "primary", id: "admit-" + p.id, disabled: p.blocking.length > 0,
          onclick: () => view.act("lobby:admit", { participant: p.id }) }, t("host.admit")),
        reason,
        h("button", { type: "button", class: "danger", onclick: () => view.act("lobby:refuse", { participant: p.id, reason: reason.value.trim() }) }, t("host.refuse"))));
  });
  const admitAll = async () => {
    const ack = await view.act("lobby:admit-all", {});
    if (ack && ack.not_ready && ack.not_ready.length) {
      const names = Object.fromEntries(lobby.map((p) => [p.id, p.name]));
      view.showError({ code: "not_all", message: t("host.not_all") + " " + ack.not_ready.map((x) =>
        `${names[x.participant] || x.participant}（${x.blocking.map((b) => t("block." + b)).join(t("list.sep"))}）`).join("; ") });
    }
  };
  return h("section", { class: "card", id: "lobby", "aria-labelledby": "lobby-h" },
    h("div", { class: "row" }, h("h2", { id: "lobby-h" }, t("host.lobby"), ` (${lobby.length})`),
      lobby.length ? h("button", { type: "button", id: "admit-all", onclick: admitAll }, t("host.admit_all")) : null),
    lobby.length ? h("div", { class: "scroll-x" }, h("table", { class: "lobby-table" },
      h("thead", {}, h("tr", {}, ["intake.person_name", "host.identity", "host.notices", "host.recording", "host.third_ok",
        "host.blocking", "host.actions"].map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, rows))) : h("p", { class: "muted" }, t("host.lobby_empty")));
}

export function peoplePanel(view) {
  const st = view.state || {};
  const me = (st.you || {}).id;
  const people = st.participants || [];
  return h("section", { class: "card", id: "people" }, h("h2", {}, t("host.in_session"), ` (${people.length})`),
    h("ul", { class: "plist" }, people.map((p) => h("li", { dataset: { participant: p.id } },
      h("span", {}, who(p), p.id === me ? t("common.you") : ""),
      p.hand ? h("span", { class: "tag warn" }, "✋ " + t("sess.hand")) : null,
      p.muted ? h("span", { class: "tag" }, "🔇 " + t("sess.muted")) : null,
      p.id !== me && !p.muted && p.role !== "host" && p.role !== "co_mediator"
        ? h("button", { type: "button", id: "mute-" + p.id, onclick: () => view.act("mute:other", { participant: p.id }) }, t("host.mute_other")) : null))));
}

export function caucusPanel(view) {
  const st = view.state || {};
  const me = (st.you || {}).id;
  const others = (st.participants || []).filter((p) => p.id !== me);
  const c = st.caucus || {};
  if (c.active) {
    return h("section", { class: "card", id: "caucus" }, h("h2", {}, t("host.caucus")),
      h("p", {}, t("host.caucus_now", { names: (c.members || []).join(t("list.sep")) })),
      h("button", { type: "button", class: "primary", id: "caucus-close", onclick: async () => {
        if (await view.act("caucus:close", {})) view.caucusIds = null;
      } }, t("host.caucus_close")));
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
    h("div", { class: "row" }, sideButtons), others.length ? form : null);
}

export function endPanel(view) {
  const reason = h("input", { type: "text", id: "end-reason", maxlength: "500", value: view.endReason || "",
    oninput: (e) => { view.endReason = e.target.value; } });
  const end = async () => {
    if (!window.confirm(t("host.end_confirm"))) return;
    if (await view.act("session:end", { reason: reason.value.trim() })) view.onEnded();
  };
  return h("section", { class: "card", id: "end" }, h("h2", {}, t("host.end")),
    h("label", { for: "end-reason" }, t("host.end_reason")), reason,
    h("p", {}, h("button", { type: "button", class: "danger", id: "end-session", onclick: end }, t("host.end"))));
}

/** Recording controls (R1, R12): start needs everyone's consent; pause/resume/stop need a reason. */
export function recordingPanel(view) {
  const mode = (view.state && view.state.recording) || "off";
  const reason = h("input", { type: "text", id: "rec-reason", maxlength: "500", value: view.recReason || "",
    placeholder: mode === "off" ? t("rec.start_default") : "", oninput: (e) => { view.recReason = e.target.value; } });
  const send = async (event) => {
    const text = reason.value.trim();
    if (event !== "recording:start" && !text) {
      view.showError({ code: "reason_required", message: t("rec.reason_required") });
      reason.focus();
      return;
    }
    const payload = text ? { reason: text } : {};
    if (await view.act(event, payload)) view.recReason = "";
  };
  const btn = (event, label, cls) => h("button", { type: "button", class: cls || "", id: event.replace(":", "-"),
    onclick: () => send(event) }, t(label));
  return h("section", { class: "card", id: "recording" }, h("h2", {}, t("rec.controls")),
    h("p", { role: "status" }, h("span", { class: "rec " + mode }, t("rec." + mode))),
    h("label", { for: "rec-reason", class: "block" }, mode === "off" ? t("rec.reason_start") : t("rec.reason")), reason,
    h("div", { class: "row" },
      mode === "off" ? btn("recording:start", "rec.start", "primary") : null,
      mode === "running" ? btn("recording:pause", "rec.pause") : null,
      mode === "paused" ? btn("recording:resume", "rec.resume", "primary") : null,
      mode !== "off" ? btn("recording:stop", "rec.stop", "danger") : null));
}
