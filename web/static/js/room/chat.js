// Chat panel: history from the join ack, live room:chat messages, the send box.
"use strict";

import { $, clockTime, el, show } from "./dom.js";
import { subroomLabel } from "./people.js";
import { t } from "./strings.js";

export const MAX_CHAT = 2000;
const KEEP = 500;

export class ChatPanel {
  /**
   * @param {HTMLElement} root  the #chat panel
   * @param {object} hooks  onSend(text) -> Promise<message|null>; isVisible() -> bool; onUnread(count)
   */
  constructor(root, { onSend, isVisible, onUnread }) {
    this.root = root;
    this.onSend = onSend;
    this.isVisible = isVisible;
    this.onUnread = onUnread;
    this.list = $("#chat-lines", root);
    this.form = $("#chat-form", root);
    this.text = $("#chat-text", root);
    this.counter = $("#chat-count", root);
    this.disabledNote = $("#chat-disabled", root);
    this.empty = $("#chat-empty", root);
    this.seen = new Set();
    this.unread = 0;
    this.me = "";
    this.subrooms = [];
    this.text.maxLength = MAX_CHAT;
    this.text.addEventListener("input", () => this.count());
    this.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.form.requestSubmit();
      }
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.count();
  }

  count() {
    this.counter.textContent = `${this.text.value.length}/${MAX_CHAT}`;
  }

  setContext(state) {
    this.me = state.me;
    this.subrooms = state.subrooms;
    const waiting = state.my_subroom === "lobby" || state.my_subroom === "witness_wait";
    this.setEnabled(!waiting && !state.ended);
  }

  setEnabled(enabled) {
    this.text.disabled = !enabled;
    $("button[type=submit]", this.form).disabled = !enabled;
    show(this.disabledNote, !enabled);
  }

  setHistory(messages) {
    for (const message of messages || []) this.add(message, true);
  }

  add(message, quiet = false) {
    if (!message || this.seen.has(message.id)) return;
    this.seen.add(message.id);
    const mine = message.member_id === this.me;
    const where = message.subroom && message.subroom !== "main" ? this.subrooms.find((s) => s.id === message.subroom) : null;
    const item = el("li", { class: mine ? "chat-line chat-line--mine" : "chat-line", dataset: { memberId: message.member_id, id: String(message.id) } }, [
      el("p", { class: "chat-meta" }, [
        message.seat ? el("span", { class: "chat-seat", text: message.seat }) : null,
        el("span", { class: "chat-name", text: mine ? t("you") : message.name }),
        where ? el("span", { class: "chat-where", text: subroomLabel(where) }) : null,
        el("time", { class: "chat-time", text: clockTime(message.sent_at), attrs: { datetime: message.sent_at } }),
      ]),
      el("p", { class: "chat-text", text: message.text }),
    ]);
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    this.list.append(item);
    while (this.list.children.length > KEEP) this.list.firstElementChild.remove();
    show(this.empty, false);
    if (atBottom || mine) this.list.scrollTop = this.list.scrollHeight;
    if (!quiet && !mine && !this.isVisible()) {
      this.unread += 1;
      this.onUnread(this.unread);
    }
  }

  markRead() {
    this.unread = 0;
    this.onUnread(0);
    this.list.scrollTop = this.list.scrollHeight;
  }

  async submit() {
    const text = this.text.value.trim();
    if (!text) return;
    if (text.length > MAX_CHAT) return;
    const button = $("button[type=submit]", this.form);
    button.disabled = true;
    try {
      const message = await this.onSend(text);
      if (message) {
        this.text.value = "";
        this.count();
        this.add(message);
      }
    } finally {
      button.disabled = this.text.disabled;
      this.text.focus();
    }
  }
}
