// The party's steps before admission: identity check (R5), notices (R3, R13), consents (R1, R8), lobby (P3).
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { call } from "./socket.js";
import { explain } from "./errors.js";
import { MediaClient } from "./media.js";
import { readAloudButton, stopReading } from "./party-a11y.js";

const STEPS = ["identity", "notices", "consents", "lobby"];

export function nextStep(app) {
  const p = app.progress;
  if (!p.identity) return "identity";
  if (!p.notices) return "notices";
  if (p.online !== true) return "consents";
  return "lobby";
}

export function stepView(app) {
  const view = { identity: identityView, notices: noticesView, consents: consentsView, lobby: lobbyView }[app.step];
  return h("div", {}, stepper(app), view(app));
}

/** Progress from the server's own view of this person (after a reload or a rejoin the page starts from it). */
export function syncProgress(app) {
  const r = app.state && app.state.you && app.state.you.readiness;
  if (!r) return;
  if (r.identity) app.progress.identity = true;
  if (r.notices) app.progress.notices = true;
  if (r.online_consent && app.progress.online !== false) app.progress.online = true;
}

/** A step is done only when the server has it: an ID the mediator has still to check is "waiting", not green. */
function stepState(app, s, i, cur) {
  if (s === "identity" && app.progress.identity === "attestation") return i === cur ? "current" : "waiting";
  if (i === cur) return "current";
  if (s === "identity") return app.progress.identity === true ? "done" : "";
  if (s === "notices") return app.progress.notices ? "done" : "";
  if (s === "consents") return app.progress.online === true ? "done" : "";
  return "";
}

export function stepper(app) {
  const cur = STEPS.indexOf(app.step);
  return h("nav", { class: "stepper", "aria-label": t("party.steps") },
    h("ol", {}, STEPS.map((s, i) => {
      const state = stepState(app, s, i, cur);
      return h("li", { class: state, dataset: { stepState: state || "todo" }, "aria-current": i === cur ? "step" : null },
        h("span", { class: "num" }, String(i + 1)), " ", t("step." + s),
        state === "waiting" ? h("span", { class: "sub" }, t("step.identity_waiting")) : null,
        state === "done" ? h("span", { class: "visually-hidden" }, t("step.done")) : null);
    })));
}

/** An inline error box that says what went wrong in plain words. */
function errorBox() {
  const el = h("p", { class: "error", role: "alert", hidden: true });
  el.show = (err) => { el.textContent = typeof err === "string" ? err : explain(err); el.hidden = false; };
  el.clear = () => { el.hidden = true; };
  return el;
}

function identityView(app) {
  const err = errorBox();
  const status = h("p", { class: "notice", role: "status", hidden: true });
  const code = h("input", { type: "text", inputmode: "numeric", autocomplete: "one-time-code", maxlength: "6",
    pattern: "[0-9]{6}", id: "otp", "aria-describedby": "otp-hint" });
  const codeForm = h("form", { class: "stack", hidden: true, onsubmit: (e) => { e.preventDefault(); answer(); } },
    h("label", { for: "otp" }, t("id.code")), code, h("p", { class: "hint", id: "otp-hint" }, ""),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, t("id.check")),
      h("button", { type: "button", onclick: () => start("otp") }, t("id.resend"))));
  const passed = () => { app.progress.identity = true; app.goStep(nextStep(app)); };

  async function start(method) {
    err.clear();
    try {
      const ack = await call(app.socket, "identity:start", { method });
      if (ack.passed) { passed(); return; }
      if (method === "otp") {
        codeForm.hidden = false;
        status.textContent = t("id.sent", { to: ack.sent_to || "" });
        status.hidden = false;
        code.focus();
      } else {
        app.progress.identity = "attestation";  // the mediator confirms in the lobby
        app.goStep(app.progress.notices ? "consents" : "notices");
      }
    } catch (e) { err.show(e); }
  }

  async function answer() {
    err.clear();
    const v = code.value.trim();
    if (!/^\d{6}$/.test(v)) { err.show(t("id.bad_format")); code.focus(); return; }
    try {
      await call(app.socket, "identity:answer", { code: v });
      passed();
    } catch (e) { err.show(e); code.select(); }
  }

  return h("section", { class: "card step", dataset: { step: "identity" } },
    h("h2", {}, t("id.title")), h("p", {}, t("id.why")),
    h("div", { class: "row" },
      h("button", { type: "button", class: "primary", id: "otp-start", onclick: () => start("otp") }, t("id.otp")),
      h("button", { type: "button", id: "attest-start", onclick: () => start("attestation") }, t("id.attest"))),
    status, codeForm, err);
}

function noticesView(app) {
  const err = errorBox();
  const box = h("input", { type: "checkbox", id: "ack", checked: Boolean(app.progress.notices) });
  const parts = ["rights", "rules", "effect", "confirm", "sham", "norec"];
  async function submit(e) {
    e.preventDefault();
    err.clear();
    if (!box.checked) { err.show(t("notice.need_ack")); box.focus(); return; }
    try {
      await call(app.socket, "lobby:consent", { kind: "notices", granted: true });
      stopReading();
      app.progress.notices = true;
      app.goStep(nextStep(app) === "identity" ? "consents" : nextStep(app));
    } catch (e2) { err.show(e2); }
  }
  const all = () => parts.map((p) => t(`notice.${p}.h`) + "。" + t(`notice.${p}`)).join("\n");
  return h("section", { class: "card step", dataset: { step: "notices" } },
    h("h2", {}, t("notice.title")),
    h("div", { class: "read-all" }, h("p", { class: "hint" }, t("notice.listen")),
      readAloudButton(t("notice.title"), all, { id: "read-all", label: "a11y.read_all" })),
    h("div", { class: "notices" },
      parts.map((p) => h("section", { class: p === "norec" ? "norec" : "", dataset: { notice: p } },
        h("div", { class: "notice-head" }, h("h3", {}, t(`notice.${p}.h`)),
          readAloudButton(t(`notice.${p}.h`), () => t(`notice.${p}.h`) + "。" + t(`notice.${p}`))),
        h("p", {}, t(`notice.${p}`))))),
    h("form", { onsubmit: submit },
      h("label", { class: "choice" }, box, t("notice.ack")),
      err, h("button", { type: "submit", class: "primary" }, t("common.continue"))));
}

/** Yes/no radio group; `get`/`set` keep the choice in app.progress.choices across re-renders. */
function yesNo(name, legend, choices) {
  const radio = (value, label) => h("label", { class: "choice" },
    h("input", { type: "radio", name, value, checked: choices[name] === (value === "yes"),
      onchange: () => { choices[name] = value === "yes"; } }), label);
  return h("fieldset", { dataset: { consent: name } }, h("legend", {}, legend),
    h("div", { class: "row" }, radio("yes", t("common.yes")), radio("no", t("common.no"))));
}

export function thirdParties(app) {
  return (app.state && app.state.third_parties) || [];
}

function consentsView(app) {
  const err = errorBox();
  const choices = app.progress.choices;
  const guests = thirdParties(app);
  async function submit(e) {
    e.preventDefault();
    err.clear();
    const names = ["online", "recording", ...guests.map((g) => "tp:" + g.id)];
    if (names.some((n) => typeof choices[n] !== "boolean")) { err.show(t("consent.need_all")); return; }
    try {
      await call(app.socket, "lobby:consent", { kind: "online", granted: choices.online });
      await call(app.socket, "lobby:consent", { kind: "recording", granted: choices.recording });
      for (const g of guests) {
        await call(app.socket, "lobby:consent", { kind: "third_party", subject: g.id, granted: choices["tp:" + g.id] });
        app.progress.answered = { ...(app.progress.answered || {}), [g.id]: true };
      }
      app.progress.online = choices.online;
      if (!choices.online) { err.show(t("consent.online_no")); return; }
      app.goStep(nextStep(app));
    } catch (e2) { err.show(e2); }
  }
  return h("section", { class: "card step", dataset: { step: "consents" } },
    h("h2", {}, t("consent.title")),
    h("form", { onsubmit: submit },
      yesNo("online", t("consent.online"), choices),
      yesNo("recording", t("consent.recording"), choices),
      guests.map((g) => yesNo("tp:" + g.id, t("consent.third", { role: t("role." + g.role), name: g.name }), choices)),
      err, h("button", { type: "submit", class: "primary" }, t("consent.submit"))));
}

/** Third parties who arrived after the consents step: ask here (R8). Used in the lobby and in the session. */
export function pendingThirdParties(app, onDone) {
  const answered = app.progress.answered || {};
  const pending = thirdParties(app).filter((g) => !answered[g.id]);
  if (!pending.length) return null;
  const err = errorBox();
  const answer = async (g, granted) => {
    try {
      await call(app.socket, "lobby:consent", { kind: "third_party", subject: g.id, granted });
      app.progress.answered = { ...(app.progress.answered || {}), [g.id]: true };
      onDone();
    } catch (e) { err.show(e); }
  };
  return h("section", { class: "card third", "aria-label": t("lobby.third_pending") },
    h("p", {}, t("lobby.third_pending")),
    pending.map((g) => h("div", { class: "stack", dataset: { third: g.id } },
      h("p", {}, t("consent.third", { role: t("role." + g.role), name: g.name })),
      h("div", { class: "row" },
        h("button", { type: "button", onclick: () => answer(g, true) }, t("common.yes")),
        h("button", { type: "button", onclick: () => answer(g, false) }, t("common.no"))))),
    err);
}

// R5 by online document comparison: before admission, the camera reaches the mediators only (the server's
// routing table), so the mediator can compare the ID document; this page receives nothing while waiting.
function idCameraView(app) {
  const video = h("video", { id: "id-preview", autoplay: true, muted: true, playsinline: true,
    "aria-label": t("id.camera_preview"), hidden: !(app.preview && app.preview.local) });
  const err = h("p", { class: "error", role: "alert", hidden: true });
  if (app.preview && app.preview.local) video.srcObject = app.preview.local;
  const button = h("button", { type: "button", id: "id-camera", hidden: Boolean(app.preview),
    onclick: async () => {
      err.hidden = true;
      try {
        app.preview = new MediaClient();
        await app.preview.startLocal();
        video.srcObject = app.preview.local;
        video.hidden = false;
        button.hidden = true;
        await app.preview.join(app.socket);
      } catch (e) { err.textContent = explain(e); err.hidden = false; }
    } }, t("id.camera_start"));
  return h("div", { class: "stack" }, button, video, err);
}

/** Admission ends the lobby preview; the session makes its own connection to the hub. */
export function stopPreview(app) {
  if (!app.preview) return;
  app.preview._detach();
  if (app.preview.pc) app.preview.pc.close();
  app.preview.stopLocal();
  app.preview = null;
}

function lobbyView(app) {
  const st = app.state || {};
  const here = st.mediator_present;
  const idWait = app.progress.identity === "attestation";
  return h("section", { class: "card step lobby", dataset: { step: "lobby" } },
    h("h2", {}, t("lobby.title")),
    h("p", { class: "prompt", id: "next-prompt" }, idWait ? t("lobby.next_id") : t("lobby.next")),
    h("div", { class: "spinner", "aria-hidden": "true" }),
    h("p", { class: here ? "okmsg" : "muted", id: "lobby-status", role: "status" },
      here ? t("lobby.mediator_here") : t("lobby.no_mediator")),
    idWait ? h("p", { class: "notice", id: "id-waiting" }, t("id.attest_lobby")) : null,
    idWait ? idCameraView(app) : null,
    app.progress.identity === true && app.idChecked ? h("p", { class: "okmsg", id: "id-done" }, t("id.checked_by_mediator")) : null,
    pendingThirdParties(app, () => app.render(false)),
    h("button", { type: "button", onclick: () => app.goStep("consents") }, t("lobby.change")));
}
