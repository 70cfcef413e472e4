// Console: the case list with stages and clocks (R27, R29, R30), and the intake form that opens a case.
import { h, field, fmtTime } from "./dom.js";
import { t, getLang } from "./i18n.js";
import * as http from "./api.js";
import { explain } from "./errors.js";
import { idNumberProblem } from "./console-people.js";

export const CATEGORIES = ["neighbours", "family", "wages", "traffic", "property_management", "contract", "land", "other"];
export const CHANNELS = ["walk_in", "online", "court", "police", "petition"];

export function clockTags(clocks) {
  return (clocks || []).map((c) => h("div", { class: "clock" + (c.overdue ? " overdue" : ""), dataset: { clock: c.name } },
    t("clock." + c.name), ": ",
    c.done_at ? t("clock.done") : c.overdue ? t("clock.overdue") + " (" + fmtTime(c.due, getLang()) + ")"
      : t("clock.due", { due: fmtTime(c.due, getLang()) })));
}

/** R21: effective agreements whose 30-day window for judicial confirmation ends soon (or has ended). */
async function remindersBox() {
  let reminders = [];
  try { ({ reminders } = await http.get("/api/agreements/reminders")); } catch { return null; }  // not every role may read them
  if (!reminders.length) return null;
  return h("section", { class: "card notice", id: "reminders" }, h("h2", {}, t("rem.title")),
    h("ul", {}, reminders.map((r) => h("li", { class: r.expired ? "clock overdue" : "" },
      h("a", { href: "#/case/" + encodeURIComponent(r.case_code) }, r.case_code), " ",
      r.expired ? t("rem.expired", { at: fmtTime(r.deadline_at, getLang()) }) : t("rem.days_left", { n: r.days_left, at: fmtTime(r.deadline_at, getLang()) })))));
}

export async function casesView() {
  const [{ cases }, reminders] = await Promise.all([http.get("/api/cases"), remindersBox()]);
  const rows = cases.map((c) => {
    const late = (c.clocks || []).filter((k) => k.overdue).length;
    return h("tr", { dataset: { case: c.code } },
      h("td", {}, h("a", { href: "#/case/" + encodeURIComponent(c.code) }, c.code)),
      h("td", {}, c.title, c.flagged_violence ? h("span", { class: "tag bad" }, " ⚠ " + t("case.flagged")) : null),
      h("td", {}, h("span", { class: "tag" }, t("stage." + c.stage))),
      h("td", {}, t("channel." + c.channel)),
      h("td", {}, t("cat." + c.category)),
      h("td", {}, late ? h("span", { class: "tag bad" }, t("cases.overdue_n", { n: late })) : null, clockTags(c.clocks)));
  });
  return h("section", {}, h("div", { class: "row" }, h("h1", {}, t("cases.title")),
    h("a", { class: "button primary", href: "#/new" }, t("nav.new"))), reminders,
  cases.length ? h("div", { class: "card scroll-x" }, h("table", { class: "cases" },
    h("thead", {}, h("tr", {}, ["cases.code", "cases.name", "cases.stage", "cases.channel", "cases.category",
      "cases.clocks"].map((k) => h("th", { scope: "col" }, t(k))))),
    h("tbody", {}, rows))) : h("p", { class: "card muted" }, t("cases.empty")));
}

function select(name, options, labelPrefix, value = "") {
  return h("select", { name, required: true },
    h("option", { value: "" }, t("intake.choose")),
    options.map((o) => h("option", { value: o, selected: o === value }, t(labelPrefix + o))));
}

function personRow(list, n) {
  const row = h("fieldset", { class: "person-row", dataset: { person: String(n) } },
    h("legend", {}, t("intake.person_n", { n: n + 1 })),
    field(t("intake.side"), select("side", ["A", "B"], "side.", n === 0 ? "A" : n === 1 ? "B" : "")),
    field(t("intake.kind"), select("kind", ["party", "agent"], "role.", "party")),
    field(t("intake.person_name"), h("input", { type: "text", name: "name", required: true, maxlength: "200" })),
    field(t("intake.phone"), h("input", { type: "tel", name: "phone", maxlength: "40" })),
    field(t("intake.id_number"), h("input", { type: "text", name: "id_number", maxlength: "18", autocomplete: "off",
      onchange: (e) => e.target.setAttribute("aria-invalid", String(Boolean(idNumberProblem(e.target.value)))) })),
    field(t("intake.address"), h("input", { type: "text", name: "address", maxlength: "300" })),
    field(t("intake.represents"), h("input", { type: "number", name: "represents", min: "1", max: "50" })),
    n > 1 ? h("button", { type: "button", onclick: () => row.remove() }, t("intake.remove")) : null);
  list.append(row);
}

export function intakeView() {
  const err = h("p", { class: "error", role: "alert", hidden: true });
  const people = h("div", { class: "people" });
  personRow(people, 0);
  personRow(people, 1);
  const title = h("input", { type: "text", name: "title", id: "case-title", required: true, maxlength: "300" });
  const cat = select("category", CATEGORIES, "cat.");
  const chan = select("channel", CHANNELS, "channel.");
  const summary = h("textarea", { name: "summary", maxlength: "5000" });
  const matter = h("select", { name: "personal_matter", id: "personal-matter" },
    ["none", "status", "inheritance"].map((m) => h("option", { value: m }, t("pm.choice." + m))));
  const court = h("select", { name: "referring_court_id", id: "referring-court" }, h("option", { value: "" }, t("intake.choose")));
  const courtField = field(t("intake.court"), court, t("intake.court_hint"));
  courtField.hidden = true;
  chan.addEventListener("change", () => { courtField.hidden = chan.value !== "court"; court.required = chan.value === "court"; });
  http.get("/api/courts").then(({ courts }) => court.append(...courts.map((c) => h("option", { value: c.id }, c.name))), () => {});
  async function submit(e) {
    e.preventDefault();
    err.hidden = true;
    const list = [...people.querySelectorAll(".person-row")].map((row) => {
      const v = (n) => row.querySelector(`[name=${n}]`).value.trim();
      const p = { side: v("side"), kind: v("kind") || "party", name: v("name"), phone: v("phone"), id_number: v("id_number"),
        address: v("address") };
      if (p.kind === "agent" && v("represents")) p.represents = Number(v("represents")) - 1;
      return p;
    });
    const bad = list.findIndex((p) => idNumberProblem(p.id_number));
    if (bad >= 0) {
      const input = people.querySelectorAll(".person-row")[bad].querySelector("[name=id_number]");
      input.setAttribute("aria-invalid", "true");
      err.textContent = t("intake.bad_id", { n: bad + 1 }) + t(idNumberProblem(list[bad].id_number));
      err.hidden = false;
      input.focus();
      return;
    }
    const body = { title: title.value.trim(), category: cat.value, channel: chan.value, summary: summary.value.trim(),
      people: list, personal_matter: matter.value };
    if (chan.value === "court") body.referring_court_id = court.value;
    try {
      const out = await http.post("/api/cases", body);
      location.hash = "#/case/" + encodeURIComponent(out.case.code);
    } catch (e2) {
      err.textContent = explain(e2);
      err.hidden = false;
    }
  }
  return h("section", { class: "card" }, h("h1", {}, t("intake.title")),
    h("form", { onsubmit: submit, id: "intake" },
      field(t("intake.name"), title),
      h("div", { class: "grid2" }, field(t("intake.category"), cat), field(t("intake.channel"), chan)),
      h("div", { class: "grid2" }, field(t("intake.personal_matter"), matter, t("intake.personal_matter_hint")), courtField),
      field(t("intake.summary"), summary),
      h("h2", {}, t("intake.people")), people,
      h("button", { type: "button", onclick: () => personRow(people, people.children.length) }, t("intake.add_person")),
      err, h("p", {}, h("button", { type: "submit", class: "primary" }, t("intake.submit")))));
}
