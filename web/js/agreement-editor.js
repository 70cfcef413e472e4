// Console: the agreement editor (R15-R17, R21-R23) over the HTTP API — template, structured form with a live
// preview, the server's problem list, finalize, mediator signature, and the application to a court.
import { h, field } from "./dom.js";
import { t } from "./i18n.js";
import * as http from "./api.js";
import { explain } from "./errors.js";
import { agreementDoc, agreementStatus, problemList } from "./agreement-view.js";
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
  constructor(code) {
    this.code = code;
    this.base = "/api/cases/" + encodeURIComponent(code) + "/agreement";
    this.data = null;  // GET answer
    this.content = null;  // the draft being edited
    this.root = h("section", { class: "card agreement-editor", id: "agreement" });
    this.err = h("p", { class: "error", role: "alert", hidden: true });
    this.msg = h("p", { class: "okmsg", role: "status", hidden: true });
  }

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
        this.version = a.current_version;
      }
      this.render();
    } catch (err) { this.fail(err); }
    return this;
  }

  /** The server pushed agreement:state: reload unless it is our own save. */
  onPush(state) {
    if (this.saving) return;  // our own change: the HTTP answer updates us
    const a = state && state.agreement;
    if (!this.data || !a || !this.data.agreement || a.status !== this.data.agreement.status ||
        a.current_version !== this.version || (a.signatures || []).length !== (this.data.agreement.signatures || []).length ||
        JSON.stringify(state.application && state.application.status) !== JSON.stringify(this.data.application && this.data.application.status)) {
      this.load();
    }
  }

  say(text) { this.msg.textContent = text; this.msg.hidden = !text; }
  fail(err) { this.err.textContent = explain(err); this.err.hidden = false; }

  async act(fn) {
    this.err.hidden = true;
    this.say("");
    try { return await fn(); } catch (err) { this.fail(err); if (err.detail && err.detail.problems) this.showProblems(err.detail.problems); return null; }
  }

  render() {
    const d = this.data;
    const a = d && d.agreement;
    const body = [h("h2", {}, t("ag.title")), this.msg, this.err];
    if (!a || ["refused", "void"].includes(a.status)) body.push(a ? agreementStatus(a) : h("p", { class: "muted" }, t("ag.none")), this.startForm());
    else if (a.status === "draft") body.push(agreementStatus(a), this.problemsBox = problemList(a.problems), this.form());
    else {
      body.push(agreementStatus(a), h("p", {}, h("a", { href: this.base + "/pdf" + (a.status === "sealed" ? "?sealed=1" : ""),
        target: "_blank", rel: "noopener" }, a.status === "sealed" ? t("ag.pdf_sealed") : t("ag.pdf"))));
      // the lifecycle's next actions say when the mediator may sign: final or effective, in any order with the parties
      const canSign = d.next_actions ? d.next_actions.some((x) => x.action === "sign_as_mediator" && x.ready)
        : ["final", "effective"].includes(a.status) && !a.mediator_signed;
      if (canSign) {
        body.push(h("button", { type: "button", class: "primary", id: "mediator-sign", onclick: () => this.act(async () => {
          await http.post(this.base + "/sign"); await this.load();
        }) }, t("ed.sign_mediator")));
      }
      if (["effective", "sealed"].includes(a.status)) body.push(applicationBox(this));
      body.push(agreementDoc(a.content));
    }
    this.root.replaceChildren(...body);
    if (a && a.status === "draft") this.markFields(a.problems);
  }

  startForm() {
    const names = (this.data && this.data.templates) || {};
    const sel = h("select", { id: "template" }, Object.entries(names).map(([k, v]) => h("option", { value: k }, v)));
    return h("form", { onsubmit: (e) => { e.preventDefault(); this.act(async () => {
      await http.post(this.base, { template: sel.value }); this.content = null; await this.load();
    }); } }, field(t("ed.template"), sel), h("button", { type: "submit", class: "primary", id: "agreement-start" }, t("ed.start")));
  }

  input(path, label, { type = "text", area = false } = {}) {
    const value = getAt(this.content, path);
    const attrs = { name: path, dataset: { path }, oninput: (e) => { setAt(this.content, path, e.target.value); this.preview(); } };
    const el = area ? h("textarea", attrs, value ?? "") : h("input", { ...attrs, type, value: value ?? "" });
    return field(label, el);
  }

  form() {
    const c = this.content;
    const parties = (c.parties || []).map((p, i) => h("fieldset", {}, h("legend", {}, `${t("side." + p.side)} · ${p.name}`),
      this.input(`parties[${i}].id_number`, t("ag.id_number")), this.input(`parties[${i}].address`, t("ag.address")),
      this.input(`parties[${i}].phone`, t("ag.phone"), { type: "tel" })));
    const matters = h("textarea", { name: "disputed_matters", dataset: { path: "disputed_matters" }, oninput: (e) => {
      c.disputed_matters = e.target.value.split("\n").map((x) => x.trim()).filter(Boolean); this.preview();
    } }, (c.disputed_matters || []).join("\n"));
    const who = (path) => {
      const sel = h("select", { name: path, dataset: { path }, onchange: (e) => { setAt(c, path, Number(e.target.value)); this.preview(); } },
        (c.parties || []).filter((p) => p.kind === "party").map((p) => h("option", { value: p.person_id, selected: getAt(c, path) === p.person_id },
          `${t("side." + p.side)} ${p.name}`)));
      return sel;
    };
    const terms = (c.terms || []).map((x, i) => h("fieldset", { class: "term", dataset: { term: String(i) } },
      h("legend", {}, t("ag.term_n", { n: i + 1 })),
      h("div", { class: "grid2" }, field(t("ag.obligor"), who(`terms[${i}].obligor`)), field(t("ag.obligee"), who(`terms[${i}].obligee`))),
      field(t("ag.kind"), h("select", { name: `terms[${i}].kind`, onchange: (e) => { x.kind = e.target.value; this.render(); } },
        ["payment", "act"].map((k) => h("option", { value: k, selected: x.kind === k }, t("ag.kind." + k))))),
      this.input(`terms[${i}].what`, t("ag.what"), { area: true }),
      x.kind === "payment" ? this.input(`terms[${i}].amount`, t("ag.amount"), { type: "text" }) : null,
      this.input(`terms[${i}].method`, t("ag.method")), this.input(`terms[${i}].place`, t("ag.place")),
      this.input(`terms[${i}].deadline`, t("ag.deadline"), { type: "date" }),
      h("button", { type: "button", onclick: () => { c.terms.splice(i, 1); this.render(); } }, t("ed.remove_term"))));
    const note = h("input", { type: "text", id: "draft-note", maxlength: "500" });
    const flag = (path, label) => h("label", { class: "choice" }, h("input", { type: "checkbox", checked: Boolean(getAt(c, path)),
      onchange: (e) => { setAt(c, path, e.target.checked); } }), label);
    this.previewBox = h("div", { class: "preview", "aria-label": t("ed.preview") }, agreementDoc(c));
    return h("div", { class: "editor-grid" },
      h("form", { class: "editor", onsubmit: (e) => { e.preventDefault(); this.save(note.value); } },
        parties,
        this.input("facts", t("ag.facts"), { area: true }),
        field(t("ag.matters"), matters, t("ed.one_per_line")),
        this.input("responsibility.A", t("ag.responsibility") + " · " + t("side.A"), { area: true }),
        this.input("responsibility.B", t("ag.responsibility") + " · " + t("side.B"), { area: true }),
        terms,
        h("button", { type: "button", onclick: () => { c.terms.push({ obligor: null, obligee: null, kind: "act", what: "", method: "", place: "", deadline: "" }); this.render(); } }, t("ed.add_term")),
        h("fieldset", {}, h("legend", {}, t("ag.performance")), this.input("performance.method", t("ag.method")),
          this.input("performance.place", t("ag.place")), this.input("performance.deadline", t("ag.deadline"), { type: "date" })),
        this.input("property.location", t("ag.property")),
        flag("matters.decides_ownership", t("ag.decides_ownership")), flag("matters.special_procedure", t("ag.special_procedure")),
        this.input("other", t("ag.other"), { area: true }),
        field(t("ed.note"), note),
        h("div", { class: "row" }, h("button", { type: "submit", id: "draft-save" }, t("ed.save")),
          h("button", { type: "button", class: "primary", id: "agreement-finalize", onclick: () => this.finalize() }, t("ed.finalize")))),
      h("section", {}, h("h3", {}, t("ed.preview")), this.previewBox));
  }

  preview() {
    if (this.previewBox) this.previewBox.replaceChildren(agreementDoc(this.content));
  }

  showProblems(problems) {
    const box = problemList(problems);
    if (this.problemsBox) { this.problemsBox.replaceWith(box); this.problemsBox = box; }
    this.markFields(problems);
  }

  markFields(problems) {
    for (const el of this.root.querySelectorAll("[data-path]")) el.removeAttribute("aria-invalid");
    for (const p of problems || []) {
      const el = this.root.querySelector(`[data-path="${CSS.escape(p.field)}"]`);
      if (el) el.setAttribute("aria-invalid", "true");
    }
  }

  async save(note = "") {
    this.saving = true;
    try { return await this._save(note); } finally { this.saving = false; }
  }

  _save(note) {
    return this.act(async () => {
      const out = await http.post(this.base + "/draft", { content: this.content, base_version: this.version, note });
      this.version = out.agreement.current_version;
      this.data.agreement = out.agreement;
      this.showProblems(out.agreement.problems);
      this.say(t("ed.saved", { v: this.version }));
      return out;
    });
  }

  async finalize() {
    if (!window.confirm(t("ed.finalize_confirm"))) return;
    const saved = await this.save("定稿前保存");
    if (!saved || saved.agreement.problems.length) return;
    this.saving = true;
    try {
      await this.act(async () => { await http.post(this.base + "/finalize"); this.content = null; await this.load(); });
    } finally { this.saving = false; }
  }
}
