// Console: hosting a session — lobby with readiness (identity R5, notices R3, consents R1/R8), admission (P3),
// tiles, caucus (R7), mute others, chat, end. Panels are in console-panels.js.
import { h } from "./dom.js";
import { t, getLang } from "./i18n.js";
import { connectSession, call } from "./socket.js";
import { explain } from "./errors.js";

const explainWith = (err, names) => explain(err) + " " + names.join(t("list.sep"));
import { MediaClient } from "./media.js";
import { Tiles } from "./tiles.js";
import { screenShareButton } from "./screen-share.js";
import { Chat } from "./chat.js";
import { AgreementEditor } from "./agreement-editor.js";
import { lobbyPanel, peoplePanel, caucusPanel, caucusNames, endPanel, recordingPanel } from "./console-panels.js";
import { agreementSteps, lobbySteps, namesOf, promptBox } from "./console-next.js";
import { TranscriptPanel } from "./transcript.js";
import { DocumentsPanel } from "./documents.js";
import { paintInvites } from "./console-case.js";

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
    this.prompt = h("div", { id: "prompt-slot" });
    this.caucusBox = h("div", { class: "caucus inside", role: "status", hidden: true });
    this.errBox = h("p", { class: "error", role: "alert", hidden: true, tabindex: "-1" });
    this.okBox = h("p", { class: "okmsg flash", role: "status", hidden: true });
    this.tiles = new Tiles(h("div", { id: "tiles" }));
    this.chat = new Chat(() => this.socket);
    this.mute = h("button", { type: "button", id: "btn-mute", onclick: () => this.toggleMute() });
    this.camera = h("button", { type: "button", id: "btn-camera", onclick: () => { this.media.setCameraOff(!this.media.cameraOff); this.paint(); } });
    this.side = h("div", { class: "stack side" });
    this.lower = h("div", { class: "lower" });
    this.root = h("section", { class: "hostview", dataset: { session: String(sessionId) } },
      h("div", { class: "host-head" }, this.title, this.status), this.prompt, this.caucusBox, this.errBox, this.okBox,
      h("div", { class: "host" },
        this.mainCol = h("div", { class: "main-col" }, this.tiles.el,
          this.controls = h("div", { class: "controls", role: "toolbar", "aria-label": t("sess.controls") }, this.mute, this.camera,
            screenShareButton(this.media, { onError: (e) => this.showError(e) })), this.chat.root),
        this.side),
      this.lower);
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
    s.on("session:state", (st) => { this.state = st; this.paint(); this.ensureEditor(); this.ensureCaseFile(); });
    s.on("document:shown", (d) => { if (this.documents) this.documents.onShown(d); });
    if (this.transcript) { this.transcript.attach(s); this.transcript.load(); }
    if (this.documents) this.documents.load();
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

  get role() { return ((this.state && this.state.you) || {}).role; }
  get isMediator() { return ["host", "co_mediator"].includes(this.role); }

  /** The agreement editor for this session's case, full width under the call (created once the case is known). */
  ensureEditor() {
    if (this.editor || !this.state || !this.state.case || !this.isMediator) return;
    this.editor = new AgreementEditor(this.state.case, { onChange: () => this.paintPrompt() });
    this.lower.prepend(this.editor.root);
    this.editor.load();
  }

  /** Transcript, case file and invite links, under the agreement. */
  ensureCaseFile() {
    if (this.transcript || !this.state || !this.state.you) return;
    const speakers = () => ((this.state && this.state.participants) || []).map((p) => ({ id: p.id, name: p.name }));
    const canWrite = this.isMediator || this.role === "clerk";  // the center's clerk keeps the record too
    // the mediators close it for the parties' review (transcript.close), the clerk only writes
    this.transcript = new TranscriptPanel({ socket: () => this.socket, canWrite, canClose: this.isMediator, speakers });
    this.transcript.attach(this.socket);
    this.transcript.load();
    this.documents = new DocumentsPanel({ socket: () => this.socket, canShow: this.isMediator });
    this.documents.load();
    const parts = [h("div", { class: "grid2" }, this.transcript.root, this.documents.root)];
    if (this.role === "host") {
      const box = h("div", { id: "host-invites" });
      const btn = h("button", { type: "button", id: "host-invites-open", "aria-expanded": "false", onclick: () => {
        box.hidden = !box.hidden; btn.setAttribute("aria-expanded", String(!box.hidden));
        if (!box.hidden) paintInvites(this.sessionId, box);
      } }, t("inv.manage"));
      box.hidden = true;
      this.invites = { title: h("h2", {}, t("inv.title")), hint: h("p", { class: "hint" }, t("inv.hint")), btn, box };
      parts.push(h("section", { class: "card", id: "invites-card" }, this.invites.title, this.invites.hint, btn, box));
    }
    this.lower.append(...parts);
  }

  /** The main prompt: who can be let in, what to do with the agreement, whom we wait for. */
  paintPrompt() {
    if (this.ended) return;
    const st = this.state || {};
    const parts = [];
    if (this.isMediator) parts.push(lobbySteps(st.lobby));
    const others = (st.participants || []).filter((p) => p.id !== (st.you || {}).id && !["host", "co_mediator"].includes(p.role));
    if (this.isMediator && !others.length && !(st.lobby || []).length) parts.push({ now: [], waiting: [t("next.wait_join")], closed: null });
    if (this.editor && this.editor.data) {
      const steps = agreementSteps(this.editor.data, namesOf(this.editor.data));
      steps.now = steps.now.filter((x) => x !== t("next.schedule_session"));
      parts.push(steps);
    }
    this.prompt.replaceChildren(promptBox(parts, { empty: "next.nothing_host" }));
  }

  say(text) {
    this.okBox.textContent = text;
    this.okBox.hidden = !text;
    this.errBox.hidden = true;
    clearTimeout(this.okTimer);
    if (text) this.okTimer = setTimeout(() => { this.okBox.hidden = true; }, 8000);
  }

  /** Call an event; show its error in plain words; resolve with the ack or null. */
  async act(event, payload, here = null) {
    try {
      this.errBox.hidden = true;
      return await call(this.socket, event, payload);
    } catch (err) {
      const who = err.detail && err.detail.participants;
      let text;
      if (Array.isArray(who)) {  // e.g. consent_missing: name the people
        const names = Object.fromEntries(((this.state && this.state.participants) || []).map((p) => [p.id, p.name]));
        text = explainWith(err, who.map((id) => names[id] || t("next.someone")));
      } else text = explain(err);
      if (here) here(text); else this.showError(text);
      return null;
    }
  }

  showError(err) {
    this.errBox.textContent = typeof err === "string" ? err : explain(err);
    this.errBox.hidden = false;
    this.okBox.hidden = true;
    if (this.errBox.isConnected) this.errBox.scrollIntoView({ block: "nearest" });
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
    const relang = this.lang !== getLang();
    if (relang) {  // a notice said in the other language is over: clear it rather than mix languages
      this.say("");
      this.recNote = null;
      if (this.editor) this.editor.say("");
      if (this.documents) this.documents.say("");
    }
    this.title.textContent = t("host.title", { id: this.sessionId, code: st.case || "" });
    this.paintRec();
    this.mute.textContent = this.media.micMuted ? t("sess.unmute") : t("sess.mute");
    this.mute.setAttribute("aria-pressed", String(this.media.micMuted));
    this.camera.textContent = this.media.cameraOff ? t("sess.cam_on") : t("sess.cam_off");
    this.camera.setAttribute("aria-pressed", String(this.media.cameraOff));
    const c = st.caucus || {};
    if (!c.active) this.caucusIds = null;
    this.caucusBox.hidden = !c.active;
    this.caucusBox.textContent = c.active ? t(c.kind === "private_talk" ? "host.private_now" : "host.caucus_now", { names: caucusNames(this) }) : "";
    const keep = document.activeElement && this.side.contains(document.activeElement) ? document.activeElement.id : null;
    this.side.replaceChildren(...(this.isMediator ? [lobbyPanel(this), peoplePanel(this), recordingPanel(this)] : [peoplePanel(this)]),
      ...[caucusPanel(this), this.role === "host" ? endPanel(this) : null].filter(Boolean));
    this.paintPrompt();
    if (keep && document.getElementById(keep)) document.getElementById(keep).focus();
    if (relang) {
      this.lang = getLang();
      if (this.controls) this.controls.setAttribute("aria-label", t("sess.controls"));
      if (this.invites) {
        this.invites.title.textContent = t("inv.title");
        this.invites.hint.textContent = t("inv.hint");
        this.invites.btn.textContent = t("inv.manage");
        if (!this.invites.box.hidden) paintInvites(this.sessionId, this.invites.box);
      }
      this.chat.paint();
      if (this.editor && this.editor.data) this.editor.render();
      if (this.transcript) this.transcript.render();
      if (this.documents) this.documents.render();
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
      muted: this.media.micMuted, cameraOff: this.media.cameraOff, screen: this.media.screen } : null, groups: this.media.groups(), people, hidden });
  }
}
