// Console: the people of a case, and correcting one (PATCH /api/cases/{code}/people/{id}): ID number (GB 11643
// checksum, checked here before the server checks it again), phone, address, with the reason for the change.
import { h, field } from "./dom.js";
import { t } from "./i18n.js";
import * as http from "./api.js";
import { explain } from "./errors.js";

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = "10X98765432";

/** null when `value` is a valid 18-character resident ID number (GB 11643), else the catalogue key of the problem. */
export function idNumberProblem(value) {
  const v = String(value || "").trim().toUpperCase();
  if (!v) return null;
  if (!/^\d{17}[\dX]$/.test(v)) return "id.bad_format";
  const sum = WEIGHTS.reduce((acc, w, i) => acc + w * Number(v[i]), 0);
  return CHECK[sum % 11] === v[17] ? null : "id.bad_checksum";
}

/** The people card of the case view: each person with a "correct" form. */
export function peopleCard(ctx, c) {
  const base = "/api/cases/" + encodeURIComponent(c.code) + "/people/";
  const items = c.people.map((p) => {
    const msg = h("p", { role: "status", class: "okmsg", hidden: true, tabindex: "-1" });
    const err = h("p", { role: "alert", class: "error", hidden: true, tabindex: "-1" });
    const idn = h("input", { type: "text", name: "id_number", value: p.id_number || "", maxlength: "18", autocomplete: "off" });
    const phone = h("input", { type: "tel", name: "phone", value: p.phone || "", maxlength: "40" });
    const addr = h("input", { type: "text", name: "address", value: p.address || "", maxlength: "300" });
    const reason = h("input", { type: "text", name: "reason", maxlength: "300", required: true });
    const form = h("form", { class: "correct", hidden: true, "aria-label": t("people.correct_of", { name: p.name }), onsubmit: async (e) => {
      e.preventDefault();
      err.hidden = true;
      const why = idNumberProblem(idn.value);
      idn.setAttribute("aria-invalid", String(Boolean(why)));
      if (why) { err.textContent = t(why); err.hidden = false; idn.focus(); return; }
      const body = { reason: reason.value.trim() };
      if (idn.value.trim() !== (p.id_number || "")) body.id_number = idn.value.trim().toUpperCase();
      if (phone.value.trim() !== (p.phone || "")) body.phone = phone.value.trim();
      if (addr.value.trim() !== (p.address || "")) body.address = addr.value.trim();
      if (Object.keys(body).length === 1) { err.textContent = t("people.nothing_changed"); err.hidden = false; return; }
      try {
        const out = await http.api("PATCH", base + p.id, body);
        Object.assign(p, out.person || body);
        form.hidden = true;
        paint();
        msg.textContent = t("people.corrected", { name: p.name });
        msg.hidden = false;
        msg.focus();
      } catch (e2) {
        err.textContent = explain(e2);
        err.hidden = false;
        err.focus();
      }
    } },
    h("div", { class: "grid3" }, field(t("intake.id_number"), idn), field(t("ag.phone"), phone), field(t("ag.address"), addr)),
    field(t("people.reason"), reason),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, t("people.save")),
      h("button", { type: "button", onclick: () => { form.hidden = true; open.focus(); } }, t("common.cancel"))),
    err);
    const facts = h("span", { class: "facts muted" });
    const paint = () => {
      facts.textContent = [p.id_number ? t("people.id_masked", { tail: p.id_number.slice(-4) }) : t("people.no_id"),
        p.phone || t("people.no_phone"), p.address || t("people.no_address")].join(" · ");
    };
    paint();
    const open = h("button", { type: "button", class: "small", id: "correct-" + p.id, "aria-expanded": "false",
      onclick: () => { form.hidden = !form.hidden; open.setAttribute("aria-expanded", String(!form.hidden)); if (!form.hidden) idn.focus(); } },
    t("people.correct"));
    return h("li", { dataset: { person: String(p.id) } },
      h("div", { class: "row" }, h("strong", {}, `${t("side." + p.side)} · ${t("role." + p.kind)} · ${p.name}`), open),
      facts, msg, form);
  });
  return h("section", { class: "card", id: "people-card" }, h("h2", {}, t("case.people")), h("ul", { class: "people-list" }, items));
}
