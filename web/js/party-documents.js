// "My documents" on the party page (R20): after the session a party keeps its own copies — the agreement as signed
// and sealed, its application and the court's ruling — from the device its link is bound to. Each request proves
// the device: a fresh single-use challenge signed with the device key (the same proof as joining), no live session.
// Electronic service only with the party's consent, asked once; every download is logged by the server.
import "./strings-public.js";
import { h, fmtTime } from "./dom.js";
import { t, getLang } from "./i18n.js";
import { post } from "./api.js";
import { deviceKeyFor, signChallenge } from "./devicekey.js";
import { explain, ServerError } from "./errors.js";

async function proof(token) {
  const key = await deviceKeyFor(token);
  const { challenge } = await post("/api/party/challenge", { token });
  return { token, challenge, signature: await signChallenge(key, challenge) };
}

async function download(token, doc) {
  const res = await fetch("/api/party/documents/" + encodeURIComponent(doc.kind), {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(await proof(token)),
    cache: "no-store", credentials: "omit",
  });
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch { body = null; }
    throw new ServerError((body && body.error) || { code: "http_" + res.status });
  }
  const blob = await res.blob();
  const name = (/filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "") || [])[1] || doc.kind + ".pdf";
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** The "my documents" card for this invite token; loads itself and redraws on every change. */
export function documentsView(token) {
  const root = h("section", { class: "card", id: "my-documents", "aria-live": "polite" },
    h("h2", {}, t("docs.title")), h("p", { class: "muted" }, t("docs.loading")));
  let data = null;
  let error = null;
  let busy = "";

  let loads = 0;  // loads overlap (after a consent, after each download): only the latest one may draw
  const load = async () => {
    const seq = ++loads;
    let got = null;
    let failed = null;
    try { got = await post("/api/party/documents", await proof(token)); } catch (err) { failed = err; }
    if (seq !== loads) return;
    if (failed) error = failed; else { data = got; error = null; }
    paint();
  };
  const consent = async (granted) => {
    busy = "consent"; paint();
    try { await post("/api/party/consent", { ...(await proof(token)), granted }); } catch (err) { error = err; }
    busy = ""; await load();
  };
  const deliveries = (kind) => (data ? data.delivered.filter((x) => x.document === kind).length : 0);
  const get = async (doc) => {
    busy = doc.kind; paint();
    const before = deliveries(doc.kind);
    let ok = false;
    try { await download(token, doc); error = null; ok = true; } catch (err) { error = err; }
    busy = ""; await load();
    // the server records the delivery once the last byte has left, which can be a moment after the browser has
    // it all: look again (briefly) until "delivered on ..." can be shown
    for (let i = 0; ok && i < 5 && deliveries(doc.kind) <= before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      await load();
    }
  };

  function docRow(d, lang) {
    const last = data.delivered.find((x) => x.document === d.kind);
    const ruling = d.kind === "ruling";
    return h("li", { dataset: { doc: d.kind } },
      h("div", {},
        h("div", { class: "strong" }, t("docs.kind." + d.kind)),
        ruling ? h("div", { id: "ruling-outcome" }, t("rul.outcome." + d.outcome), d.ground ? "：" + t("ground." + d.ground) : "") : null,
        ruling && d.objections ? h("div", { class: "muted", id: "objection-windows" },
          t(d.objections.party.due ? "ruling.windows" : "ruling.windows_unserved", {
            party: fmtTime(d.objections.party.due, lang), third: fmtTime(d.objections.third_party.due, lang) })) : null,
        d.kind === "application" && d.status ? h("div", { class: "muted" }, t("appst." + d.status)) : null,
        last ? h("div", { class: "muted" }, t("docs.delivered", { at: fmtTime(last.delivered_at, lang) })) : null),
      d.available ? h("button", { type: "button", class: "primary", disabled: Boolean(busy) || !granted(),
        onclick: () => get(d) }, busy === d.kind ? t("docs.downloading") : t("docs.download"))
        : h("span", { class: "muted" }, t("docs.not_yet")));
  }

  const granted = () => Boolean(data && data.service_consent && data.service_consent.granted);

  function paint() {
    const lang = getLang();
    const body = [];
    if (error) body.push(h("p", { class: "error", role: "alert", id: "docs-error" }, explain(error)));
    if (!data) {
      if (!error) body.push(h("p", { class: "muted" }, t("docs.loading")));
    } else {
      body.push(h("p", { class: "muted" }, t("docs.intro")));
      if (data.service_consent === null) {
        body.push(h("div", { class: "card", id: "service-consent" }, h("p", {}, t("docs.consent_q")),
          h("div", { class: "row" },
            h("button", { type: "button", class: "primary", id: "consent-yes", disabled: Boolean(busy), onclick: () => consent(true) }, t("docs.consent_yes")),
            h("button", { type: "button", id: "consent-no", disabled: Boolean(busy), onclick: () => consent(false) }, t("docs.consent_no")))));
      } else if (!granted()) {
        body.push(h("p", { id: "service-declined" }, t("docs.declined"),
          h("button", { type: "button", class: "link", onclick: () => consent(true) }, t("docs.consent_change"))));
      }
      body.push(data.documents.length ? h("ul", { class: "docs" }, data.documents.map((d) => docRow(d, lang)))
        : h("p", { class: "muted", id: "no-documents" }, t("docs.none")));
    }
    root.replaceChildren(h("h2", {}, t("docs.title")), ...body);
  }

  load();
  root.repaint = paint;
  return root;
}
