// The main prompt of the party's session view: what this person should do now, or what they are waiting for
// and from whom — worded from the server's `next_actions` (agreement:state / agreement:get; docs/protocol.md,
// "The workflow state machine"). A party matches `actor == "person:<its person id>"`.
import { h, fmtTime } from "./dom.js";
import { t, getLang, has } from "./i18n.js";

/** Who an actor is, in words: a party's name, "the mediator", "the court". */
function who(actor, names) {
  if (!actor) return "";
  if (actor.startsWith("person:")) return names[actor] || t("role.party");
  if (actor.startsWith("court:")) return t("prompt.court");
  if (actor === "system") return t("prompt.system");
  return t("role.mediator");
}

function namesOf(state) {
  const content = (state && state.agreement && state.agreement.content) || {};
  return Object.fromEntries((content.parties || []).map((p) => ["person:" + p.person_id, p.name]));
}

/**
 * {text, action?, tone} for this person. `action` is the ready action of this person the page offers a button for
 * ("sign_agreement", "sign_application"); tone is "do" (your turn), "wait" or "done".
 */
export function promptFor(state, personId) {
  if (!state) return { text: t("prompt.in_session"), tone: "wait" };
  const names = namesOf(state);
  const me = "person:" + personId;
  const actions = state.next_actions || [];
  const mine = actions.filter((a) => a.actor === me);
  const lang = getLang();
  const until = (a) => (a.until ? t("prompt.until", { at: fmtTime(a.until, lang) }) : "");
  for (const key of ["sign_agreement", "sign_application"]) {
    const a = mine.find((x) => x.action === key);
    if (a && a.ready) return { text: t("prompt.do." + key) + until(a), action: key, tone: "do" };
    if (a && !a.ready && (a.waits_for || []).length) {
      const w = a.waits_for[0];
      return { text: t("prompt.wait_then", { who: who(w.actor, names), what: t(act(w.action)),
        then: t("prompt.then." + key) }), tone: "wait" };
    }
  }
  const objection = mine.find((x) => x.action === "raise_objection");
  const wf = state.workflow || {};
  if (wf.closed && wf.reason) {
    const reason = has("prompt.closed." + wf.reason) ? t("prompt.closed." + wf.reason) : t("prompt.closed.other");
    return { text: reason + (objection ? " " + objectionText(objection, lang) : ""),
      tone: "done" };
  }
  if (objection) return { text: objectionText(objection, lang), tone: "done" };
  // nothing for me now: what are we waiting for, and from whom?
  // the other side first ("waiting for 李四 to sign"), then the mediator, the court, the system; at most two
  const rank = (a) => (a.actor.startsWith("person:") ? 0 : a.actor.startsWith("court:") ? 2 : a.actor === "system" ? 3 : 1);
  const others = actions.filter((a) => a.actor !== me && a.ready && a.action !== "refuse")
    .sort((x, y) => rank(x) - rank(y));
  if (!others.length) return { text: t("prompt.in_session"), tone: "wait" };
  const kinds = [...new Set(others.map((a) => a.action))].slice(0, 2);
  const text = kinds.map((action) => {
    const group = others.filter((a) => a.action === action);
    const key = "prompt.wait." + action;
    return has(key) ? t(key, { who: [...new Set(group.map((a) => who(a.actor, names)))].join(t("list.sep")) }) + until(group[0])
      : t("prompt.wait.other", { who: who(group[0].actor, names) });
  }).join(" ");
  return { text, tone: "wait" };
}

function act(action) {
  return has("prompt.act." + action) ? "prompt.act." + action : "prompt.act.other";
}

/** The prompt box: a heading-sized sentence, and a button that takes the person to where they act. */
export function promptBox(p, onGo) {
  return h("div", { class: "prompt-box " + p.tone, id: "next-prompt", dataset: { tone: p.tone, action: p.action || "" } },
    h("p", { class: "prompt-label" }, t(p.tone === "do" ? "prompt.your_turn" : p.tone === "done" ? "prompt.status" : "prompt.waiting")),
    h("p", { class: "prompt-text" }, p.text),
    p.action ? h("button", { type: "button", class: "primary", id: "prompt-go", onclick: () => onGo(p.action) },
      t("prompt.go." + p.action)) : null);
}

/** A party's 15 days run from when the ruling reached it: a date once it did, the rule before. */
function objectionText(objection, lang) {
  return objection.until ? t("prompt.objection", { at: fmtTime(objection.until, lang) }) : t("prompt.objection_unserved");
}
