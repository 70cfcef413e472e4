// Console: hosting a session — lobby with readiness (identity R5, notices R3, consents R1/R8), admission (P3),
// tiles, caucus (R7), mute others, chat, end. Panels are in console-panels.js.
import { h } from "./dom.js";
import { t, getLang } from "./i18n.js";
import { connectSession, call } from "./socket.js";
import { explain } from "./errors.js";

const explainWith = (err, names) => explain(err) + " " + names.join(t("list.sep"));
import { MediaClient } from "./media.js";
import { Tiles } from "./tiles.js";
import { Chat } from "./chat.js";
import { AgreementEditor } from "./agreement-editor.js";
import { lobbyPanel, peoplePanel, caucusPanel, endPanel, recordingPanel } from "./console-panels.js";

export class HostView {
  constructor(ctx, sessionId) {
    this.ctx = ctx;
    this.sessionId = sessionId;
    this.socket = null;
    this.state = null;
    this.closed = false;
    this.ended = false;
    this.media = new MediaClient({ onChange: () => this.paintTiles(), onError: (e) => this.showError(e),
      onAudioOnly: () => this.paint() });
    this.title = h("h1", {});
    this.status = h("p", { class: "muted", role: "status" });
    this.caucusBox = h("div", { class: "caucus inside", role: "status", hidden: true });
    this.errBox = h("p", { class: "error", role: "alert", hidden: true });
    this.tiles = new Tiles(h("div", { id: "tiles" }));
    this.chat = new Chat(() => this.socket);
    this.mute = h("button", { type: "button", id: "btn-mute", onclick: () => this.toggleMute() });
    this.camera = h("button", { type: "button", id: "btn-camera", onclick: () => { this.media.setCameraOff(!this.media.cameraOff); this.paint(); } });
    this.side = h("div", { class: "stack" });
    this.root = h("section", { class: "hostview", dataset: { session: String(sessionId) } }, this.title, this.status,
      this.caucusBox, this.errBox,
      h("div", { class: "host" },
        this.mainCol = h("div", {}, this.tiles.el, h("div", { class: "controls", role: "toolbar" }, this.mute, this.camera), this.chat.root),
        this.side));
  }

  async start() {
    this.status.textContent = t("host.connecting");
    for (let attempt = 0; !this.closed && !this.ended; attempt++) {
      try {
        this.socket = await connectSession({ session: this.sessionId });
        break;
      } catch (err) {
        this.showError(err);
        if (["session_ended", "forbidden", "session_not_found", "login_required"].includes(err.code)) return;
        await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 10000)));
      }
    }
    if (this.closed || !this.socket) return;
    this.errBox.hidden = true;
    const s = this.socket;
    s.on("session:state", (st) => { this.state = st; this.paint(); this.ensureEditor(); });
    s.on("agreement:state", (st) => { if (this.editor) this.editor.onPush(st); });
    s.on("chat:message", (m) => this.chat.add(m));
    s.on("session:ended", () => this.onEnded());
    s.on("session:replaced", () => { this.closed = true; this.showError({ code: "replaced" }); });
    s.on("disconnect", (reason) => {
      if (this.closed || this.ended || reason === "io client disconnect") return;
      this.socket = null;
      this.start();  // staff reconnect with the same cookie; the hub gets a new peer connection
    });
    this.status.textContent = "";
    try {
      await this.media.startLocal();
      await this.media.join(s);
    } catch (err) { this.showError(err); }
    this.paint();
  }

  /** The agreement editor for this session's case, under the chat (created once the case code is known). */
  ensureEditor() {
    if (this.editor || !this.state || !this.state.case) return;
    this.editor = new AgreementEditor(this.state.case);
    this.mainCol.append(this.editor.root);
    this.editor.load();
  }

  /** Call an event; show its error in plain words; resolve with the ack or null. */
  async act(event, payload) {
    try {
      this.errBox.hidden = true;
      return await call(this.socket, event, payload);
    } catch (err) {
      const who = err.detail && err.detail.participants;
      if (Array.isArray(who)) {  // e.g. consent_missing: name the people
        const names = Object.fromEntries(((this.state && this.state.participants) || []).map((p) => [p.id, p.name]));
        this.showError(explainWith(err, who.map((id) => names[id] || id)));
      } else this.showError(err);
      return null;
    }
  }

  showError(err) {
    this.errBox.textContent = typeof err === "string" ? err : explain(err);
    this.errBox.hidden = false;
  }

  async toggleMute() {
    const muted = !this.media.micMuted;
    this.media.setMuted(muted);
    this.paint();
    await this.act("mute:self", { muted });
  }

  onEnded() {
    if (this.ended) return;
    this.ended = true;
    this.media.leave().catch(() => {});
    this.media.stopLocal();
    this.tiles.clear();
    if (this.socket) this.socket.disconnect();
    this.root.replaceChildren(h("section", { class: "card", dataset: { ended: "1" } }, h("h1", {}, t("host.ended")),
      h("a", { class: "button", href: "#/case/" + encodeURIComponent((this.state && this.state.case) || "") }, t("host.back_case"))));
    this.paintRec();
  }

  close() {
    this.closed = true;
    this.media.leave().catch(() => {});
    this.media.stopLocal();
    this.tiles.clear();
    if (this.socket) this.socket.disconnect();
    const rec = document.getElementById("rec");
    if (rec) rec.hidden = true;
  }

  paintRec() {
    const rec = document.getElementById("rec");
    const mode = (!this.ended && this.state && this.state.recording) || "off";
    rec.hidden = mode === "off";
    rec.className = "rec " + mode;
    rec.textContent = mode === "off" ? "" : t("rec." + mode);
  }

  paint() {
    if (this.ended) return;
    const st = this.state || {};
    this.title.textContent = t("host.title", { id: this.sessionId, code: st.case || "" });
    this.paintRec();
    this.mute.textContent = this.media.micMuted ? t("sess.unmute") : t("sess.mute");
    this.mute.setAttribute("aria-pressed", String(this.media.micMuted));
    this.camera.textContent = this.media.cameraOff ? t("sess.cam_on") : t("sess.cam_off");
    this.camera.setAttribute("aria-pressed", String(this.media.cameraOff));
    const c = st.caucus || {};
    if (!c.active) this.caucusIds = null;
    this.caucusBox.hidden = !c.active;
    this.caucusBox.textContent = c.active ? t("host.caucus_now", { names: (c.members || []).join(t("list.sep")) }) : "";
    const keep = document.activeElement && this.side.contains(document.activeElement) ? document.activeElement.id : null;
    this.side.replaceChildren(lobbyPanel(this), peoplePanel(this), recordingPanel(this), caucusPanel(this), endPanel(this));
    if (keep && document.getElementById(keep)) document.getElementById(keep).focus();
    if (this.lang !== getLang()) {
      this.lang = getLang();
      this.chat.paint();
      if (this.editor && this.editor.data) this.editor.render();
    }
    this.paintTiles();
  }

  paintTiles() {
    if (this.ended) return;
    const st = this.state || {};
    const people = Object.fromEntries((st.participants || []).map((p) => [p.id, p]));
    const caucus = st.caucus || {};
    // session:state names caucus members by name; the ids come from our caucus:open ack (see docs/web.md)
    const inside = new Set(this.caucusIds || (st.participants || []).filter((p) => (caucus.members || []).includes(p.name)).map((p) => p.id));
    const hidden = new Set(caucus.active ? Object.keys(people).filter((id) => !inside.has(id)) : []);
    this.tiles.render({ local: this.media.local ? { stream: this.media.local, name: (st.you || {}).name,
      muted: this.media.micMuted, cameraOff: this.media.cameraOff } : null, groups: this.media.groups(), people, hidden });
  }
}
