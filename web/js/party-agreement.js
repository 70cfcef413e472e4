// The party's view of the agreement in the session (R15-R17) and of the joint application (R21): read it, sign it
// with this device's key (the one the invite is bound to), or refuse; then sign the application; court notices.
// Signing and refusing cannot be undone: each asks in plain words first, in the page, where the button was, and the
// outcome (success or failure) is shown in that same place, scrolled into view, with the focus on it.
import { h, fmtTime } from "./dom.js";
import { t, getLang } from "./i18n.js";
import { call } from "./socket.js";
import { explain, missingText } from "./errors.js";
import { signPayload } from "./devicekey.js";
import { agreementDoc, agreementStatus, noticeText } from "./agreement-view.js";

/** A court notice in the party's language (the server's labels are Chinese: word the codes instead). */
function partyNotice(n) {
  if (n.kind === "ruling") return t("cnotice.ruling", { outcome_label: t("rul.outcome." + n.outcome) });
  if (n.kind === "application_not_accepted") return t("cnotice.application_not_accepted", { ground_label: t("ground." + n.ground) });
  return noticeText(n);
}

export class AgreementPanel {
  constructor(app, onChange = () => {}) {
    this.app = app;
    this.onChange = onChange;
    this.state = null;  // agreement:state (or the agreement:get answer)
    this.notices = [];
    this.appSigned = false;
    this.asking = null;  // "agreement" | "application" | "refuse": the confirmation shown in place of the buttons
    this.outcome = null;  // {kind, ok, text}: what happened after the last irreversible step
    this.busy = false;
    this.root = h("section", { class: "card party-agreement", id: "agreement", hidden: true, "aria-labelledby": "agreement-h" });
  }

  /** Wire the socket's agreement events (call again after a rejoin) and fetch the current state. */
  async attach(socket) {
    if (this.socket === socket) return;
    this.socket = socket;
    socket.on("agreement:state", (st) => this.update(st));
    socket.on("court:notice", (n) => { this.notices.push(n); this.render(); });
    try {
      const got = await call(socket, "agreement:get", {});
      if (Array.isArray(got.notifications)) this.notices = got.notifications;
      this.update(got);
    } catch (err) { this.outcome = { kind: "load", ok: false, err }; this.render(); }
  }

  update(st) {
    this.state = st;
    this.render();
    this.onChange();
  }

  /** Did this device sign? Signatures carry the signer's public key; ours is the invite's device key. */
  signedByMe(a) {
    const mine = this.app.key && this.app.key.spki;
    return Boolean(mine && (a.signatures || []).some((s) => s.public_key === mine));
  }

  personId() {
    const you = (this.app.state && this.app.state.you) || {};
    return you.person_id || (this.app.info && this.app.info.person_id);
  }

  ask(kind) {
    this.asking = kind;
    this.outcome = null;
    this.render();
    this.reveal("#confirm-panel h3");
  }

  /** Bring an element of the card into view and give it the focus (phones: the outcome is never off screen). */
  reveal(selector) {
    const el = this.root.querySelector(selector);
    if (!el) return;
    if (!el.hasAttribute("tabindex")) el.setAttribute("tabindex", "-1");
    el.scrollIntoView({ block: "center" });
    el.focus({ preventScroll: true });
  }

  async sign(kind) {
    this.busy = true;
    this.render();
    try {
      const got = await call(this.app.socket, kind + ":payload", {});
      const signature = await signPayload(this.app.key, got.payload);
      const ack = await call(this.app.socket, kind + ":sign", { signature });
      if (kind === "application") this.appSigned = true;
      const key = kind === "agreement"
        ? (ack.effective ? "pag.signed_ok_effective" : "pag.signed_ok_wait")
        : (ack.status === "submitted" ? "papp.signed_ok_submitted" : "papp.signed_ok_wait");
      this.outcome = { kind, ok: true, key };
    } catch (err) {
      this.outcome = { kind, ok: false, key: "pag.sign_failed", err };
    }
    this.asking = null;
    this.busy = false;
    this.render();
    this.onChange();
    this.reveal("#sign-outcome");
  }

  async refuse(note) {
    this.busy = true;
    this.render();
    try {
      await call(this.app.socket, "agreement:refuse", note ? { note } : {});
      this.outcome = { kind: "refuse", ok: true, key: "pag.refused_ok" };
    } catch (err) {
      this.outcome = { kind: "refuse", ok: false, err };
    }
    this.asking = null;
    this.busy = false;
    this.render();
    this.onChange();
    this.reveal("#sign-outcome");
  }

  outcomeBox() {
    const o = this.outcome;
    if (!o) return null;
    return h("div", { class: "outcome " + (o.ok ? "ok" : "bad"), id: "sign-outcome", role: o.ok ? "status" : "alert",
      dataset: { kind: o.kind, ok: String(o.ok) } },
      h("p", {}, (o.ok ? "✔ " : "✖ ") + [o.key ? t(o.key) : "", o.err ? explain(o.err) : ""].filter(Boolean).join(" ")));
  }

  /** The in-page "are you sure?" for signing the agreement, the application, or refusing. */
  confirmPanel(kind, note) {
    const text = { agreement: "pag.sign_confirm", application: "papp.sign_confirm", refuse: "pag.refuse_confirm" }[kind];
    const yes = { agreement: "pag.sign_yes", application: "papp.sign_yes", refuse: "pag.refuse_yes" }[kind];
    const go = () => (kind === "refuse" ? this.refuse(note ? note.value.trim() : "") : this.sign(kind));
    return h("div", { class: "confirm " + (kind === "refuse" ? "danger-zone" : ""), id: "confirm-panel", role: "group",
      "aria-labelledby": "confirm-h", dataset: { confirm: kind } },
      h("h3", { id: "confirm-h" }, t(kind === "refuse" ? "pag.refuse_title" : "pag.confirm_title")),
      h("p", {}, t(text)),
      kind === "refuse" ? h("div", { class: "field" }, h("label", { for: "refuse-note" }, t("ag.refuse_note")), note) : null,
      h("div", { class: "row" },
        h("button", { type: "button", class: kind === "refuse" ? "danger strong" : "primary", id: "confirm-yes",
          disabled: this.busy, onclick: go }, this.busy ? t("pag.working") : t(yes)),
        h("button", { type: "button", id: "confirm-no", disabled: this.busy, onclick: () => {
          this.asking = null; this.render(); this.reveal(kind === "refuse" ? "#agreement-refuse" : `#${kind}-sign`);
        } }, t("pag.not_now"))));
  }

  render() {
    const st = this.state || {};
    const a = st.agreement;
    const application = st.application;
    this.root.hidden = !a && !this.notices.length && !this.outcome;
    if (this.root.hidden) return;
    const lang = getLang();
    const body = [h("h2", { id: "agreement-h" }, t("ag.title"))];
    if (a) {
      body.push(agreementStatus(a));
      const mayAct = a.status === "final" && !this.signedByMe(a) && !this.alreadySignedForMe(st);
      if (mayAct) {
        body.push(h("p", { class: "notice" }, t("ag.read_carefully")), agreementDoc(a.content));
        const note = h("input", { type: "text", id: "refuse-note", maxlength: "2000" });
        if (this.asking === "agreement" || this.asking === "refuse") body.push(this.confirmPanel(this.asking, note));
        else {
          body.push(h("div", { class: "row sign-row" },
            h("button", { type: "button", class: "primary", id: "agreement-sign", onclick: () => this.ask("agreement") }, t("ag.sign")),
            h("button", { type: "button", class: "danger", id: "agreement-refuse", onclick: () => this.ask("refuse") }, t("ag.refuse"))));
        }
        body.push(this.outcomeBox());
      } else {
        body.push(this.outcomeBox());
        if (a.status === "final" || ((a.status === "effective" || a.status === "sealed") && this.signedByMe(a))) {
          body.push(h("p", { class: "okmsg", id: "you-signed" }, t("ag.you_signed")));
        }
        // after signing the text folds away, so the outcome and what comes next stay on screen
        body.push(h("details", { open: a.status === "draft" }, h("summary", {}, t(a.status === "draft" ? "pag.draft_view" : "pag.read_again")),
          agreementDoc(a.content)));
      }
    } else {
      body.push(this.outcomeBox());
    }
    if (application) {
      const names = Object.fromEntries(((a && a.content && a.content.parties) || []).map((p) => ["person:" + p.person_id, p.name]));
      const mySign = (st.next_actions || []).find((x) => x.actor === "person:" + this.personId() && x.action === "sign_application");
      const canSign = application.status === "draft" && !this.appSigned && (!st.next_actions || Boolean(mySign && mySign.ready));
      body.push(h("h3", {}, t("app.title")), this.applicationStatus(application, names, lang));
      if (canSign) {
        body.push(h("p", {}, t("papp.explain")), courtReceives(application.court_receives));
        if (this.asking === "application") body.push(this.confirmPanel("application"));
        else body.push(h("button", { type: "button", class: "primary", id: "application-sign", onclick: () => this.ask("application") }, t("app.sign")));
      }
      if (this.outcome && this.outcome.kind === "application") body.push(this.outcomeBox());
    }
    if (this.notices.length) {
      body.push(h("h3", {}, t("cnotice.title")), h("ul", { id: "court-notices" }, this.notices.map((n) => h("li", {}, partyNotice(n)))));
    }
    // the outcome box of the application is shown under its section; avoid showing it twice
    const seen = new Set();
    this.root.replaceChildren(...body.filter((x) => {
      if (!x || (x.id === "sign-outcome" && seen.has("o"))) return false;
      if (x.id === "sign-outcome") seen.add("o");
      return true;
    }));
  }

  /** Signed for me by my agent (or by me on another device): the server no longer offers it. */
  alreadySignedForMe(st) {
    if (!st.next_actions) return false;
    const pid = this.personId();
    return !st.next_actions.some((x) => x.actor === "person:" + pid && x.action === "sign_agreement");
  }

  /** The application's status in the party's words (what is still missing names the people). */
  applicationStatus(app, names, lang) {
    const court = (app.document && app.document.court && app.document.court.name) || "";
    const done = ["confirmed", "rejected", "not_accepted"].includes(app.status);
    return h("div", { class: "application", dataset: { status: app.status } },
      h("p", {}, h("span", { class: "tag " + (app.status === "confirmed" ? "ok" : ["rejected", "not_accepted"].includes(app.status) ? "bad" : "warn"),
        id: "application-status" }, t("app.status." + app.status))),
      court ? h("p", {}, t("app.court", { court })) : null,
      app.status === "draft" && app.deadline_at ? h("p", {}, t("app.deadline", { at: fmtTime(app.deadline_at, lang) })) : null,
      !done && app.missing && app.missing.length
        ? h("p", { class: "muted", id: "application-missing" }, t("papp.missing_words", { items: app.missing.map((m) => missingText(m, names)).join(t("list.sep")) }))
        : null);
  }
}

/** What the court will receive with the application (R9, R23), said before the party signs it. */
function courtReceives(r) {
  if (!r) return null;
  const items = (r.items || []).map((k) => t("papp.receives." + k));
  if ((r.documents || []).length) items.push(t("papp.receives.documents", { names: r.documents.map((d) => d.filename).join(t("list.sep")) }));
  if (r.recordings) items.push(t("papp.receives.recordings", { n: r.recordings }));
  if (r.transcripts) items.push(t("papp.receives.transcripts", { n: r.transcripts }));
  return h("section", { class: "court-receives", id: "court-receives" },
    h("h4", {}, t("papp.receives_title")),
    h("ul", {}, items.map((x) => h("li", {}, x))),
    (r.withheld || []).includes("caucus") ? h("p", { class: "muted" }, t("papp.receives.withheld")) : null);
}
