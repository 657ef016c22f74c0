// Pre-join check: camera and microphone preview, level meter, speaker test, network
// check, device choice, audio-only / receive-only, and the recording consent.
"use strict";

import { $, clear, el, show } from "./dom.js";
import {
  canChooseSpeaker,
  explainMediaError,
  getTrack,
  hasMediaDevices,
  listDevices,
  loadChoices,
  playTestTone,
  saveChoices,
  stopTracks,
  watchLevel,
} from "./media.js";
import { t } from "./strings.js";

const PINGS = 4;

/** Rate a round-trip time in ms. */
export function rateRtt(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "poor";
  if (ms < 150) return "good";
  if (ms < 400) return "fair";
  return "poor";
}

async function measureHttp() {
  const times = [];
  for (let i = 0; i < PINGS; i += 1) {
    const started = performance.now();
    const response = await fetch("/healthz", { cache: "no-store", credentials: "same-origin" });
    await response.text();
    if (!response.ok) throw new Error(`healthz ${response.status}`);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

export class PreJoin {
  /**
   * @param {HTMLElement} root  the #prejoin section
   * @param {object} options  recording: bool; signalling: Signalling (already connecting)
   */
  constructor(root, { recording, signalling }) {
    this.root = root;
    this.recording = recording;
    this.signalling = signalling;
    this.mic = null;
    this.camera = null;
    this.stopMeter = () => {};
    this.choices = loadChoices();
    this.networkLevel = "unknown";
    this.resolveJoin = null;
    this.video = $("#pj-video", root);
    this.cameraSelect = $("#pj-camera", root);
    this.micSelect = $("#pj-mic", root);
    this.speakerSelect = $("#pj-speaker", root);
    this.meter = $("#pj-level", root);
    this.errorBox = $("#pj-device-error", root);
    this.audioOnly = $("#pj-audio-only", root);
    this.micOn = $("#pj-mic-on", root);
    this.consent = $("#pj-consent", root);
    this.joinButton = $("#pj-join", root);
    this.receiveOnlyButton = $("#pj-receive-only", root);
    this.retryButton = $("#pj-retry-devices", root);
    this.status = $("#pj-status", root);
    this._onDeviceChange = () => this.fillDevices().catch(() => {});
  }

  /** Set up the checks (once). */
  start() {
    show($("#pj-speaker-row", this.root), canChooseSpeaker());
    show($("#pj-speaker-note", this.root), !canChooseSpeaker());
    this.cameraSelect.addEventListener("change", () => this.switchDevice("video"));
    this.micSelect.addEventListener("change", () => this.switchDevice("audio"));
    this.speakerSelect.addEventListener("change", () => this.remember());
    $("#pj-tone", this.root).addEventListener("click", () => this.testSpeaker());
    $("#pj-network-retry", this.root).addEventListener("click", () => this.checkNetwork());
    this.audioOnly.addEventListener("change", () => this.applyAudioOnly());
    this.retryButton.addEventListener("click", () => this.acquire());
    if (this.consent) this.consent.addEventListener("change", () => this.updateJoinable());
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
      navigator.mediaDevices.addEventListener("devicechange", this._onDeviceChange);
    }
    const press = (receiveOnly) => {
      if (this.recording && !(this.consent && this.consent.checked)) {
        this.setStatus(t("consent_required"));
        if (this.consent) this.consent.focus();
        return;
      }
      if (this.resolveJoin) {
        const resolve = this.resolveJoin;
        this.resolveJoin = null;
        resolve(this.finish(receiveOnly));
      }
    };
    this.joinButton.addEventListener("click", () => press(false));
    this.receiveOnlyButton.addEventListener("click", () => press(true));
    this.updateJoinable();
    this.acquire();
    this.checkNetwork();
  }

  /** Resolves with the join choices the next time the user presses Join. */
  waitForJoin() {
    this.setBusy(false);
    if (!this.video.srcObject) this.attachPreview();
    return new Promise((resolve) => {
      this.resolveJoin = resolve;
    });
  }

  setBusy(busy) {
    this.root.setAttribute("aria-busy", busy ? "true" : "false");
    if (busy) {
      this.joinButton.disabled = true;
      this.receiveOnlyButton.disabled = true;
      this.setStatus(t("joining"));
    } else {
      this.updateJoinable();
    }
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  updateJoinable() {
    const consented = !this.recording || (this.consent && this.consent.checked);
    this.joinButton.disabled = !consented;
    this.receiveOnlyButton.disabled = !consented;
  }

  showError(text) {
    this.errorBox.textContent = text || "";
    show(this.errorBox, Boolean(text));
  }

  async acquire() {
    this.showError("");
    show(this.retryButton, false);
    if (!hasMediaDevices()) {
      this.showError(t("err_insecure"));
      show(this.receiveOnlyButton, true);
      return;
    }
    this.setStatus(t("checking_devices"));
    let problem = "";
    if (!this.mic) {
      try {
        this.mic = await getTrack("audio", this.choices.mic);
      } catch (error) {
        problem = explainMediaError(error, "audio");
      }
    }
    if (!this.camera && !this.audioOnly.checked) {
      try {
        this.camera = await getTrack("video", this.choices.camera);
      } catch (error) {
        const text = explainMediaError(error, "video");
        problem = problem ? `${problem} ${text}` : text;
        if (this.mic) {
          // The microphone works: offer to go on with audio only.
          this.audioOnly.checked = true;
        }
      }
    }
    this.attachPreview();
    await this.fillDevices();
    if (problem) {
      this.showError(`${problem} ${this.mic ? t("can_join_audio_only") : t("can_join_receive_only")}`);
      show(this.retryButton, true);
    }
    show(this.receiveOnlyButton, !this.mic);
    this.micOn.disabled = !this.mic;
    this.setStatus("");
  }

  attachPreview() {
    const tracks = [this.camera].filter(Boolean);
    this.video.srcObject = tracks.length ? new MediaStream(tracks) : null;
    show(this.video, tracks.length > 0);
    show($("#pj-novideo", this.root), tracks.length === 0);
    this.stopMeter();
    this.meter.value = 0;
    this.stopMeter = watchLevel(this.mic, (level) => {
      this.meter.value = level;
    });
  }

  async fillDevices() {
    const devices = await listDevices();
    const fill = (select, list, current, fallbackLabel) => {
      clear(select);
      list.forEach((device, index) => {
        select.append(
          el("option", {
            value: device.deviceId,
            text: device.label || `${fallbackLabel} ${index + 1}`,
            selected: device.deviceId === current,
          }),
        );
      });
      select.disabled = list.length === 0;
      if (list.length === 0) select.append(el("option", { value: "", text: t("no_device") }));
    };
    const settingOf = (track) => (track && track.getSettings ? track.getSettings().deviceId : undefined);
    fill(this.cameraSelect, devices.videoinput, settingOf(this.camera) || this.choices.camera, t("camera"));
    fill(this.micSelect, devices.audioinput, settingOf(this.mic) || this.choices.mic, t("microphone"));
    fill(this.speakerSelect, devices.audiooutput, this.choices.speaker, t("speaker"));
  }

  async switchDevice(kind) {
    const select = kind === "audio" ? this.micSelect : this.cameraSelect;
    const old = kind === "audio" ? this.mic : this.camera;
    if (kind === "video" && this.audioOnly.checked) {
      this.remember();
      return;
    }
    try {
      const track = await getTrack(kind, select.value);
      stopTracks(old);
      if (kind === "audio") this.mic = track;
      else this.camera = track;
      this.showError("");
      this.remember();
      this.attachPreview();
    } catch (error) {
      this.showError(explainMediaError(error, kind));
    }
  }

  async applyAudioOnly() {
    if (this.audioOnly.checked) {
      stopTracks(this.camera);
      this.camera = null;
      this.attachPreview();
    } else if (!this.camera) {
      try {
        this.camera = await getTrack("video", this.cameraSelect.value || this.choices.camera);
        this.showError("");
        this.attachPreview();
        await this.fillDevices();
      } catch (error) {
        this.audioOnly.checked = true;
        this.showError(explainMediaError(error, "video"));
      }
    }
  }

  remember() {
    this.choices = {
      camera: this.cameraSelect.value || this.choices.camera,
      mic: this.micSelect.value || this.choices.mic,
      speaker: this.speakerSelect.value || this.choices.speaker,
    };
    saveChoices(this.choices);
  }

  async testSpeaker() {
    const button = $("#pj-tone", this.root);
    button.disabled = true;
    try {
      await playTestTone(this.speakerSelect.value);
      this.setStatus(t("tone_played"));
    } catch (error) {
      this.setStatus(t("tone_failed"));
    } finally {
      window.setTimeout(() => {
        button.disabled = false;
      }, 1300);
    }
  }

  async checkNetwork() {
    const out = $("#pj-network", this.root);
    out.dataset.level = "";
    out.textContent = t("checking");
    let rtt = null;
    try {
      rtt = await measureHttp();
    } catch (error) {
      rtt = null;
    }
    let socketOk = true;
    try {
      await this.signalling.waitConnected(8000);
    } catch (error) {
      socketOk = false;
    }
    const level = socketOk ? rateRtt(rtt) : "poor";
    this.networkLevel = level;
    out.dataset.level = level;
    const label = t(`quality_${level}`);
    if (!socketOk) out.textContent = `${label} · ${t("no_signalling")}`;
    else if (rtt === null) out.textContent = `${label} · ${t("server_unreachable")}`;
    else out.textContent = `${label} · ${t("rtt_ms", { ms: Math.round(rtt) })}`;
  }

  finish(receiveOnly) {
    this.remember();
    this.stopMeter();
    this.stopMeter = () => {};
    this.video.srcObject = null;
    this.setBusy(true);
    if (receiveOnly) {
      stopTracks(this.mic);
      stopTracks(this.camera);
      this.mic = null;
      this.camera = null;
    }
    const mic = this.mic;
    const camera = this.audioOnly.checked ? null : this.camera;
    return {
      mic,
      camera,
      micOn: Boolean(mic) && this.micOn.checked,
      cameraOn: Boolean(camera),
      audioOnly: this.audioOnly.checked || receiveOnly,
      receiveOnly,
      consent: Boolean(this.consent && this.consent.checked),
      speakerId: this.speakerSelect.value || "",
      micId: this.micSelect.value || "",
      cameraId: this.cameraSelect.value || "",
    };
  }

  /** The room took over the tracks: stop watching devices. */
  done() {
    this.resolveJoin = null;
    if (navigator.mediaDevices && navigator.mediaDevices.removeEventListener) {
      navigator.mediaDevices.removeEventListener("devicechange", this._onDeviceChange);
    }
  }
}
