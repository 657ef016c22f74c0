// Captions: finals appended, interim text in grey (one line per speaker, replaced as
// it grows); each user may hide them (remembered on this device).
"use strict";

import { $, el, show } from "./dom.js";
import { t } from "./strings.js";

const KEEP = 200;
const STORE_KEY = "yizhan.room.captions";

export class CaptionsPanel {
  /**
   * @param {HTMLElement} root  the #captions section
   * @param {object} hooks  onLatest(member_id, text); onVisibility(visible)
   */
  constructor(root, { onLatest, onVisibility }) {
    this.root = root;
    this.onLatest = onLatest;
    this.onVisibility = onVisibility;
    this.lines = $("#caption-lines", root);
    this.interim = $("#caption-interim", root);
    this.toggle = $("#captions-toggle", root);
    this.body = $("#captions-body", root);
    this.empty = $("#captions-empty", root);
    this.pending = new Map(); // member id -> interim <li>
    let visible = true;
    try {
      visible = window.localStorage.getItem(STORE_KEY) !== "hidden";
    } catch (error) {
      visible = true;
    }
    this.toggle.addEventListener("click", () => this.setVisible(!this.visible));
    this.setVisible(visible);
  }

  setVisible(visible) {
    this.visible = visible;
    show(this.body, visible);
    this.toggle.textContent = visible ? t("hide_captions") : t("show_captions");
    this.toggle.setAttribute("aria-pressed", visible ? "false" : "true");
    this.root.classList.toggle("captions--hidden", !visible);
    try {
      window.localStorage.setItem(STORE_KEY, visible ? "shown" : "hidden");
    } catch (error) {
      /* not remembered */
    }
    this.onVisibility(visible);
  }

  add(caption) {
    if (!caption || typeof caption.text !== "string") return;
    const who = caption.seat ? `${caption.seat} ${caption.name}` : caption.name;
    show(this.empty, false);
    if (caption.final) {
      const old = this.pending.get(caption.member_id);
      if (old) old.remove();
      this.pending.delete(caption.member_id);
      if (caption.text.trim()) {
        const atBottom = this.lines.scrollHeight - this.lines.scrollTop - this.lines.clientHeight < 40;
        this.lines.append(
          el("li", { class: "caption", dataset: { memberId: caption.member_id } }, [
            el("span", { class: "caption-who", text: who }),
            el("span", { class: "caption-text", text: caption.text }),
          ]),
        );
        while (this.lines.children.length > KEEP) this.lines.firstElementChild.remove();
        if (atBottom) this.lines.scrollTop = this.lines.scrollHeight;
      }
    } else {
      let line = this.pending.get(caption.member_id);
      if (!line) {
        line = el("li", { class: "caption caption--interim", dataset: { memberId: caption.member_id } }, [
          el("span", { class: "caption-who" }),
          el("span", { class: "caption-text" }),
        ]);
        this.pending.set(caption.member_id, line);
        this.interim.append(line);
      }
      $(".caption-who", line).textContent = who;
      $(".caption-text", line).textContent = caption.text;
    }
    this.onLatest(caption.member_id, caption.text);
  }
}
