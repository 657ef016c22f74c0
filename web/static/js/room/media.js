// Local devices: getUserMedia with the chosen devices, error explanations, and the
// choices remembered between visits.
"use strict";

import { t } from "./strings.js";

const STORE_KEY = "yizhan.room.devices";

export const VIDEO_CONSTRAINTS = {
  width: { ideal: 640 },
  height: { ideal: 360 },
  frameRate: { ideal: 24, max: 30 },
};

export const AUDIO_CONSTRAINTS = {
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
};

export function hasMediaDevices() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

export function canShareScreen() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
}

export function canChooseSpeaker() {
  return typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;
}

export function loadChoices() {
  try {
    return JSON.parse(window.localStorage.getItem(STORE_KEY) || "{}") || {};
  } catch (error) {
    return {};
  }
}

export function saveChoices(choices) {
  try {
    window.localStorage.setItem(STORE_KEY, JSON.stringify(choices));
  } catch (error) {
    /* private mode: choices are simply not remembered */
  }
}

/** One track of `kind` ("audio" | "video") from the device `deviceId` (or the default). */
export async function getTrack(kind, deviceId) {
  const base = kind === "audio" ? AUDIO_CONSTRAINTS : VIDEO_CONSTRAINTS;
  const constraints = { ...base };
  if (deviceId) constraints.deviceId = { exact: deviceId };
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ [kind]: constraints });
    return stream.getTracks()[0];
  } catch (error) {
    // A remembered device may be gone: fall back to the default one once.
    if (deviceId && (error.name === "OverconstrainedError" || error.name === "NotFoundError")) {
      const stream = await navigator.mediaDevices.getUserMedia({ [kind]: base });
      return stream.getTracks()[0];
    }
    throw error;
  }
}

/** A user-facing explanation of a getUserMedia / getDisplayMedia failure. */
export function explainMediaError(error, kind) {
  const what = kind === "audio" ? t("microphone") : kind === "video" ? t("camera") : t("camera_and_microphone");
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return t("err_denied", { device: what });
    case "NotFoundError":
    case "OverconstrainedError":
      return t("err_not_found", { device: what });
    case "NotReadableError":
    case "AbortError":
      return t("err_in_use", { device: what });
    case "TypeError":
      return t("err_insecure");
    default:
      return t("err_device_generic", { device: what });
  }
}

/** Devices grouped by kind; labels are empty until the user has granted access. */
export async function listDevices() {
  const result = { audioinput: [], videoinput: [], audiooutput: [] };
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return result;
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const device of devices) {
    if (result[device.kind] && device.deviceId !== "communications") result[device.kind].push(device);
  }
  return result;
}

/**
 * A level meter on a track (WebAudio AnalyserNode); `onLevel(0..1)` about 10 times a
 * second.  Returns a stop function.
 */
export function watchLevel(track, onLevel, context) {
  const AudioContextClass = window.AudioContext || window.webkitAudioContext;
  if (!track || !AudioContextClass) return () => {};
  const audio = context || new AudioContextClass();
  const source = audio.createMediaStreamSource(new MediaStream([track]));
  const analyser = audio.createAnalyser();
  analyser.fftSize = 512;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  if (audio.state === "suspended") audio.resume().catch(() => {});
  const timer = window.setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const value of samples) sum += value * value;
    const rms = Math.sqrt(sum / samples.length);
    // Map roughly -60..0 dBFS to 0..1.
    const db = rms > 0 ? 20 * Math.log10(rms) : -100;
    onLevel(Math.max(0, Math.min(1, (db + 60) / 60)));
  }, 100);
  return () => {
    window.clearInterval(timer);
    source.disconnect();
    if (!context) audio.close().catch(() => {});
  };
}

/** Play a short two-note tone on the chosen speaker (setSinkId where supported). */
export async function playTestTone(sinkId) {
  const AudioContextClass = window.AudioContext || window.webkitAudioContext;
  if (!AudioContextClass) return;
  const audio = new AudioContextClass();
  const destination = audio.createMediaStreamDestination();
  const gain = audio.createGain();
  gain.connect(destination);
  const start = audio.currentTime + 0.05;
  [523.25, 659.25].forEach((frequency, index) => {
    const oscillator = audio.createOscillator();
    oscillator.type = "sine";
    oscillator.frequency.value = frequency;
    oscillator.connect(gain);
    oscillator.start(start + index * 0.45);
    oscillator.stop(start + index * 0.45 + 0.4);
  });
  gain.gain.setValueAtTime(0, start);
  gain.gain.linearRampToValueAtTime(0.25, start + 0.05);
  gain.gain.setValueAtTime(0.25, start + 0.8);
  gain.gain.linearRampToValueAtTime(0, start + 0.9);
  const player = new Audio();
  player.srcObject = destination.stream;
  if (sinkId && canChooseSpeaker()) {
    try {
      await player.setSinkId(sinkId);
    } catch (error) {
      console.warn("room: cannot use the chosen speaker", error);
    }
  }
  await player.play();
  window.setTimeout(() => {
    player.pause();
    player.srcObject = null;
    audio.close().catch(() => {});
  }, 1300);
}

/** Stop every track of a stream (or a single track). */
export function stopTracks(streamOrTrack) {
  if (!streamOrTrack) return;
  const tracks = streamOrTrack.getTracks ? streamOrTrack.getTracks() : [streamOrTrack];
  for (const track of tracks) track.stop();
}
