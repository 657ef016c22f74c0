// Page furniture: toasts, the confirm dialog, the header (hearing state, lock,
// recording banner), the control bar, side-panel tabs and phone views, and the
// full-page screens (waiting, ended, connection lost).
"use strict";

import { $, $all, el, show } from "./dom.js";
import { setQuality } from "./tiles.js";
import { t } from "./strings.js";

const TOAST_MS = 7000;

export class Toasts {
  constructor(root) {
    this.root = root;
  }

  /**
   * @param {string} text
   * @param {object} options  kind: "info"|"error"; action: {label, run}
   */
  show(text, { kind = "info", action = null, sticky = false } = {}) {
    const close = () => toast.remove();
    const toast = el("div", { class: `toast toast--${kind}`, attrs: { role: kind === "error" ? "alert" : "status" } }, [
      el("p", { text }),
      action
        ? el("button", {
            type: "button",
            class: "small",
            text: action.label,
            dataset: { action: action.name || "toast-action" },
            on: {
              click: () => {
                close();
                action.run();
              },
            },
          })
        : null,
      el("button", { type: "button", class: "toast-close link", text: "×", attrs: { "aria-label": t("dismiss") }, on: { click: close } }),
    ]);
    this.root.append(toast);
    while (this.root.children.length > 4) this.root.firstElementChild.remove();
    if (!sticky) window.setTimeout(close, action ? TOAST_MS * 2 : TOAST_MS);
    return close;
  }

  error(text) {
    return this.show(text, { kind: "error" });
  }
}

/** A modal confirmation (<dialog>); resolves with true/false, or the chosen option's value. */
export class Confirm {
  constructor(dialog) {
    this.dialog = dialog;
    this.text = $("#confirm-text", dialog);
    this.choiceRow = $("#confirm-choice-row", dialog);
    this.choice = $("#confirm-choice", dialog);
    this.choiceLabel = $("#confirm-choice-label", dialog);
    this.ok = $("[data-action=confirm-ok]", dialog);
    this.cancel = $("[data-action=confirm-cancel]", dialog);
    this.resolve = null;
    this.ok.addEventListener("click", () => this.finish(true));
    this.cancel.addEventListener("click", () => this.finish(false));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      this.finish(false);
    });
  }

  ask(text, { okLabel, choices = null, choiceLabel = "" } = {}) {
    if (this.resolve) this.finish(false);
    this.text.textContent = text;
    this.ok.textContent = okLabel || t("confirm");
    show(this.choiceRow, Boolean(choices));
    this.choice.replaceChildren(...(choices || []).map((c) => el("option", { value: c.value, text: c.label })));
    this.choiceLabel.textContent = choiceLabel;
    return new Promise((resolve) => {
      this.resolve = resolve;
      if (typeof this.dialog.showModal === "function") this.dialog.showModal();
      else this.dialog.setAttribute("open", "");
      (choices ? this.choice : this.cancel).focus();
    });
  }

  finish(ok) {
    const resolve = this.resolve;
    this.resolve = null;
    if (typeof this.dialog.close === "function" && this.dialog.open) this.dialog.close();
    else this.dialog.removeAttribute("open");
    if (resolve) resolve(ok ? (this.choiceRow.hidden ? true : this.choice.value) : false);
  }
}

/** Header: hearing state, lock, recording banner. */
export function renderHeader(root, state) {
  const hearing = $("#hearing-state", root);
  if (state.hearing) {
    hearing.dataset.state = state.hearing.state;
    hearing.textContent = t(`hearing_${state.hearing.state}`);
    show(hearing, true);
  } else {
    show(hearing, false);
  }
  show($("#room-locked", root), state.locked);
  // what the recorder does now: on, paused (a hearing's recess), or off (not started)
  const recording = state.recording_state || "off";
  const banner = $("#rec-banner", root);
  banner.classList.toggle("rec-banner--paused", recording === "paused");
  $(".rec-text", banner).textContent = t(recording === "paused" ? "rec_paused" : "rec_on");
  show(banner, state.recording && !state.ended && recording !== "off");
}

/** The self controls' pressed/label state. */
export function renderControls(root, { micOn, cameraOn, sharing, hand, mutedByHost, videoStopped, canShare, quality }) {
  const mic = $("#ctl-mic", root);
  mic.setAttribute("aria-pressed", micOn ? "true" : "false");
  $(".ctl-label", mic).textContent = micOn ? t("mic_on_label") : mutedByHost ? t("muted_by_host") : t("mic_off");
  mic.title = micOn ? t("turn_mic_off") : t("turn_mic_on");
  mic.classList.toggle("off", !micOn);
  const cam = $("#ctl-cam", root);
  cam.setAttribute("aria-pressed", cameraOn ? "true" : "false");
  $(".ctl-label", cam).textContent = cameraOn ? t("camera_on_label") : videoStopped ? t("video_stopped_by_host") : t("camera_off");
  cam.title = cameraOn ? t("turn_camera_off") : t("turn_camera_on");
  cam.classList.toggle("off", !cameraOn);
  const screen = $("#ctl-screen", root);
  show(screen, canShare);
  screen.setAttribute("aria-pressed", sharing ? "true" : "false");
  $(".ctl-label", screen).textContent = sharing ? t("stop_sharing") : t("share_screen");
  const handButton = $("#ctl-hand", root);
  handButton.setAttribute("aria-pressed", hand ? "true" : "false");
  $(".ctl-label", handButton).textContent = hand ? t("lower_hand") : t("raise_hand");
  setQuality($("#my-quality", root), quality);
}

/** Side-panel tabs (desktop) and the phone view switcher share one "view". */
export class Views {
  constructor(root, { onChange }) {
    this.root = root;
    this.onChange = onChange;
    this.tabs = $all("[role=tab]", root);
    for (const tab of this.tabs) {
      tab.addEventListener("click", () => this.select(tab.dataset.view));
      tab.addEventListener("keydown", (event) => this.keys(event, tab));
    }
    for (const button of $all(".mobile-tabs button", root)) {
      button.addEventListener("click", () => this.select(button.dataset.view, true));
    }
    this.panel = "people";
  }

  keys(event, tab) {
    const index = this.tabs.indexOf(tab);
    let next = -1;
    if (event.key === "ArrowRight") next = (index + 1) % this.tabs.length;
    if (event.key === "ArrowLeft") next = (index - 1 + this.tabs.length) % this.tabs.length;
    if (next >= 0) {
      event.preventDefault();
      this.tabs[next].focus();
      this.select(this.tabs[next].dataset.view);
    }
  }

  /** view: "stage" | "people" | "chat" | "captions" */
  select(view, fromPhone = false) {
    if (view === "people" || view === "chat") {
      this.panel = view;
      for (const tab of this.tabs) {
        const selected = tab.dataset.view === view;
        tab.setAttribute("aria-selected", selected ? "true" : "false");
        tab.tabIndex = selected ? 0 : -1;
        show(document.getElementById(tab.getAttribute("aria-controls")), selected);
      }
    }
    const phoneView = this.root.dataset.view;
    if (fromPhone || phoneView === "people" || phoneView === "chat") this.root.dataset.view = view;
    for (const button of $all(".mobile-tabs button", this.root)) {
      button.setAttribute("aria-current", button.dataset.view === this.root.dataset.view ? "true" : "false");
    }
    this.onChange(view);
  }

  /** Whether a panel is on screen now (phone: the chosen view; wider: the chosen tab). */
  visible(panel) {
    const phone = window.matchMedia("(max-width: 700px)").matches;
    return phone ? this.root.dataset.view === panel : this.panel === panel;
  }
}

/** Which page is showing: prejoin, joining, live, waiting, ended, lost. */
export function setPhase(root, phase) {
  root.dataset.phase = phase;
  show($("#prejoin", root), phase === "prejoin" || phase === "joining");
  show($("#live", root), phase === "live");
  show($("#waiting", root), phase === "waiting");
  show($("#ended", root), phase === "ended" || phase === "lost" || phase === "left");
}

export function showEnded(root, { title, text, rejoin }) {
  $("#ended-title", root).textContent = title;
  $("#ended-text", root).textContent = text || "";
  show($("#rejoin", root), Boolean(rejoin));
}

export function showWaiting(root, state) {
  const witness = state.my_subroom === "witness_wait";
  $("#waiting-title", root).textContent = witness ? t("witness_wait_title") : t("lobby_title");
  $("#waiting-text", root).textContent = witness ? t("witness_wait_text") : t("lobby_text");
}

/** The reconnecting / connection state strip above the controls. */
export function setConnection(root, status) {
  const strip = $("#conn-state", root);
  strip.dataset.status = status;
  const text = status === "reconnecting" ? t("reconnecting") : status === "connecting" ? t("connecting") : "";
  strip.textContent = text;
  show(strip, Boolean(text));
}
