// socket.io wrapper: every client event is sent with an acknowledgement and a timeout;
// an ack of {ok:false, error} becomes a rejected promise carrying the server's
// (already translated) message.
"use strict";

const DEFAULT_TIMEOUT_MS = 10000;

/** A refusal from the server, or a local failure (timeout, not connected). */
export class RoomError extends Error {
  constructor(code, message, event, status) {
    super(message);
    this.name = "RoomError";
    this.code = code;
    this.event = event || "";
    this.status = status || 0;
  }

  /** True when retrying cannot help (forbidden, removed, ended...). */
  get final() {
    return ["forbidden", "not_found", "gone", "removed", "ended", "unauthenticated"].includes(this.code);
  }
}

export class Signalling extends EventTarget {
  /**
   * @param {object} options  guestToken: signed guest token or "";
   *   timeoutMessage / offlineMessage: translated texts for local failures.
   */
  constructor({ guestToken, timeoutMessage, offlineMessage }) {
    super();
    if (typeof window.io !== "function") {
      throw new Error("socket.io client not loaded");
    }
    this.timeoutMessage = timeoutMessage;
    this.offlineMessage = offlineMessage;
    this.everConnected = false;
    this.closedByUs = false;
    this.socket = window.io({
      auth: guestToken ? { guest: guestToken } : undefined,
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      reconnection: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
      timeout: 10000,
    });
    this.socket.on("connect", () => {
      const again = this.everConnected;
      this.everConnected = true;
      this._emitLocal(again ? "reconnected" : "connected", {});
    });
    this.socket.on("disconnect", (reason) => {
      this._emitLocal("disconnected", { reason });
      // The server closed us on purpose (removed, ended): socket.io does not retry then;
      // let the room decide whether to reconnect.
    });
    this.socket.on("connect_error", (error) => {
      this._emitLocal("connect_error", { message: error && error.message ? error.message : "" });
    });
  }

  get connected() {
    return this.socket.connected;
  }

  /** Wait for the first connection (or fail after `ms`). */
  waitConnected(ms = DEFAULT_TIMEOUT_MS) {
    if (this.socket.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        window.clearTimeout(timer);
        this.socket.off("connect", done);
        resolve();
      };
      const timer = window.setTimeout(() => {
        this.socket.off("connect", done);
        reject(new RoomError("timeout", this.offlineMessage, "connect"));
      }, ms);
      this.socket.on("connect", done);
    });
  }

  /** Send `event` with `data`; resolves with the ack (ok:true) or rejects with RoomError. */
  request(event, data = {}, timeoutMs = DEFAULT_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      if (!this.socket.connected) {
        reject(new RoomError("offline", this.offlineMessage, event));
        return;
      }
      this.socket.timeout(timeoutMs).emit(event, data, (error, reply) => {
        if (error) {
          reject(new RoomError("timeout", this.timeoutMessage, event));
        } else if (!reply || reply.ok !== true) {
          const info = (reply && reply.error) || {};
          reject(new RoomError(info.code || "error", info.message || this.timeoutMessage, info.event || event, info.status));
        } else {
          resolve(reply);
        }
      });
    });
  }

  /** Fire-and-forget (still acknowledged; failures are only logged). */
  send(event, data = {}) {
    this.request(event, data).catch((error) => console.warn("room:", event, error.message));
  }

  /** Subscribe to a server event. */
  on(event, handler) {
    this.socket.on(event, handler);
  }

  /** Subscribe to this wrapper's connection events (connected, reconnected, disconnected, connect_error). */
  onLocal(name, handler) {
    this.addEventListener(name, (event) => handler(event.detail));
  }

  /**
   * Connect again if socket.io will not do it by itself (after the server closed the
   * connection on purpose).  While the socket is "active" its manager is already
   * retrying, and a second open() would race the manager's own timer.
   */
  reconnect() {
    if (!this.socket.connected && !this.socket.active) this.socket.connect();
  }

  close() {
    this.closedByUs = true;
    this.socket.disconnect();
  }

  _emitLocal(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }
}
