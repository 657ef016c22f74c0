// The room page: pre-join check, join, media, and everything in the room.
"use strict";

import { $, show } from "./dom.js";
import { CaptionsPanel } from "./captions.js";
import { ChatPanel } from "./chat.js";
import { canShareScreen, explainMediaError, getTrack, watchLevel } from "./media.js";
import { MediaSession } from "./peer.js";
import { PeopleList, isRunner } from "./people.js";
import { PreJoin } from "./prejoin.js";
import { RoomError, Signalling } from "./signalling.js";
import { QualityProbe, remoteAudioLevels } from "./stats.js";
import { TileGrid } from "./tiles.js";
import { t } from "./strings.js";
import {
  Confirm,
  Toasts,
  Views,
  renderControls,
  renderHeader,
  setConnection,
  setPhase,
  showEnded,
  showWaiting,
} from "./ui.js";

const LEVEL_INTERVAL_MS = 250;
const QUALITY_INTERVAL_MS = 4000;
const QUALITY_RESEND_MS = 30000;
const SPEAKING_THRESHOLD = 0.04;
const SPEAKER_HOLD_MS = 1200;
const PAUSE_REASONS = ["recess", "non_public_evidence", "mediation"];

const root = document.getElementById("room");
const config = {
  sessionId: Number(root.dataset.sessionId),
  kind: root.dataset.kind,
  recording: root.dataset.recording === "true",
  host: root.dataset.host === "true",
  guestToken: root.dataset.guestToken || "",
  disputeUrl: root.dataset.disputeUrl || "",
};

const room = {
  signalling: null,
  media: null,
  state: null,
  memberId: "",
  choice: null,
  lastJoinAck: null,
  joined: false,
  finished: false,
  lost: false,
  needsOffer: false,
  micOn: false,
  cameraOn: false,
  sharing: false,
  quality: "unknown",
  qualitySent: { level: "", at: 0 },
  timers: [],
  speaker: { id: "", at: 0 },
  localLevel: 0,
  stopLocalMeter: () => {},
};

// Diagnostic handle for tests and support.
window.yizhanRoom = {
  pc: () => (room.media ? room.media.pc() : null),
  state: () => room.state,
  memberId: () => room.memberId,
  get ready() {
    return Boolean(room.media && room.media.ready);
  },
};

const toasts = new Toasts($("#toasts", root));
const confirm = new Confirm($("#confirm", root));
const tiles = new TileGrid(
  { grid: $("#grid", root), screens: $("#screens", root), audio: $("#remote-audio", root) },
  { onKeyframe: (memberId, source) => requestKeyframe(memberId, source) },
);
const views = new Views(root, {
  onChange: (view) => {
    if (view === "chat") chat.markRead();
  },
});
const people = new PeopleList($("#people-groups", root), { onAction: (action, payload) => hostAction(action, payload) });
const chat = new ChatPanel($("#chat", root), {
  onSend: (text) => sendChat(text),
  isVisible: () => views.visible("chat"),
  onUnread: (count) => {
    for (const badge of [$("#chat-unread", root), $("#chat-unread-phone", root)]) {
      badge.textContent = count > 99 ? "99+" : String(count);
      show(badge, count > 0);
    }
  },
});
const captions = new CaptionsPanel($("#captions", root), {
  onLatest: (memberId, text) => tiles.setCaption(memberId, text),
  onVisibility: (visible) => tiles.setCaptionsVisible(visible),
});

// --- errors -------------------------------------------------------------------

function reportError(error) {
  if (room.finished) return;
  const text = error instanceof RoomError ? error.message : t("err_unexpected");
  if (!(error instanceof RoomError)) console.error("room:", error);
  toasts.error(text);
}

/** Send an acknowledged request; show the server's message on failure. Resolves to the ack or null. */
async function call(event, data, timeoutMs) {
  try {
    return await room.signalling.request(event, data, timeoutMs);
  } catch (error) {
    reportError(error);
    return null;
  }
}

// --- joining --------------------------------------------------------------------

async function join() {
  const choice = room.choice;
  const ack = await room.signalling.request(
    "room:join",
    {
      session_id: config.sessionId,
      consent_recording: choice.consent,
      audio_only: choice.audioOnly,
      audio: room.micOn,
      video: room.cameraOn,
    },
    15000,
  );
  room.memberId = ack.member_id;
  room.joined = true;
  room.lastJoinAck = ack;
  chat.setHistory(ack.chat || []);
  applyState(ack.state);
  return ack;
}

async function boot() {
  if (typeof window.io !== "function") {
    setPhase(root, "prejoin");
    $("#pj-status", root).textContent = t("err_script");
    return;
  }
  room.signalling = new Signalling({
    guestToken: config.guestToken,
    timeoutMessage: t("err_timeout"),
    offlineMessage: t("err_offline"),
  });
  listen(room.signalling);
  setPhase(root, "prejoin");
  const prejoin = new PreJoin($("#prejoin", root), { recording: config.recording, signalling: room.signalling });
  prejoin.start();
  for (;;) {
    room.choice = await prejoin.waitForJoin();
    room.micOn = room.choice.micOn;
    room.cameraOn = room.choice.cameraOn;
    if (room.choice.mic) room.choice.mic.enabled = room.micOn;
    try {
      await room.signalling.waitConnected(10000);
      await join();
      break;
    } catch (error) {
      prejoin.setStatus(error instanceof RoomError ? error.message : t("err_unexpected"));
      if (!(error instanceof RoomError)) console.error("room: join failed", error);
      setPhase(root, "prejoin");
    }
  }
  prejoin.done();
  tiles.setSink(room.choice.speakerId);
  room.media = new MediaSession({ signalling: room.signalling, rejoin: () => join() });
  room.media.local.mic = room.choice.mic;
  room.media.local.camera = room.choice.camera;
  room.media.addEventListener("remote", (event) => tiles.setRemote(event.detail.tracks));
  room.media.addEventListener("status", (event) => mediaStatus(event.detail));
  tiles.setLocal("camera", room.choice.camera);
  watchLocalMic();
  bindControls();
  startTimers();
  renderSelf();
  await firstOffer();
}

async function firstOffer() {
  try {
    const ack = room.lastJoinAck;
    await room.media.connect(ack ? ack.ice_servers : []);
    room.needsOffer = false;
  } catch (error) {
    if (room.finished) return;
    if (error instanceof RoomError && !error.final && inWaitingRoom()) {
      // Some servers take offers only from members who may send media: offer when admitted.
      room.needsOffer = true;
      return;
    }
    console.warn("room: first offer failed", error);
    room.media.reconnect("first-offer");
  }
}

function inWaitingRoom() {
  return Boolean(room.state) && (room.state.my_subroom === "lobby" || room.state.my_subroom === "witness_wait");
}

// --- server events -------------------------------------------------------------------

function listen(signalling) {
  signalling.on("room:state", (state) => applyState(state));
  signalling.on("media:offer", (data) => {
    if (room.media && !room.finished) room.media.handleOffer(data);
  });
  signalling.on("room:chat", (message) => chat.add(message));
  signalling.on("room:caption", (caption) => captions.add(caption));
  signalling.on("room:notice", (notice) => handleNotice(notice));
  signalling.on("error", (error) => console.warn("room: server error", error));
  signalling.onLocal("disconnected", ({ reason }) => {
    if (!room.joined || room.finished || signalling.closedByUs) return;
    console.info("room: signalling dropped:", reason);
    if (room.media) room.media.reconnect(`socket ${reason}`);
  });
  signalling.onLocal("reconnected", () => {
    if (!room.joined || room.finished || !room.media) return;
    room.media.reconnect("socket reconnected");
  });
}

function mediaStatus({ status, error }) {
  if (room.finished) return;
  if (status === "lost") {
    room.lost = true;
    setPhase(root, "lost");
    showEnded(root, { title: t("connection_lost"), text: t("connection_lost_text"), rejoin: true });
    return;
  }
  if (status === "refused") {
    finish("refused", error ? error.message : "");
    return;
  }
  if (status === "connected" && room.lost) {
    room.lost = false;
    updatePhase();
  }
  setConnection(root, status === "connected" ? "" : status);
}

function applyState(state) {
  if (!state || room.finished) return;
  room.state = state;
  if (state.me) room.memberId = state.me;
  if (state.ended) {
    finish("ended", "");
    return;
  }
  renderHeader(root, state);
  tiles.setState(state);
  people.setState(state);
  chat.setContext(state);
  const present = state.members.filter((m) => m.presence !== "left");
  $("#people-count", root).textContent = `(${present.length})`;
  syncWithHost(state);
  renderHostTools(state);
  updatePhase();
  renderSelf();
  if (room.needsOffer && room.media && !inWaitingRoom()) {
    room.needsOffer = false;
    firstOffer();
  }
}

function me() {
  return room.state ? room.state.members.find((m) => m.id === room.state.me) : null;
}

function updatePhase() {
  if (room.finished || room.lost || !room.state) return;
  if (inWaitingRoom()) {
    showWaiting(root, room.state);
    const preview = $("#waiting-video", root);
    const camera = room.media ? room.media.local.camera : room.choice && room.choice.camera;
    if (camera && room.cameraOn) {
      if (!preview.srcObject || preview.srcObject.getVideoTracks()[0] !== camera) preview.srcObject = new MediaStream([camera]);
      show(preview, true);
    } else {
      preview.srcObject = null;
      show(preview, false);
    }
    setPhase(root, "waiting");
  } else {
    $("#waiting-video", root).srcObject = null;
    setPhase(root, "live");
  }
}

/** The host muted me or stopped my video: follow it locally too. */
function syncWithHost(state) {
  const self = state.members.find((m) => m.id === state.me);
  if (!self || !room.media) return;
  if (self.muted_by_host && room.micOn) {
    room.micOn = false;
    if (room.media.local.mic) room.media.local.mic.enabled = false;
  }
  if (self.video_stopped_by_host && room.cameraOn) stopCamera(false);
}

function handleNotice(notice) {
  if (!notice) return;
  switch (notice.kind) {
    case "removed":
      finish("removed", notice.message);
      return;
    case "ended":
      finish("ended", notice.message);
      return;
    case "muted":
      if (room.media && room.media.local.mic) room.media.local.mic.enabled = false;
      room.micOn = false;
      renderSelf();
      toasts.show(notice.message);
      return;
    case "video_stopped":
      stopCamera(false);
      toasts.show(notice.message);
      return;
    case "unmute_requested":
      toasts.show(notice.message, { action: { name: "unmute", label: t("turn_mic_on"), run: () => toggleMic() } });
      return;
    default:
      toasts.show(notice.message);
  }
}

// --- self controls ---------------------------------------------------------------------

function bindControls() {
  $("#ctl-mic", root).addEventListener("click", () => toggleMic());
  $("#ctl-cam", root).addEventListener("click", () => toggleCamera());
  $("#ctl-screen", root).addEventListener("click", () => toggleScreen());
  $("#ctl-hand", root).addEventListener("click", () => {
    const self = me();
    call("room:hand", { raised: !(self && self.hand) });
  });
  for (const button of [$("#ctl-leave", root), $("#waiting-leave", root)]) {
    button.addEventListener("click", () => leave());
  }
  $("#ctl-lock", root).addEventListener("click", (event) => {
    const locked = event.currentTarget.dataset.action === "lock";
    call("room:lock", { locked });
  });
  $("#ctl-end", root).addEventListener("click", async () => {
    if (await confirm.ask(t("confirm_end"), { okLabel: t("end_for_all") })) call("room:end", {});
  });
  for (const button of root.querySelectorAll("[data-action^=hearing_]")) {
    button.addEventListener("click", () => hearingAction(button.dataset.action.slice("hearing_".length)));
  }
  document.addEventListener("click", () => tiles.resumeAudio(), { once: true });
}

async function toggleMic() {
  const media = room.media;
  if (room.micOn) {
    room.micOn = false;
    if (media.local.mic) media.local.mic.enabled = false;
    renderSelf();
    call("room:self", { audio: false });
    return;
  }
  if (!media.local.mic) {
    try {
      const track = await getTrack("audio", room.choice.micId);
      track.enabled = false;
      await media.setLocalTrack("mic", track);
      watchLocalMic();
    } catch (error) {
      toasts.error(explainMediaError(error, "audio"));
      return;
    }
  }
  const ack = await call("room:self", { audio: true });
  if (!ack) return;
  room.micOn = true;
  media.local.mic.enabled = true;
  renderSelf();
}

async function toggleCamera() {
  if (room.cameraOn) {
    stopCamera(true);
    return;
  }
  let track;
  try {
    track = await getTrack("video", room.choice.cameraId);
  } catch (error) {
    toasts.error(explainMediaError(error, "video"));
    return;
  }
  const ack = await call("room:self", { video: true });
  if (!ack) {
    track.stop();
    return;
  }
  await room.media.setLocalTrack("camera", track);
  room.cameraOn = true;
  tiles.setLocal("camera", track);
  renderSelf();
  updatePhase();
}

/** Release the camera (its light goes off); `tell`: report it to the server. */
function stopCamera(tell) {
  const media = room.media;
  if (!media) return;
  const track = media.local.camera;
  media.setLocalTrack("camera", null).catch(() => {});
  if (track) track.stop();
  room.cameraOn = false;
  tiles.setLocal("camera", null);
  renderSelf();
  if (tell) call("room:self", { video: false });
}

async function toggleScreen() {
  if (room.sharing) {
    stopScreen();
    return;
  }
  let track;
  try {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
    track = stream.getVideoTracks()[0];
  } catch (error) {
    if (error && error.name !== "NotAllowedError") toasts.error(explainMediaError(error, "screen"));
    return;
  }
  if ("contentHint" in track) track.contentHint = "detail";
  track.addEventListener("ended", () => stopScreen());
  await room.media.setLocalTrack("screen", track);
  const ack = await call("room:self", { screen: true });
  if (!ack) {
    await room.media.setLocalTrack("screen", null);
    track.stop();
    return;
  }
  room.sharing = true;
  renderSelf();
}

function stopScreen() {
  if (!room.sharing || !room.media) return;
  const track = room.media.local.screen;
  room.sharing = false;
  room.media.setLocalTrack("screen", null).catch(() => {});
  if (track) track.stop();
  renderSelf();
  call("room:self", { screen: false });
}

function renderSelf() {
  const self = me();
  renderControls(root, {
    micOn: room.micOn,
    cameraOn: room.cameraOn,
    sharing: room.sharing,
    hand: Boolean(self && self.hand),
    mutedByHost: Boolean(self && self.muted_by_host),
    videoStopped: Boolean(self && self.video_stopped_by_host),
    canShare: canShareScreen() && (!self || self.role !== "observer"),
    quality: room.quality,
  });
  const observer = self && self.role === "observer";
  for (const id of ["#ctl-mic", "#ctl-cam"]) show($(id, root), !observer);
}

function watchLocalMic() {
  room.stopLocalMeter();
  const track = room.media && room.media.local.mic;
  room.stopLocalMeter = watchLevel(track, (level) => {
    room.localLevel = room.micOn ? level : 0;
  });
}

async function leave() {
  if (room.finished) return;
  stopScreen();
  await room.signalling.request("room:leave", {}, 3000).catch(() => {});
  finish("left", "");
}

/** Stop everything and show the closing screen. */
function finish(kind, message) {
  if (room.finished) return;
  room.finished = true;
  for (const timer of room.timers) window.clearInterval(timer);
  room.stopLocalMeter();
  if (room.media) room.media.stop();
  else if (room.choice) for (const track of [room.choice.mic, room.choice.camera]) if (track) track.stop();
  tiles.clear();
  if (room.signalling) room.signalling.close();
  setConnection(root, "");
  show($("#rec-banner", root), false);
  const titles = {
    ended: t("ended_title"),
    removed: t("removed_title"),
    left: t("left_title"),
    refused: t("refused_title"),
  };
  setPhase(root, "ended");
  showEnded(root, { title: titles[kind] || titles.ended, text: message, rejoin: kind === "left" });
}

// --- host controls -------------------------------------------------------------------

function renderHostTools(state) {
  const runner = isRunner(state);
  show($("#host-tools", root), runner);
  if (!runner) return;
  const lock = $("#ctl-lock", root);
  lock.dataset.action = state.locked ? "unlock" : "lock";
  lock.textContent = state.locked ? t("unlock_room") : t("lock_room");
  lock.setAttribute("aria-pressed", state.locked ? "true" : "false");
  const host = state.my_role === "host";
  show($("#ctl-end", root), host);
  const hearing = state.kind === "hearing" && host && state.hearing;
  show($("#hearing-tools", root), Boolean(hearing));
  if (hearing) {
    const now = state.hearing.state;
    show($("[data-action=hearing_start]", root), now === "waiting");
    show($("[data-action=hearing_pause]", root), now === "in_session");
    show($("[data-action=hearing_resume]", root), now === "paused");
    show($("[data-action=hearing_close]", root), now === "in_session" || now === "paused");
  }
}

async function hearingAction(action) {
  if (action === "pause") {
    const reason = await confirm.ask(t("confirm_pause"), {
      okLabel: t("hearing_pause"),
      choiceLabel: t("pause_reason"),
      choices: PAUSE_REASONS.map((value) => ({ value, label: t(`reason_${value}`) })),
    });
    if (reason) call("hearing:action", { action, reason });
    return;
  }
  if (action === "close" && !(await confirm.ask(t("confirm_close_hearing"), { okLabel: t("hearing_close") }))) return;
  call("hearing:action", { action });
}

const HOST_EVENTS = {
  admit: ["room:admit", (p) => ({ member_id: p.member_id })],
  admit_all: ["room:admit", () => ({ all: true })],
  to_lobby: ["room:to_lobby", (p) => ({ member_id: p.member_id })],
  mute: ["room:mute", (p) => ({ member_id: p.member_id })],
  unmute_request: ["room:unmute_request", (p) => ({ member_id: p.member_id })],
  stop_video: ["room:stop_video", (p) => ({ member_id: p.member_id })],
  remove: ["room:remove", (p) => ({ member_id: p.member_id })],
  call: ["room:move", (p) => ({ member_ids: p.member_ids, to: "main" })],
  to_main: ["room:move", (p) => ({ member_ids: p.member_ids, to: "main" })],
  move: ["room:move", (p) => ({ member_ids: p.member_ids, to: p.to })],
  move_selected: ["room:move", (p) => ({ member_ids: p.member_ids, to: p.to })],
  caucus: ["room:caucus", (p) => ({ member_ids: p.member_ids, record: Boolean(p.record) })],
  caucus_record: ["room:caucus_record", (p) => ({ subroom: p.subroom, record: p.record })],
};

async function hostAction(action, payload) {
  const entry = HOST_EVENTS[action];
  if (!entry) return false;
  if (action === "remove" && !(await confirm.ask(t("confirm_remove", { name: payload.name }), { okLabel: t("remove") }))) {
    return false;
  }
  if ((action === "caucus" || action === "move_selected") && payload.member_ids.length === 0) return false;
  const [event, shape] = entry;
  const ack = await call(event, shape(payload));
  return Boolean(ack);
}

// --- chat, keyframes ---------------------------------------------------------------------

async function sendChat(text) {
  const ack = await call("chat:send", { text });
  return ack ? ack.message : null;
}

const keyframeAsked = new Map();
function requestKeyframe(memberId, source) {
  const key = `${memberId}:${source}`;
  const now = Date.now();
  if (now - (keyframeAsked.get(key) || 0) < 1000) return;
  keyframeAsked.set(key, now);
  if (room.signalling && room.joined && !room.finished) room.signalling.send("media:keyframe", { member_id: memberId, source });
}

// --- timers: active speaker, connection quality ------------------------------------------

function startTimers() {
  const probe = new QualityProbe();
  let levelBusy = false;
  room.timers.push(
    window.setInterval(async () => {
      const peer = room.media && room.media.peer;
      if (levelBusy || !peer || peer.closed) return;
      levelBusy = true;
      try {
        const levels = await remoteAudioLevels(peer.pc, peer.remoteTracks());
        if (room.memberId) levels.set(room.memberId, room.localLevel > 0.35 ? room.localLevel / 4 : 0);
        pickSpeaker(levels);
      } catch (error) {
        /* a closing connection: next tick */
      } finally {
        levelBusy = false;
      }
    }, LEVEL_INTERVAL_MS),
  );
  room.timers.push(
    window.setInterval(async () => {
      const peer = room.media && room.media.peer;
      if (!peer || peer.closed) return;
      try {
        const { level } = await probe.measure(peer.pc);
        if (level === "unknown") return;
        room.quality = level;
        renderSelf();
        const now = Date.now();
        if (level !== room.qualitySent.level || now - room.qualitySent.at > QUALITY_RESEND_MS) {
          room.qualitySent = { level, at: now };
          room.signalling.send("media:quality", { level });
        }
      } catch (error) {
        /* next tick */
      }
    }, QUALITY_INTERVAL_MS),
  );
}

function pickSpeaker(levels) {
  let best = "";
  let loudest = SPEAKING_THRESHOLD;
  for (const [memberId, level] of levels) {
    if (level > loudest) {
      loudest = level;
      best = memberId;
    }
  }
  const now = Date.now();
  if (best) {
    room.speaker = { id: best, at: now };
    tiles.setSpeaking(best);
  } else if (room.speaker.id && now - room.speaker.at > SPEAKER_HOLD_MS) {
    room.speaker = { id: "", at: now };
    tiles.setSpeaking("");
  }
}

// --- page lifetime ---------------------------------------------------------------------------

$("#rejoin", root).addEventListener("click", () => {
  if (room.lost && room.media && !room.finished) {
    room.lost = false;
    setPhase(root, "live");
    room.media.reconnect("manual");
  } else {
    window.location.reload();
  }
});

window.addEventListener("pagehide", () => {
  if (room.joined && !room.finished && room.signalling && room.signalling.connected) {
    room.signalling.socket.emit("room:leave", {});
  }
});

views.select("people");
views.select("stage", true);
boot().catch((error) => {
  console.error("room: start-up failed", error);
  toasts.error(t("err_unexpected"));
});
