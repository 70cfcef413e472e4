// Console: the agreement editor (R15-R17, R21-R23) over the HTTP API — template, structured form with a live
// preview, the server's problem list, finalize, mediator signature, and the application to a court.
import { h, field } from "./dom.js";
import { confirmDialog } from "./confirm.js";
import { t, has } from "./i18n.js";
import * as http from "./api.js";
import { explain } from "./errors.js";
import { agreementDoc, agreementStatus, problemList, problemText } from "./agreement-view.js";
import { namesOf } from "./console-next.js";
import { idNumberProblem } from "./console-people.js";
import { applicationBox } from "./agreement-application.js";

const clone = (x) => JSON.parse(JSON.stringify(x));
const parsePath = (path) => path.replace(/\[(\d+)\]/g, ".$1").split(".");

function getAt(obj, path) {
  return parsePath(path).reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function setAt(obj, path, value) {
  const keys = parsePath(path);
  let o = obj;
  for (const k of keys.slice(0, -1)) o = o[k] ?? (o[k] = {});
  o[keys.at(-1)] = value;
}

export class AgreementEditor {
  /** `onChange(editor)` runs after every load (the pages rebuild their "what to do now" prompt from `data`). */
  constructor(code, { onChange } = {}) {
    this.code = code;
    this.onChange = onChange || null;
    this.base = "/api/cases/" + encodeURIComponent(code) + "/agreement";
    this.data = null;  // GET answer
    this.content = null;  // the draft being edited
    this.root = h("section", { class: "card agreement-editor", id: "agreement", "aria-labelledby": "agreement-h" });
    this.err = h("p", { class: "error", role: "alert", hidden: true, tabindex: "-1", id: "agreement-error" });
    this.msg = h("p", { class: "okmsg", role: "status", hidden: true, tabindex: "-1", id: "agreement-msg" });
    this.feedback = h("div", { class: "feedback" }, this.msg, this.err);
  }

  names() { return namesOf(this.data); }

  async load() {
    const seq = (this.seq = (this.seq || 0) + 1);
    try {
      const data = await http.get(this.base);
      if (seq !== this.seq) return this;  // a later load is under way: never draw an older state over it
      this.data = data;
      const a = this.data.agreement;
      if (a && a.status === "draft" && (!this.content || this.version !== a.current_version)) {
        if (this.content && this.version !== a.current_version) this.say(t("ed.stale"));
        this.content = clone(a.content);
        this.saved = clone(a.content);
        this.version = a.current_version;
      }
      this.render();
    } catch (err) { this.fail(err); }
    if (this.onChange) this.onChange(this);
    return this;
  }

  /** The server pushed agreement:state: reload unless it is our own save. */
  onPush(state) {
    if (this.saving) return;  // our own change: the HTTP answer updates us
    const a = state && state.agreement;
    if (!this.data || !a || !this.data.agreement || a.status !== this.data.agreement.status ||
        a.current_version !== this.version || (a.signatures || []).length !== (this.data.agreement.signatures || []).length ||
        JSON.stringify(state.application && state.application.status) !== JSON.stringify(this.data.application && this.data.application.status) ||
        JSON.stringify(state.application && state.application.signed_by) !== JSON.stringify(this.data.application && this.data.application.signed_by)) {
      this.load();
    }
  }

  /** Report an outcome next to the buttons the mediator just used. */
  say(text) {
    this.msg.textContent = text;
    this.msg.hidden = !text;
    if (text) this.reveal(this.msg);
  }

  fail(err) {
    this.err.textContent = typeof err === "string" ? err : explain(err);
    this.err.hidden = false;
    this.reveal(this.err);
  }

  reveal(el) {
    if (!el.isConnected) return;
    el.scrollIntoView({ block: "nearest" });
    el.focus({ preventScroll: true });
  }

  async act(fn) {
    this.err.hidden = true;
    this.msg.hidden = true;
    try { return await fn(); } catch (err) {
      const problems = err.detail && err.detail.problems;
      if (problems) { this.showProblems(problems); this.fail(t("ed.not_done_problems")); } else this.fail(err);
      return null;
    }
  }

  templateName(key) {
    return has("tpl." + key) ? t("tpl." + key) : (this.data.templates || {})[key] || key;
  }

  render() {
    const d = this.data;
    const a = d && d.agreement;
    const body = [h("h2", { id: "agreement-h" }, t("ag.title"))];
    this.statusBox = a ? agreementStatus(a) : null;
    if (!a || ["refused", "void"].includes(a.status)) body.push(this.statusBox || h("p", { class: "muted" }, t("ag.none")), this.startForm(), this.feedback);
    else if (a.status === "draft") body.push(this.statusBox, this.problemsBox = problemList(a.problems, this.content), this.form());
    else {
      body.push(this.statusBox, h("p", {}, h("a", { href: this.base + "/pdf" + (a.status === "sealed" ? "?sealed=1" : ""),
        target: "_blank", rel: "noopener" }, a.status === "sealed" ? t("ag.pdf_sealed") : t("ag.pdf"))));
      // the lifecycle's next actions say when the mediator may sign: final or effective, in any order with the parties
      const canSign = d.next_actions ? d.next_actions.some((x) => x.action === "sign_as_mediator" && x.ready)
        : ["final", "effective"].includes(a.status) && !a.mediator_signed;
      if (canSign) body.push(h("p", {}, h("button", { type: "button", class: "primary", id: "mediator-sign", onclick: () => this.sign() }, t("ed.sign_mediator"))));
      body.push(this.feedback);
      if (["effective", "sealed"].includes(a.status)) body.push(applicationBox(this));
      body.push(h("details", { class: "doc-text" }, h("summary", {}, t("ed.show_text")), agreementDoc(a.content)));
    }
    this.root.replaceChildren(...body);
    if (a && a.status === "draft") this.markFields(a.problems);
  }

  startForm() {
    const names = (this.data && this.data.templates) || {};
    const sel = h("select", { id: "template" }, Object.keys(names).map((k) => h("option", { value: k }, this.templateName(k))));
    return h("form", { onsubmit: (e) => { e.preventDefault(); this.act(async () => {
      await http.post(this.base, { template: sel.value }); this.content = null; await this.load();
      this.say(t("ed.started"));
    }); } }, field(t("ed.template"), sel), h("button", { type: "submit", class: "primary", id: "agreement-start" }, t("ed.start")));
  }

  input(path, label, { type = "text", area = false, check = null } = {}) {
    const value = getAt(this.content, path);
    const attrs = { name: path, dataset: { path }, oninput: (e) => { setAt(this.content, path, e.target.value); this.preview(); },
      onchange: check ? (e) => { const why = check(e.target.value); e.target.setAttribute("aria-invalid", String(Boolean(why))); e.target.title = why || ""; } : null };
    const el = area ? h("textarea", attrs, value ?? "") : h("input", { ...attrs, type, value: value ?? "" });
    return field(label, el);
  }

  form() {
    const c = this.content;
    const parties = (c.parties || []).map((p, i) => h("fieldset", { class: "party" }, h("legend", {}, `${t("side." + p.side)} · ${t("role." + p.kind)} · ${p.name}`),
      h("div", { class: "grid3" },
        this.input(`parties[${i}].id_number`, t("ag.id_number"), { check: (v) => { const why = idNumberProblem(v); return why ? t(why) : ""; } }),
        this.input(`parties[${i}].phone`, t("ag.phone"), { type: "tel" }),
        this.input(`parties[${i}].address`, t("ag.address")))));
    const matters = h("textarea", { name: "disputed_matters", dataset: { path: "disputed_matters" }, oninput: (e) => {
      c.disputed_matters = e.target.value.split("\n").map((x) => x.trim()).filter(Boolean); this.preview();
    } }, (c.disputed_matters || []).join("\n"));
    const who = (path) => h("select", { name: path, dataset: { path }, onchange: (e) => { setAt(c, path, Number(e.target.value)); this.preview(); } },
      getAt(c, path) == null ? h("option", { value: "" }, t("intake.choose")) : null,
      (c.parties || []).filter((p) => p.kind === "party").map((p) => h("option", { value: p.person_id, selected: getAt(c, path) === p.person_id },
        `${t("side." + p.side)} ${p.name}`)));
    const terms = (c.terms || []).map((x, i) => h("fieldset", { class: "term", dataset: { term: String(i) } },
      h("legend", {}, t("ag.term_n", { n: i + 1 })),
      h("div", { class: "grid3" }, field(t("ag.obligor"), who(`terms[${i}].obligor`)), field(t("ag.obligee"), who(`terms[${i}].obligee`)),
        field(t("ag.kind"), h("select", { name: `terms[${i}].kind`, dataset: { path: `terms[${i}].kind` }, onchange: (e) => { x.kind = e.target.value; this.render(); } },
          ["payment", "act"].map((k) => h("option", { value: k, selected: x.kind === k }, t("ag.kind." + k)))))),
      this.input(`terms[${i}].what`, t("ag.what"), { area: true }),
      h("div", { class: "grid2" },
        x.kind === "payment" ? this.input(`terms[${i}].amount`, t("ag.amount"), { type: "text" }) : null,
        this.input(`terms[${i}].deadline`, t("ag.deadline"), { type: "date" })),
      h("div", { class: "grid2" }, this.input(`terms[${i}].method`, t("ag.method")), this.input(`terms[${i}].place`, t("ag.place"))),
      h("button", { type: "button", onclick: () => { c.terms.splice(i, 1); this.render(); } }, t("ed.remove_term"))));
    const note = h("input", { type: "text", id: "draft-note", maxlength: "500" });
    const flag = (path, label) => h("label", { class: "choice" }, h("input", { type: "checkbox", checked: Boolean(getAt(c, path)),
      onchange: (e) => { setAt(c, path, e.target.checked); } }), label);
    this.previewBox = h("div", { class: "preview", role: "region", "aria-label": t("ed.preview") }, agreementDoc(c));
    return h("div", { class: "editor-grid" },
      h("form", { class: "editor", onsubmit: (e) => { e.preventDefault(); this.save(note.value); } },
        h("p", { class: "hint" }, t("ed.parties_hint")),
        parties,
        h("div", { class: "grid2" }, this.input("facts", t("ag.facts"), { area: true }),
          field(t("ag.matters"), matters, t("ed.one_per_line"))),
        h("div", { class: "grid2" },
          this.input("responsibility.A", t("pf.responsibility", { side: t("side.A") }), { area: true }),
          this.input("responsibility.B", t("pf.responsibility", { side: t("side.B") }), { area: true })),
        h("h3", {}, t("ag.terms")),
        terms,
        h("button", { type: "button", onclick: () => { c.terms.push({ obligor: null, obligee: null, kind: "act", what: "", method: "", place: "", deadline: "" }); this.render(); } }, t("ed.add_term")),
        h("fieldset", {}, h("legend", {}, t("ag.performance")),
          h("div", { class: "grid3" }, this.input("performance.method", t("ag.method")), this.input("performance.place", t("ag.place")),
            this.input("performance.deadline", t("ag.deadline"), { type: "date" }))),
        h("div", { class: "grid2" }, this.input("property.location", t("ag.property")), this.input("other", t("ag.other"), { area: true })),
        flag("matters.decides_ownership", t("ag.decides_ownership")), flag("matters.special_procedure", t("ag.special_procedure")),
        field(t("ed.note"), note),
        h("div", { class: "row actions-row" }, h("button", { type: "submit", id: "draft-save" }, t("ed.save")),
          h("button", { type: "button", class: "primary", id: "agreement-finalize", onclick: () => this.finalize() }, t("ed.finalize"))),
        this.feedback),
      h("section", { class: "preview-col" }, h("h3", {}, t("ed.preview")), this.previewBox));
  }

  preview() {
    if (this.previewBox) this.previewBox.replaceChildren(agreementDoc(this.content));
  }

  showProblems(problems) {
    const box = problemList(problems, this.content);
    if (this.problemsBox) { this.problemsBox.replaceWith(box); this.problemsBox = box; }
    this.markFields(problems);
  }

  refreshStatus() {
    const box = agreementStatus(this.data.agreement);
    if (this.statusBox && this.statusBox.isConnected) this.statusBox.replaceWith(box);
    this.statusBox = box;
  }

  markFields(problems) {
    for (const el of this.root.querySelectorAll("[data-path]")) el.removeAttribute("aria-invalid");
    for (const p of problems || []) {
      const el = this.root.querySelector(`[data-path="${CSS.escape(p.field)}"]`);
      if (el) { el.setAttribute("aria-invalid", "true"); el.title = problemText(p, this.content); }
    }
  }

  /** One save, finalize or signature at a time: a second click while one is under way is ignored. */
  busyWhile(fn) {
    if (this.busy) return Promise.resolve(null);
    this.busy = true;
    for (const b of this.root.querySelectorAll("#draft-save, #agreement-finalize, #mediator-sign")) b.disabled = true;
    return fn().finally(() => {
      this.busy = false;
      for (const b of this.root.querySelectorAll("#draft-save, #agreement-finalize, #mediator-sign")) b.disabled = false;
    });
  }

  save(note = "") {
    return this.busyWhile(() => this.saveNow(note));
  }

  async saveNow(note) {
    this.saving = true;
    try { return await this._save(note); } finally { this.saving = false; }
  }

  /** Party fields typed here are corrections of the case's people: PATCH them first, so what is typed is what is
   * signed (the server reads the agreement's parties from the people records). */
  async savePeople() {
    const before = new Map(((this.saved && this.saved.parties) || []).map((p) => [p.person_id, p]));
    for (const [i, p] of (this.content.parties || []).entries()) {
      const old = before.get(p.person_id) || {};
      const patch = {};
      for (const k of ["id_number", "address", "phone"]) if ((p[k] || "") !== (old[k] || "")) patch[k] = (p[k] || "").trim();
      if (!Object.keys(patch).length) continue;
      if (patch.id_number) {
        const why = idNumberProblem(patch.id_number);
        if (why) {
          this.markFields([{ field: `parties[${i}].id_number` }]);
          throw Object.assign(new Error(t(why)), { code: "bad_id_number", local: true, message: t("ed.bad_id_of", { name: p.name }) + t(why) });
        }
      }
      patch.reason = t("ed.patch_reason");
      await http.api("PATCH", "/api/cases/" + encodeURIComponent(this.code) + "/people/" + p.person_id, patch);
      Object.assign(old, patch);
    }
  }

  _save(note) {
    return this.act(async () => {
      try { await this.savePeople(); } catch (err) {
        if (err.local) { this.fail(err.message); return null; }
        throw err;
      }
      const out = await http.post(this.base + "/draft", { content: this.content, base_version: this.version, note });
      this.version = out.agreement.current_version;
      this.data.agreement = out.agreement;
      this.saved = clone(out.agreement.content);  // the form keeps editing this.content (its fields are bound to it)
      this.refreshStatus();
      this.showProblems(out.agreement.problems);
      this.say(out.agreement.problems.length ? t("ed.saved_with_problems", { v: this.version, n: out.agreement.problems.length })
        : t("ed.saved", { v: this.version }));
      if (this.onChange) this.onChange(this);
      return out;
    });
  }

  async finalize() {
    if (this.busy) return;
    if (!(await confirmDialog(t("ed.finalize_confirm"), { title: t("ed.finalize_title"), confirm: t("ed.finalize_yes") }))) return;
    if (this.busy) return;
    await this.busyWhile(() => this.finalizeNow());
  }

  async finalizeNow() {
    const saved = await this.saveNow(t("ed.note_before_final"));
    if (!saved) return;
    if (saved.agreement.problems.length) {
      this.fail(t("ed.not_final_problems", { n: saved.agreement.problems.length }));
      return;
    }
    this.saving = true;
    try {
      await this.act(async () => {
        await http.post(this.base + "/finalize"); this.content = null; await this.load();
        this.say(t("ed.finalized"));
      });
    } finally { this.saving = false; }
  }

  async sign() {
    if (this.busy) return;
    if (!(await confirmDialog(t("ed.sign_confirm"), { title: t("ed.sign_title"), confirm: t("ed.sign_yes") }))) return;
    if (this.busy) return;
    await this.busyWhile(() => this.act(async () => {
      const out = await http.post(this.base + "/sign");
      await this.load();
      this.say(out.sealed ? t("ed.signed_sealed") : out.effective ? t("ed.signed_effective") : t("ed.signed_wait"));
    }));
  }
}
