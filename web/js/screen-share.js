// The "Share screen" toggle (共享屏幕), for the console host view and the desktop party page. It exists only where
// the browser can capture a screen (navigator.mediaDevices.getDisplayMedia: desktop browsers; phones have none).
// Starting asks the person which screen or window (the browser's own picker); the browser's "Stop sharing" bar, the
// toggle, and leaving all stop it (MediaClient.startScreen / stopScreen: docs/web.md, "Screen sharing").
import { h } from "./dom.js";
import { t, onLangChange } from "./i18n.js";
import { MediaClient } from "./media.js";

/** A toggle button bound to `media` (a MediaClient), or null where screens cannot be shared. */
export function screenShareButton(media, { onError = () => {} } = {}) {
  if (!MediaClient.canShareScreen()) return null;
  const btn = h("button", { type: "button", id: "btn-screen", class: "screen-share" });
  const paint = () => {
    btn.textContent = media.sharingScreen ? t("sess.stop_share") : t("sess.share_screen");
    btn.setAttribute("aria-pressed", String(media.sharingScreen));
    btn.classList.toggle("active", media.sharingScreen);
  };
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    try {
      if (media.sharingScreen) await media.stopScreen();
      else await media.startScreen();
    } catch (err) {
      const code = err && err.code;
      // e.g. the person closed the browser's picker: said in plain words (err.screen_failed)
      onError(code ? err : { code: "screen_failed", message: String(err && err.message) });
    } finally {
      btn.disabled = false;
      paint();
    }
  });
  media.events.addEventListener("screen", paint);
  onLangChange(paint);
  paint();
  return btn;
}
