// Text chat over Socket.IO (chat:send / chat:message). Inside a caucus the server keeps messages private.
import { h } from "./dom.js";
import { t, getLang } from "./i18n.js";
import { call } from "./socket.js";
import { explain } from "./errors.js";

export class Chat {
  constructor(getSocket) {
    this.getSocket = getSocket;
    this.messages = [];
    this.list = h("ol", { class: "chat-list", "aria-live": "polite", "aria-relevant": "additions" });
    this.input = h("input", { type: "text", maxlength: "2000", autocomplete: "off" });
    this.err = h("p", { class: "error", role: "alert", hidden: true });
    this.form = h("form", { class: "chat-form", onsubmit: (e) => { e.preventDefault(); this.send(); } },
      this.input, h("button", { type: "submit" }, ""));
    this.root = h("section", { class: "chat" }, h("h3", {}, ""), this.list, this.err, this.form);
    this.paint();
  }

  /** Re-apply translated labels (after a language switch). */
  paint() {
    this.root.setAttribute("aria-label", t("chat.title"));
    this.root.querySelector("h3").textContent = t("chat.title");
    this.input.setAttribute("aria-label", t("chat.input"));
    this.input.placeholder = t("chat.input");
    this.form.querySelector("button").textContent = t("common.send");
    this.list.replaceChildren(...this.messages.map((m) => this._item(m)));
  }

  add(msg) {
    this.messages.push(msg);
    if (this.messages.length > 500) this.messages.shift();
    this.list.append(this._item(msg));
    this.list.scrollTop = this.list.scrollHeight;
  }

  _item(m) {
    const time = new Date(m.at).toLocaleTimeString(getLang() === "en" ? "en-GB" : "zh-CN", { timeStyle: "short" });
    return h("li", { class: m.private ? "private" : "" },
      h("span", { class: "who" }, m.name), " ", h("time", { datetime: m.at }, time),
      m.private ? h("span", { class: "tag warn" }, t("chat.private")) : null,
      h("div", { class: "text" }, m.text));
  }

  async send() {
    const text = this.input.value.trim();
    if (!text) return;
    this.err.hidden = true;
    try {
      await call(this.getSocket(), "chat:send", { text });
      this.input.value = "";
    } catch (err) {
      this.err.textContent = explain(err);
      this.err.hidden = false;
    }
  }
}
