// Video tiles: one per participant (their camera + microphone in one <video>), plus the local preview.
// A shared screen is shown large above the camera grid (`.screen-stage`, spanning the grid's full width) with the
// sharer's name; our own shared screen is previewed there too. Elements are kept per participant so re-renders do
// not restart playback.
import { h } from "./dom.js";
import { t } from "./i18n.js";

export class Tiles {
  constructor(container) {
    this.el = container;
    this.el.classList.add("tiles");
    this.tiles = new Map();  // key -> {root, video, name, flags, trackIds}
    this.screens = new Map();  // sharer id (or "local") -> {root, video, name, trackIds}
    this.stage = h("div", { class: "screen-stage", hidden: true });
    this.el.prepend(this.stage);
  }

  /** Shared screens, large: every admitted participant's forwarded screen (not cut off by a caucus), and ours. */
  _screens({ local, groups, people, hidden }) {
    const keep = new Set();
    const show = (key, track, caption) => {
      keep.add(key);
      let s = this.screens.get(key);
      if (!s) {
        const video = h("video", { autoplay: true, playsInline: true, muted: true });
        video.setAttribute("playsinline", "");
        video.muted = true;  // the sharer's voice plays in their camera tile
        const name = h("figcaption", {});
        s = { root: h("figure", { class: "screen-tile" + (key === "local" ? " local" : ""), dataset: { sharer: key } }, video, name),
          video, name, trackIds: "" };
        this.stage.append(s.root);
        this.screens.set(key, s);
      }
      if (s.trackIds !== track.id) {
        s.trackIds = track.id;
        s.video.srcObject = new MediaStream([track]);
        s.video.play().catch(() => {});
      }
      s.name.textContent = caption;
    };
    if (local && local.screen) show("local", local.screen, t("sess.screen_yours"));
    for (const g of groups) {
      const who = people[g.participant] || {};
      if (!g.screen || !g.screenActive || who.admitted === false || hidden.has(g.participant)) continue;
      show(g.participant, g.screen, t("sess.screen_of", { name: who.name || g.label.name || g.participant }));
    }
    for (const [key, s] of this.screens) {
      if (!keep.has(key)) { s.video.srcObject = null; s.root.remove(); this.screens.delete(key); }
    }
    this.stage.hidden = keep.size === 0;
    this.el.classList.toggle("has-screen", keep.size > 0);
  }

  /**
   * Render. `local`: {stream, name, muted, cameraOff, screen}; `groups`: MediaClient.groups();
   * `people`: session:state participants by id (for names, mute, hands); `hidden`: ids cut off by a caucus, and
   * `hiddenLabel` what their tiles say (default: "cannot hear each other for now", true from either side);
   * `everyone: {self}`: also a tile (no video) for each person in `people` but `self` who sends no media.
   */
  render({ local, groups, people = {}, hidden = new Set(), hiddenLabel, everyone = null }) {
    // a caucus cuts `hidden` off from us; say it neutrally unless the caller knows which side they are on
    this.hiddenLabel = hiddenLabel || t("sess.cut_off");
    this._screens({ local, groups, people, hidden });
    const keep = new Set();
    if (local && local.stream) {
      keep.add("local");
      const tile = this._tile("local", true);
      this._attach(tile, local.stream.getTracks().filter((tr) => tr.kind === "video"));
      tile.name.textContent = t("sess.you") + (local.name ? " · " + local.name : "");
      this._flags(tile, { muted: local.muted, noVideo: local.cameraOff });
    }
    for (const g of groups) {
      const who = people[g.participant] || {};
      if (who.admitted === false) continue;
      keep.add(g.participant);
      const tile = this._tile(g.participant, false);
      tile.root.dataset.participant = g.participant;
      this._attach(tile, [g.audio, g.camera].filter(Boolean));
      const name = who.name || g.label.name || g.participant;
      const role = who.role || g.label.role;
      tile.name.textContent = name + (role ? " · " + t("role." + role) : "") + (who.side ? " · " + t("side." + who.side) : "");
      this._flags(tile, { muted: who.muted, hand: who.hand, noVideo: !g.camera || !g.active || who.audio_only,
        away: hidden.has(g.participant) });
    }
    if (everyone) {  // people without media yet (connecting, or on a phone with no camera) still get a tile
      const shown = new Set(groups.map((g) => g.participant));
      for (const [id, who] of Object.entries(people)) {
        if (id === everyone.self || shown.has(id) || who.admitted === false) continue;
        keep.add(id);
        const tile = this._tile(id, false);
        tile.root.dataset.participant = id;
        this._attach(tile, []);
        tile.name.textContent = who.name + (who.role ? " · " + t("role." + who.role) : "") + (who.side ? " · " + t("side." + who.side) : "");
        this._flags(tile, { muted: who.muted, hand: who.hand, noVideo: true, away: hidden.has(id) });
      }
    }
    for (const [key, tile] of this.tiles) {
      if (!keep.has(key)) {
        tile.video.srcObject = null;
        tile.root.remove();
        this.tiles.delete(key);
      }
    }
  }

  _tile(key, isLocal) {
    let tile = this.tiles.get(key);
    if (tile) return tile;
    const video = h("video", { autoplay: true, playsInline: true, muted: isLocal });
    video.setAttribute("playsinline", "");
    if (isLocal) video.muted = true;  // never play our own microphone back
    const name = h("span", { class: "name" });
    const flags = h("span", { class: "flags" });
    const root = h("figure", { class: "tile" + (isLocal ? " local" : ""), dataset: { key } },
      video, h("figcaption", {}, name, flags));
    this.el.append(root);
    tile = { root, video, name, flags, trackIds: "" };
    this.tiles.set(key, tile);
    return tile;
  }

  _attach(tile, tracks) {
    const ids = tracks.map((tr) => tr.id).sort().join(",");
    if (ids === tile.trackIds) return;
    tile.trackIds = ids;
    tile.video.srcObject = tracks.length ? new MediaStream(tracks) : null;
    if (tracks.length) {
      tile.video.play().catch(() => this._needsTap(tile));
    }
  }

  _needsTap(tile) {  // autoplay with sound blocked: one tap starts it
    if (tile.root.querySelector(".tap")) return;
    const btn = h("button", { type: "button", class: "tap", onclick: () => {
      tile.video.play().then(() => btn.remove()).catch(() => {});
    } }, t("sess.tap_to_play"));
    tile.root.append(btn);
  }

  _flags(tile, { muted, hand, noVideo, away }) {
    tile.root.classList.toggle("novideo", Boolean(noVideo));
    tile.root.classList.toggle("away", Boolean(away));
    const out = [];
    if (hand) out.push("✋ " + t("sess.hand"));
    if (muted) out.push("🔇 " + t("sess.muted"));
    if (away) out.push(this.hiddenLabel || t("sess.cut_off"));
    else if (noVideo) out.push(t("sess.no_video"));
    tile.flags.textContent = out.join(" · ");
  }

  clear() {
    for (const tile of this.tiles.values()) { tile.video.srcObject = null; tile.root.remove(); }
    this.tiles.clear();
    for (const s of this.screens.values()) { s.video.srcObject = null; s.root.remove(); }
    this.screens.clear();
    this.stage.hidden = true;
  }
}
