// The electronic transcript of a session (电子笔录, R11; docs/protocol-casefile.md): entries on the session's clock,
// writing (mediators, the center's clerk), closing for review, the parties' signed answers; speech-to-text drafts
// (`transcript:draft`, only when the center runs an engine) shown as suggestions: "use" puts one in the form, and
// it is written (`transcript:write {draft}`) only when the writer adds it. Page-neutral (`canWrite` for writers).
import "./strings-casefile.js";
import { h, field } from "./dom.js";
import { confirmDialog } from "./confirm.js";
import { t } from "./i18n.js";
import { call } from "./socket.js";
import { explain } from "./errors.js";

const clock = (ms) => {
  const s = Math.floor((ms || 0) / 1000);
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return (hh ? hh + ":" : "") + mm + ":" + ss;
};

export class TranscriptPanel {
  /** socket: () => the session socket; speakers: () => [{id, name}] (who may be named as the speaker). */
  constructor({ socket, canWrite = false, canClose = canWrite, speakers = () => [] }) {
    this.socket = socket;
    this.canWrite = canWrite;
    this.canClose = canClose;
    this.speakers = speakers;
    this.view = null;  // transcript:get answer
    this.responses = [];
    this.drafts = [];  // transcript:draft suggestions not used yet (newest last, a few kept)
    this.draftId = null;  // the suggestion now in the form
    this.root = h("section", { class: "card transcript", id: "transcript", "aria-labelledby": "transcript-h" });
    this.msg = h("p", { class: "okmsg", role: "status", hidden: true, tabindex: "-1" });
    this.err = h("p", { class: "error", role: "alert", hidden: true, tabindex: "-1" });
    this.text = h("textarea", { id: "transcript-text", maxlength: "5000", rows: "2" });
    this.speaker = h("select", { id: "transcript-speaker" });
    this.render();
  }

  say(text, bad = false) {
    const [on, off] = bad ? [this.err, this.msg] : [this.msg, this.err];
    off.hidden = true;
    on.textContent = text;
    on.hidden = !text;
  }

  async load() {
    try {
      this.view = await call(this.socket(), "transcript:get", {});
      this.responses = this.view.responses || [];
      this.render();
    } catch (err) { this.say(explain(err), true); }
  }

  attach(s) {
    s.on("transcript:entry", (e) => { if (this.view) { this.view.entries.push(e); this.render(); } });
    s.on("transcript:review", (r) => { if (this.view) { Object.assign(this.view, { closed: true, sha256: r.sha256 }); this.render(); } });
    s.on("transcript:response", (r) => { this.responses.push(r); this.render(); });
    s.on("transcript:draft", (d) => { this.drafts = [...this.drafts, d].slice(-8); this.render(); });
  }

  async write(e) {
    e.preventDefault();
    const text = this.text.value.trim();
    if (!text) { this.say(t("tr.text_required"), true); this.text.focus(); return; }
    const opt = this.speaker.selectedOptions[0];
    const body = { speaker: opt ? opt.textContent : "", text };
    if (opt && opt.value) body.speaker_id = opt.value;
    if (this.draftId) body.draft = this.draftId;
    try {
      await call(this.socket(), "transcript:write", body);
      this.drafts = this.drafts.filter((d) => d.id !== this.draftId);
      this.draftId = null;
      this.text.value = "";
      this.say("");
      this.text.focus();
    } catch (err) { this.say(explain(err), true); }
  }

  /** Put a speech suggestion in the form, to be checked and edited before it is added. */
  useDraft(d) {
    this.draftId = d.id;
    this.text.value = d.text;
    if ([...this.speaker.options].some((o) => o.value === d.speaker_id)) this.speaker.value = d.speaker_id;
    this.render();
    this.say(t("tr.draft_editing"));
    this.text.focus();
  }

  async close() {
    if (!(await confirmDialog(t("tr.close_confirm"), { title: t("tr.close_title"), confirm: t("tr.close_yes"), danger: true }))) return;
    try {
      await call(this.socket(), "transcript:close", {});
      this.say(t("tr.closed_ok"));
    } catch (err) { this.say(explain(err), true); }
  }

  /** Why the list is empty, in plain words. */
  emptyWhy() {
    if (!this.view) return t("common.loading");
    if (this.canWrite) return t("tr.empty_writer");
    return t("tr.empty_reader");
  }

  /** Re-renders the parts that change in place: the form (and the text being typed in it, with its focus) is never
   * taken out of the page, so suggestions arriving every second do not interrupt the writer. */
  render() {
    const v = this.view;
    const entries = (v && v.entries) || [];
    const closed = v && v.closed;
    if (!this.parts) {
      const speakerField = field("", this.speaker), textField = field("", this.text);
      this.parts = { title: h("h2", { id: "transcript-h" }), hint: h("p", { class: "hint" }), list: h("div", { id: "transcript-entries" }), drafts: h("div"),
        closed: h("p", { class: "notice", id: "transcript-closed" }), responses: h("ul", { class: "tr-responses" }),
        speakerLabel: speakerField.firstChild, textLabel: textField.firstChild,
        add: h("button", { type: "submit", id: "transcript-add" }),
        close: h("button", { type: "button", class: "danger", id: "transcript-close", onclick: () => this.close() }) };
      const p = this.parts;
      this.form = h("form", { class: "tr-write", onsubmit: (e) => this.write(e) }, h("div", { class: "tr-grid" }, speakerField, textField),
        h("div", { class: "row" }, p.add, p.close));
      this.root.replaceChildren(p.title, p.hint, p.list, p.drafts, p.closed, p.responses, this.form, this.msg, this.err);
    }
    // the words of the parts that stay (the page's language may have changed)
    const p = this.parts;
    p.title.textContent = t("tr.title");
    p.closed.textContent = t("tr.closed");
    p.speakerLabel.textContent = t("tr.speaker");
    p.textLabel.textContent = t("tr.text");
    p.add.textContent = t("tr.add");
    p.close.textContent = t("tr.close");
    const keep = this.speaker.value;
    this.speaker.replaceChildren(...this.speakers().map((x) => h("option", { value: x.id }, x.name)));
    if (keep) this.speaker.value = keep;
    p.hint.hidden = !(v && v.clock);
    p.hint.textContent = v && v.clock ? (v.clock === "session_live" ? t("tr.clock_live") : t("tr.clock_rec")) : "";
    p.list.replaceChildren(entries.length ? h("ol", { class: "tr-list", "aria-live": "polite" }, entries.map((e) => h("li", { class: e.private ? "private" : "" },
      h("time", {}, clock(e.at_ms)), " ", h("strong", {}, e.speaker), e.private ? h("span", { class: "tag warn" }, t("tr.private")) : null,
      e.source === "speech" ? h("span", { class: "tag" }, t("tr.from_speech")) : null, "：", e.text)))
      : h("p", { class: "muted", id: "transcript-empty" }, this.emptyWhy()));
    const drafts = this.canWrite && v && !closed && this.drafts.length;
    p.drafts.replaceChildren(...(drafts ? [h("div", { class: "tr-drafts", id: "transcript-drafts" },
      h("h3", {}, t("tr.drafts_title")),
      h("ol", { class: "tr-list" }, this.drafts.map((d) => h("li", { class: "draft" + (d.private ? " private" : "") + (d.id === this.draftId ? " current" : "") },
        h("time", {}, clock(d.at_ms)), " ", h("strong", {}, d.speaker), d.private ? h("span", { class: "tag warn" }, t("tr.private")) : null,
        "：", d.text, " ", h("button", { type: "button", class: "secondary draft-use", onclick: () => this.useDraft(d) }, t("tr.draft_use"))))))] : []));
    p.closed.hidden = !closed;
    p.responses.hidden = !this.responses.length;
    p.responses.replaceChildren(...this.responses.map((r) => h("li", {},
      t(r.verdict === "confirmed" ? "tr.confirmed_by" : "tr.disputed_by", { name: r.name, n: (r.disputes || []).length }))));
    this.form.hidden = !(this.canWrite && v && !closed);
    p.close.hidden = !(entries.length && this.canClose);
  }
}
