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

  render() {
    const v = this.view;
    const entries = (v && v.entries) || [];
    const keep = this.speaker.value;
    this.speaker.replaceChildren(...this.speakers().map((p) => h("option", { value: p.id }, p.name)));
    if (keep) this.speaker.value = keep;
    const list = entries.length ? h("ol", { class: "tr-list", "aria-live": "polite" }, entries.map((e) => h("li", { class: e.private ? "private" : "" },
      h("time", {}, clock(e.at_ms)), " ", h("strong", {}, e.speaker), e.private ? h("span", { class: "tag warn" }, t("tr.private")) : null,
      e.source === "speech" ? h("span", { class: "tag" }, t("tr.from_speech")) : null, "：", e.text)))
      : h("p", { class: "muted", id: "transcript-empty" }, this.emptyWhy());
    const closed = v && v.closed;
    const drafts = this.canWrite && v && !closed && this.drafts.length ? h("div", { class: "tr-drafts", id: "transcript-drafts" },
      h("h3", {}, t("tr.drafts_title")),
      h("ol", { class: "tr-list" }, this.drafts.map((d) => h("li", { class: "draft" + (d.private ? " private" : "") + (d.id === this.draftId ? " current" : "") },
        h("time", {}, clock(d.at_ms)), " ", h("strong", {}, d.speaker), d.private ? h("span", { class: "tag warn" }, t("tr.private")) : null,
        "：", d.text, " ", h("button", { type: "button", class: "secondary draft-use", onclick: () => this.useDraft(d) }, t("tr.draft_use")))))) : null;
    this.root.replaceChildren(...[h("h2", { id: "transcript-h" }, t("tr.title")),
      v && v.clock ? h("p", { class: "hint" }, v.clock === "session_live" ? t("tr.clock_live") : t("tr.clock_rec")) : null,
      list,
      drafts,
      closed ? h("p", { class: "notice", id: "transcript-closed" }, t("tr.closed")) : null,
      this.responses.length ? h("ul", { class: "tr-responses" }, this.responses.map((r) => h("li", {},
        t(r.verdict === "confirmed" ? "tr.confirmed_by" : "tr.disputed_by", { name: r.name, n: (r.disputes || []).length })))) : null,
      this.canWrite && v && !closed ? h("form", { class: "tr-write", onsubmit: (e) => this.write(e) },
        h("div", { class: "tr-grid" }, field(t("tr.speaker"), this.speaker), field(t("tr.text"), this.text)),
        h("div", { class: "row" }, h("button", { type: "submit", id: "transcript-add" }, t("tr.add")),
          entries.length && this.canClose ? h("button", { type: "button", class: "danger", id: "transcript-close", onclick: () => this.close() }, t("tr.close")) : null)) : null,
      this.msg, this.err].filter(Boolean));
  }
}
