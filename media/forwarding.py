"""Encoded-frame fan-out: one Publication per (member, source), SubscriberTracks out.

A :class:`Publication` takes the frames a publisher's receiver assembles (its decoder
never runs, see media/internals.py) and pushes them to every attached
:class:`SubscriberTrack`. A subscriber track is a permanent ``MediaStreamTrack`` on one
of the server's sending transceivers; the stock ``RTCRtpSender`` reads ``av.Packet`` s
from it and packs them without encoding. Re-pointing a track at another publication (or
at none) is immediate and keeps the sender running, which ``replaceTrack`` could not:
the sender's loop stays blocked in the old track's ``recv()``.

Timestamps are rebased per track so that they keep increasing when the publication is
re-bound to a new receiver (reconnection) or the track moves to another publication.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.stream import Stream

from media.internals import FrameTap, intercept_receiver, media_ssrc, send_pli

logger = logging.getLogger(__name__)

KEYFRAME_INTERVAL = 0.5  # at most one PLI per publication per this many seconds
VIDEO_QUEUE = 30  # frames a subscriber may lag behind before it skips to a keyframe
AUDIO_QUEUE = 50

_epochs = itertools.count(1)

FrameListener = Callable[[int, RTCRtpCodecParameters, JitterFrame], None]


@dataclass
class Counters:
    """What the engine counts (Sfu.stats())."""

    frames_in: int = 0
    frames_out: int = 0
    keyframe_requests: int = 0
    video_decoded: int = 0
    tap_frames: int = 0
    tap_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def is_vp8_keyframe(data: bytes) -> bool:
    """A VP8 frame tag with P=0 and the keyframe start code (RFC 6386, 9.1)."""
    return len(data) >= 10 and not data[0] & 0x01 and data[3:6] == b"\x9d\x01\x2a"


class Publication:
    """One member's source ("mic", "camera", "screen"), across its reconnections."""

    def __init__(self, member_id: str, source: str, kind: str, counters: Counters) -> None:
        self.member_id = member_id
        self.source = source
        self.kind = kind
        self.sinks: set[SubscriberTrack] = set()
        self.listener: FrameListener | None = None  # the audio tap, when there is one
        self.closed = False
        self.last_frame_at: float | None = None
        self._counters = counters
        self._receiver: RTCRtpReceiver | None = None
        self._tap: FrameTap | None = None
        self._last_pli = -math.inf
        self._pli_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    @property
    def key(self) -> tuple[str, str]:
        return (self.member_id, self.source)

    @property
    def receiver(self) -> RTCRtpReceiver | None:
        return self._receiver

    def bind(self, receiver: RTCRtpReceiver) -> None:
        """Take frames from ``receiver`` from now on (a new peer connection)."""
        self.unbind()
        epoch = next(_epochs)

        def deliver(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
            self._deliver(epoch, codec, frame)

        self._receiver = receiver
        self._tap = intercept_receiver(receiver, deliver)

    def unbind(self) -> None:
        if self._tap is not None:
            self._tap.sink = None
        self._tap = None
        self._receiver = None

    def _deliver(self, epoch: int, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        self._counters.frames_in += 1
        self.last_frame_at = time.monotonic()
        for sink in tuple(self.sinks):
            sink.push(epoch, codec, frame)
        if self.listener is not None:
            self.listener(epoch, codec, frame)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most one PLI per KEYFRAME_INTERVAL."""
        if self.kind != "video" or self.closed or self._pli_timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_pli + KEYFRAME_INTERVAL - loop.time()
        if wait > 0:
            self._pli_timer = loop.call_later(wait, self._timer_fired)
        else:
            self._send_pli()

    def _timer_fired(self) -> None:
        self._pli_timer = None
        if not self.closed:
            self._send_pli()

    def _send_pli(self) -> None:
        receiver = self._receiver
        ssrc = media_ssrc(receiver) if receiver is not None else None
        if receiver is None or ssrc is None:
            return  # nothing received yet: the publisher's first frame is a keyframe
        self._last_pli = asyncio.get_running_loop().time()
        self._counters.keyframe_requests += 1
        task = asyncio.ensure_future(send_pli(receiver, ssrc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """End the publication: every subscriber stops receiving it at once."""
        self.closed = True
        if self._pli_timer is not None:
            self._pli_timer.cancel()
            self._pli_timer = None
        for task in self._tasks:
            task.cancel()
        self.unbind()
        for sink in tuple(self.sinks):
            sink.detach()
        self.listener = None


class SubscriberTrack(MediaStreamTrack):
    """The track of one server sending transceiver: forwards one publication, or nothing."""

    def __init__(self, kind: str, counters: Counters) -> None:
        super().__init__()
        self.kind = kind
        self.publication: Publication | None = None
        self._counters = counters
        self._queue: deque[tuple[int, RTCRtpCodecParameters, JitterFrame]] = deque()
        self._limit = VIDEO_QUEUE if kind == "video" else AUDIO_QUEUE
        self._ready = asyncio.Event()
        self._need_keyframe = kind == "video"
        self._push_epoch = 0
        self._out_epoch = 0
        self._offset = 0
        self._last_out: int | None = None
        self._last_out_at = 0.0

    def attach(self, publication: Publication) -> None:
        """Forward ``publication`` from its next keyframe on (one is requested)."""
        if publication is self.publication or publication.closed:
            return
        self.detach()
        self.publication = publication
        publication.sinks.add(self)
        self._need_keyframe = self.kind == "video"
        publication.request_keyframe()

    def detach(self) -> None:
        """Stop forwarding now; queued frames are dropped."""
        if self.publication is not None:
            self.publication.sinks.discard(self)
        self.publication = None
        self._queue.clear()

    def keyframe_requested(self) -> None:
        """The subscriber's remote sent PLI/FIR: relay it to the publisher."""
        if self.publication is not None:
            self.publication.request_keyframe()

    def push(self, epoch: int, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        if self.kind == "video":
            if epoch != self._push_epoch:
                self._push_epoch = epoch
                self._need_keyframe = True
            if len(self._queue) >= self._limit:
                self._queue.clear()
                self._need_keyframe = True
            if self._need_keyframe:
                if not is_vp8_keyframe(frame.data):
                    if self.publication is not None:
                        self.publication.request_keyframe()
                    return
                self._need_keyframe = False
        elif len(self._queue) >= self._limit:
            self._queue.popleft()
        self._queue.append((epoch, codec, frame))
        self._ready.set()

    async def recv(self) -> av.Packet[Stream]:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        epoch, codec, frame = self._queue.popleft()
        packet = av.Packet(frame.data)
        packet.pts = self._rebase(epoch, frame.timestamp, codec.clockRate)
        packet.time_base = Fraction(1, codec.clockRate)
        self._counters.frames_out += 1
        return packet

    def _rebase(self, epoch: int, timestamp: int, clock_rate: int) -> int:
        now = time.monotonic()
        if epoch != self._out_epoch:
            self._out_epoch = epoch
            if self._last_out is None:
                start = 0
            else:
                step = clock_rate // (30 if self.kind == "video" else 50)
                gap = int((now - self._last_out_at) * clock_rate)
                start = self._last_out + max(step, gap)
            self._offset = start - timestamp
        out = timestamp + self._offset
        self._last_out = out
        self._last_out_at = now
        return out

    def stop(self) -> None:
        self.detach()
        super().stop()
        self._ready.set()
