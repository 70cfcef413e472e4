// The party's view of a live session: tiles, controls, caucus notice, chat, audio-only, rejoin (P5, R7).
import { h } from "./dom.js";
import { confirmDialog } from "./confirm.js";
import { t, getLang } from "./i18n.js";
import { call } from "./socket.js";
import { explain } from "./errors.js";
import { MediaClient } from "./media.js";
import { Tiles } from "./tiles.js";
import { Chat } from "./chat.js";
import { pendingThirdParties } from "./party-steps.js";
import { AgreementPanel } from "./party-agreement.js";
import { promptFor, promptBox } from "./party-prompt.js";
import { screenShareButton } from "./screen-share.js";

export class SessionView {
  constructor(app) {
    this.app = app;
    this.media = new MediaClient({
      onChange: () => this.paintTiles(),
      onAudioOnly: (m) => this.onAudioOnly(m),
      onError: (err) => this.showError(err),
    });
    this.hand = false;
    this.notice = null;  // () => the transient message (forced mute, audio-only switch), written again in a new language
    this.caucusBox = h("div", { class: "caucus", role: "status", "aria-live": "assertive", hidden: true });
    this.noticeBox = h("p", { class: "notice", role: "status", hidden: true });
    this.errBox = h("p", { class: "error", role: "alert", hidden: true });
    this.thirdBox = h("div", {});
    this.tilesEl = h("div", { id: "tiles" });
    this.tiles = new Tiles(this.tilesEl);
    this.chat = new Chat(() => this.app.socket);
    this.agreement = new AgreementPanel(app, () => this.paintPrompt());
    this.promptEl = h("div", { class: "prompt-wrap", role: "status", "aria-live": "polite" });
    this.buttons = {
      mute: h("button", { type: "button", id: "btn-mute", onclick: () => this.toggleMute() }),
      camera: h("button", { type: "button", id: "btn-camera", onclick: () => this.toggleCamera() }),
      hand: h("button", { type: "button", id: "btn-hand", onclick: () => this.toggleHand() }),
      audioOnly: h("button", { type: "button", id: "btn-audio-only", onclick: () => this.toggleAudioOnly() }),
      recConsent: h("button", { type: "button", id: "btn-rec-consent", onclick: () => this.toggleRecordingConsent() }),
      leave: h("button", { type: "button", id: "btn-leave", class: "danger", onclick: () => this.leave() }),
    };
    this.controls = h("div", { class: "controls", role: "toolbar" }, Object.values(this.buttons));
    const share = screenShareButton(this.media, { onError: (err) => this.showError(err) });  // desktop only
    if (share) this.controls.append(share);
    // The passing notices ("connecting…", a weak link) come after the controls: shown and hidden above them, they
    // moved the buttons under a finger (a tap on "leave" as "connecting…" went away hit nothing).
    this.root = h("div", { class: "session" }, this.promptEl, this.caucusBox, this.errBox, this.thirdBox,
      this.tilesEl, this.controls, this.noticeBox, this.agreement.root, this.chat.root);
    this.app.socket.on("chat:message", (m) => this.chat.add(m));
    this.app.socket.on("mute:forced", (m) => this.onForcedMute(m));
  }

  /** First entry: camera + microphone, then join the hub. */
  async start() {
    this.paint();
    this.say(() => t("sess.connecting_media"));
    this.agreement.attach(this.app.socket);
    await this.media.startLocal();
    await this.media.join(this.app.socket);
    this.say(null);
    this.paint();
  }

  /** After a network drop: a new connection was made; re-wire events and make a new RTCPeerConnection. */
  async rejoin() {
    this.app.socket.on("chat:message", (m) => this.chat.add(m));
    this.app.socket.on("mute:forced", (m) => this.onForcedMute(m));
    this.agreement.attach(this.app.socket);
    try {
      if (this.media.local) await this.media.join(this.app.socket);
      else await this.start();
      if (this.media.micMuted) await call(this.app.socket, "mute:self", { muted: true });
      // audio-only: media.join restores the person's own choice; the hub's automatic one stays automatic
    } catch (err) { this.showError(err); }
  }

  update() { this.paint(); }

  /** The main prompt: what to do now, or what we wait for and from whom (the server's next_actions). */
  paintPrompt() {
    const st = this.app.state || {};
    const pid = (st.you && st.you.person_id) || (this.app.info && this.app.info.person_id);
    const p = promptFor(this.agreement.state, pid);
    const key = p.tone + "|" + p.text + "|" + (p.action || "");
    if (key === this.promptKey) return;
    this.promptKey = key;
    this.promptEl.replaceChildren(promptBox(p, (action) => {
      const target = action === "sign_application" ? "#application-sign" : "#agreement";
      const el = this.agreement.root.querySelector(target) || this.agreement.root;
      el.scrollIntoView({ block: "start" });
      if (!el.hasAttribute("tabindex") && el.tagName !== "BUTTON") el.setAttribute("tabindex", "-1");
      el.focus({ preventScroll: true });
    }));
  }

  /** A notice under the tiles; `render` (or null: none) is called again when the language changes. */
  say(render) {
    this.notice = render;
    const text = render ? render() : "";
    this.noticeBox.textContent = text;
    this.noticeBox.hidden = !text;
  }

  showError(err) {
    this.error = err;
    this.errBox.textContent = explain(err);
    this.errBox.hidden = false;
  }

  async toggleMute() {
    const muted = !this.media.micMuted;
    this.media.setMuted(muted);
    this.paint();
    try { await call(this.app.socket, "mute:self", { muted }); } catch (err) { this.showError(err); }
  }

  toggleCamera() {
    this.media.setCameraOff(!this.media.cameraOff);
    this.paint();
  }

  async toggleHand() {
    try {
      await call(this.app.socket, "hand:raise", { up: !this.hand });
      this.hand = !this.hand;
      this.paint();
    } catch (err) { this.showError(err); }
  }

  async toggleAudioOnly() {
    try {
      await this.media.setAudioOnly(!this.media.audioOnly);
      this.say(this.media.audioOnly ? () => t("sess.audio_only_on") : null);
      this.paint();
    } catch (err) { this.showError(err); }
  }

  /** R1/P2: consent to recording may be withdrawn (the server pauses the recording for everyone) or given again. */
  async toggleRecordingConsent() {
    const choices = this.app.progress.choices;
    const granted = choices.recording === false;
    try {
      await call(this.app.socket, "lobby:consent", { kind: "recording", granted });
      choices.recording = granted;
      this.paint();
    } catch (err) { this.showError(err); }
  }

  onAudioOnly(m) {  // the hub switched us because of loss (or back)
    this.media.setAudioOnly(Boolean(m.enabled), { tellServer: false });
    this.say(() => (m.enabled ? t("sess.audio_only_auto") : t("sess.audio_only_back")));
    this.paint();
  }

  onForcedMute(m) {
    this.media.setMuted(true);
    this.say(() => t("sess.muted_by", { by: (m && m.by) || t("role.host") }));
    this.paint();
  }

  async leave() {
    if (!(await confirmDialog(t("sess.leave_confirm"), { title: t("sess.leave_title"), confirm: t("sess.leave_yes"), danger: true }))) return;
    this.media.leave().finally(() => this.app.leave());
  }

  stop() {
    this.media.leave().catch(() => {});
    this.media.stopLocal();
    this.tiles.clear();
  }

  paint() {
    const st = this.app.state || {};
    const you = st.you || {};
    if (typeof you.hand === "boolean") this.hand = you.hand;
    const b = this.buttons;
    const setBtn = (btn, pressed, label) => { btn.textContent = label; btn.setAttribute("aria-pressed", String(pressed)); };
    setBtn(b.mute, this.media.micMuted, this.media.micMuted ? t("sess.unmute") : t("sess.mute"));
    setBtn(b.camera, this.media.cameraOff, this.media.cameraOff ? t("sess.cam_on") : t("sess.cam_off"));
    setBtn(b.hand, this.hand, this.hand ? t("sess.hand_down") : t("sess.hand_up"));
    setBtn(b.audioOnly, this.media.audioOnly, t("sess.audio_only"));
    b.leave.textContent = t("sess.leave");
    const withdrawn = this.app.progress.choices.recording === false;
    b.recConsent.hidden = (st.recording || "off") === "off" && !withdrawn;
    b.recConsent.textContent = withdrawn ? t("sess.rec_consent_give") : t("sess.rec_consent_withdraw");
    this.controls.setAttribute("aria-label", t("sess.controls"));
    const c = st.caucus || {};
    // name the people in the caucus other than yourself and the mediators (the notice already says "the mediator")
    const staff = new Set((st.participants || []).filter((p) => ["host", "co_mediator"].includes(p.role)).map((p) => p.name));
    const others = (c.members || []).filter((n) => n !== (st.you || {}).name && !staff.has(n));
    const names = (others.length ? others : c.members || []).join(t("list.sep"));
    this.caucusBox.hidden = !c.active;
    this.caucusBox.className = "caucus " + (c.you_inside ? "inside" : "outside");
    this.caucusBox.textContent = c.active ? (c.you_inside ? t("sess.caucus_in_you") : t("sess.caucus_out", { names })) : "";
    this.thirdBox.replaceChildren(pendingThirdParties(this.app, () => this.paint()) || "");
    if (this.lang !== getLang()) {  // everything written in the old language is written again
      this.lang = getLang();
      this.chat.paint();
      this.agreement.render();
      this.promptKey = null;
      this.say(this.notice);
      if (!this.errBox.hidden && this.error) this.errBox.textContent = explain(this.error);
    }
    this.paintPrompt();
    this.paintTiles();
  }

  paintTiles() {
    const st = this.app.state || {};
    const people = Object.fromEntries((st.participants || []).map((p) => [p.id, p]));
    const c = st.caucus || {};
    // Outside a caucus, the people inside it are marked "in private talk"; inside it, the people left outside are
    // marked "cannot hear each other for now" (never "in private talk": they are not).
    const inside = new Set(c.member_ids || (st.participants || []).filter((p) => (c.members || []).includes(p.name)).map((p) => p.id));
    const away = new Set(!c.active ? [] : c.you_inside
      ? (st.participants || []).map((p) => p.id).filter((id) => !inside.has(id))
      : [...inside]);
    this.tiles.render({
      local: this.media.local ? { stream: this.media.local, name: (st.you || {}).name, muted: this.media.micMuted,
        cameraOff: this.media.cameraOff || this.media.audioOnly, screen: this.media.screen } : null,
      groups: this.media.groups(),
      people,
      hidden: away,
      hiddenLabel: c.you_inside ? t("sess.outside_caucus") : t("sess.away"),
      everyone: { self: (st.you || {}).id },
    });
  }
}
