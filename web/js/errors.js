// Server errors and validation problems in plain words. The server sends a stable `code` and parameters (`detail`,
// a problem's `field` and `word`); the page words them from the catalogue (strings-common.js: "err.<code>",
// "prob.<code>", "field.<name>", "block.<reason>", "missing.<item>"). The server's own `message` is for logs and API
// users: it reaches a person only when no code is known AND it is in that person's language.
import { getLang, has, t } from "./i18n.js";

export class ServerError extends Error {
  constructor(error) {
    const e = error && typeof error === "object" ? error : { code: "unknown", message: String(error) };
    super(e.message || e.code || "error");
    this.code = e.code || "unknown";
    this.serverMessage = e.message || "";
    this.detail = e.detail || {};
  }
}

const CJK = /[\u3400-\u9fff]/;

/** A server message for an unknown code, only if it reads in the page's language ("中文 / English" → one half). */
function serverWords(message) {
  if (!message) return "";
  const zh = getLang() === "zh";
  const halves = message.split(" / ");
  if (halves.length === 2 && CJK.test(halves[0]) && !CJK.test(halves[1])) return zh ? halves[0] : halves[1];
  if (zh ? CJK.test(message) && !/[A-Za-z_]{4,}/.test(message) : !CJK.test(message)) return message;
  return "";
}

const FIELD_KEYS = {
  name: "field.name", id_number: "field.id_number", address: "field.address", phone: "field.phone",
  obligor: "field.obligor", obligee: "field.obligee", kind: "field.kind", what: "field.what", amount: "field.amount",
  currency: "field.currency", method: "field.method", place: "field.place", deadline: "field.deadline",
};

/**
 * A field path of the agreement content ("terms[1].deadline", "parties[0].id_number", "responsibility.A") in
 * words: "第 2 项协议内容 · 履行期限". `content` (optional) names the party of "parties[i]".
 */
export function fieldLabel(path, content) {
  const parts = String(path || "").match(/[A-Za-z_]+|\d+/g) || [];
  const [head, second, third] = parts;
  const sub = (k) => (FIELD_KEYS[k] ? t(FIELD_KEYS[k]) : has("field." + k) ? t("field." + k) : t("field.other_item"));
  const join = (...xs) => xs.filter(Boolean).join(" · ");
  switch (head) {
    case "parties": {
      if (second === undefined) return t("field.parties");
      const p = content && content.parties && content.parties[Number(second)];
      return join(p && p.name ? p.name : t("field.party_n", { n: Number(second) + 1 }), third ? sub(third) : "");
    }
    case "terms":
      return second === undefined ? t("field.terms") : join(t("field.term_n", { n: Number(second) + 1 }), third ? sub(third) : "");
    case "disputed_matters":
      return second === undefined ? t("field.disputed_matters") : t("field.matter_n", { n: Number(second) + 1 });
    case "responsibility":
      return join(t("field.responsibility"), second === "A" || second === "B" ? t("side." + second) : "");
    case "performance":
      return join(t("field.performance"), second ? sub(second) : "");
    case "property":
      return t("field.property");
    default:
      return has("field." + head) ? t("field." + head) : t("field.other_item");
  }
}

/** One problem of a draft ({field, code, word?}) in words. */
export function problemText(p, content) {
  const field = fieldLabel(p.field, content);
  const key = "prob." + p.code;
  return has(key) ? t(key, { field, word: p.word || "" }) : t("prob.other", { field });
}

/**
 * An item of an application's `missing` list in words: {item: party_signature | power_of_attorney |
 * sealed_agreement, person_id?}. `names` maps a person id (or "person:<id>") to a name.
 */
export function missingText(m, names = {}) {
  const id = m && m.person_id;
  const name = names[id] || names["person:" + id];
  const key = "missing." + (m && m.item);
  if (!has(key)) return t("missing.other");
  return t(key, { name: name || t(m.item === "power_of_attorney" ? "role.agent" : "role.party") });
}

function detailText(d) {
  const out = [];
  const blocking = d.blocking;
  if (Array.isArray(blocking) && blocking.length) {
    out.push(blocking.map((b) => (has("block." + b) ? t("block." + b) : t("block.other"))).join(t("list.sep")));
  }
  if (Array.isArray(d.problems) && d.problems.length) {
    out.push(d.problems.map((p) => problemText(p)).join(t("list.sep")));
  } else if (typeof d.field === "string") {
    out.push(fieldLabel(d.field));
  }
  if (Array.isArray(d.participants) && d.participants.length) {
    out.push(d.participants.map((p) => (typeof p === "string" ? p : p.name || "")).filter(Boolean).join(t("list.sep")));
  }
  if (Array.isArray(d.errors) && d.errors.length) {  // schema errors: name the fields, not the validator's words
    const fields = [...new Set(d.errors.map((e) => fieldLabel((e.loc || []).filter((x) => x !== "body").join("."))))];
    out.push(t("err.check_fields", { fields: fields.join(t("list.sep")) }));
  }
  if (Array.isArray(d.reasons) && d.reasons.length) {
    out.push(d.reasons.map((r) => (has("elig." + r.code) ? t("elig." + r.code) : t("block.other"))).join(t("list.sep")));
  }
  return out.join(" ");
}

/** Turn anything thrown (ServerError, network failure, plain Error) into one readable sentence. */
export function explain(err) {
  if (!err) return t("err.unknown");
  if (err instanceof ServerError || (err.code && typeof err.code === "string")) {
    const code = err.code;
    let text;
    if (has("err." + code)) text = t("err." + code);
    else if (/^http_\d+$/.test(code)) text = t("err.http", { status: code.slice(5) });
    else text = serverWords(err.serverMessage || err.message) || t("err.unknown_code");
    const more = detailText(err.detail || {});
    return more ? text + " " + more : text;
  }
  if (err instanceof TypeError) return t("err.network");  // fetch() failing: offline, server down
  if (["NotAllowedError", "NotFoundError", "NotReadableError", "OverconstrainedError"].includes(err.name)) {
    return t("err.camera_denied");  // getUserMedia
  }
  return t("err.unknown");
}

/** The error code, for tests and for branching ("device_mismatch" shows help, not a retry button). */
export function codeOf(err) {
  return (err && err.code) || "unknown";
}
