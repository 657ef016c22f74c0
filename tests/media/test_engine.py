"""The SFU engine with real aiortc client peers in this process, no socket.io.

Each client offers mic (a 440 Hz sine), camera (640×360 moving bars) and screen (no
track), answers the server's offers through a tiny RoomHooks, and decodes what it
receives, counting frames per mid and per (member, source) of the server's track map.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import functools
import itertools
import math
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import av
import numpy as np
import pytest
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import rtcrtpreceiver as aiortc_receiver
from aiortc.codecs import get_decoder as stock_get_decoder
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack

import media.internals
import media.peer
from media.internals import FrameTap, media_ssrc
from media.sfu import MediaError, Sfu, SfuRoom, TapFrame, TrackInfo

pytestmark = pytest.mark.timeout(60)

ROOM = "session:1"
WAIT = 15.0


class Sine(AudioStreamTrack):
    """440 Hz at 48 kHz mono, 20-ms frames, paced like a microphone."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    async def recv(self) -> av.AudioFrame:
        paced = await super().recv()  # 8 kHz silence, but paced with the right clock
        samples = 960
        t = (np.arange(samples) + self.sent) / 48000
        self.sent += samples
        wave = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(wave.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        assert paced.pts is not None
        frame.pts = paced.pts * 6
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


@functools.cache
def _bars(count: int = 15, width: int = 640, height: int = 360) -> list[av.VideoFrame]:
    frames = []
    x = np.arange(width)
    for i in range(count):
        row = ((x + i * 16) % 128 < 64).astype(np.int32) * 180 + 30
        rgb = np.repeat(np.repeat(row[None, :, None], height, axis=0), 3, axis=2)
        rgb[:, :, 1] = (rgb[:, :, 1] + i * 8) % 256
        rgb8 = np.ascontiguousarray(rgb.astype(np.uint8))
        frames.append(av.VideoFrame.from_ndarray(rgb8, format="rgb24"))
    return [f.reformat(format="yuv420p") for f in frames]


class Bars(VideoStreamTrack):
    """640×360 moving bars at 30 fps (a few pre-drawn frames, cycled)."""

    async def recv(self) -> av.VideoFrame:
        frames = _bars()
        pts, time_base = await self.next_timestamp()
        frame = frames[(pts // 3000) % len(frames)]
        out = av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")
        out.pts = pts
        out.time_base = time_base
        return out


def _prefer(transceiver: RTCRtpTransceiver) -> None:
    wanted = ("audio/opus",) if transceiver.kind == "audio" else ("video/vp8", "video/rtx")
    codecs = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in wanted])


class Client:
    """A member's browser stand-in: publishes, answers server offers, counts frames."""

    def __init__(self, member_id: str, room: SfuRoom) -> None:
        self.member_id = member_id
        self.room = room
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.mic = self.pc.addTransceiver(Sine(), direction="sendrecv")
        self.camera = self.pc.addTransceiver(Bars(), direction="sendrecv")
        self.screen = self.pc.addTransceiver("video", direction="sendonly")
        for transceiver in (self.mic, self.camera, self.screen):
            _prefer(transceiver)
        self.tracks: dict[str, TrackInfo] = {}
        self.by_mid: Counter[str] = Counter()
        self.by_source: Counter[tuple[str, str]] = Counter()
        self.last_at: dict[str, float] = {}
        self.auto_answer = True
        self.offers: list[tuple[str, int, dict[str, TrackInfo]]] = []
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.pc.on("track", self._on_track)

    async def join(self) -> None:
        async with self._lock:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            sources = {
                str(self.mic.mid): "mic",
                str(self.camera.mid): "camera",
                str(self.screen.mid): "screen",
            }
            answer, tracks = await self.room.offer(
                self.member_id, self.pc.localDescription.sdp, sources
            )
            self.tracks = dict(tracks)
            await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    def offered(self, sdp: str, revision: int, tracks: dict[str, TrackInfo]) -> None:
        self.offers.append((sdp, revision, tracks))
        if self.auto_answer:
            self._spawn(self.answer(sdp, revision, tracks))

    async def answer(self, sdp: str, revision: int, tracks: dict[str, TrackInfo]) -> None:
        async with self._lock:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            self.tracks = dict(tracks)
            await self.room.answer(self.member_id, self.pc.localDescription.sdp, revision)

    def mid_of(self, member_id: str, source: str) -> str | None:
        want = TrackInfo(member_id, source)
        return next((mid for mid, info in self.tracks.items() if info == want), None)

    def _on_track(self, track: MediaStreamTrack) -> None:
        mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
        assert mid is not None
        self._spawn(self._consume(mid, track))

    async def _consume(self, mid: str, track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            while True:
                await track.recv()  # decoded by this client
                self.by_mid[mid] += 1
                self.last_at[mid] = time.monotonic()
                info = self.tracks.get(mid)
                if info is not None:
                    self.by_source[(info.member_id, info.source)] += 1

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.pc.close()


class Hooks:
    """RoomHooks for the tests: hands server offers to the clients, records peer states."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.states: list[tuple[str, str]] = []

    async def send_offer(
        self, member_id: str, sdp: str, revision: int, tracks: dict[str, TrackInfo]
    ) -> None:
        client = self.clients.get(member_id)
        if client is not None:
            client.offered(sdp, revision, tracks)

    async def peer_state(self, member_id: str, state: str) -> None:
        self.states.append((member_id, state))


class Scene:
    """One Sfu, one room, and the clients joined to it."""

    def __init__(self, sfu: Sfu, forwards: Callable[[str, str, str], bool]) -> None:
        self.sfu = sfu
        self.hooks = Hooks()
        self.room = sfu.room(ROOM, self.hooks, forwards)
        self.clients: list[Client] = []

    async def join(self, member_id: str) -> Client:
        client = Client(member_id, self.room)
        self.clients.append(client)
        self.hooks.clients[member_id] = client
        await client.join()
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        await self.sfu.close()


async def eventually(check: Callable[[], bool], within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


def no_screen(subscriber: str, publisher: str, source: str) -> bool:
    return source != "screen"


@pytest.fixture
async def scene() -> AsyncIterator[Scene]:
    built = Scene(Sfu(), no_screen)
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
def decoders(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[tuple[str, str]]]:
    """Decoders aiortc creates, by side: "server" threads read a FrameTap, "client" ones not."""
    created: Counter[tuple[str, str]] = Counter()
    side = threading.local()
    worker = aiortc_receiver.decoder_worker
    get_decoder = stock_get_decoder  # what aiortc.rtcrtpreceiver imported

    def counting_worker(loop: Any, input_q: Any, output_q: Any, error: Any) -> None:
        side.name = "server" if isinstance(input_q, FrameTap) else "client"
        worker(loop, input_q, output_q, error)

    def counting_get_decoder(codec: Any) -> Any:
        created[(getattr(side, "name", "unknown"), codec.name)] += 1
        return get_decoder(codec)

    monkeypatch.setattr(aiortc_receiver, "decoder_worker", counting_worker)
    monkeypatch.setattr(aiortc_receiver, "get_decoder", counting_get_decoder)
    yield created


async def test_members_receive_each_other_and_the_server_never_decodes_video(
    scene: Scene, decoders: Counter[tuple[str, str]]
) -> None:
    a = await scene.join("a")
    b = await scene.join("b")
    await eventually(
        lambda: (
            a.by_source[("b", "camera")] >= 10
            and b.by_source[("a", "camera")] >= 10
            and a.by_source[("b", "mic")] >= 10
            and b.by_source[("a", "mic")] >= 10
        )
    )
    assert set(a.tracks.values()) == {TrackInfo("b", "mic"), TrackInfo("b", "camera")}
    assert decoders[("client", "VP8")] >= 2  # the clients did decode what they got
    assert not [k for k in decoders if k[0] == "server"]  # the server created no decoder
    stats = scene.sfu.stats()
    assert stats["video_decoded"] == 0
    assert stats["frames_in"] > 0 and stats["frames_out"] > 0
    assert ("a", "connected") in scene.hooks.states and ("b", "connected") in scene.hooks.states
    assert scene.room.members() == ["a", "b"]


async def test_a_forbidden_pair_stops_within_two_seconds_and_the_freed_mline_is_reused() -> None:
    blocked: set[tuple[str, str, str]] = set()

    def forwards(subscriber: str, publisher: str, source: str) -> bool:
        return source != "screen" and (subscriber, publisher, source) not in blocked

    scene = Scene(Sfu(), forwards)
    try:
        a = await scene.join("a")
        b = await scene.join("b")
        await eventually(
            lambda: b.by_source[("a", "camera")] >= 5 and a.by_source[("b", "mic")] >= 5
        )
        mid = b.mid_of("a", "camera")
        assert mid is not None

        blocked.add(("b", "a", "camera"))
        await scene.room.reroute()
        rerouted = time.monotonic()
        heard = a.by_source[("b", "mic")]
        await asyncio.sleep(2.5)
        assert b.last_at[mid] < rerouted + 2.0
        assert b.mid_of("a", "camera") is None  # renegotiated away
        assert a.by_source[("b", "mic")] > heard  # everything else goes on

        blocked.clear()
        seen = b.by_mid[mid]
        await scene.room.reroute()
        await eventually(lambda: b.by_mid[mid] >= seen + 5)
        assert b.mid_of("a", "camera") == mid  # the freed transceiver was reused
    finally:
        await scene.close()


async def test_a_removed_member_stops_receiving_and_being_received(scene: Scene) -> None:
    a = await scene.join("a")
    b = await scene.join("b")
    await eventually(
        lambda: b.by_source[("a", "camera")] >= 5 and a.by_source[("b", "camera")] >= 5
    )
    a_gets_b = a.mid_of("b", "camera")
    assert a_gets_b is not None

    await scene.room.remove("b")
    removed = time.monotonic()
    await asyncio.sleep(2.2)
    assert max(b.last_at.values()) < removed + 2.0
    assert a.last_at[a_gets_b] < removed + 2.0
    assert ("b", "closed") in scene.hooks.states
    assert scene.room.members() == ["a"]


async def test_a_member_that_reconnects_with_a_fresh_peer_connection_receives_again(
    scene: Scene,
) -> None:
    a = await scene.join("a")
    b = await scene.join("b")
    await eventually(
        lambda: b.by_source[("a", "camera")] >= 5 and a.by_source[("b", "camera")] >= 5
    )
    a_gets_b = a.mid_of("b", "camera")
    assert a_gets_b is not None

    await b.close()  # the network dropped: the browser makes a new RTCPeerConnection
    b2 = await scene.join("b")
    seen = a.by_mid[a_gets_b]
    await eventually(
        lambda: b2.by_source[("a", "camera")] >= 10 and b2.by_source[("a", "mic")] >= 10
    )
    await eventually(lambda: a.by_mid[a_gets_b] >= seen + 10)
    assert a.mid_of("b", "camera") == a_gets_b  # same m-line, new source behind it
    assert scene.room.members() == ["a", "b"]


async def test_keyframe_requests_reach_the_publisher(scene: Scene) -> None:
    a = await scene.join("a")
    asked: list[float] = []
    sender = a.camera.sender
    force = sender._send_keyframe

    def counted() -> None:
        asked.append(time.monotonic())
        force()

    sender.__dict__["_send_keyframe"] = counted
    await asyncio.sleep(0.5)
    assert not asked  # nobody watches yet

    b = await scene.join("b")  # a new subscriber: the server asks a for a keyframe
    await eventually(lambda: len(asked) >= 1 and b.by_source[("a", "camera")] >= 3)
    assert scene.sfu.stats()["keyframe_requests"] >= 1

    # b's decoder reports a lost picture: relayed to a, after the rate limit
    await asyncio.sleep(0.6)
    before = len(asked)
    mid = b.mid_of("a", "camera")
    receiver = next(t.receiver for t in b.pc.getTransceivers() if t.mid == mid)
    ssrc = media_ssrc(receiver)
    assert ssrc is not None
    await receiver._send_rtcp_pli(ssrc)
    await eventually(lambda: len(asked) > before, within=5)


async def test_the_audio_tap_gives_16_khz_mono_of_recorded_members_only() -> None:
    tap: asyncio.Queue[TapFrame] = asyncio.Queue(maxsize=20)
    sfu = Sfu(tap=tap, tap_recorded=lambda room, member: member == "a")
    scene = Scene(sfu, no_screen)
    try:
        await scene.join("a")
        await scene.join("b")
        await eventually(lambda: tap.full())
        await asyncio.sleep(1.0)  # nobody reads: the oldest frames are dropped
        stats = sfu.stats()
        assert stats["tap_dropped"] > 0 and tap.qsize() == 20

        frames: list[TapFrame] = []
        while len(frames) < 60:
            frames.append(await asyncio.wait_for(tap.get(), WAIT))
        assert {(f.room, f.member_id) for f in frames} == {(ROOM, "a")}
        assert all(len(f.pcm) == 2 * f.samples for f in frames)
        fresh = frames[20:]  # read as they came: contiguous 16-kHz audio
        assert all(later.time >= earlier.time for earlier, later in itertools.pairwise(fresh))
        pcm = np.frombuffer(b"".join(f.pcm for f in fresh), dtype="<i2").astype(float)
        spectrum = np.abs(np.fft.rfft(pcm))
        peak_hz = np.argmax(spectrum[1:]) + 1
        assert abs(peak_hz * 16000 / len(pcm) - 440) < 20  # the sine, at 16 kHz
    finally:
        await scene.close()


async def test_bad_input_is_refused_with_media_errors(scene: Scene) -> None:
    with pytest.raises(MediaError) as refused:
        await scene.room.offer("x", "this is not SDP", {})
    assert refused.value.code == "invalid"
    a = await scene.join("a")
    with pytest.raises(MediaError) as refused:
        await scene.room.offer("y", a.pc.localDescription.sdp, {"0": "webcam"})
    assert refused.value.code == "invalid"
    with pytest.raises(MediaError) as refused:
        await scene.room.answer("a", "v=0", 1)
    assert refused.value.code == "conflict"  # no offer is waiting

    b = Client("b", scene.room)
    b.auto_answer = False
    scene.clients.append(b)
    scene.hooks.clients["b"] = b
    await b.join()
    await eventually(lambda: bool(b.offers))
    sdp, revision, tracks = b.offers[-1]
    with pytest.raises(MediaError) as refused:
        await scene.room.answer("b", "garbage", revision)
    assert refused.value.code == "invalid"
    with pytest.raises(MediaError) as refused:
        await scene.room.answer("b", sdp, revision + 1)
    assert refused.value.code == "conflict"  # not the revision offered
    await b.answer(sdp, revision, tracks)  # the right answer still works
    await eventually(lambda: b.by_source[("a", "camera")] >= 3)
    with pytest.raises(MediaError) as refused:
        await scene.room.add_ice_candidate("b", {"candidate": "candidate:nonsense", "sdpMid": "0"})
    assert refused.value.code == "invalid"


async def test_a_peer_that_goes_silent_is_reported_disconnected_then_connected(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    silent = False
    heard = media.internals.packets_received
    monkeypatch.setattr(media.peer, "STALL_SECONDS", 1.0)
    monkeypatch.setattr(
        media.peer, "packets_received", lambda transport: 0 if silent else heard(transport)
    )
    await scene.join("a")
    await eventually(lambda: scene.hooks.states == [("a", "connected")])
    silent = True  # no packet counted any more, as if the network went quiet
    await eventually(lambda: scene.hooks.states[-1] == ("a", "disconnected"), within=5)
    silent = False
    await eventually(lambda: scene.hooks.states[-1] == ("a", "connected"), within=5)


def test_an_idle_engine_counts_nothing() -> None:
    stats = Sfu().stats()
    assert stats["frames_in"] == stats["frames_out"] == stats["video_decoded"] == 0
    assert stats["rooms"] == 0
