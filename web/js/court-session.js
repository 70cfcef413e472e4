// Court portal: the judge hosts an online questioning (R25) — a session of kind `questioning` made by
// POST /api/court/applications/{id}/questioning. The judge joins as host with the login cookie (socket auth
// {session}), sees who waits in the lobby with what they still lack, checks an ID shown on camera, lets people in,
// talks with them (tiles, mute, camera, chat) and ends the questioning (asked first, in the page).
import { h } from "./dom.js";
import { t, getLang } from "./i18n.js";
import { connectSession, call } from "./socket.js";
import { explain } from "./errors.js";
import { MediaClient } from "./media.js";
import { Tiles } from "./tiles.js";
import { Chat } from "./chat.js";

const DOCS = ["id_card", "passport", "other"];
// Refusals after which connecting again cannot help (the page says why and stops).
const FINAL = ["session_ended", "forbidden", "session_not_found", "login_required", "auth_required"];

export class CourtSessionView {
  constructor(sessionId, appId) {
    this.sessionId = sessionId;
    this.appId = appId;
    this.state = null;
    this.socket = null;
    this.ending = false;
    this.rejoins = 0;
    const view = this;
    window.__onedoor = {  // test hooks, as on the console and the party page
      get pc() { return view.media.pc; },
      get state() { return view.state; },
      get rejoins() { return view.rejoins; },
      dropConnection() { if (view.socket) view.socket.io.engine.close(); },
    };
    this.media = new MediaClient({ onChange: () => this.paintTiles(), onError: (e) => this.fail(e), onAudioOnly: () => this.paint() });
    this.tiles = new Tiles(h("div", { id: "tiles" }));
    this.chat = new Chat(() => this.socket);
    this.msg = h("p", { class: "okmsg", role: "status", hidden: true });
    this.err = h("p", { class: "error", role: "alert", hidden: true, tabindex: "-1" });
    this.lobby = h("section", { class: "card", id: "q-lobby", "aria-labelledby": "q-lobby-h" });
    this.people = h("section", { class: "card", id: "q-people", "aria-labelledby": "q-people-h" });
    this.endBox = h("div", { id: "q-end" });
    this.mute = h("button", { type: "button", id: "btn-mute", onclick: () => this.toggleMute() });
    this.camera = h("button", { type: "button", id: "btn-camera", onclick: () => { this.media.setCameraOff(!this.media.cameraOff); this.paint(); } });
    this.statusKey = "cs.connecting";  // the status line is kept as a key: it follows a language switch
    this.status = h("p", { class: "muted", role: "status" });
    this.back = h("a", { href: appId ? "#/app/" + appId : "#" });
    this.heading = h("h1", {});
    this.toolbar = h("div", { class: "controls", role: "toolbar" }, this.mute, this.camera);
    this.root = h("section", { id: "questioning-view", dataset: { session: String(sessionId) } },
      h("p", {}, this.back), this.heading, this.status, this.msg, this.err,
      h("div", { class: "court-session" },
        h("div", { class: "main-col" }, this.tiles.el, this.toolbar, this.chat.root),
        h("div", { class: "side-col" }, this.lobby, this.people, this.endBox)));
    this.paint();
  }

  /** Connect (and after a drop, connect again with the same login, backing off): a network change or the loss of
   * the node that served the session must not end the judge's questioning (the console does the same). */
  async start() {
    for (let attempt = 0; !this.ending; attempt++) {
      try {
        this.socket = await connectSession({ session: Number(this.sessionId) });
        break;
      } catch (err) {
        this.fail(err);
        if (FINAL.includes(err.code)) { this.setStatus(""); return; }
        await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 10000)));
      }
    }
    if (this.ending || !this.socket) return;
    this.err.hidden = true;
    const s = this.socket;
    s.on("session:state", (st) => { this.state = st; this.paint(); });
    s.on("chat:message", (m) => this.chat.add(m));
    s.on("session:ended", () => { this.ending = true; this.closed("cs.ended"); });
    s.on("session:replaced", () => { this.ending = true; this.closed("cs.replaced"); });
    s.on("disconnect", (reason) => {
      if (reason === "io client disconnect" || this.ending || s !== this.socket) return;
      this.socket = null;
      this.setStatus("cs.reconnecting");
      this.rejoins++;
      this.start();
    });
    this.setStatus("cs.connected");
    try {
      await this.media.startLocal();
      await this.media.join(s);
    } catch (err) { this.fail(err); }
    this.paint();
  }

  stop() {
    this.ending = true;
    this.media.leave().catch(() => {});
    this.media.stopLocal();
    this.tiles.clear();
    if (this.socket) this.socket.disconnect();
  }

  setStatus(key) { this.statusKey = key; this.status.textContent = key ? t(key) : ""; }

  closed(key) {
    this.setStatus(key);
    this.media.stopLocal();
    this.tiles.clear();
  }

  say(text) { this.err.hidden = true; this.msg.textContent = text; this.msg.hidden = !text; }  // cleared on a language switch
  fail(err) { this.msg.hidden = true; this.err.textContent = explain(err); this.err.hidden = false; this.err.focus(); }

  async act(event, payload) {
    try { return await call(this.socket, event, payload); } catch (err) { this.fail(err); return null; }
  }

  async toggleMute() {
    const muted = !this.media.micMuted;
    this.media.setMuted(muted);
    this.paint();
    await this.act("mute:self", { muted });
  }

  paint() {
    this.back.textContent = t("cs.back");
    this.heading.textContent = t("cs.title");
    this.toolbar.setAttribute("aria-label", t("sess.controls"));
    this.setStatus(this.statusKey);
    this.mute.textContent = this.media.micMuted ? t("sess.unmute") : t("sess.mute");
    this.mute.setAttribute("aria-pressed", String(this.media.micMuted));
    this.camera.textContent = this.media.cameraOff ? t("sess.cam_on") : t("sess.cam_off");
    this.camera.setAttribute("aria-pressed", String(this.media.cameraOff));
    if (this.lang !== getLang()) { this.lang = getLang(); this.chat.paint(); this.msg.hidden = true; }
    this.paintLobby();
    this.paintPeople();
    this.paintEnd();
    this.paintTiles();
  }

  paintLobby() {
    const lobby = (this.state && this.state.lobby) || [];
    this.lobby.replaceChildren(h("h2", { id: "q-lobby-h" }, t("cs.lobby", { n: lobby.length })),
      lobby.length ? h("ul", { class: "plain" }, lobby.map((p) => this.lobbyItem(p))) : h("p", { class: "muted" }, t("cs.lobby_empty")));
  }

  lobbyItem(p) {
    const blocking = p.blocking || [];
    const ready = !blocking.length;
    const doc = h("select", { id: "doc-" + p.id }, DOCS.map((d) => h("option", { value: t("cs.doc." + d) }, t("cs.doc." + d))));
    return h("li", { class: "lobby-person", dataset: { participant: p.id, ready: String(ready) } },
      h("p", { class: "strong" }, p.name, " · ", t("role." + p.role), p.side ? " · " + t("side." + p.side) : ""),
      ready ? h("p", { class: "okmsg" }, t("cs.ready"))
        : h("p", { class: "muted" }, t("cs.missing", { items: blocking.map((b) => t("block." + b)).join(t("list.sep")) })),
      p.identity ? null : h("div", { class: "stack" },
        h("label", { for: "doc-" + p.id }, t("cs.doc_of", { name: p.name })), doc,
        h("button", { type: "button", id: "attest-" + p.id, onclick: async () => {
          if (await this.act("identity:attest", { participant: p.id, document: doc.value, matched: true })) this.say(t("cs.attested", { name: p.name }));
        } }, t("cs.matched"))),
      h("button", { type: "button", class: "primary", id: "admit-" + p.id, disabled: !ready,
        "aria-label": t("cs.admit_named", { name: p.name }), onclick: async () => {
          if (await this.act("lobby:admit", { participant: p.id })) this.say(t("cs.admitted", { name: p.name }));
        } }, t("cs.admit")));
  }

  paintPeople() {
    const people = ((this.state && this.state.participants) || []).filter((p) => p.id !== (this.state.you || {}).id);
    this.people.replaceChildren(h("h2", { id: "q-people-h" }, t("cs.people")),
      people.length ? h("ul", { class: "plain" }, people.map((p) => h("li", { dataset: { participant: p.id } },
        p.name, " · ", t("role." + p.role), p.side ? " · " + t("side." + p.side) : "", p.hand ? " ✋" : "", p.muted ? " 🔇" : "")))
        : h("p", { class: "muted" }, t("cs.nobody")));
  }

  paintEnd() {
    if (this.askEnd) {
      this.endBox.replaceChildren(h("div", { class: "confirm danger-zone", id: "end-confirm", role: "group", "aria-labelledby": "end-h" },
        h("h3", { id: "end-h", tabindex: "-1" }, t("cs.end_title")), h("p", {}, t("cs.end_text")),
        h("div", { class: "row" },
          h("button", { type: "button", class: "danger", id: "end-yes", onclick: async () => {
            if (await this.act("session:end", { reason: t("cs.end_reason") })) { this.askEnd = false; this.closed("cs.ended"); this.paintEnd(); }
          } }, t("cs.end_yes")),
          h("button", { type: "button", id: "end-no", onclick: () => { this.askEnd = false; this.paintEnd(); } }, t("common.cancel")))));
      this.endBox.querySelector("h3").focus();
    } else {
      this.endBox.replaceChildren(h("button", { type: "button", class: "danger", id: "end-open",
        onclick: () => { this.askEnd = true; this.paintEnd(); } }, t("cs.end")));
    }
  }

  paintTiles() {
    const st = this.state || {};
    const people = Object.fromEntries((st.participants || []).map((p) => [p.id, p]));
    this.tiles.render({ local: this.media.local ? { stream: this.media.local, name: (st.you || {}).name,
      muted: this.media.micMuted, cameraOff: this.media.cameraOff } : null, groups: this.media.groups(), people });
  }
}
