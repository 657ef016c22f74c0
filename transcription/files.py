"""Transcribing an audio or video file with the live engine, faster than real time.

The file's first audio track is decoded with PyAV (whatever FFmpeg reads: WAV, MP3,
MP4, WebM, ...) and resampled to 16 kHz mono s16, a few seconds at a time in a thread.
The audio goes to one engine stream in 20-ms frames; after each interval of audio the
feeder waits for the stream to be idle, so the file moves as fast as decoding allows
without dropping interim work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av

from transcription.engine import Engine
from transcription.stream import Segment
from transcription.vad import SAMPLE_RATE

FRAME_BYTES = 2 * SAMPLE_RATE // 50  # 20 ms of s16 mono
READ_SECONDS = 5.0


class AudioFile:
    """A file's audio as 16 kHz mono s16 PCM, read piece by piece."""

    def __init__(self, path: Path) -> None:
        self._container: Any = av.open(str(path))
        streams = self._container.streams.audio
        if not streams:
            self._container.close()
            raise ValueError(f"{path.name} has no audio track")
        self._stream = streams[0]
        duration = self._container.duration
        self.duration = float(duration) / 1_000_000 if duration else 0.0
        self._frames: Iterator[Any] = self._decoded()

    def _decoded(self) -> Iterator[Any]:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        for frame in self._container.decode(self._stream):
            yield from resampler.resample(frame)
        yield from resampler.resample(None)

    def read(self, seconds: float = READ_SECONDS) -> bytes:
        """At least ``seconds`` of PCM, or what is left (b"" at the end)."""
        want = int(seconds * SAMPLE_RATE) * 2
        out = bytearray()
        for frame in self._frames:
            out += bytes(frame.planes[0])[: frame.samples * 2]
            if len(out) >= want:
                break
        return bytes(out)

    def close(self) -> None:
        self._container.close()


async def transcribe_file(
    path: Path,
    engine: Engine,
    *,
    language: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[Segment]:
    """The final Segments of ``path``'s speech, times in seconds from the file's start."""
    finals: list[Segment] = []

    async def collect(segment: Segment) -> None:
        if segment.final:
            finals.append(segment)

    audio = await asyncio.to_thread(AudioFile, Path(path))
    stream = engine.open_stream(
        f"file:{Path(path).name}", on_segment=collect, language=language, live=False
    )
    try:
        await stream.wait_admitted()
        fed = 0
        since_idle = 0
        while pcm := await asyncio.to_thread(audio.read):
            for offset in range(0, len(pcm), FRAME_BYTES):
                frame = pcm[offset : offset + FRAME_BYTES]
                stream.feed(frame, fed / SAMPLE_RATE)
                fed += len(frame) // 2
                since_idle += len(frame) // 2
                if since_idle >= engine.chunk * SAMPLE_RATE:
                    since_idle = 0
                    await stream.idle()
                    await asyncio.sleep(0)  # let others run while a silent stretch is gated
            if progress is not None and audio.duration:
                progress(min(0.99, fed / SAMPLE_RATE / audio.duration))
        await stream.finish()
    finally:
        await asyncio.to_thread(audio.close)
        if not stream.closing:
            await stream.finish()
    if progress is not None:
        progress(1.0)
    return sorted(finals, key=lambda s: (s.start, s.end))
