"""A room participant for tests: a socket.io client plus an aiortc peer connection that
publishes synthetic audio and video and counts what it receives, per member and source."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import av
import numpy as np
import socketio
from aiohttp.test_utils import TestClient
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack

from tests.support import Clients

SESSION_COOKIE = "yz_session"
WAIT = 10.0


def session_cookie(client: TestClient[Any, Any]) -> str:
    for morsel in client.session.cookie_jar:
        if morsel.key == SESSION_COOKIE and morsel.value:
            return morsel.value
    raise AssertionError("the client holds no session cookie")


class Tone(AudioStreamTrack):
    """A 440 Hz sine at 48 kHz, in 20-ms frames, paced like a microphone."""

    RATE = 48000
    SAMPLES = 960  # 20 ms

    def __init__(self, hz: float = 440.0) -> None:
        super().__init__()
        self.hz = hz
        self.sent = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:  # real time: a lagging loop catches up, as a microphone's buffer would
            await asyncio.sleep(max(0.0, self._start + self.sent / self.RATE - time.time()))
        t = (np.arange(self.SAMPLES) + self.sent) / self.RATE
        wave = (np.sin(2 * math.pi * self.hz * t) * 8000).astype(np.int16)
        out = av.AudioFrame.from_ndarray(wave.reshape(1, -1), format="s16", layout="mono")
        out.sample_rate = self.RATE
        out.pts = self.sent
        out.time_base = fractions.Fraction(1, self.RATE)
        self.sent += self.SAMPLES
        return out


class Pattern(VideoStreamTrack):
    """Moving bars, 320×180 (small so that the tests' own encoders stay cheap)."""

    def __init__(self, width: int = 320, height: int = 180) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        self.count += 1
        image = np.zeros((self.height, self.width, 3), np.uint8)
        x = (self.count * 8) % self.width
        image[:, x : x + 16, :] = 255
        image[:, :, 1] = (self.count * 3) % 255
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class Participant:
    """One person in a room, as a browser would be, driven by the test."""

    def __init__(self, clients: Clients, name: str) -> None:
        self.clients = clients
        self.name = name
        self.sio = socketio.AsyncClient(reconnection=False)
        self.pc: RTCPeerConnection | None = None
        self.member_id = ""
        self.tracks: dict[str, dict[str, str]] = {}  # mid -> {member_id, source}
        self.frames: dict[tuple[str, str], int] = defaultdict(int)  # (member, source) -> n
        self.last_frame: dict[tuple[str, str], float] = {}
        self.states: list[dict[str, Any]] = []
        self.notices: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.errors: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.chat: list[dict[str, Any]] = []
        self.offers_answered = 0
        self.server_offers: list[str] = []
        self._readers: list[asyncio.Task[None]] = []
        self.sio.on("room:state", self._on_state)
        self.sio.on("room:notice", self._on_notice)
        self.sio.on("room:chat", self._on_chat)
        self.sio.on("media:offer", self._on_offer)
        self.sio.on("error", self._on_error)
        self.captions: list[dict[str, Any]] = []
        self.sio.on("room:caption", self._on_caption)

    # --- socket -------------------------------------------------------------------------

    async def connect(self, cookie: str | None = None, guest: str | None = None) -> None:
        headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else {}
        await self.sio.connect(
            str(self.clients.server.make_url("/")),
            headers=headers,
            auth={"guest": guest} if guest else None,
            transports=["websocket"],
            wait_timeout=WAIT,
        )

    async def call(self, event: str, data: Any = None) -> dict[str, Any]:
        answer = await self.sio.call(event, data if data is not None else {}, timeout=WAIT)
        assert isinstance(answer, dict), answer
        return answer

    async def must(self, event: str, data: Any = None) -> dict[str, Any]:
        answer = await self.call(event, data)
        assert answer.get("ok"), (self.name, event, answer)
        return answer

    async def join(self, session_id: int, **extra: Any) -> dict[str, Any]:
        answer = await self.must(
            "room:join", {"session_id": session_id, "consent_recording": True, **extra}
        )
        self.member_id = answer["member_id"]
        self.chat = list(answer["chat"])
        return answer

    async def _on_state(self, data: dict[str, Any]) -> None:
        self.states.append(data)

    async def _on_notice(self, data: dict[str, Any]) -> None:
        await self.notices.put(data)

    async def _on_chat(self, data: dict[str, Any]) -> None:
        self.chat.append(data)

    async def _on_caption(self, data: dict[str, Any]) -> None:
        self.captions.append(data)

    async def _on_error(self, data: dict[str, Any]) -> None:
        await self.errors.put(data)

    @property
    def state(self) -> dict[str, Any]:
        return self.states[-1]

    def member(self, member_id: str) -> dict[str, Any]:
        return next(m for m in self.state["members"] if m["id"] == member_id)

    async def next_error(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.errors.get(), WAIT)

    async def next_notice(self, kind: str) -> dict[str, Any]:
        while True:
            notice = await asyncio.wait_for(self.notices.get(), WAIT)
            if notice["kind"] == kind:
                return notice

    # --- media --------------------------------------------------------------------------

    async def publish(
        self,
        *,
        audio: bool = True,
        video: bool = True,
        munge: Callable[[str], str] | None = None,
        voice: MediaStreamTrack | None = None,
    ) -> None:
        """A fresh peer connection: mic, camera and an (empty) screen transceiver, offered."""
        if self.pc is not None:
            await self.pc.close()
        # one transport for every m-line, as browsers do (aiortc's default policy
        # leaves a second video m-line on a transport it then stops)
        pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.pc = pc
        mic: MediaStreamTrack | str = voice or (Tone() if audio else "audio")
        pc.addTransceiver(mic, direction="sendrecv")
        pc.addTransceiver(Pattern() if video else "video", direction="sendrecv")
        pc.addTransceiver("video", direction="sendonly")
        pc.on("track", self._on_track)
        await pc.setLocalDescription(await pc.createOffer())
        transceivers = pc.getTransceivers()
        sources = {t.mid: s for t, s in zip(transceivers, ("mic", "camera", "screen"), strict=True)}
        sdp = pc.localDescription.sdp
        answer = await self.must(
            "media:offer", {"sdp": munge(sdp) if munge else sdp, "sources": sources}
        )
        self.tracks.update(answer["tracks"])
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def _on_offer(self, data: dict[str, Any]) -> None:
        pc = self.pc
        if pc is None:
            return
        self.tracks.update(data["tracks"])
        self.server_offers.append(data["sdp"])
        await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self.sio.emit(
            "media:answer", {"sdp": pc.localDescription.sdp, "revision": data["revision"]}
        )
        self.offers_answered += 1

    def _on_track(self, track: MediaStreamTrack) -> None:
        pc = self.pc
        mid = (
            next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None)
            if pc
            else None
        )
        self._readers.append(asyncio.create_task(self._read(track, mid)))

    async def _read(self, track: MediaStreamTrack, mid: str | None) -> None:
        with contextlib.suppress(Exception):
            while True:
                await track.recv()
                info = self.tracks.get(mid or "")
                if info is None:
                    continue
                key = (info["member_id"], info["source"])
                self.frames[key] += 1
                self.last_frame[key] = time.monotonic()

    def received(self, member_id: str, source: str) -> int:
        return self.frames[(member_id, source)]

    async def wait_frames(
        self, member_id: str, source: str, count: int, seconds: float = 20
    ) -> None:
        """Wait until ``count`` more frames of that member's source have arrived."""
        start = self.received(member_id, source)
        deadline = time.monotonic() + seconds
        while self.received(member_id, source) < start + count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name} got {self.received(member_id, source) - start} of {count} "
                    f"{source} frames from {member_id} in {seconds} s"
                )
            await asyncio.sleep(0.05)

    async def stops_receiving(self, member_id: str, source: str, within: float = 2.0) -> None:
        """After ``within`` seconds, no more frames of that source arrive (checked for 1.5 s)."""
        await asyncio.sleep(within)
        before = self.received(member_id, source)
        await asyncio.sleep(1.5)
        assert self.received(member_id, source) == before, (
            f"{self.name} still receives {source} from {member_id}"
        )

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        if self.pc is not None:
            await self.pc.close()
        if self.sio.connected:
            await self.sio.disconnect()

    async def drop(self) -> None:
        """The network goes: the socket and the peer connection vanish without leaving."""
        for reader in self._readers:
            reader.cancel()
        self._readers.clear()
        if self.pc is not None:
            await self.pc.close()
            self.pc = None
        # a dropped transport, not a "leave": the engine.io connection just ends
        await self.sio.eio.disconnect(abort=True)


async def staff_cookie(clients: Clients, account: str) -> str:
    return session_cookie(await clients.staff(account))


async def party_cookie(clients: Clients, phone: str, *, reverify: bool = True) -> str:
    """A party logged in with a code, and (for sessions that need it) re-verified."""
    client = await clients.party(phone)
    if reverify:
        response = await clients.post_json(client, "/api/v1/me/reverify/send", {})
        assert response.status == 202, await response.text()
        code = await clients.latest_code(phone)
        response = await clients.post_json(client, "/api/v1/me/reverify", {"code": code})
        assert response.status == 200, await response.text()
    return session_cookie(client)
