// The party's view of the agreement in the session (R15-R17) and of the joint application (R21): read it, sign it
// with this device's key (the one the invite is bound to), or refuse; then sign the application; court notices.
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { call } from "./socket.js";
import { explain } from "./errors.js";
import { signPayload } from "./devicekey.js";
import { agreementDoc, agreementStatus, noticeText } from "./agreement-view.js";
import { applicationStatus } from "./agreement-application.js";

export class AgreementPanel {
  constructor(app) {
    this.app = app;
    this.state = null;  // agreement:state (or the agreement:get answer)
    this.notices = [];
    this.appSigned = false;
    this.root = h("section", { class: "card party-agreement", id: "agreement", hidden: true });
    this.err = h("p", { class: "error", role: "alert", hidden: true });
    this.msg = h("p", { class: "okmsg", role: "status", hidden: true });
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
    } catch (err) { this.fail(err); }
  }

  update(st) {
    this.state = st;
    this.render();
  }

  fail(err) { this.err.textContent = explain(err); this.err.hidden = false; }
  say(text) { this.msg.textContent = text; this.msg.hidden = !text; }

  /** Did this device sign? Signatures carry the signer's public key; ours is the invite's device key. */
  signedByMe(a) {
    const mine = this.app.key && this.app.key.spki;
    return Boolean(mine && (a.signatures || []).some((s) => s.public_key === mine));
  }

  async sign(kind) {
    const confirmKey = kind === "agreement" ? "ag.sign_confirm" : "app.sign_confirm";
    if (!window.confirm(t(confirmKey))) return;
    this.err.hidden = true;
    try {
      const got = await call(this.app.socket, kind + ":payload", {});
      const signature = await signPayload(this.app.key, got.payload);
      await call(this.app.socket, kind + ":sign", { signature });
      if (kind === "application") this.appSigned = true;
      this.say(kind === "agreement" ? t("ag.signed_ok") : t("app.signed_ok"));
      this.render();
    } catch (err) { this.fail(err); }
  }

  async refuse(note) {
    if (!window.confirm(t("ag.refuse_confirm"))) return;
    try {
      await call(this.app.socket, "agreement:refuse", { note });
    } catch (err) { this.fail(err); }
  }

  render() {
    const a = this.state && this.state.agreement;
    const application = this.state && this.state.application;
    this.root.hidden = !a && !this.notices.length;
    if (this.root.hidden) return;
    const body = [h("h2", {}, t("ag.title")), this.msg, this.err];
    if (a) {
      body.push(agreementStatus(a));
      if (a.status === "final" && !this.signedByMe(a)) {
        const note = h("input", { type: "text", id: "refuse-note", maxlength: "2000", "aria-label": t("ag.refuse_note"),
          placeholder: t("ag.refuse_note") });
        body.push(h("p", { class: "notice" }, t("ag.read_carefully")), agreementDoc(a.content),
          h("div", { class: "row" },
            h("button", { type: "button", class: "primary", id: "agreement-sign", onclick: () => this.sign("agreement") }, t("ag.sign")),
            h("button", { type: "button", class: "danger", id: "agreement-refuse", onclick: () => this.refuse(note.value.trim()) }, t("ag.refuse"))),
          note);
      } else {
        if (a.status === "final") body.push(h("p", { class: "okmsg" }, t("ag.you_signed")));
        body.push(h("details", { open: a.status !== "draft" }, h("summary", {}, t("ed.preview")), agreementDoc(a.content)));
      }
    }
    if (application) {
      body.push(h("h3", {}, t("app.title")), applicationStatus(application));
      if (application.status === "draft" && !this.appSigned) {
        body.push(h("button", { type: "button", class: "primary", id: "application-sign", onclick: () => this.sign("application") }, t("app.sign")));
      }
    }
    if (this.notices.length) {
      body.push(h("h3", {}, t("cnotice.title")), h("ul", { id: "court-notices" }, this.notices.map((n) => h("li", {}, noticeText(n)))));
    }
    this.root.replaceChildren(...body);
  }
}
