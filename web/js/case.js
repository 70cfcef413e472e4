// Public case page (/c/<code>, the case QR, 一案一码 R29): where the case stands, what happens next and whom to
// call. No personal data: parties see their documents through the link the mediator sent them.
import "./strings-common.js";
import "./strings-public.js";
import { applyStatic, installSwitch, onLangChange, t } from "./i18n.js";
import { h, mount, $ } from "./dom.js";
import { get } from "./api.js";
import { codeOf } from "./errors.js";

const code = decodeURIComponent(location.pathname.split("/").pop() || "");
let info = null;
let failure = null;

function errorText(err) {
  const c = codeOf(err);
  return c === "rate_limited" ? t("pub.rate_limited") : c === "case_not_found" || c === "http_404" ? t("pub.not_found")
    : t("err.network");
}

function render() {
  const main = $("#main");
  if (failure) { mount(main, h("section", { class: "card", role: "alert" }, h("h1", {}, t("pub.case_title")), h("p", { class: "error", id: "case-error" }, errorText(failure)))); return; }
  if (!info) { mount(main, h("p", { class: "muted" }, t("pub.loading"))); return; }
  const c = info.center;
  mount(main,
    h("h1", {}, t("pub.case_title")),
    h("p", {}, t("pub.code", { code: info.code })),
    h("section", { class: "card", id: "case-stage", dataset: { stage: info.stage } },
      h("p", {}, t("pub.stage", { stage: t("pubstage." + info.stage) })),
      h("h2", {}, t("pub.next")), h("p", { id: "next" }, t("pub.next." + info.next))),
    h("section", { class: "card", id: "contact" }, h("h2", {}, t("pub.contact")),
      h("p", { class: "strong" }, c.name),
      c.phone ? h("p", {}, h("a", { href: "tel:" + c.phone, id: "center-phone" }, t("pub.phone", { phone: c.phone }))) : h("p", {}, t("pub.no_phone")),
      c.hours ? h("p", {}, t("pub.hours", { hours: c.hours })) : null,
      c.address ? h("p", {}, t("pub.address", { address: c.address })) : null),
    info.has_agreement ? h("p", {}, h("a", { href: "/verify/" + encodeURIComponent(info.code) }, t("pub.verify_link"))) : null,
    h("p", { class: "muted" }, t("pub.privacy")));
}

async function main() {
  applyStatic(document);
  installSwitch();
  onLangChange(render);
  try { info = await get("/api/public/cases/" + encodeURIComponent(code)); } catch (err) { failure = err; }
  render();
}

main();
