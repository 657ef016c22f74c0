"""The audio tap: each recorded publisher's Opus decoded once, as 16 kHz mono s16 frames.

The tap is fed the encoded frames of a ``mic`` publication (media/forwarding.py), decodes
them with aiortc's Opus decoder, resamples to 16 kHz mono signed 16-bit with
``av.AudioResampler`` and puts :class:`TapFrame` s on a bounded ``asyncio.Queue`` owned by
the caller (when it is full, the oldest frame is dropped and counted). Only members for
whom ``tap_recorded(room_key, member_id)`` holds are decoded. Decoding runs inline in the
event loop: one 20-ms Opus frame decodes and resamples in tens of microseconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media.forwarding import Counters

logger = logging.getLogger(__name__)

TAP_RATE = 16000


@dataclass(frozen=True)
class TapFrame:
    """A chunk of one member's speech, ready for transcription."""

    room: str  # room key
    member_id: str
    pcm: bytes  # 16 kHz mono signed 16-bit little-endian
    samples: int
    time: float  # seconds on the room's clock (time.monotonic() since the room was created)


TapRecorded = Callable[[str, str], bool]


class AudioTap:
    """Where tap frames go, and who is tapped; hands out one feeder per audio publication."""

    def __init__(
        self,
        queue: asyncio.Queue[TapFrame],
        recorded: TapRecorded | None,
        counters: Counters,
    ) -> None:
        self.queue = queue
        self.recorded = recorded
        self.counters = counters

    def feeder(self, room: str, member_id: str, room_started: float) -> TapFeeder:
        return TapFeeder(self, room, member_id, room_started)

    def put(self, frame: TapFrame) -> None:
        """Queue ``frame``, dropping the oldest queued frame while the queue is full."""
        while True:
            try:
                self.queue.put_nowait(frame)
            except asyncio.QueueFull:
                try:
                    self.queue.get_nowait()
                except asyncio.QueueEmpty:  # pragma: no cover - a zero-size queue
                    return
                self.queue.task_done()
                self.counters.tap_dropped += 1
            else:
                self.counters.tap_frames += 1
                return


class TapFeeder:
    """Decodes one publication's Opus frames while its member is recorded."""

    def __init__(self, tap: AudioTap, room: str, member_id: str, room_started: float) -> None:
        self._tap = tap
        self._room = room
        self._member_id = member_id
        self._room_started = room_started
        self._epoch = 0
        self._decoder: OpusDecoder | None = None
        self._resampler: av.AudioResampler | None = None

    def __call__(self, epoch: int, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        recorded = self._tap.recorded
        if recorded is None or not recorded(self._room, self._member_id):
            self._decoder = None  # start clean when recording resumes
            return
        if self._decoder is None or self._resampler is None or epoch != self._epoch:
            self._epoch = epoch
            self._decoder = OpusDecoder()
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=TAP_RATE)
        try:
            decoded = self._decoder.decode(frame)
            chunks = [
                out
                for f in decoded
                if isinstance(f, av.AudioFrame)
                for out in self._resampler.resample(f)
            ]
        except av.FFmpegError as exc:
            logger.warning("audio tap: cannot decode %s's audio: %s", self._member_id, exc)
            return
        now = time.monotonic() - self._room_started
        for chunk in chunks:
            samples = chunk.samples
            pcm = bytes(chunk.planes[0])[: samples * 2]
            self._tap.put(
                TapFrame(
                    room=self._room,
                    member_id=self._member_id,
                    pcm=pcm,
                    samples=samples,
                    time=max(0.0, now - samples / TAP_RATE),
                )
            )
