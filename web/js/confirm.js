// The in-page "are you sure?" for actions that cannot be undone (issue 12): a native <dialog> opened with
// showModal() (the rest of the page is inert while it is open), instead of window.confirm, which screenshots do not
// show, the page cannot word or style, and screen readers announce differently from the rest of the page.
//
//   if (!(await confirmDialog(t("ed.finalize_confirm"), { title: t("ed.finalize_title"), confirm: t("ed.finalize_yes") }))) return;
//
// The heading says what is asked, the text what will happen (and that it cannot be undone, where true); the confirm
// button carries the action's own words. The focus starts on the cancel button (the safe default) and returns to the
// button that opened the dialog. Escape, the cancel button and closing the dialog in any other way resolve false.
import { h } from "./dom.js";
import { t } from "./i18n.js";

let seq = 0;
let current = null;  // the dialog open now: a second request closes it first (answered "no")

/** Ask before an irreversible action. Resolves true only when the confirm button was pressed. */
export function confirmDialog(text, { title, confirm, cancel, danger = false } = {}) {
  const opener = document.activeElement instanceof HTMLElement && document.activeElement !== document.body
    ? document.activeElement : null;
  const openerId = opener ? opener.id : "";
  if (current) current.close("");
  const n = ++seq;
  return new Promise((resolve) => {
    const no = h("button", { type: "submit", value: "no", id: "confirm-dialog-no", autofocus: true },
      cancel || t("common.cancel"));
    const yes = h("button", { type: "submit", value: "yes", id: "confirm-dialog-yes",
      class: danger ? "danger strong" : "primary" }, confirm || t("confirm.yes"));
    const dlg = h("dialog", { class: "confirm-dialog" + (danger ? " danger-zone" : ""), id: "confirm-dialog",
      "aria-labelledby": `confirm-h-${n}`, "aria-describedby": `confirm-t-${n}`, dataset: { danger: String(danger) } },
      h("form", { method: "dialog" },
        h("h2", { id: `confirm-h-${n}` }, title || t("confirm.title")),
        h("p", { id: `confirm-t-${n}`, class: "prewrap" }, text),
        h("div", { class: "row confirm-buttons" }, no, yes)));
    dlg.addEventListener("close", () => {
      const ok = dlg.returnValue === "yes";
      if (current === dlg) current = null;
      dlg.remove();
      // back to the invoking button; if a re-render replaced it, to its successor with the same id
      const back = opener && opener.isConnected ? opener : (openerId ? document.getElementById(openerId) : null);
      if (back && typeof back.focus === "function") back.focus();
      resolve(ok);
    }, { once: true });
    document.body.append(dlg);
    current = dlg;
    dlg.showModal();
    no.focus();
  });
}
