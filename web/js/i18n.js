// i18n: zh-CN by default, English on request. Every visible string goes through t().
// Dictionaries are {key: [zh, en]} objects registered by the strings-*.js modules.

const LANGS = ["zh", "en"];
const KEY = "onedoor.lang";
const dict = {};
const listeners = new Set();
let lang = pickLang();

function pickLang() {
  try {
    const saved = localStorage.getItem(KEY);
    if (LANGS.includes(saved)) return saved;
  } catch { /* storage may be blocked */ }
  return "zh";
}

/** Add strings. With {fallback: true} keys another module already registered are kept (shared labels). */
export function register(strings, { fallback = false } = {}) {
  for (const k of Object.keys(strings)) {
    if (!(k in dict)) dict[k] = strings[k];
    else if (!fallback) { console.warn("i18n: duplicate key", k); dict[k] = strings[k]; }
  }
}

export function getLang() {
  return lang;
}

export function setLang(next) {
  if (!LANGS.includes(next) || next === lang) return;
  lang = next;
  try { localStorage.setItem(KEY, next); } catch { /* ignore */ }
  document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
  applyStatic(document);
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) {
  listeners.add(fn);
}

/** t("key", {name: "张三"}) -> translated text with {name} filled in; unknown keys show the key. */
export function t(key, vars) {
  const entry = dict[key];
  let s = entry ? entry[lang === "en" ? 1 : 0] ?? entry[0] : key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

/** Has a translation for this key (used for server codes: unknown ones fall back to the server's text). */
export function has(key) {
  return key in dict;
}

/** Fill static markup: data-i18n (text), data-i18n-label (aria-label), data-i18n-placeholder, data-i18n-title. */
export function applyStatic(root) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) {
    el.title = t(el.dataset.i18nTitle);
    if (el.tagName === "TITLE") document.title = el.title;
  }
}

/** Wire the language switch button(s) marked data-lang-switch: shows the other language's name. */
export function installSwitch(root = document) {
  for (const btn of root.querySelectorAll("[data-lang-switch]")) {
    const paint = () => {
      btn.textContent = lang === "zh" ? "English" : "中文";
      btn.setAttribute("lang", lang === "zh" ? "en" : "zh-CN");
      btn.setAttribute("aria-label", lang === "zh" ? "Switch to English" : "切换到中文");
    };
    paint();
    btn.addEventListener("click", () => setLang(lang === "zh" ? "en" : "zh"));
    onLangChange(paint);
  }
}
