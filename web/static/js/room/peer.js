// The member's RTCPeerConnection with the server: client-first offer with three
// transceivers (mic, camera, screen), server-initiated renegotiation, trickle ICE,
// the TrackMap (mid -> member and source), and reconnection with a fresh connection.
"use strict";

import { RoomError } from "./signalling.js";
import { sleep } from "./dom.js";

const SOURCES = ["mic", "camera", "screen"];
const RECONNECT_WINDOW_MS = 30000;
const DISCONNECTED_GRACE_MS = 15000;
const CAMERA_MAX_BITRATE = 900000;
const SCREEN_MAX_BITRATE = 1500000;

function preferCodecs(transceiver, kind) {
  if (typeof RTCRtpReceiver === "undefined" || !RTCRtpReceiver.getCapabilities) return;
  if (typeof transceiver.setCodecPreferences !== "function") return;
  const capabilities = RTCRtpReceiver.getCapabilities(kind);
  if (!capabilities) return;
  const wanted = kind === "audio" ? ["audio/opus"] : ["video/vp8"];
  // Retransmission (rtx) carries the chosen codec only; it is not a second video codec.
  const keep = kind === "video" ? [...wanted, "video/rtx"] : wanted;
  const codecs = capabilities.codecs.filter((codec) => keep.includes(codec.mimeType.toLowerCase()));
  if (!codecs.some((codec) => wanted.includes(codec.mimeType.toLowerCase()))) return;
  try {
    transceiver.setCodecPreferences(codecs);
  } catch (error) {
    console.warn("room: setCodecPreferences failed", error);
  }
}

/** One RTCPeerConnection's lifetime.  A reconnection makes a new Peer. */
export class Peer {
  constructor({ iceServers, signalling, tracks, generation, onRemote, onIceState }) {
    this.signalling = signalling;
    this.generation = generation;
    this.onRemote = onRemote;
    this.onIceState = onIceState;
    this.trackMap = {};
    this.pendingIce = [];
    this.offerAcked = false;
    this.closed = false;
    this.chain = Promise.resolve();
    this.pc = new RTCPeerConnection({ iceServers: iceServers || [], bundlePolicy: "max-bundle" });
    this.transceivers = {
      mic: this.pc.addTransceiver(tracks.mic || "audio", { direction: "sendrecv" }),
      camera: this.pc.addTransceiver(tracks.camera || "video", {
        direction: "sendrecv",
        sendEncodings: [{ maxBitrate: CAMERA_MAX_BITRATE }],
      }),
      screen: this.pc.addTransceiver(tracks.screen || "video", {
        direction: "sendonly",
        sendEncodings: [{ maxBitrate: SCREEN_MAX_BITRATE }],
      }),
    };
    preferCodecs(this.transceivers.mic, "audio");
    preferCodecs(this.transceivers.camera, "video");
    preferCodecs(this.transceivers.screen, "video");
    this.pc.addEventListener("icecandidate", (event) => this.sendCandidate(event.candidate));
    this.pc.addEventListener("iceconnectionstatechange", () => {
      if (!this.closed) this.onIceState(this, this.pc.iceConnectionState);
    });
    this.pc.addEventListener("track", () => this.publishRemote());
  }

  /** Offer, send it with the mid -> source map, apply the server's answer. */
  start() {
    return this.serially(async () => {
      const offer = await this.pc.createOffer();
      await this.pc.setLocalDescription(offer);
      const sources = {};
      for (const source of SOURCES) {
        const mid = this.transceivers[source].mid;
        if (mid !== null) sources[mid] = source;
      }
      const reply = await this.signalling.request(
        "media:offer",
        { sdp: this.pc.localDescription.sdp, sources },
        15000,
      );
      if (this.closed) return;
      await this.pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
      this.trackMap = reply.tracks || {};
      this.offerAcked = true;
      this.flushIce();
      this.publishRemote();
    });
  }

  /** A server-initiated renegotiation: answer it with the same revision. */
  handleOffer({ sdp, revision, tracks }) {
    return this.serially(async () => {
      if (this.closed) return;
      await this.pc.setRemoteDescription({ type: "offer", sdp });
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription(answer);
      this.trackMap = tracks || {};
      this.publishRemote();
      await this.signalling.request("media:answer", { sdp: this.pc.localDescription.sdp, revision });
    });
  }

  serially(task) {
    const run = this.chain.then(task);
    this.chain = run.catch(() => {});
    return run;
  }

  sendCandidate(candidate) {
    const data = candidate
      ? { candidate: { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex } }
      : { candidate: null };
    if (!this.offerAcked) {
      this.pendingIce.push(data);
      return;
    }
    if (!this.closed) this.signalling.send("media:ice", data);
  }

  flushIce() {
    const queued = this.pendingIce;
    this.pendingIce = [];
    for (const data of queued) this.signalling.send("media:ice", data);
  }

  /** Tell the room which remote track belongs to whom, after every description change. */
  publishRemote() {
    if (this.closed) return;
    this.onRemote(this, this.remoteTracks());
  }

  /** [{member_id, source, track, mid, receiver}] for the server's sending m-lines. */
  remoteTracks() {
    const list = [];
    for (const transceiver of this.pc.getTransceivers()) {
      const info = transceiver.mid !== null ? this.trackMap[transceiver.mid] : undefined;
      if (!info || transceiver.stopped) continue;
      list.push({
        member_id: info.member_id,
        source: info.source,
        track: transceiver.receiver.track,
        mid: transceiver.mid,
        receiver: transceiver.receiver,
      });
    }
    return list;
  }

  async replaceTrack(source, track) {
    const transceiver = this.transceivers[source];
    if (transceiver && !this.closed) await transceiver.sender.replaceTrack(track || null);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.pc.close(); // the local tracks stay alive for the next connection
  }
}

/**
 * Local tracks plus the current Peer; rebuilds the Peer on ICE failure or a socket
 * reconnection (re-joining first), with back-off for up to 30 s.
 *
 * Events (CustomEvent detail): "status" {status: "connecting"|"connected"|"reconnecting"|"lost"|"refused", error?},
 * "remote" {tracks}, "ready" {}.
 */
export class MediaSession extends EventTarget {
  constructor({ signalling, rejoin }) {
    super();
    this.signalling = signalling;
    this.rejoin = rejoin;
    this.local = { mic: null, camera: null, screen: null };
    this.peer = null;
    this.generation = 0;
    this.ready = false;
    this.reconnecting = false;
    this.stopped = false;
    this.disconnectTimer = 0;
    this.status = "connecting";
  }

  setStatus(status, error) {
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: { status, error } }));
  }

  pc() {
    return this.peer ? this.peer.pc : null;
  }

  /** Build a fresh Peer and negotiate; resolves once the server's answer is applied. */
  async connect(iceServers) {
    if (this.peer) this.peer.close();
    this.generation += 1;
    const peer = new Peer({
      iceServers,
      signalling: this.signalling,
      tracks: this.local,
      generation: this.generation,
      onRemote: (source, tracks) => {
        if (source === this.peer) this.dispatchEvent(new CustomEvent("remote", { detail: { tracks } }));
      },
      onIceState: (source, state) => this.iceState(source, state),
    });
    this.peer = peer;
    await peer.start();
    if (!this.ready) {
      this.ready = true;
      this.dispatchEvent(new CustomEvent("ready", { detail: {} }));
    }
    return peer;
  }

  handleOffer(data) {
    const peer = this.peer;
    if (!peer) return;
    peer.handleOffer(data).catch((error) => {
      if (peer !== this.peer || this.stopped) return;
      console.warn("room: cannot apply the server's offer", error);
      // A description we cannot apply leaves the two sides out of step: start afresh.
      this.reconnect("renegotiation");
    });
  }

  iceState(peer, state) {
    if (peer !== this.peer || this.stopped) return;
    window.clearTimeout(this.disconnectTimer);
    if (state === "connected" || state === "completed") {
      if (!this.reconnecting) this.setStatus("connected");
    } else if (state === "failed") {
      this.reconnect("ice-failed");
    } else if (state === "disconnected") {
      // Often recovers by itself (a Wi-Fi hiccup): wait, and start afresh only if it does not.
      this.disconnectTimer = window.setTimeout(() => {
        if (peer === this.peer && peer.pc.iceConnectionState === "disconnected") this.reconnect("ice-disconnected");
      }, DISCONNECTED_GRACE_MS);
    }
  }

  /** Re-join and renegotiate with back-off until connected or 30 s have passed. */
  async reconnect(reason) {
    if (this.reconnecting || this.stopped) return;
    this.reconnecting = true;
    console.info("room: reconnecting:", reason);
    this.setStatus("reconnecting");
    if (this.peer) this.peer.close();
    const deadline = Date.now() + RECONNECT_WINDOW_MS;
    let delay = 500;
    try {
      while (!this.stopped && Date.now() < deadline) {
        try {
          if (!this.signalling.connected) {
            this.signalling.reconnect();
            await this.signalling.waitConnected(Math.max(1000, Math.min(6000, deadline - Date.now())));
          }
          const joined = await this.rejoin();
          if (this.stopped) return;
          const peer = await this.connect(joined.ice_servers);
          await this.waitIce(peer, Math.max(3000, Math.min(12000, deadline - Date.now())));
          this.reconnecting = false;
          this.setStatus("connected");
          return;
        } catch (error) {
          if (error instanceof RoomError && error.final) {
            this.reconnecting = false;
            this.setStatus("refused", error);
            return;
          }
          console.warn("room: reconnection attempt failed", error);
          // Offline: waiting for the socket was the pause; online: back off before retrying.
          if (this.signalling.connected) {
            await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
            delay = Math.min(delay * 2, 8000);
          }
        }
      }
      if (!this.stopped) {
        if (this.peer) this.peer.close();
        this.reconnecting = false;
        this.setStatus("lost");
      }
    } finally {
      this.reconnecting = false;
    }
  }

  waitIce(peer, ms) {
    return new Promise((resolve, reject) => {
      const ok = () => ["connected", "completed"].includes(peer.pc.iceConnectionState);
      if (ok()) {
        resolve();
        return;
      }
      const check = () => {
        if (ok()) finish(null);
        else if (peer.pc.iceConnectionState === "failed" || peer.closed) finish(new Error("ice failed"));
      };
      const timer = window.setTimeout(() => finish(new Error("ice timeout")), ms);
      const finish = (error) => {
        window.clearTimeout(timer);
        peer.pc.removeEventListener("iceconnectionstatechange", check);
        if (error) reject(error);
        else resolve();
      };
      peer.pc.addEventListener("iceconnectionstatechange", check);
    });
  }

  /** Change a local track (null to stop sending); no renegotiation is needed. */
  async setLocalTrack(source, track) {
    this.local[source] = track || null;
    if (this.peer) await this.peer.replaceTrack(source, track || null);
  }

  stop() {
    this.stopped = true;
    window.clearTimeout(this.disconnectTimer);
    if (this.peer) this.peer.close();
    for (const track of Object.values(this.local)) if (track) track.stop();
  }
}
