"""One member's peer connection: what it publishes, what it is sent, its negotiation.

The client offers first (its mic, camera and screen m-lines, which the server only
receives); every later negotiation is server-initiated: the server adds or re-uses
``sendonly`` transceivers, each carrying a permanent :class:`SubscriberTrack`, and
offers them with a track map (mid -> member and source). A track starts forwarding only
when the client's answer to that revision is applied, and stops at once when the room
withdraws the permission (``set_allowed``). Negotiations are serialised by the member's
lock, one offer in flight at a time. The peer reports its state (connected,
disconnected, failed, closed) to the room's hooks, once per change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import SessionDescription, candidate_from_sdp

from media.bundle_numbers import BundleNumbers, sync_transceivers
from media.forwarding import Counters, Publication, SubscriberTrack
from media.internals import (
    intercept_receiver,
    on_keyframe_request,
    packets_received,
    refresh_receiver_codecs,
)

logger = logging.getLogger(__name__)

SOURCE_KINDS = {"mic": "audio", "camera": "video", "screen": "video"}
STALL_SECONDS = 5.0  # a member that published sends no packet this long: "disconnected"
WATCH_INTERVAL = 1.0

Key = tuple[str, str]  # (publisher member id, source)


def N_(text: str) -> str:
    """Mark ``text`` as a message id for Babel; the server translates it."""
    return text


class MediaError(Exception):
    """A media request the engine refuses; ``message`` is an English msgid (N_)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TrackInfo:
    """One of the server's sending m-lines, for the subscriber."""

    member_id: str
    source: str  # "mic" | "camera" | "screen"


class RoomHooks(Protocol):
    """How the engine reaches the server (signalling) for one room."""

    async def send_offer(
        self, member_id: str, sdp: str, revision: int, tracks: dict[str, TrackInfo]
    ) -> None: ...

    async def peer_state(self, member_id: str, state: str) -> None: ...


def _preferences(kind: str) -> list[RTCRtpCodecCapability]:
    wanted = {"audio": ("audio/opus",), "video": ("video/vp8", "video/rtx")}[kind]
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    return [c for c in capabilities if c.mimeType.lower() in wanted]


def _restrict_codecs(transceiver: RTCRtpTransceiver) -> None:
    transceiver.setCodecPreferences(_preferences(transceiver.kind))


def _parse(sdp: str) -> SessionDescription:
    try:
        return SessionDescription.parse(sdp)
    except Exception as exc:
        raise MediaError("invalid", N_("The session description could not be read.")) from exc


def check_offer(sdp: str, sources: dict[str, str]) -> SessionDescription:
    """Parse a client offer and check its ``sources`` map against it."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise MediaError("invalid", N_("The session description could not be read."))
    description = _parse(sdp)
    media = [m for m in description.media if m.kind in ("audio", "video")]
    if not media or any(not m.rtp.muxId for m in media):
        raise MediaError("invalid", N_("The offer carries no usable audio or video."))
    kinds = {m.rtp.muxId: m.kind for m in media}
    for m in media:
        names = {c.mimeType.lower() for c in m.rtp.codecs}
        if ("audio/opus" if m.kind == "audio" else "video/vp8") not in names:
            raise MediaError("invalid", N_("Only VP8 video and Opus audio are supported."))
    if len(set(sources.values())) != len(sources):
        raise MediaError("invalid", N_("A media source is listed twice."))
    for mid, source in sources.items():
        if source not in SOURCE_KINDS:
            raise MediaError("invalid", N_("Unknown media source."))
        if kinds.get(mid) != SOURCE_KINDS[source]:
            raise MediaError("invalid", N_("A media source names a missing or mismatched m-line."))
    return description


@dataclass
class _Slot:
    """A server sending transceiver and the publication the client was told it carries."""

    transceiver: RTCRtpTransceiver
    track: SubscriberTrack
    key: Key | None = None  # offered (planned) assignment
    live_key: Key | None = None  # assignment confirmed by the client's answer

    @property
    def kind(self) -> str:
        return self.track.kind


@dataclass
class _Pending:
    revision: int
    answered: asyncio.Event


class Peer:
    """The member's RTCPeerConnection and everything the engine keeps about it."""

    def __init__(
        self,
        member_id: str,
        hooks: RoomHooks,
        lock: asyncio.Lock,
        counters: Counters,
        ice_servers: list[RTCIceServer],
    ) -> None:
        self.member_id = member_id
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.inbound: dict[str, RTCRtpTransceiver] = {}  # source -> receiving transceiver
        self.slots: list[_Slot] = []
        self.allowed: dict[Key, Publication] = {}
        self.revision = 0
        self.state: str | None = None
        self.numbers = BundleNumbers()
        self._hooks = hooks
        self._lock = lock
        self._counters = counters
        self._pending: _Pending | None = None
        self._dirty = asyncio.Event()
        self._events: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._stalled = False
        self.pc.on("connectionstatechange", self._on_connection_state)

    # --- client offer ------------------------------------------------------------------

    async def accept(self, sdp: str, sources: dict[str, str]) -> str:
        """Apply the client's offer and return the answer (receives only; VP8 and Opus)."""
        description = check_offer(sdp, sources)
        self.numbers.learn(sdp)
        wanted: dict[str, RTCRtpTransceiver] = {}
        for media in description.media:
            if media.kind not in ("audio", "video"):
                continue
            mid = media.rtp.muxId
            transceiver = self.pc.addTransceiver(
                media.kind, direction="recvonly" if mid in sources else "inactive"
            )
            _restrict_codecs(transceiver)
            wanted[mid] = transceiver
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            raise MediaError("invalid", N_("The session description could not be read.")) from exc
        for mid, transceiver in wanted.items():
            if transceiver.mid != mid:
                raise MediaError("invalid", N_("The session description could not be read."))
            # before receive() starts the decoder thread; publications set the sink
            intercept_receiver(transceiver.receiver, _drop)
            if mid in sources:
                self.inbound[sources[mid]] = transceiver
        try:
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
        except Exception as exc:
            raise MediaError("invalid", N_("The session description could not be read.")) from exc
        return str(self.pc.localDescription.sdp)

    def receiver(self, source: str) -> RTCRtpReceiver | None:
        transceiver = self.inbound.get(source)
        return transceiver.receiver if transceiver is not None else None

    def start(self) -> None:
        """Start the peer's tasks (negotiation, watchdog, state reports); close() ends them."""
        self._tasks = [
            asyncio.create_task(self._negotiate_loop(), name=f"negotiate:{self.member_id}"),
            asyncio.create_task(self._watch_loop(), name=f"watch:{self.member_id}"),
            asyncio.create_task(self._report_loop(), name=f"report:{self.member_id}"),
        ]
        self._dirty.set()

    # --- what the member is sent -------------------------------------------------------

    def set_allowed(self, allowed: dict[Key, Publication]) -> None:
        """What the member may receive now: withdrawals apply at once, additions after
        the next negotiation (scheduled here)."""
        self.allowed = allowed
        self._sync_slots()
        self._dirty.set()

    def track_map(self) -> dict[str, TrackInfo]:
        return {
            slot.transceiver.mid: TrackInfo(*slot.key)
            for slot in self.slots
            if slot.key is not None and slot.transceiver.mid is not None
        }

    def _sync_slots(self) -> None:
        for slot in self.slots:
            want = self.allowed.get(slot.live_key) if slot.live_key is not None else None
            if want is None or want.closed:
                slot.track.detach()
            elif slot.track.publication is not want:
                slot.track.attach(want)

    def _new_slot(self, kind: str) -> _Slot:
        track = SubscriberTrack(kind, self._counters)
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        _restrict_codecs(transceiver)
        on_keyframe_request(transceiver.sender, track.keyframe_requested)
        slot = _Slot(transceiver, track)
        self.slots.append(slot)
        return slot

    def _plan(self) -> bool:
        """Re-assign slots to what is allowed; whether anything changed."""
        changed = False
        assigned = {slot.key for slot in self.slots if slot.key is not None}
        for slot in self.slots:
            if slot.key is not None and slot.key not in self.allowed:
                slot.key = None
                slot.transceiver.direction = "inactive"
                changed = True
        free = [slot for slot in self.slots if slot.key is None]
        for key in sorted(self.allowed.keys() - assigned):
            kind = SOURCE_KINDS[key[1]]
            found = next((s for s in free if s.kind == kind), None)
            if found is None:
                slot = self._new_slot(kind)
            else:
                slot = found
                free.remove(slot)
            slot.key = key
            slot.transceiver.direction = "sendonly"
            changed = True
        return changed

    async def _negotiate_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self.pc.connectionState != "connected":
                continue  # the first offer waits until the client applied our answer
            async with self._lock:
                if self._closed or self._pending is not None or not self._plan():
                    continue
                offer = await self.pc.createOffer()
                offer = RTCSessionDescription(self.numbers.apply(offer.sdp), "offer")
                await self.pc.setLocalDescription(offer)
                sync_transceivers(self.pc, offer.sdp)
                for transceiver in self.inbound.values():
                    refresh_receiver_codecs(transceiver)
                self.revision += 1
                pending = _Pending(self.revision, asyncio.Event())
                self._pending = pending
                sdp = str(self.pc.localDescription.sdp)
                tracks = self.track_map()
            logger.debug("offer %s revision %d: %s", self.member_id, pending.revision, tracks)
            try:
                await self._hooks.send_offer(self.member_id, sdp, pending.revision, tracks)
            except Exception:
                logger.exception("send_offer(%s) failed", self.member_id)
            await pending.answered.wait()

    async def apply_answer(self, sdp: str, revision: int) -> None:
        """The client's answer to a server offer (call with the member's lock held)."""
        pending = self._pending
        if pending is None:
            raise MediaError("conflict", N_("No offer is waiting for an answer."))
        if revision != pending.revision:
            raise MediaError("conflict", N_("This answer is for an outdated offer."))
        if not isinstance(sdp, str) or not sdp.strip():
            raise MediaError("invalid", N_("The session description could not be read."))
        _parse(sdp)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:
            raise MediaError("invalid", N_("The session description could not be read.")) from exc
        for transceiver in self.inbound.values():
            refresh_receiver_codecs(transceiver)
        for slot in self.slots:
            slot.live_key = slot.key
        self._pending = None
        pending.answered.set()
        self._sync_slots()
        self._dirty.set()

    async def add_ice_candidate(self, candidate: dict[str, Any] | None) -> None:
        if candidate is None or not candidate.get("candidate"):
            await self.pc.addIceCandidate(None)
            return
        try:
            text = str(candidate["candidate"])
            parsed = candidate_from_sdp(text.removeprefix("candidate:"))
            parsed.sdpMid = candidate.get("sdpMid")
            parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
            if parsed.sdpMid is None and parsed.sdpMLineIndex is None:
                parsed.sdpMLineIndex = 0
            await self.pc.addIceCandidate(parsed)
        except Exception as exc:
            raise MediaError("invalid", N_("The network candidate could not be read.")) from exc

    # --- state -------------------------------------------------------------------------

    def _on_connection_state(self) -> None:
        if self.pc.connectionState == "connected":
            self._dirty.set()
        self._update_state()

    def _update_state(self) -> None:
        connection = self.pc.connectionState
        if self._closed:
            return
        if connection in ("failed", "closed"):
            state = connection
        elif connection == "connected":
            state = "disconnected" if self._stalled else "connected"
        else:
            return
        if state != self.state:
            logger.info("peer %s: %s -> %s", self.member_id, self.state, state)
            self.state = state
            self._events.put_nowait(state)

    async def _watch_loop(self) -> None:
        last_count = -1
        last_change = time.monotonic()
        heard = False
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            transports = {t.receiver.transport for t in self.pc.getTransceivers()}
            count = sum(packets_received(t) for t in transports)
            now = time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
            if not heard:  # only a member that has published can fall silent
                heard = any(t.receiver.getSynchronizationSources() for t in self.inbound.values())
            self._stalled = heard and now - last_change > STALL_SECONDS
            self._update_state()

    async def _report_loop(self) -> None:
        while True:
            state = await self._events.get()
            try:
                await self._hooks.peer_state(self.member_id, state)
            except Exception:
                logger.exception("peer_state(%s, %s) failed", self.member_id, state)

    async def close(self) -> None:
        """Cancel the peer's tasks and close its connection (no state is reported)."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for slot in self.slots:
            slot.track.detach()
        await self.pc.close()


def _drop(*_: object) -> None:
    """Frame sink of a receiver nobody publishes through (yet)."""
