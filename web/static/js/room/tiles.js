// The video grid: one tile per member in my sub-room (camera video or an avatar,
// name, seat and role, mic/camera state, raised hand, connection quality,
// reconnecting state, latest caption), screen shares as large tiles, and one
// hidden <audio> element per remote microphone.
"use strict";

import { $, el, initials, show } from "./dom.js";
import { t } from "./strings.js";

const CAPTION_LINGER_MS = 6000;

/** A "good/fair/poor" signal-bars indicator. */
export function qualityBadge(level) {
  const node = el("span", { class: "quality", attrs: { role: "img" } }, [el("i"), el("i"), el("i")]);
  setQuality(node, level);
  return node;
}

export function setQuality(node, level) {
  const value = level || "unknown";
  node.dataset.level = value;
  const label = t("connection_quality", { level: t(`quality_${value}`) });
  node.setAttribute("aria-label", label);
  node.title = label;
}

export function roleName(role) {
  return t(`role_${role}`);
}

export class TileGrid {
  /**
   * @param {object} nodes  grid, screens, audio (containers)
   * @param {object} hooks  onKeyframe(member_id, source)
   */
  constructor({ grid, screens, audio }, { onKeyframe }) {
    this.grid = grid;
    this.screens = screens;
    this.audioBox = audio;
    this.onKeyframe = onKeyframe;
    this.tiles = new Map(); // key "member:source" -> tile element
    this.audio = new Map(); // member id -> <audio>
    this.remote = new Map(); // "member:source" -> MediaStreamTrack
    this.watched = new WeakSet();
    this.sinkId = "";
    this.state = null;
    this.local = { camera: null, screen: null };
    this.captionTimers = new Map();
    this.showCaptions = true;
    this.speaking = "";
  }

  /** Remote tracks from the Peer, [{member_id, source, track}]. */
  setRemote(list) {
    this.remote = new Map(list.map((item) => [`${item.member_id}:${item.source}`, item.track]));
    for (const item of list) {
      if (!this.watched.has(item.track)) {
        this.watched.add(item.track);
        item.track.addEventListener("mute", () => this.render());
        item.track.addEventListener("unmute", () => this.render());
      }
    }
    this.render();
  }

  setLocal(source, track) {
    this.local[source] = track;
    this.render();
  }

  setState(state) {
    this.state = state;
    this.render();
  }

  /** Members whose tiles are shown: present members of my sub-room when it carries media. */
  visibleMembers() {
    const state = this.state;
    if (!state) return [];
    const mine = state.my_subroom;
    if (mine === "lobby" || mine === "witness_wait") return [];
    return state.members.filter((m) => m.subroom === mine && m.presence !== "left");
  }

  render() {
    const state = this.state;
    if (!state) return;
    const members = this.visibleMembers();
    const wanted = new Set();
    for (const member of members) {
      const isMe = member.id === state.me;
      wanted.add(`${member.id}:camera`);
      this.renderTile(member, "camera", isMe);
      const screenTrack = isMe ? null : this.remote.get(`${member.id}:screen`);
      if (member.screen && screenTrack && !isMe) {
        wanted.add(`${member.id}:screen`);
        this.renderTile(member, "screen", false);
      }
    }
    for (const [key, tile] of this.tiles) {
      if (!wanted.has(key)) {
        const video = $("video", tile);
        if (video) video.srcObject = null;
        tile.remove();
        this.tiles.delete(key);
      }
    }
    this.renderAudio(members);
    const cameraCount = members.length;
    this.grid.dataset.count = String(Math.min(cameraCount, 10));
    const screens = this.screens.children.length;
    show(this.screens, screens > 0);
    this.grid.classList.toggle("grid--strip", screens > 0);
    this.grid.parentElement.classList.toggle("stage--sharing", screens > 0);
  }

  renderTile(member, source, isMe) {
    const key = `${member.id}:${source}`;
    let tile = this.tiles.get(key);
    if (!tile) {
      tile = this.createTile(member, source);
      this.tiles.set(key, tile);
      (source === "screen" ? this.screens : this.grid).append(tile);
    }
    const video = $("video", tile);
    let track = null;
    if (source === "screen") track = this.remote.get(key) || null;
    else if (isMe) track = member.video && !member.video_stopped_by_host ? this.local.camera : null;
    else track = this.remote.get(key) || null;
    const videoOn = source === "screen" || (member.video && !member.video_stopped_by_host);
    const showVideo = Boolean(track) && videoOn && track.readyState === "live" && (isMe || !track.muted);
    if (video.dataset.trackId !== (track ? track.id : "")) {
      video.srcObject = track ? new MediaStream([track]) : null;
      video.dataset.trackId = track ? track.id : "";
      if (track && !isMe) this.onKeyframe(member.id, source);
      if (track) video.play().catch(() => {});
    }
    show(video, showVideo);
    show($(".tile-avatar", tile), !showVideo);
    tile.classList.toggle("tile--self", isMe);
    video.classList.toggle("mirror", isMe && source === "camera");
    tile.dataset.presence = member.presence;
    tile.dataset.role = member.role;
    $(".tile-name", tile).textContent = isMe ? t("you_name", { name: member.name }) : member.name;
    $(".tile-seat", tile).textContent = member.seat || "";
    $(".tile-role", tile).textContent = roleName(member.role);
    $(".tile-avatar span", tile).textContent = initials(member.name);
    if (source === "screen") {
      $(".tile-seat", tile).textContent = t("screen_of", { name: member.name });
      return;
    }
    const badges = $(".tile-badges", tile);
    badges.replaceChildren(
      ...[
        !member.audio || member.muted_by_host
          ? el("li", { class: "badge badge--muted", text: member.muted_by_host ? t("muted_by_host") : t("mic_off") })
          : null,
        !member.video || member.video_stopped_by_host
          ? el("li", { class: "badge badge--nocam", text: member.video_stopped_by_host ? t("video_stopped_by_host") : t("camera_off") })
          : null,
        member.hand ? el("li", { class: "badge badge--hand", text: t("hand_raised") }) : null,
        member.screen ? el("li", { class: "badge badge--screen", text: t("sharing_screen") }) : null,
      ].filter(Boolean),
    );
    setQuality($(".quality", tile), member.quality);
    const status = $(".tile-status", tile);
    status.textContent = member.presence === "reconnecting" ? t("reconnecting") : "";
    show(status, member.presence === "reconnecting");
    tile.classList.toggle("tile--speaking", this.speaking === member.id);
  }

  createTile(member, source) {
    const tile = el(
      "article",
      {
        class: source === "screen" ? "tile tile--screen" : "tile",
        dataset: { memberId: member.id, source },
        attrs: { "aria-label": source === "screen" ? t("screen_of", { name: member.name }) : member.name },
      },
      [
        el("video", { autoplay: true, playsInline: true, muted: true, class: "tile-video", attrs: { playsinline: true } }),
        el("div", { class: "tile-avatar", attrs: { "aria-hidden": "true" } }, [el("span")]),
        el("div", { class: "tile-label" }, [
          el("span", { class: "tile-seat" }),
          el("span", { class: "tile-name" }),
          el("span", { class: "tile-role" }),
        ]),
        source === "screen" ? null : el("ul", { class: "tile-badges" }),
        source === "screen" ? null : qualityBadge("unknown"),
        el("p", { class: "tile-status", hidden: true }),
        el("p", { class: "tile-caption", hidden: true, attrs: { "aria-hidden": "true" } }),
      ],
    );
    const video = $("video", tile);
    video.muted = true; // sound comes from the member's <audio> element
    return tile;
  }

  renderAudio(members) {
    const me = this.state.me;
    const present = new Set(members.filter((m) => m.id !== me).map((m) => m.id));
    for (const [memberId, audio] of this.audio) {
      const track = this.remote.get(`${memberId}:mic`);
      if (!present.has(memberId) || !track) {
        audio.srcObject = null;
        audio.remove();
        this.audio.delete(memberId);
      }
    }
    for (const memberId of present) {
      const track = this.remote.get(`${memberId}:mic`);
      if (!track) continue;
      let audio = this.audio.get(memberId);
      if (!audio) {
        audio = el("audio", { autoplay: true, dataset: { memberId } });
        this.audioBox.append(audio);
        this.audio.set(memberId, audio);
        if (this.sinkId && audio.setSinkId) audio.setSinkId(this.sinkId).catch(() => {});
      }
      if (audio.dataset.trackId !== track.id) {
        audio.srcObject = new MediaStream([track]);
        audio.dataset.trackId = track.id;
        audio.play().catch(() => {});
      }
    }
  }

  /** Play every remote voice on this output device (where the browser allows choosing). */
  setSink(sinkId) {
    this.sinkId = sinkId || "";
    for (const audio of this.audio.values()) {
      if (audio.setSinkId) audio.setSinkId(this.sinkId).catch(() => {});
    }
  }

  /** Retry playback after a user gesture (autoplay rules). */
  resumeAudio() {
    for (const audio of this.audio.values()) audio.play().catch(() => {});
  }

  setSpeaking(memberId) {
    if (this.speaking === memberId) return;
    this.speaking = memberId;
    for (const tile of this.tiles.values()) {
      tile.classList.toggle("tile--speaking", Boolean(memberId) && tile.dataset.memberId === memberId && tile.dataset.source === "camera");
    }
  }

  /** Latest caption line under the speaker's tile; fades after a few seconds. */
  setCaption(memberId, text) {
    const tile = this.tiles.get(`${memberId}:camera`);
    if (!tile) return;
    const line = $(".tile-caption", tile);
    line.textContent = text;
    show(line, this.showCaptions && Boolean(text));
    window.clearTimeout(this.captionTimers.get(memberId));
    this.captionTimers.set(
      memberId,
      window.setTimeout(() => {
        line.textContent = "";
        show(line, false);
      }, CAPTION_LINGER_MS),
    );
  }

  setCaptionsVisible(visible) {
    this.showCaptions = visible;
    for (const tile of this.tiles.values()) {
      const line = $(".tile-caption", tile);
      show(line, visible && Boolean(line.textContent));
    }
  }

  clear() {
    for (const tile of this.tiles.values()) {
      const video = $("video", tile);
      if (video) video.srcObject = null;
      tile.remove();
    }
    this.tiles.clear();
    for (const audio of this.audio.values()) {
      audio.srcObject = null;
      audio.remove();
    }
    this.audio.clear();
  }
}
