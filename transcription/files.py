"""Transcribing an audio or video file with the engine's model, faster than real time.

A file is not a live room: nobody waits for a caption, so it is decoded whole with the
model's long-form ``transcribe()`` (beam search, each 30-s window conditioned on the text
before it), which is far more accurate than streaming (``bench/asr.py``). Its first
audio track is read with PyAV (whatever FFmpeg reads: WAV, MP3, MP4, WebM, ...);
:class:`AudioFile` also gives it as 16 kHz mono s16, a few seconds at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import av

from transcription.engine import Engine
from transcription.stream import Segment
from transcription.vad import SAMPLE_RATE

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
    on_segment: Callable[[Segment], Awaitable[None]] | None = None,
) -> list[Segment]:
    """The final Segments of ``path``'s speech, times in seconds from the file's start.

    The file is checked first (it must have an audio track FFmpeg can open); then the
    engine decodes it whole (``Engine.transcribe_whole``), handing each segment to
    ``on_segment`` as it comes.
    """
    audio = await asyncio.to_thread(AudioFile, Path(path))
    await asyncio.to_thread(audio.close)
    segments = await engine.transcribe_whole(
        str(path), language=language, on_segment=on_segment, progress=progress
    )
    return sorted(segments, key=lambda s: (s.start, s.end))
