"""What forwarding encoded frames costs the server, against aiortc's MediaRelay.

    .venv/bin/python -m bench.sfu [--rooms 16] [--seconds 5] [--workers 1]

Rooms of 4 members; each member publishes 640×360 VP8 at 30 fps and Opus, and receives
the 3 others. The server runs in a child process and reports its own CPU time
(``time.process_time``, all its threads) over a measured window; the clients run in
other processes. To keep the clients cheap they replay a clip encoded once at start
(they do not encode per frame) and count the frames their receivers assemble (they do
not decode); PLIs cannot force a keyframe in a replayed clip, which has one a second.

1. Same load, two servers: media/sfu.py (encoded forwarding) and a baseline built on
   ``aiortc.contrib.media.MediaRelay`` (the server decodes each publisher once and
   re-encodes per subscriber), both with 1 room; the ratio of server CPU per forwarded
   stream-second (a stream = one publisher's audio or video to one subscriber).
2. Ramp: 1, 2, 4, ... rooms on media/sfu.py until the video frames delivered fall below
   90% of those sent times 3, or --rooms is reached. When the client processes are
   saturated too, the limit found is theirs as much as the server's: both are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import functools
import json
import math
import multiprocessing as mp
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.codecs.opus import OpusEncoder
from aiortc.contrib.media import MediaRelay
from av.stream import Stream

from media.internals import intercept_receiver
from media.recorder import RoomRecorder
from media.sfu import Sfu, SfuRoom, TrackInfo

ROOM_SIZE = 4
STREAMS_PER_ROOM = ROOM_SIZE * (ROOM_SIZE - 1) * 2  # audio and video, each to 3 others
WARMUP = 3.0

# --- what the clients send: a clip encoded once, replayed ------------------------------


def encode_clip(frames: int = 60) -> tuple[list[bytes], list[bytes]]:
    """60 frames of 640×360 moving bars (a keyframe each second) and 1 s of Opus."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = 640, 360, "yuv420p"
    codec.bit_rate = 500_000
    codec.framerate = fractions.Fraction(30, 1)
    codec.time_base = fractions.Fraction(1, 30)
    codec.gop_size = 30
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    video: list[bytes] = []
    x = np.arange(640)
    for i in range(frames):
        row = ((x + i * 16) % 128 < 64).astype(np.int32) * 180 + 30
        rgb = np.repeat(np.repeat(row[None, :, None], 360, axis=0), 3, axis=2).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        video += [bytes(p) for p in codec.encode(frame)]
    video += [bytes(p) for p in codec.encode(None)]
    encoder = OpusEncoder()
    audio: list[bytes] = []
    for n in range(50):
        t = (np.arange(960) + n * 960) / 48000
        wave = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        chunk = av.AudioFrame.from_ndarray(wave, format="s16", layout="mono")
        chunk.sample_rate, chunk.pts = 48000, n * 960
        chunk.time_base = fractions.Fraction(1, 48000)
        payloads, _ = encoder.encode(chunk)
        audio += payloads
    return video, audio


class Replay(MediaStreamTrack):
    """Replays encoded payloads in real time as ``av.Packet`` s (the sender only packs)."""

    def __init__(self, kind: str, payloads: list[bytes], clock_rate: int, fps: int) -> None:
        super().__init__()
        self.kind = kind
        self.sent = 0
        self._payloads = payloads
        self._step = clock_rate // fps
        self._period = 1 / fps
        self._time_base = fractions.Fraction(1, clock_rate)
        self._start: float | None = None

    async def recv(self) -> av.Packet[Stream]:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self.sent * self._period - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self._payloads[self.sent % len(self._payloads)])
        packet.pts = self.sent * self._step
        packet.time_base = self._time_base
        self.sent += 1
        return packet


def prefer(transceiver: RTCRtpTransceiver) -> None:
    wanted = ("audio/opus",) if transceiver.kind == "audio" else ("video/vp8", "video/rtx")
    codecs = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in wanted])


# --- line-delimited JSON over TCP between the processes ---------------------------------


async def send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message).encode() + b"\n")
    await writer.drain()


# --- the server process ------------------------------------------------------------------


class SocketHooks:
    """RoomHooks that send server offers to the client process owning the member."""

    def __init__(self, writers: dict[str, asyncio.StreamWriter]) -> None:
        self.writers = writers

    async def send_offer(
        self, member_id: str, sdp: str, revision: int, tracks: dict[str, TrackInfo]
    ) -> None:
        message = {"op": "offer", "member": member_id, "sdp": sdp, "revision": revision}
        await send(self.writers[member_id], message)

    async def peer_state(self, member_id: str, state: str) -> None:
        pass


class Late(MediaStreamTrack):
    """Baseline: a subscriber's track that relays a publisher's (decoded) track once it exists."""

    def __init__(self, kind: str, relay: MediaRelay, source: Callable[[], MediaStreamTrack | None]):
        super().__init__()
        self.kind = kind
        self._relay = relay
        self._source = source
        self._proxy: MediaStreamTrack | None = None

    async def recv(self) -> Any:
        while self._proxy is None:
            track = self._source()
            if track is None:
                await asyncio.sleep(0.05)
            else:
                self._proxy = self._relay.subscribe(track, buffered=False)
        return await self._proxy.recv()


class RelayServer:
    """Baseline: one offer per member, m-lines for the 3 others, MediaRelay in between."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.published: dict[tuple[str, str], MediaStreamTrack] = {}
        self.pcs: list[RTCPeerConnection] = []

    async def join(self, room: int, member: str, sdp: str) -> str:
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.pcs.append(pc)
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        transceivers = pc.getTransceivers()
        self.published[(member, "mic")] = transceivers[0].receiver.track
        self.published[(member, "camera")] = transceivers[1].receiver.track
        others = [f"r{room}m{i}" for i in range(ROOM_SIZE) if f"r{room}m{i}" != member]
        for j, other in enumerate(others):
            for transceiver, source in (
                (transceivers[2 + j], "mic"),
                (transceivers[2 + len(others) + j], "camera"),
            ):
                transceiver.direction = "sendonly"
                key = (other, source)
                late = Late(
                    transceiver.kind, self.relay, functools.partial(self.published.get, key)
                )
                transceiver.sender.replaceTrack(late)
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()


def count_segments(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.webm"))


async def serve(mode: str, conn: Connection) -> None:
    """``mode``: "relay" (the MediaRelay baseline), "sfu" (forwarding), or "sfu+record"
    (forwarding, and every publication recorded into WebM segments in a temporary folder,
    as media/recorder.py does for a recorded room)."""
    sfu = Sfu()
    folder = Path(tempfile.mkdtemp(prefix="bench-recording-"))
    recorders: list[RoomRecorder] = []
    relay = RelayServer()
    writers: dict[str, asyncio.StreamWriter] = {}
    hooks = SocketHooks(writers)
    rooms: dict[int, SfuRoom] = {}
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await dispatch(reader, writer)

    async def dispatch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            message = json.loads(line)
            op = message["op"]
            if op == "join":
                room, member = message["room"], message["member"]
                writers[member] = writer
                if mode.startswith("sfu"):
                    if room not in rooms:
                        rooms[room] = sfu.room(f"bench:{room}", hooks, lambda *_: True)
                        if mode == "sfu+record":
                            recorder = RoomRecorder(
                                folder / f"room{room}", lambda *_: True, lambda _: None
                            )
                            recorders.append(recorder)
                            rooms[room].attach_recorder(recorder)
                    answer, _ = await rooms[room].offer(member, message["sdp"], message["sources"])
                else:
                    answer = await relay.join(room, member, message["sdp"])
                await send(writer, {"op": "joined", "member": member, "sdp": answer})
            elif op == "answer":
                await rooms[message["room"]].answer(
                    message["member"], message["sdp"], message["revision"]
                )
            elif op == "mark":
                segments = await asyncio.to_thread(count_segments, folder)
                await send(
                    writer,
                    {
                        "cpu": time.process_time(),
                        "stats": sfu.stats(),
                        "recorded_tracks": sum(len(r.recording()) for r in recorders),
                        "folder": str(folder),
                        "segments": segments,
                    },
                )
            elif op == "stop":
                done.set()
                return

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    conn.send(server.sockets[0].getsockname()[1])
    await done.wait()
    server.close()
    await sfu.close()  # closes the recorders' open segments too
    await relay.close()
    conn.send(str(folder))


def server_main(mode: str, conn: Connection) -> None:
    asyncio.run(serve(mode, conn))


# --- the client processes ----------------------------------------------------------------


@dataclass
class Counts:
    sent_video: int = 0
    received_video: int = 0
    received_audio: int = 0


class Member:
    """A client peer: publishes the replayed clip, counts what its receivers assemble."""

    def __init__(self, mode: str, room: int, index: int, clip: tuple[list[bytes], list[bytes]]):
        self.room, self.id = room, f"r{room}m{index}"
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.video = Replay("video", clip[0], 90000, 30)
        self.mic = self.pc.addTransceiver(Replay("audio", clip[1], 48000, 50), "sendrecv")
        self.camera = self.pc.addTransceiver(self.video, "sendrecv")
        if mode == "relay":  # the baseline cannot renegotiate: m-lines for the others now
            for kind in ("audio", "video"):
                for _ in range(ROOM_SIZE - 1):
                    self.pc.addTransceiver(kind, "recvonly")
        for transceiver in self.pc.getTransceivers():
            prefer(transceiver)
        self.received = {"audio": 0, "video": 0}
        self.lock = asyncio.Lock()
        self.pc.on("track", self.on_track)

    def on_track(self, track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
        kind = track.kind

        def count(*_: object) -> None:
            self.received[kind] += 1

        intercept_receiver(receiver, count)  # count assembled frames, decode nothing

    def offer_message(self) -> dict[str, Any]:
        sources = {str(self.mic.mid): "mic", str(self.camera.mid): "camera"}
        return {
            "op": "join",
            "room": self.room,
            "member": self.id,
            "sdp": self.pc.localDescription.sdp,
            "sources": sources,
        }


async def clients(port: int, mode: str, rooms: list[int], conn: Connection) -> None:
    clip = encode_clip()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    members: dict[str, Member] = {}
    joined: dict[str, asyncio.Future[str]] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def answer(member: Member, sdp: str, revision: int) -> None:
        async with member.lock:
            await member.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            await member.pc.setLocalDescription(await member.pc.createAnswer())
            message = {"op": "answer", "room": member.room, "member": member.id}
            await send(
                writer, message | {"sdp": member.pc.localDescription.sdp, "revision": revision}
            )

    async def read() -> None:
        while line := await reader.readline():
            message = json.loads(line)
            if message["op"] == "joined":
                joined[message["member"]].set_result(message["sdp"])
            elif message["op"] == "offer":
                member = members[message["member"]]
                task = asyncio.create_task(answer(member, message["sdp"], message["revision"]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    reading = asyncio.create_task(read())
    for room in rooms:
        for index in range(ROOM_SIZE):
            member = Member(mode, room, index, clip)
            members[member.id] = member
            async with member.lock:
                await member.pc.setLocalDescription(await member.pc.createOffer())
                joined[member.id] = asyncio.get_running_loop().create_future()
                await send(writer, member.offer_message())
                sdp = await joined[member.id]
                await member.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    def snapshot() -> tuple[Counts, float]:
        counts = Counts()
        for m in members.values():
            counts.sent_video += m.video.sent
            counts.received_video += m.received["video"]
            counts.received_audio += m.received["audio"]
        return counts, time.process_time()

    conn.send("ready")
    start_at, end_at = conn.recv()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    first, cpu0 = snapshot()
    await asyncio.sleep(max(0.0, end_at - time.time()))
    last, cpu1 = snapshot()
    conn.send(
        {
            "sent_video": last.sent_video - first.sent_video,
            "received_video": last.received_video - first.received_video,
            "received_audio": last.received_audio - first.received_audio,
            "cpu": cpu1 - cpu0,
        }
    )
    conn.recv()  # told to stop
    reading.cancel()
    for task in tasks:
        task.cancel()
    for member in members.values():
        await member.pc.close()
    writer.close()


def client_main(port: int, mode: str, rooms: list[int], conn: Connection) -> None:
    asyncio.run(clients(port, mode, rooms, conn))


# --- the parent: one measured step ---------------------------------------------------------


def mark(port: int) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b'{"op": "mark"}\n')
        data = b""
        while not data.endswith(b"\n"):
            data += sock.recv(65536)
    result: dict[str, Any] = json.loads(data)
    return result


def step(mode: str, rooms: int, seconds: float, workers: int) -> dict[str, Any]:
    context = mp.get_context("spawn")
    server_end, child_end = context.Pipe()
    server = context.Process(target=server_main, args=(mode, child_end), daemon=True)
    server.start()
    port = server_end.recv()
    pipes, processes = [], []
    for w in range(min(workers, rooms)):
        mine = [r for r in range(rooms) if r % workers == w]
        parent_end, worker_end = context.Pipe()
        process = context.Process(
            target=client_main, args=(port, mode, mine, worker_end), daemon=True
        )
        process.start()
        pipes.append(parent_end)
        processes.append(process)
    try:
        for pipe in pipes:
            pipe.recv()  # everyone joined
        start_at = time.time() + WARMUP
        for pipe in pipes:
            pipe.send((start_at, start_at + seconds))
        time.sleep(max(0.0, start_at - time.time()))
        before = mark(port)
        time.sleep(seconds)
        after = mark(port)
        results = [pipe.recv() for pipe in pipes]
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send("stop")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b'{"op": "stop"}\n')
        folder = server_end.recv() if server_end.poll(30) else ""
        for process in [*processes, server]:
            process.join(timeout=20)
            if process.is_alive():
                process.kill()
    sent = sum(r["sent_video"] for r in results)
    received = sum(r["received_video"] for r in results)
    server_cpu = after["cpu"] - before["cpu"]
    stats = after["stats"]
    return {
        "rooms": rooms,
        "delivered": received / max(1, sent * (ROOM_SIZE - 1)),
        "server_cpu_share": server_cpu / seconds,
        "client_cpu_share": sum(r["cpu"] for r in results) / seconds / len(results),
        "cpu_per_stream_second": server_cpu / (rooms * STREAMS_PER_ROOM * seconds),
        "cpu_ms_per_video_frame": server_cpu * 1000 / max(1, received),
        "video_decoded": float(stats.get("video_decoded", 0)),
        "recorded_tracks": float(after.get("recorded_tracks", 0)),
        "segments": float(after.get("segments", 0)),
        "folder": folder,
    }


def show(label: str, r: dict[str, Any]) -> None:
    print(
        f"  {label:<16} rooms {int(r['rooms']):>3}  video delivered {r['delivered']:6.1%}  "
        f"server CPU {r['server_cpu_share']:5.2f} cores  "
        f"client CPU {r['client_cpu_share']:5.2f} cores/worker  "
        f"server CPU per stream-second {r['cpu_per_stream_second'] * 1000:6.2f} ms  "
        f"per delivered video frame {r['cpu_ms_per_video_frame']:5.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rooms", type=int, default=16, help="most rooms in the ramp")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per step")
    parser.add_argument("--workers", type=int, default=1, help="client processes")
    args = parser.parse_args()

    print(f"1. same load (1 room of {ROOM_SIZE}, {args.seconds:g} s window), server CPU:")
    baseline = step("relay", 1, args.seconds, args.workers)
    show("MediaRelay", baseline)
    forwarding = step("sfu", 1, args.seconds, args.workers)
    show("media/sfu.py", forwarding)
    ratio = baseline["cpu_per_stream_second"] / forwarding["cpu_per_stream_second"]
    per_frame = baseline["cpu_ms_per_video_frame"] / forwarding["cpu_ms_per_video_frame"]
    print(f"  MediaRelay / media/sfu.py, CPU per stream-second:   {ratio:6.1f}")
    print(f"  MediaRelay / media/sfu.py, CPU per delivered frame: {per_frame:6.1f}")
    print(f"  video frames the SFU's server decoded: {int(forwarding['video_decoded'])}")

    print("2. ramp on media/sfu.py (stops when delivered < 90%):")
    fit = 0
    rooms = 1
    while rooms <= args.rooms:
        result = forwarding if rooms == 1 else step("sfu", rooms, args.seconds, args.workers)
        show("media/sfu.py", result)
        if result["delivered"] < 0.9:
            break
        fit = rooms
        rooms *= 2
    bound = " (the client processes were saturated too)" if result["client_cpu_share"] > 0.9 else ""
    print(f"  rooms of {ROOM_SIZE} that fit at >= 90% delivered: {fit}{bound}")


if __name__ == "__main__":
    main()
