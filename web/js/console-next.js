// Console: the main prompt — what the mediator should do now, and what they are waiting for (and from whom).
// Built from the server's `next_actions` (docs/protocol.md, the workflow state machine) and, in the host view,
// from the lobby's readiness.
import { h, fmtTime } from "./dom.js";
import { t, has, getLang } from "./i18n.js";

/** A readable name for an actor of next_actions: "person:12" → the party's name, "court:x" → the court. */
export function actorName(actor, names = {}) {
  if (!actor) return "";
  if (actor.startsWith("person:")) return names[Number(actor.slice(7))] || t("next.someone");
  if (actor.startsWith("court:")) return t("next.the_court");
  if (actor === "system") return t("next.the_system");
  return t("next.the_mediator");
}

/** person id → name, from an agreement's content and/or a case's people. */
export function namesOf(agreementData, people) {
  const out = {};
  for (const p of people || []) out[p.id] = p.name;
  const parties = (agreementData && agreementData.agreement && agreementData.agreement.content
    && agreementData.agreement.content.parties) || [];
  for (const p of parties) out[p.person_id] = p.name;
  return out;
}

const word = (prefix, action) => (has(prefix + action) ? t(prefix + action) : t(prefix + "other"));

/** {now: [text], waiting: [text], closed: text|null} from the agreement GET answer (or agreement:state). */
export function agreementSteps(data, names) {
  const out = { now: [], waiting: [], closed: null };
  if (!data || !data.next_actions) return out;
  const lang = getLang();
  for (const x of data.next_actions) {
    const until = x.until ? t("next.until", { at: fmtTime(x.until, lang) }) : "";
    if (x.role === "mediator") {
      if (x.ready) out.now.push(word("next.", x.action) + until);
      else {
        for (const w of x.waits_for || []) {
          if (w.actor === "mediator" || w.actor.startsWith("staff:")) continue;  // our own step: it is under "do now"
          out.waiting.push(t("next.wait", { who: actorName(w.actor, names), what: word("wait.", w.action) }));
        }
      }
    } else if (x.ready && x.role !== "system" && !x.offline && x.action !== "refuse") {  // refusing is an option, not a wait
      out.waiting.push(t("next.wait", { who: actorName(x.actor, names), what: word("wait.", x.action) }) + until);
    }
  }
  const wf = data.workflow || {};
  if (wf.closed && wf.reason) out.closed = t("next.closed", { why: has("why." + wf.reason) ? t("why." + wf.reason) : t("why.other") });
  out.waiting = [...new Set(out.waiting)];
  return out;
}

/** The lobby as steps: who can be let in now, and whom we wait for (and for what). */
export function lobbySteps(lobby) {
  const out = { now: [], waiting: [], closed: null };
  for (const p of lobby || []) {
    if (!p.blocking.length) out.now.push(t("next.admit", { name: p.name }));
    else out.waiting.push(t("next.wait", { who: p.name, what: p.blocking.map((b) => (has("block." + b) ? t("block." + b) : t("block.other"))).join(t("list.sep")) }));
  }
  return out;
}

/** The prompt box: "Now: …" (a list) and "Waiting for: …". */
export function promptBox(parts, { id = "next-actions", empty = "next.nothing" } = {}) {
  const now = parts.flatMap((p) => p.now);
  const waiting = parts.flatMap((p) => p.waiting);
  const closed = parts.map((p) => p.closed).filter(Boolean);
  return h("section", { class: "prompt", id, "aria-labelledby": id + "-h", role: "region" },
    h("h2", { id: id + "-h", class: "visually-hidden" }, t("next.title")),
    now.length ? h("div", { class: "now" }, h("strong", {}, t("next.now")),
      h("ul", {}, now.map((x) => h("li", {}, x)))) : null,
    waiting.length ? h("div", { class: "waiting" }, h("strong", {}, t("next.waiting")),
      h("ul", {}, waiting.map((x) => h("li", {}, x)))) : null,
    closed.map((x) => h("p", { class: "closed" }, x)),
    !now.length && !waiting.length && !closed.length ? h("p", { class: "muted" }, t(empty)) : null);
}
