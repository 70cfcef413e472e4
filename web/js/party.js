// Party page controller (party.html): invite link → device proof → lobby steps → session; rejoin on drops.
import "./strings-common.js";
import "./strings-party.js";
import "./strings-agreement.js";
import { applyStatic, installSwitch, onLangChange, t } from "./i18n.js";
import { h, mount, $, focusFirst } from "./dom.js";
import { get, post } from "./api.js";
import { deviceKeyFor, signChallenge } from "./devicekey.js";
import { connectSession, rejoinWait } from "./socket.js";
import { explain, codeOf, ServerError } from "./errors.js";
import { stepView, nextStep, stopPreview, syncProgress, stepper } from "./party-steps.js";
import { installLargeText } from "./party-a11y.js";
import { SessionView } from "./party-session.js";
import { documentsView } from "./party-documents.js";

// Errors after which retrying cannot help: show them and stop.
const FATAL = new Set(["no_token", "bad_invite", "invite_expired", "device_mismatch", "bad_signature", "refused",
  "session_ended", "device_key_required", "bad_device_key", "insecure_context", "bad_origin"]);
// After these the party's own copies are still there (R20): the page shows "my documents".
const COPIES_AFTER = new Set(["session_ended", "invite_expired"]);
// Server-side disconnect reasons that end the page's session (no automatic rejoin).
const FINAL_EVENTS = ["session:refused", "session:replaced", "session:ended"];

export const app = {
  token: "",
  info: null,  // POST /api/join answer: participant, role, name, case, session
  key: null,
  socket: null,
  state: null,  // last session:state
  view: "loading",  // loading | steps | session | ended | error
  step: "identity",  // identity | notices | consents | lobby
  progress: { identity: false, notices: false, choices: {}, online: null },
  error: null,
  final: null,  // {kind, reason} once the session is over for this page
  session: null,
  rejoins: 0,
  render,
  leave: () => finish("left"),
  goStep(step) { app.step = step; app.view = "steps"; render(true); },
};
window.__onedoor = {
  get pc() { return app.session && app.session.media.pc; },
  get media() { return app.session && app.session.media; },
  get socket() { return app.socket; },
  get state() { return app.state; },
  get view() { return app.view; },
  get rejoins() { return app.rejoins; },
  /** Test hook: drop the transport as a network change would (the page must rejoin by itself). */
  dropConnection() { if (app.socket) app.socket.io.engine.close(); },
};

async function connect() {
  // With several nodes the join answer names the session's owner (`info.node`); the connection asks the balancer
  // for it. If the owner changed in between (it was lost), the refusal names the new one: join again (a new
  // challenge: the refused attempt spent the old one).
  for (let attempt = 0; ; attempt++) {
    const info = await post("/api/join", { token: app.token });
    app.info = info;
    app.key = app.key || (await deviceKeyFor(app.token));
    const signature = await signChallenge(app.key, info.challenge);
    let socket;
    try {
      socket = await connectSession({ invite: app.token, challenge: info.challenge, signature,
        public_key: app.key.spki }, info.node);
    } catch (err) {
      if (codeOf(err) === "wrong_node" && attempt < 2) continue;
      throw err;
    }
    app.socket = socket;
    wire(socket);
    return socket;
  }
}

function wire(socket) {
  socket.on("session:state", (st) => onState(st));
  socket.on("session:admitted", () => { if (app.view !== "session") enterSession(); });
  socket.on("session:refused", (m) => finish("refused", m && m.reason));
  socket.on("session:replaced", () => finish("replaced"));
  socket.on("session:ended", (m) => finish("ended", m && m.reason));
  socket.on("disconnect", (reason) => {
    if (socket !== app.socket) return;
    if (app.final || reason === "io client disconnect") return;
    if (reason === "io server disconnect" && !app.final) { finish("ended"); return; }
    rejoin();
  });
}

let firstState = null;
const gotFirstState = new Promise((resolve) => { firstState = resolve; });

function onState(st) {
  app.state = st;
  firstState();
  paintRecording();
  if (app.final) return;
  const wasWaiting = app.progress.identity === "attestation";
  syncProgress(app);
  if (wasWaiting && app.progress.identity === true) {
    app.idChecked = true;  // the mediator checked the ID: say so where the person waits, and turn the step green
    if (app.view === "steps" && app.step !== "lobby") {
      const nav = $("#main nav.stepper");
      if (nav) nav.replaceWith(stepper(app));
    }
  }
  if (st.you && st.you.admitted) {
    if (app.view !== "session") enterSession();
    else app.session.update();
  } else if (app.view === "session") {
    app.view = "steps"; app.step = "lobby"; render(true);  // sent back to the lobby
  } else if (app.view === "steps") {
    // Only views that show server state are redrawn; the others keep what the person is typing.
    const guests = JSON.stringify((st.third_parties || []).map((g) => g.id));
    const lobbyKey = guests + st.mediator_present + app.progress.identity;
    if ((app.step === "lobby" && lobbyKey !== app.lobbyShown) || (app.step === "consents" && guests !== app.guestsShown)) {
      render(false);
    }
  }
}

function enterSession() {
  stopPreview(app);
  app.view = "session";
  if (!app.session) app.session = new SessionView(app);
  render(true);
  app.session.start().catch((err) => app.session.showError(err));
}

async function rejoin() {
  const banner = $("#conn");
  banner.textContent = t("conn.reconnecting");
  banner.hidden = false;
  for (let attempt = 0; !app.final; attempt++) {
    await rejoinWait(attempt);  // the first attempt at once, then backing off (socket.js)
    try {
      await connect();  // new challenge, new signature, new connection
      app.rejoins++;
      banner.textContent = t("conn.back");
      setTimeout(() => { banner.hidden = true; }, 2000);
      if (app.view === "session") app.session.rejoin();  // new RTCPeerConnection
      return;
    } catch (err) {
      if (FATAL.has(codeOf(err))) { fail(err); return; }
    }
  }
}

function finish(kind, reason) {
  if (app.final) return;
  app.final = { kind, reason: reason || "" };
  if (app.session) app.session.stop();
  if (app.socket) app.socket.disconnect();
  $("#conn").hidden = true;
  app.view = "ended";
  render(true);
}

function fail(err) {
  app.error = err;
  app.view = "error";
  if (app.session) app.session.stop();
  $("#conn").hidden = true;
  render(true);
}


function paintRecording() {
  const rec = $("#rec");
  const mode = (app.state && app.state.recording) || "off";
  rec.hidden = mode === "off" || Boolean(app.final);
  rec.className = "rec " + mode;
  rec.textContent = mode === "off" ? "" : t("rec." + mode);
}

function header() {
  const info = app.info;
  if (!info) return null;
  return h("div", { class: "casehead" },
    h("p", { class: "hello" }, t("party.hello", { name: info.name })),
    h("p", { class: "muted" }, t("party.case", { title: info.case.title, code: info.case.code })));
}

function render(moveFocus) {
  const main = $("#main");
  app.guestsShown = JSON.stringify(((app.state && app.state.third_parties) || []).map((g) => g.id));
  app.lobbyShown = app.guestsShown + (app.state && app.state.mediator_present) + app.progress.identity;
  paintRecording();
  if (app.view === "session") {
    if (!main.contains(app.session.root)) mount(main, app.session.root);
    app.session.paint();
    return;
  }
  let body;
  if (app.view === "loading") body = h("p", { class: "muted" }, t("party.opening"));
  else if (app.view === "error") body = errorView();
  else if (app.view === "ended") body = endedView();
  else body = stepView(app);
  mount(main, header(), body);
  if (moveFocus) focusFirst(main);
}

// Links the center must send again: the person is told how to ask for a new one.
const NEW_LINK = new Set(["bad_invite", "invite_expired", "device_mismatch", "bad_signature", "refused"]);

/** The center's name and phone (GET /api/public/cases/{code}, no login), loaded once; null until known. */
function centerContact() {
  const code = app.info && app.info.case && app.info.case.code;
  if (!code) return null;
  if (app.center === undefined) {
    app.center = null;
    get("/api/public/cases/" + encodeURIComponent(code))
      .then((c) => { app.center = c.center || {}; render(false); })
      .catch(() => { app.center = {}; });
  }
  return app.center;
}

/** "Call the center at …; give your name and case number and ask for a new link." */
function contactBox(newLink) {
  const c = centerContact();
  const code = app.info && app.info.case && app.info.case.code;
  const phone = c && c.phone;
  return h("div", { class: "contact", id: "center-contact" },
    h("h3", {}, t("contact.title")),
    phone ? h("p", { class: "phone" }, t("contact.call"), " ",
      h("a", { href: "tel:" + phone.replace(/[^\d+]/g, ""), id: "center-phone" }, phone))
      : h("p", {}, c ? t("contact.no_phone") : t("common.loading")),
    c && c.name ? h("p", { class: "muted" }, c.name) : null,
    c && c.hours ? h("p", { class: "muted" }, t("contact.hours", { hours: c.hours })) : null,
    c && c.address ? h("p", { class: "muted" }, t("contact.address", { address: c.address })) : null,
    newLink ? h("p", { id: "new-link-help" }, t("contact.new_link", { code: code || "" })) : null);
}

function errorView() {
  const code = codeOf(app.error);
  return [h("section", { class: "card", role: "alert", dataset: { code } },
    h("h2", {}, t("error.title")),
    h("p", { class: "error", id: "error-text" }, explain(app.error)),
    app.info ? contactBox(NEW_LINK.has(code)) : h("p", { class: "muted" }, NEW_LINK.has(code) ? t("error.help_link") : t("error.help")),
    FATAL.has(code) ? null : h("button", { type: "button", onclick: () => location.reload() }, t("common.retry"))),
  COPIES_AFTER.has(code) ? myDocuments() : null];
}

function myDocuments() {
  app.documents = app.documents || documentsView(app.token);
  if (app.documents.repaint) app.documents.repaint();
  return app.documents;
}

function endedView() {
  const f = app.final;
  const title = f.kind === "refused" ? t("refused.title") : f.kind === "left" ? t("end.left_title") : t("end.title");
  const text = { refused: t("err.refused"), replaced: t("err.replaced"), left: t("end.left"),
    ended: t("err.session_ended") }[f.kind];
  return [h("section", { class: "card", role: "status", dataset: { final: f.kind } },
    h("h2", {}, title), h("p", {}, text),
    f.reason ? h("p", { class: "muted" }, t("end.reason", { reason: f.reason })) : null,
    f.kind === "refused" ? contactBox(true) : null,
    f.kind === "left" || f.kind === "replaced"
      ? h("button", { type: "button", class: "primary", onclick: () => location.reload() }, t("end.rejoin")) : null),
  f.kind === "ended" ? myDocuments() : null];
}

async function main() {
  applyStatic(document);
  installSwitch();
  installLargeText();
  onLangChange(() => render(false));
  app.token = decodeURIComponent(location.hash.replace(/^#/, "")).trim();
  if (app.token.length < 16) { fail(new ServerError({ code: "no_token" })); return; }
  try {
    await connect();
    // the server's view of this person decides where to start (a reload keeps the steps already done)
    await Promise.race([gotFirstState, new Promise((r) => setTimeout(r, 2000))]);
    syncProgress(app);
    app.view = app.state && app.state.you && app.state.you.admitted ? app.view : "steps";
    app.step = nextStep(app);
    if (app.view !== "session") render(true);
  } catch (err) {
    fail(err);
  }
}

main();
