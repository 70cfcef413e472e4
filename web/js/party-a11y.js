// For older parties: a large-text switch the page remembers (localStorage), and reading notices aloud with the
// browser's speech synthesis (a zh-CN voice when the device has one), always with the text beside the button.
import { h } from "./dom.js";
import { t, getLang, onLangChange } from "./i18n.js";

const KEY = "onedoor.largeText";

function stored() {
  try { return localStorage.getItem(KEY) === "1"; } catch { return false; }
}

export function setLargeText(on) {
  document.documentElement.classList.toggle("large-text", on);
  try { localStorage.setItem(KEY, on ? "1" : "0"); } catch { /* storage may be blocked: this visit only */ }
  for (const btn of document.querySelectorAll("[data-text-size]")) btn.setAttribute("aria-pressed", String(on));
}

/** Wire the switch(es) marked data-text-size and apply the remembered choice. */
export function installLargeText(root = document) {
  const on = stored();
  document.documentElement.classList.toggle("large-text", on);
  for (const btn of root.querySelectorAll("[data-text-size]")) {
    const paint = () => {
      btn.textContent = t("a11y.large_text");
      btn.setAttribute("aria-label", t("a11y.large_text_label"));
    };
    paint();
    btn.setAttribute("aria-pressed", String(on));
    btn.addEventListener("click", () => setLargeText(!document.documentElement.classList.contains("large-text")));
    onLangChange(paint);
  }
}

const synth = () => (typeof window !== "undefined" && window.speechSynthesis) || null;

function voiceFor(lang) {
  const s = synth();
  const voices = (s && s.getVoices && s.getVoices()) || [];
  const want = lang === "zh" ? /^zh(-|_)?(CN|Hans)?/i : /^en/i;
  return voices.find((v) => /^zh[-_]CN/i.test(v.lang) && lang === "zh") || voices.find((v) => want.test(v.lang)) || null;
}

let speaking = null;  // the button whose text is being read

/**
 * A "read aloud" button for `getText()` (called at click time, so it follows the language). Pressing it again,
 * or another read button, stops. On a device without speech synthesis it says so instead.
 */
export function readAloudButton(title, getText, { id, label = "a11y.read_aloud" } = {}) {
  const note = h("p", { class: "hint", role: "status", hidden: true });
  const btn = h("button", { type: "button", class: "read-aloud", id, "aria-pressed": "false",
    "aria-label": t("a11y.read_aloud_label", { title }) }, h("span", { class: "icon", "aria-hidden": "true" }, "▶"), t(label));
  const reset = () => {
    btn.setAttribute("aria-pressed", "false");
    btn.replaceChildren(h("span", { class: "icon", "aria-hidden": "true" }, "▶"), t(label));
    if (speaking === btn) speaking = null;
  };
  btn.addEventListener("click", () => {
    const s = synth();
    if (!s || typeof SpeechSynthesisUtterance === "undefined") {
      note.textContent = t("a11y.no_speech");
      note.hidden = false;
      return;
    }
    const wasMe = speaking === btn;
    s.cancel();
    if (speaking) speaking.reset();
    if (wasMe) return;  // pressed while reading: stop
    const lang = getLang();
    const u = new SpeechSynthesisUtterance(getText());
    u.lang = lang === "zh" ? "zh-CN" : "en-GB";
    const voice = voiceFor(lang);
    if (voice) u.voice = voice;
    u.rate = 0.9;  // a little slower than usual
    u.onend = reset;
    u.onerror = reset;
    speaking = btn;
    btn.setAttribute("aria-pressed", "true");
    btn.replaceChildren(h("span", { class: "icon", "aria-hidden": "true" }, "■"), t("a11y.stop_reading"));
    s.speak(u);
  });
  btn.reset = reset;
  return h("span", { class: "read-wrap" }, btn, note);
}

/** Stop any reading (leaving the page's step). */
export function stopReading() {
  const s = synth();
  if (s) s.cancel();
  if (speaking) speaking.reset();
}
