// Server errors in plain words. Every error the server sends has a stable `code`; known codes have a
// translated sentence (strings-common.js, keys "err.<code>"); unknown codes show the server's own message.
import { has, t } from "./i18n.js";

export class ServerError extends Error {
  constructor(error) {
    const e = error && typeof error === "object" ? error : { code: "unknown", message: String(error) };
    super(e.message || e.code || "error");
    this.code = e.code || "unknown";
    this.serverMessage = e.message || "";
    this.detail = e.detail || {};
  }
}

/** Turn anything thrown (ServerError, network failure, plain Error) into one readable sentence. */
export function explain(err) {
  if (!err) return t("err.unknown");
  if (err instanceof ServerError || (err.code && typeof err.code === "string")) {
    const code = err.code;
    let text = has("err." + code) ? t("err." + code) : (err.serverMessage || err.message || t("err.unknown"));
    const blocking = err.detail && err.detail.blocking;
    if (Array.isArray(blocking) && blocking.length) {
      text += " " + blocking.map((b) => (has("block." + b) ? t("block." + b) : b)).join(t("list.sep"));
    }
    return text;
  }
  if (err instanceof TypeError) return t("err.network");  // fetch() failing: offline, server down
  return err.message || t("err.unknown");
}

/** The error code, for tests and for branching ("device_mismatch" shows help, not a retry button). */
export function codeOf(err) {
  return (err && err.code) || "unknown";
}
