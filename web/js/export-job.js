// An export of a recording as a job (issue 14 item 5): the server prepares the playable file on its task queue;
// the page shows the progress (polling GET /api/exports/{job}) and offers the download when it is ready. A ready
// export is deleted after the server's keeping time: the job then reads `expired` (prepare it again).
// Used by the console (case view) and the court portal (application view).
import { h } from "./dom.js";
import { t, has } from "./i18n.js";
import * as http from "./api.js";
import { explain } from "./errors.js";

const POLL_MS = 1000;

/** A button that starts the export (reason from `reasonOf()`, logged) and then shows its progress and the download. */
export function exportControl(recordingId, reasonOf, { label = "exports.start" } = {}) {
  const status = h("span", { class: "muted export-status", role: "status", "aria-live": "polite" });
  const bar = h("progress", { max: "100", value: "0", hidden: true, class: "export-progress" });
  const link = h("a", { class: "button small export-download", hidden: true }, t("exports.download"));
  const button = h("button", { type: "button", class: "small export-start", onclick: () => start() }, t(label));
  const root = h("span", { class: "row export-job", dataset: { recording: String(recordingId) } }, button, bar, status, link);

  // A page left open past the keeping time: the click asks first, so a person sees "expired; prepare it again"
  // in their language instead of the server's 410 JSON; a ready export downloads on the same click.
  link.addEventListener("click", async (ev) => {
    if (link.dataset.checked === "1") { delete link.dataset.checked; return; } // the download itself
    ev.preventDefault();
    try {
      const { job } = await http.get(`/api/exports/${encodeURIComponent(link.dataset.job)}`);
      show(job);
      if (job.status === "done") { link.dataset.checked = "1"; link.click(); }
    } catch (e) {
      status.textContent = explain(e);
    }
  });

  function show(job) {
    root.dataset.status = job.status;
    bar.hidden = !(job.status === "queued" || job.status === "running");
    bar.value = Math.round((job.progress || 0) * 100);
    if (job.status === "queued") status.textContent = t("exports.queued");
    else if (job.status === "running") status.textContent = t("exports.running", { pct: Math.round((job.progress || 0) * 100) });
    else if (job.status === "done") {
      status.textContent = t("exports.done", { mb: ((job.bytes || 0) / 1048576).toFixed(1) });
      link.href = `/api/exports/${encodeURIComponent(job.id)}/file`;
      link.dataset.job = job.id;
      link.hidden = false;
      button.disabled = false;
    } else if (job.status === "expired") { // kept export_keep_days after it was ready, then deleted (server side)
      status.textContent = t("exports.expired");
      link.hidden = true;
      button.disabled = false;
    } else {
      const why = has("exports.error." + job.error) ? t("exports.error." + job.error) : t("exports.error.other");
      status.textContent = t("exports.failed", { reason: why });
      button.disabled = false;
    }
  }

  async function poll(id) {
    try {
      const { job } = await http.get(`/api/exports/${encodeURIComponent(id)}`);
      show(job);
      if (job.status === "queued" || job.status === "running") setTimeout(() => poll(id), POLL_MS);
    } catch (e) {
      status.textContent = explain(e);
      button.disabled = false;
    }
  }

  async function start() {
    const reason = reasonOf();
    if (!reason) return;
    button.disabled = true;
    link.hidden = true;
    try {
      const { job } = await http.post(`/api/recordings/${encodeURIComponent(recordingId)}/exports`, { reason });
      show(job);
      setTimeout(() => poll(job.id), POLL_MS);
    } catch (e) {
      status.textContent = explain(e);
      button.disabled = false;
    }
  }
  return root;
}
