// Public verification page (/verify/<code>, the address and QR printed on every agreement): the facts of the
// case's agreement and ruling, without personal data, and a check of a PDF the visitor holds — its SHA-256 is
// computed here in the browser (crypto.subtle) and compared with the record; the file never leaves the device.
import "./strings-common.js";
import "./strings-public.js";
import { applyStatic, installSwitch, onLangChange, t, getLang } from "./i18n.js";
import { h, mount, $, fmtTime } from "./dom.js";
import { get } from "./api.js";
import { codeOf } from "./errors.js";

const code = decodeURIComponent(location.pathname.split("/").pop() || "");
let facts = null;
let failure = null;
let checked = null;  // {sha, match}

function errorText(err) {
  const c = codeOf(err);
  return c === "rate_limited" ? t("pub.rate_limited") : c === "case_not_found" || c === "http_404" ? t("pub.not_found")
    : t("err.network");
}

function row(label, value, mono) {
  if (!value) return null;
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", { class: mono ? "mono" : "" }, value));
}

async function sha256Hex(file) {
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function onFile(ev) {
  const file = ev.target.files && ev.target.files[0];
  if (!file) return;
  if (!window.crypto || !crypto.subtle) { checked = { error: t("pub.no_crypto") }; render(); return; }
  const sha = await sha256Hex(file);
  const a = facts.agreement || {};
  const r = facts.ruling || {};
  const match = sha === a.sealed_pdf_sha256 ? "sealed" : sha === a.unsigned_pdf_sha256 ? "unsigned"
    : sha === r.pdf_sha256 ? "ruling" : "none";
  checked = { sha, match };
  render();
}

function checker() {
  const input = h("input", { type: "file", id: "pdf-file", accept: "application/pdf,.pdf", onchange: onFile });
  let result = null;
  if (checked && checked.error) result = h("p", { class: "error", role: "alert" }, checked.error);
  else if (checked) {
    const ok = checked.match !== "none";
    result = h("div", { id: "check-result", dataset: { match: checked.match }, role: "status" },
      h("p", { class: ok ? "okmsg" : "error" }, t(ok ? "pub.match_" + checked.match : "pub.no_match")),
      h("p", { class: "muted mono" }, t("pub.check_fp", { sha: checked.sha })));
  }
  return h("section", { class: "card", id: "check" }, h("h2", {}, t("pub.check_title")),
    h("p", { class: "muted" }, t("pub.check_help")),
    h("label", { for: "pdf-file" }, t("pub.check_pick")), " ", input, result);
}

function render() {
  const main = $("#main");
  const lang = getLang();
  if (failure) { mount(main, h("section", { class: "card", role: "alert" }, h("h1", {}, t("pub.verify_title")), h("p", { class: "error", id: "verify-error" }, errorText(failure)))); return; }
  if (!facts) { mount(main, h("p", { class: "muted" }, t("pub.loading"))); return; }
  const a = facts.agreement;
  const r = facts.ruling;
  const app = facts.application;
  mount(main,
    h("h1", {}, t("pub.verify_title")),
    h("p", {}, t("pub.code", { code: facts.code })), h("p", {}, t("pub.center", { name: facts.center })),
    a ? h("section", { class: "card", id: "agreement-facts", dataset: { status: a.status } },
      h("p", { class: "okmsg" }, t("pub.exists", { code: facts.code })),
      h("dl", { class: "facts" },
        row(t("pub.version"), `v${a.version}`),
        row(t("pub.status"), t("agst." + a.status)),
        row(t("pub.effective_at"), fmtTime(a.effective_at, lang)),
        row(t("pub.sealed_at"), fmtTime(a.sealed_at, lang)),
        row(t("pub.tsa_time"), fmtTime(a.tsa_time, lang)),
        row(t("pub.sealed_sha"), a.sealed_pdf_sha256, true),
        row(t("pub.unsigned_sha"), a.unsigned_pdf_sha256, true),
        row(t("pub.content_sha"), a.content_sha256, true),
        row(t("pub.center_key"), facts.center_key_fingerprint, true)))
      : h("p", { class: "card", id: "no-agreement" }, t("pub.no_agreement")),
    app ? h("section", { class: "card", id: "application-facts" }, h("h2", {}, t("pub.application")),
      h("p", {}, `${app.court} · ${t("appst." + app.status)}`),
      r ? h("dl", { class: "facts", id: "ruling-facts" },
        row(t("pub.ruling"), `${r.outcome_label} · ${fmtTime(r.ruled_at, lang)}`),
        row(t("pub.ruling_sha"), r.pdf_sha256, true),
        row(t("pub.pdf_signature"), r.pdf_signature, true),
        row(t("pub.court_key"), r.court_key_fingerprint, true),
        row("", t("pub.objections", { party: fmtTime(r.objections.party.due, lang), third: fmtTime(r.objections.third_party.due, lang) }))) : null) : null,
    a && a.unsigned_pdf_sha256 ? checker() : null,
    h("p", { class: "muted" }, t("pub.no_personal")),
    h("p", {}, h("a", { href: "/c/" + encodeURIComponent(facts.code) }, t("pub.case_title"))));
}

async function main() {
  applyStatic(document);
  installSwitch();
  onLangChange(render);
  try { facts = await get("/api/public/verify/" + encodeURIComponent(code)); } catch (err) { failure = err; }
  render();
}

main();
