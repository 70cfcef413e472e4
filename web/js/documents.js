// The case file (R19, docs/protocol-casefile.md): list, upload, read and — in a session — "show to everyone".
// Page-neutral: the console uses it over HTTP (case view) and over the session socket (host view); the party page
// may use the socket form too.
import "./strings-casefile.js";
import { h, field, fmtTime } from "./dom.js";
import { confirmDialog } from "./confirm.js";
import { t, getLang } from "./i18n.js";
import * as http from "./api.js";
import { call } from "./socket.js";
import { explain, ServerError } from "./errors.js";

export const PURPOSES = ["evidence", "power_of_attorney", "property_proof", "other"];
const size = (n) => (n >= 1048576 ? (n / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(n / 1024)) + " KB");

/** POST the file's bytes to `url` (with the CSRF token when the staff API is used). */
async function sendFile(url, file, csrf) {
  const headers = { "Content-Type": file.type || "application/octet-stream" };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const res = await fetch(url, { method: "POST", body: file, headers, credentials: "same-origin" });
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) throw new ServerError((data && data.error) || { code: "http_" + res.status });
  return data;
}

/**
 * new DocumentsPanel({code}) — staff over HTTP; new DocumentsPanel({socket: () => s, canShow}) — in a session.
 * `people` (optional: [{id, name}]) lets a power of attorney name its agent.
 */
export class DocumentsPanel {
  constructor({ code = null, socket = null, canShow = false, people = [] } = {}) {
    this.code = code;
    this.socket = socket;
    this.canShow = canShow;
    this.people = people;
    this.docs = [];
    this.loaded = false;
    this.root = h("section", { class: "card documents", id: "documents", "aria-labelledby": "documents-h" });
    this.msg = h("p", { class: "okmsg", role: "status", hidden: true, tabindex: "-1" });
    this.err = h("p", { class: "error", role: "alert", hidden: true, tabindex: "-1" });
    this.render();
  }

  say(text, bad = false) {
    const [on, off] = bad ? [this.err, this.msg] : [this.msg, this.err];
    off.hidden = true;
    on.textContent = text;
    on.hidden = !text;
    if (text && on.isConnected) { on.scrollIntoView({ block: "nearest" }); on.focus({ preventScroll: true }); }
  }

  async load() {
    try {
      const out = this.code ? await http.get(`/api/cases/${encodeURIComponent(this.code)}/documents`)
        : await call(this.socket(), "document:list", {});
      this.docs = out.documents || [];
      this.loaded = true;
      this.render();
    } catch (err) { this.say(explain(err), true); }
    return this;
  }

  /** document:shown push: somebody showed a document to everyone on their side. */
  onShown(doc) {
    if (!this.docs.some((d) => d.id === doc.id)) this.docs.push(doc);
    else this.docs = this.docs.map((d) => (d.id === doc.id ? { ...d, ...doc } : d));
    this.render();
    this.say(t("doc.shown_by", { name: doc.shown_by || "", file: doc.filename }));
  }

  readUrl(d) {
    if (d.url) return d.url;
    return `/api/cases/${encodeURIComponent(this.code)}/documents/${encodeURIComponent(d.id)}?reason=${encodeURIComponent(t("doc.read_reason"))}`;
  }

  async upload(file, purpose, personId) {
    if (!file) { this.say(t("doc.choose_file"), true); return; }
    try {
      let url;
      let csrf = "";
      const q = `filename=${encodeURIComponent(file.name)}&purpose=${encodeURIComponent(purpose)}` + (personId ? `&person_id=${personId}` : "");
      if (this.code) {
        url = `/api/cases/${encodeURIComponent(this.code)}/documents?${q}`;
        csrf = (await http.get("/api/auth/me")).csrf;
      } else {
        url = (await call(this.socket(), "document:ticket", {})).url + "&" + q;
      }
      const out = await sendFile(url, file, csrf);
      await this.load();
      this.say(t("doc.uploaded", { file: (out.document && out.document.filename) || file.name }));
    } catch (err) { this.say(explain(err), true); }
  }

  async show(d) {
    if (!(await confirmDialog(t("doc.show_confirm", { file: d.filename }),
      { title: t("doc.show_title", { file: d.filename }), confirm: t("doc.show_yes") }))) return;
    try {
      const out = await call(this.socket(), "document:show", { document: d.id });
      d.shown_jointly = true;
      this.render();
      this.say(t("doc.shown_ok", { file: d.filename, n: (out.shown_to || []).length }));
    } catch (err) { this.say(explain(err), true); }
  }

  render() {
    const lang = getLang();
    // the browser's own file button speaks the browser's language: ours is a label in the page's language
    const chosen = h("span", { class: "muted", id: "doc-file-name" }, t("doc.no_file"));
    const file = h("input", { type: "file", id: "doc-file", class: "visually-hidden", accept: "image/jpeg,image/png,application/pdf",
      onchange: () => { chosen.textContent = file.files[0] ? file.files[0].name : t("doc.no_file"); } });
    const picker = h("div", { class: "field" }, h("span", { class: "block label" }, t("doc.file")),
      h("div", { class: "row" }, h("label", { for: "doc-file", class: "button small", tabindex: "0", role: "button",
        onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); file.click(); } } }, t("doc.choose")), file, chosen),
      h("p", { class: "hint" }, t("doc.types")));
    const purpose = h("select", { id: "doc-purpose" }, PURPOSES.map((p) => h("option", { value: p }, t("doc.purpose." + p))));
    const agent = h("select", { id: "doc-person" }, h("option", { value: "" }, t("doc.no_person")),
      this.people.map((p) => h("option", { value: p.id }, p.name)));
    const rows = this.docs.map((d) => h("li", { dataset: { document: String(d.id) } },
      h("div", { class: "row" },
        h("a", { href: this.readUrl(d), target: "_blank", rel: "noopener" }, d.filename),
        h("span", { class: "tag" }, t("doc.purpose." + d.purpose)),
        d.shown_jointly ? h("span", { class: "tag ok" }, t("doc.shown_tag")) : null,
        d.privileged ? h("span", { class: "tag warn" }, t("doc.private_tag")) : null,
        this.canShow && !d.shown_jointly ? h("button", { type: "button", class: "small", onclick: () => this.show(d),
          "aria-label": t("doc.show_named", { file: d.filename }) }, t("doc.show")) : null),
      h("span", { class: "muted" }, t("doc.meta", { who: d.uploader || "", at: fmtTime(d.uploaded_at, lang), size: size(d.size || 0) }))));
    this.root.replaceChildren(...[h("h2", { id: "documents-h" }, t("doc.title")),
      !this.loaded ? h("p", { class: "muted" }, t("common.loading"))
        : rows.length ? h("ul", { class: "doc-list" }, rows) : h("p", { class: "muted", id: "documents-empty" }, t("doc.empty")),
      h("form", { class: "upload", onsubmit: (e) => { e.preventDefault(); this.upload(file.files[0], purpose.value, agent.value); } },
        h("div", { class: "grid2" }, picker, field(t("doc.purpose"), purpose)),
        this.people.length ? field(t("doc.person"), agent, t("doc.person_hint")) : null,
        h("button", { type: "submit", id: "doc-upload" }, t("doc.upload"))),
      this.msg, this.err].filter(Boolean));
  }
}
