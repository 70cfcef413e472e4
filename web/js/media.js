// The browser's one RTCPeerConnection with the session's media hub (docs/protocol-media.md).
// The server is always the offerer: it offers recvonly m-lines we publish on (mids in `offer.publish`:
// audio, camera, screen) and one sendonly m-line per forwarded track; we only answer. `offer.tracks` /
// `media:tracks` map each forwarded mid to {participant, kind, source, label, active}.
// After a signaling drop the server keeps our place and peer connection for a grace period (30 s): on the new
// socket we keep a peer connection that is still connected and only ask for the current offer
// (media:renegotiate); otherwise, and after a network change, a NEW RTCPeerConnection and media:join at once
// (the hub is aiortc: no ICE restart). Audio-only asked for by the person is restored after a rejoin; the hub's
// automatic audio-only is never re-requested as if it were the person's choice (it stays automatic: the
// session:state `you.link` says which it is).
import { call, onNetworkChange } from "./socket.js";
import { ServerError } from "./errors.js";

const CONSTRAINTS = {
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15, max: 24 } },
};

// The camera is sent as VP8 with three temporal layers where the browser can (Chromium: scalabilityMode "L1T3"):
// a hub subscriber on a weak link then gets temporal layer 0 only, a quarter of the frame rate, instead of key
// frames only (docs/architecture.md, "Temporal layers per subscriber"). Set after the answer, as the encoding
// exists only then; a browser that cannot (an unknown mode throws) sends one layer, which the hub also handles.
const CAMERA_LAYERS = "L1T3";

async function withTemporalLayers(sender) {
  try {
    const params = sender.getParameters();
    const enc = params.encodings && params.encodings[0];
    if (!enc || enc.scalabilityMode === CAMERA_LAYERS) return;
    enc.scalabilityMode = CAMERA_LAYERS;
    await sender.setParameters(params);
  } catch { /* not supported here: one layer */ }
}

export class MediaClient {
  constructor({ onChange = () => {}, onAudioOnly = () => {}, onError = () => {} } = {}) {
    this.onChange = onChange;  // tiles must be re-rendered
    this.onAudioOnly = onAudioOnly;  // server switched audio-only on/off ({enabled, reason})
    this.onError = onError;
    this.local = null;  // MediaStream from the camera and microphone
    this.pc = null;
    this.socket = null;
    this.tracks = {};  // mid -> what the hub says it carries
    this.remote = new Map();  // mid -> MediaStreamTrack
    this.iceServers = [];
    this.audioOnly = false;  // either of the two below
    this.audioOnlyManual = false;  // the person asked (media:audio-only)
    this.audioOnlyAuto = false;  // the hub switched us because of loss (media:audio-only push, you.link)
    this._networkEpoch = 0;  // counts network changes; a peer connection from an older epoch is not resumed
    this.cameraOff = false;
    this.micMuted = false;
    this.screen = null;  // the shared screen's track (getDisplayMedia), sent on the `screen` m-line
    this.events = new EventTarget();  // "screen": sharing started or stopped (screen-share.js repaints its toggle)
    this._handlers = {
      "media:offer": (o) => this._queue(() => this._answer(o)),
      "media:tracks": (m) => { this.tracks = { ...((m && m.tracks) || {}) }; this.onChange(); },  // the full map
      "media:audio-only": (m) => this.onAudioOnly(m || {}),
      "media:ice": (m) => this._setIce(m && m.ice_servers),
      "session:state": (st) => this._onLink(st && st.you && st.you.link),
    };
    this._chain = Promise.resolve();
    const changed = () => this._networkChanged();
    onNetworkChange(changed);
    window.addEventListener("online", changed);
  }

  /** Ask for camera + microphone once; falls back to microphone only; throws ServerError camera_denied. */
  async startLocal() {
    if (this.local) return this.local;
    try {
      this.local = await navigator.mediaDevices.getUserMedia(CONSTRAINTS);
    } catch {
      try {
        this.local = await navigator.mediaDevices.getUserMedia({ audio: CONSTRAINTS.audio });
      } catch (err) {
        throw new ServerError({ code: "camera_denied", message: String(err && err.message) });
      }
    }
    this._applyLocal();
    return this.local;
  }

  /**
   * Join the hub over `socket`. On a new socket (a reconnect within the server's grace period) a peer connection
   * that is still connected, on the same network, is kept: we only ask for the current offer. Otherwise (first
   * join, failure, network change, the hub no longer knows us) a NEW peer connection and media:join.
   */
  async join(socket, iceServers) {
    const pc = this.pc;
    const resumable = pc && this.socket !== socket && pc.connectionState === "connected" && pc._epoch === this._networkEpoch;
    this._detach();
    this.socket = socket;
    if (iceServers) this.iceServers = iceServers;
    for (const [ev, fn] of Object.entries(this._handlers)) socket.on(ev, fn);
    if (resumable) {
      try {
        this._offers = 0;
        const ack = await call(socket, "media:renegotiate", {}, 15000);
        this._watch(socket);  // no offer within 8 s: a fresh peer connection
        return { ...ack, resumed: true };
      } catch (err) {
        if (!["unknown_participant", "not_joined"].includes(err && err.code)) throw err;  // else: join afresh
      }
    }
    this._newPc();
    this._offers = 0;
    const ack = await call(socket, "media:join", {}, 15000);
    this._watch(socket);
    if (this.audioOnlyManual) await call(socket, "media:audio-only", { enabled: true });  // the person's choice
    return ack;
  }

  /** The browser moved to another network: the old ICE path is gone; a new peer connection at once. */
  _networkChanged() {
    this._networkEpoch++;
    const socket = this.socket;
    if (!socket || !socket.connected || !this.pc) return;  // the page's rejoin makes the connection
    this._retries = 0;
    this._retry("network change");
  }

  /** session:state's `you.link`: the hub's automatic audio-only, also after a reconnect that missed the push. */
  _onLink(link) {
    if (!link) return;
    const auto = Boolean(link.audio_only && link.automatic);
    if (auto && !this.audioOnlyAuto) this.onAudioOnly({ enabled: true, reason: "loss" });
    else if (!auto && this.audioOnlyAuto && !link.audio_only) this.onAudioOnly({ enabled: false, reason: "recovered" });
  }

  /**
   * Self-healing: if no offer arrives, an answer is refused because the hub lost us, or the connection fails,
   * join again with a new peer connection (a few times). A rejoin can race the server's clean-up of the old
   * connection (docs/web.md, "Needs from the server").
   */
  _watch(socket) {
    clearTimeout(this._watchdog);
    this._watchdog = setTimeout(() => { if (this.socket === socket && !this._offers) this._retry("no offer"); }, 8000);
  }

  _retry(why) {
    const socket = this.socket;
    if (!socket || !socket.connected || (this._retries = (this._retries || 0) + 1) > 3) return;
    console.warn("media: joining again:", why);
    this.join(socket).catch((err) => this.onError(err));
  }

  /** ICE servers (TURN credentials per join) arrive before the offer: apply them before we gather. */
  _setIce(servers) {
    if (!Array.isArray(servers)) return;
    this.iceServers = servers;
    if (this.pc) {
      try { this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers: servers }); } catch { /* keep */ }
    }
  }

  _newPc() {
    if (this.pc) this.pc.close();
    this.tracks = {};
    this.remote.clear();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    pc._epoch = this._networkEpoch;
    pc.ontrack = (e) => {
      const mid = e.transceiver && e.transceiver.mid;
      if (mid == null) return;
      this.remote.set(mid, e.track);
      e.track.onunmute = () => this.onChange();
      this.onChange();
    };
    pc.onconnectionstatechange = () => {
      if (pc === this.pc && pc.connectionState === "failed") this._retry("connection failed");
      else if (pc === this.pc && pc.connectionState === "connected") this._retries = 0;
      else if (pc === this.pc && pc.connectionState === "disconnected") {
        // consent checks stopped: a short loss heals by itself; if not within 3 s, a new peer connection
        setTimeout(() => { if (pc === this.pc && pc.connectionState === "disconnected") this._retry("disconnected"); }, 3000);
      }
      this.onChange();
    };
    this.pc = pc;
    this.onChange();
  }

  _queue(fn) {  // offers are handled one at a time, in order
    this._chain = this._chain.then(fn).catch((err) => {
      if (["unknown_participant", "not_joined", "negotiation_conflict"].includes(err && err.code)) this._retry(err.code);
      else this.onError(err);
    });
    return this._chain;
  }

  async _answer(offer) {
    const pc = this.pc;
    if (!pc || !offer || typeof offer.sdp !== "string") return;
    this._offers++;
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    Object.assign(this.tracks, offer.tracks || {});
    const publish = {};
    for (const [source, mid] of Object.entries(offer.publish || {})) publish[mid] = source;
    for (const tr of pc.getTransceivers()) {
      if (tr.stopped || tr.mid == null) continue;
      const source = publish[tr.mid];
      if (source) await this._publish(tr, source);
      else if (!this.remote.has(tr.mid) && tr.receiver.track) this.remote.set(tr.mid, tr.receiver.track);
    }
    await pc.setLocalDescription(await pc.createAnswer());
    if (this.pc !== pc) return;  // replaced while answering (rejoin)
    for (const tr of pc.getTransceivers()) {
      if (publish[tr.mid] === "camera" && tr.sender.track) await withTemporalLayers(tr.sender);
    }
    await call(this.socket, "media:answer", { type: "answer", sdp: pc.localDescription.sdp }, 15000);
    this.onChange();
  }

  async _publish(tr, source) {
    const track = source === "audio" ? this.audioTrack() : source === "camera" ? this.videoTrack() : this.screen;
    if (!track) {
      if (tr.sender.track) await tr.sender.replaceTrack(null);  // a screen share that stopped
      tr.direction = "inactive";  // nothing to publish on this m-line (no screen shared, or no camera)
      return;
    }
    if (tr.sender.track !== track) await tr.sender.replaceTrack(track);
    const stream = source === "screen" ? null : this.local;
    if (stream && tr.sender.setStreams) tr.sender.setStreams(stream);
    tr.direction = "sendonly";
  }

  /** Screen sharing exists here (desktop browsers; phones have no getDisplayMedia). */
  static canShareScreen() {
    return Boolean(navigator.mediaDevices && typeof navigator.mediaDevices.getDisplayMedia === "function");
  }

  get sharingScreen() { return Boolean(this.screen); }

  /**
   * Share a screen: `track` (tests) or the one the person picks (getDisplayMedia). The screen m-line goes from
   * inactive to sendonly in our answer to a fresh offer (media:renegotiate): the hub then forwards it to everyone the
   * routing allows (a caucus is obeyed) and records it as its own source. The browser's own "Stop sharing" ends it.
   */
  async startScreen(track = null) {
    if (this.screen) return this.screen;
    if (!track) {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 10, max: 15 } }, audio: false });
      track = stream.getVideoTracks()[0];
    }
    if (!track) throw new ServerError({ code: "screen_failed", message: "no video track" });
    try { track.contentHint = "detail"; } catch { /* older browsers */ }
    track.addEventListener("ended", () => { if (this.screen === track) this.stopScreen().catch((err) => this.onError(err)); });
    this.screen = track;
    this.onChange();
    this.events.dispatchEvent(new Event("screen"));
    await this._renegotiate();
    return track;
  }

  /** Stop sharing: the track stops and the m-line goes back to inactive (the others' big tile goes away). */
  async stopScreen() {
    const track = this.screen;
    if (!track) return;
    this.screen = null;
    track.stop();
    this.onChange();
    this.events.dispatchEvent(new Event("screen"));
    await this._renegotiate();
  }

  async _renegotiate() {
    if (this.socket && this.socket.connected && this.pc) await call(this.socket, "media:renegotiate", {}, 15000);
  }

  audioTrack() { return this.local ? this.local.getAudioTracks()[0] || null : null; }
  videoTrack() { return this.local ? this.local.getVideoTracks()[0] || null : null; }

  _applyLocal() {
    const a = this.audioTrack();
    const v = this.videoTrack();
    if (a) a.enabled = !this.micMuted;
    if (v) v.enabled = !this.cameraOff && !this.audioOnly;
    this.onChange();
  }

  setMuted(muted) { this.micMuted = muted; this._applyLocal(); }
  setCameraOff(off) { this.cameraOff = off; this._applyLocal(); }

  /**
   * Audio-only (P5): the hub stops sending us video; we also stop sending ours to spare the uplink.
   * `tellServer: true` is the person's choice (a manual switch also ends an automatic one on the server);
   * `tellServer: false` follows the hub's automatic switch (media:audio-only push or you.link).
   */
  async setAudioOnly(enabled, { tellServer = true } = {}) {
    if (tellServer) {
      this.audioOnlyManual = enabled;
      this.audioOnlyAuto = false;
    } else {
      this.audioOnlyAuto = enabled;
    }
    this.audioOnly = this.audioOnlyManual || this.audioOnlyAuto;
    this._applyLocal();
    if (tellServer && this.socket) await call(this.socket, "media:audio-only", { enabled });
  }

  /** Remote media grouped per participant: [{participant, label, audio, camera, screen, active, screenActive}]. */
  groups() {
    const by = new Map();
    for (const [mid, track] of this.remote) {
      const info = this.tracks[mid];
      if (!info || !info.participant || track.readyState === "ended") continue;
      const g = by.get(info.participant) || { participant: info.participant, label: info.label || {}, active: false };
      const slot = info.source === "screen" ? "screen" : info.kind === "audio" ? "audio" : "camera";
      g[slot] = track;
      if (slot === "screen") g.screenActive = Boolean(info.active);
      else if (info.kind === "video" && info.active) g.active = true;
      by.set(info.participant, g);
    }
    return [...by.values()];
  }

  /** Leave the hub (keeps the socket), stop sending. */
  async leave() {
    const socket = this.socket;
    this._detach();
    if (this.pc) { this.pc.close(); this.pc = null; }
    if (socket && socket.connected) { try { await call(socket, "media:leave", {}, 3000); } catch { /* leaving anyway */ } }
  }

  stopLocal() {
    if (this.local) for (const tr of this.local.getTracks()) tr.stop();
    this.local = null;
    if (this.screen) { this.screen.stop(); this.screen = null; this.events.dispatchEvent(new Event("screen")); }
  }

  _detach() {
    clearTimeout(this._watchdog);
    if (this.socket) for (const [ev, fn] of Object.entries(this._handlers)) this.socket.off(ev, fn);
    this.socket = null;
  }
}
