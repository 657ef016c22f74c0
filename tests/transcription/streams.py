"""Feeding engine streams in tests: a recorder of Segments, real-time-ish feeding, and an
engine without a model whose decodes are scripted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.transcription import speech
from transcription.engine import Engine
from transcription.models import ModelNotFound, resolve
from transcription.stream import Segment, Word
from transcription.vad import Audio


def model(name: str, cache: Path) -> Path:
    """The model's folder, or skip the test when its package is not installed."""
    try:
        return resolve(name, cache).path
    except ModelNotFound as exc:
        pytest.skip(str(exc))


class Recorder:
    """Collects a stream's Segments with the time each arrived."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []

    async def __call__(self, segment: Segment) -> None:
        self.segments.append(segment)

    @property
    def finals(self) -> list[Segment]:
        return [s for s in self.segments if s.final]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.finals)


async def stream_speech(
    engine: Engine, pcm: bytes, *, key: str = "s", lockstep: bool = True, start: float = 0.0
) -> Recorder:
    """Feed ``pcm`` in 20-ms frames; in lockstep, wait for the engine after each chunk."""
    recorder = Recorder()
    stream = engine.open_stream(key, on_segment=recorder, language="en")
    per_chunk = round(engine.chunk * 50)
    for i, (frame, at) in enumerate(speech.frames(pcm, start), 1):
        stream.feed(frame, at)
        if lockstep and i % per_chunk == 0:
            await stream.idle()
        elif not lockstep and i % 5 == 0:
            await asyncio.sleep(0.02)  # five times real time
    await stream.finish()
    return recorder


class ScriptedEngine(Engine):
    """No model: each decode 'hears' one word per half second of its audio."""

    def __init__(self, **options: Any) -> None:
        super().__init__(Path("no-model"), language="en", **options)
        self.lengths: list[float] = []

    def _load(self) -> Any:
        return None

    def _warm_up(self) -> None:
        return None

    def decode(self, audio: Audio, language: str, prompt: str) -> list[Word]:
        seconds = len(audio) / speech.RATE
        self.lengths.append(seconds)
        return [Word(f"w{i}.", i * 0.5, i * 0.5 + 0.4) for i in range(int(seconds * 2))]
