// A readable rendering of an agreement (content schema onedoor-agreement/1, mediation/agreements/content.py),
// used by the party page, the console's live preview and the court portal.
import { h, fmtTime } from "./dom.js";
import { t, getLang, has } from "./i18n.js";

const name = (content, personId) => {
  const p = (content.parties || []).find((x) => x.person_id === personId);
  return p ? p.name : personId == null ? "—" : "#" + personId;
};

export function agreementDoc(content) {
  const c = content || {};
  const resp = c.responsibility || {};
  const perf = c.performance || {};
  return h("article", { class: "agreement-doc", lang: "zh-CN" },
    h("h3", { class: "doc-title" }, c.title || t("ag.title")),
    h("h4", {}, t("ag.parties")),
    h("ul", {}, (c.parties || []).map((p) => h("li", {},
      `${t("side." + p.side)} · ${t("role." + p.kind)}：${p.name}`,
      p.id_number ? `，${t("ag.id_number")} ${p.id_number}` : "", p.address ? `，${t("ag.address")} ${p.address}` : "",
      p.phone ? `，${t("ag.phone")} ${p.phone}` : ""))),
    h("h4", {}, t("ag.facts")), h("p", {}, c.facts || ""),
    h("h4", {}, t("ag.matters")), h("ol", {}, (c.disputed_matters || []).map((m) => h("li", {}, m))),
    h("h4", {}, t("ag.responsibility")),
    h("p", {}, `${t("side.A")}：${resp.A || ""}`), h("p", {}, `${t("side.B")}：${resp.B || ""}`),
    h("h4", {}, t("ag.terms")),
    h("ol", { class: "terms" }, (c.terms || []).map((x) => h("li", { dataset: { kind: x.kind || "" } },
      `${name(c, x.obligor)} → ${name(c, x.obligee)}：${x.what || ""}`,
      x.kind === "payment" ? `，${t("ag.amount")} ${x.amount || ""}` : "",
      `；${t("ag.method")}：${x.method || ""}；${t("ag.place")}：${x.place || ""}；${t("ag.deadline")}：${x.deadline || ""}`))),
    h("h4", {}, t("ag.performance")),
    h("p", {}, `${t("ag.method")}：${perf.method || ""}；${t("ag.place")}：${perf.place || ""}；${t("ag.deadline")}：${perf.deadline || ""}`),
    c.other ? [h("h4", {}, t("ag.other")), h("p", {}, c.other)] : null);
}

/** Status line, signatures, who has not signed yet. `agreement` is the server's agreement JSON. */
export function agreementStatus(agreement) {
  const a = agreement;
  const lang = getLang();
  const unsigned = (a.unsigned_parties || []).map((id) => name(a.content || {}, id));
  return h("div", { class: "agreement-status" },
    h("p", {}, h("span", { class: "tag " + (["effective", "sealed"].includes(a.status) ? "ok" : a.status === "refused" ? "bad" : "warn"),
      id: "agreement-status", dataset: { status: a.status } }, t("ag.status." + a.status)),
    " ", h("span", { class: "muted" }, t("ag.version", { v: a.final_version || a.current_version }))),
    a.effective_at ? h("p", { class: "okmsg" }, t("ag.effective_at", { at: fmtTime(a.effective_at, lang) })) : null,
    (a.signatures || []).length ? h("ul", { class: "signatures", "aria-label": t("ag.signatures") },
      a.signatures.map((s) => h("li", {}, "✍ " + t("ag.signed_at", { name: s.name, role: t("role." + (s.role === "mediator" ? "mediator" : s.role)),
        at: fmtTime(s.signed_at, lang) })))) : null,
    a.status === "final" && unsigned.length ? h("p", { class: "muted" }, t("ag.unsigned", { names: unsigned.join(t("list.sep")) })) : null,
    a.status === "final" && !a.mediator_signed ? h("p", { class: "muted" }, t("ag.mediator_unsigned")) : null);
}

const TERM_FIELDS = { obligor: "ag.obligor", obligee: "ag.obligee", kind: "ag.kind", what: "ag.what", amount: "ag.amount",
  method: "ag.method", place: "ag.place", deadline: "ag.deadline", currency: "ag.currency" };
const PARTY_FIELDS = { name: "ag.name", id_number: "ag.id_number", address: "ag.address", phone: "ag.phone" };

/** The field a problem names (`parties[0].id_number`, `terms[1].deadline`…) in the reader's words. */
export function fieldLabel(path, content) {
  const c = content || {};
  let m = /^parties\[(\d+)\]\.(\w+)$/.exec(path || "");
  if (m) {
    const p = (c.parties || [])[Number(m[1])];
    const who = p ? `${t("side." + p.side)} ${p.name}` : t("pf.party_n", { n: Number(m[1]) + 1 });
    return t("pf.of", { who, what: PARTY_FIELDS[m[2]] ? t(PARTY_FIELDS[m[2]]) : m[2] });
  }
  m = /^terms\[(\d+)\](?:\.(\w+))?$/.exec(path || "");
  if (m) {
    const n = t("ag.term_n", { n: Number(m[1]) + 1 });
    return m[2] ? t("pf.of", { who: n, what: TERM_FIELDS[m[2]] ? t(TERM_FIELDS[m[2]]) : m[2] }) : n;
  }
  m = /^disputed_matters\[(\d+)\]$/.exec(path || "");
  if (m) return t("pf.matter_n", { n: Number(m[1]) + 1 });
  m = /^responsibility\.(A|B)$/.exec(path || "");
  if (m) return t("pf.responsibility", { side: t("side." + m[1]) });
  m = /^performance\.(method|place|deadline)$/.exec(path || "");
  if (m) return t("pf.of", { who: t("ag.performance"), what: t(TERM_FIELDS[m[1]]) });
  const simple = { parties: "ag.parties", facts: "ag.facts", disputed_matters: "ag.matters", terms: "ag.terms",
    other: "ag.other", "property.location": "ag.property" };
  return simple[path] ? t(simple[path]) : t("pf.unknown");
}

/** One problem of check_draft ({field, code, message}) as a sentence of the catalogue. */
export function problemText(p, content) {
  const field = fieldLabel(p.field, content);
  if (p.code === "vague_term") {
    const m = /「([^」]+)」|'([^']+)'/.exec(p.message || "");
    return m ? t("prob.vague_term", { field, word: m[1] || m[2] }) : t("prob.not_a_date", { field });
  }
  return has("prob." + p.code) ? t("prob." + p.code, { field }) : t("prob.other", { field });
}

/** The list of problems the server found in a draft (each names its field), worded from their codes. */
export function problemList(problems, content) {
  if (!problems || !problems.length) return h("p", { class: "okmsg", id: "problems" }, t("ag.no_problems"));
  return h("div", { class: "error", id: "problems", role: "status" }, h("p", {}, t("ag.problems")),
    h("ul", {}, problems.map((p) => h("li", { dataset: { field: p.field, code: p.code || "" } }, problemText(p, content)))));
}

/** One court notice (court:notice, or the `notifications` list) in plain words. */
export function noticeText(n) {
  const key = "cnotice." + n.kind;
  return t(key, n);
}
