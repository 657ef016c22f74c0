"""What live transcription costs: caption latency, lag, accuracy and decoder load.

    .venv/bin/python -m bench.asr [--model base,tiny.en] [--speakers 1,2,4,8]
                                 [--seconds 30] [--file-seconds 120] [--full-window]
                                 [--chunk 0.5]

For each model (CPU, int8, 2 threads, one worker), the baseline is plain
``faster_whisper.WhisperModel.transcribe`` (its defaults: beam 5, 30-s windows) of the
same audio, run in the same process. Measured, nothing asserted:

- a long file: the engine's file path (``transcription.files.transcribe_file``: the
  whole file with beam 5 and the speech gate) against ``transcribe()`` of the same WAV:
  seconds, real-time factor (processing time / audio time), WER, and the ratio of the
  two times;
- live: 1, 2, 4 and 8 speakers at once, espeak-ng English fed in real time in 20-ms
  frames. Latency from when a word was spoken (its end in the fed audio; word times
  inside a final Segment are interpolated by characters) to its final caption, p50/p95;
  ``lag growth`` is the p50 of the second half of the run minus the first; WER of the
  streamed finals next to ``transcribe()`` of each speaker's track; decoder busy
  fraction, decodes, dropped interim work.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.transcription import speech
from transcription.engine import Engine
from transcription.files import transcribe_file
from transcription.models import resolve
from transcription.stream import Segment

SENTENCES = (
    *speech.ENGLISH,
    "The applicant asks for the deposit to be returned in full.",
    "The respondent says the goods arrived late and damaged.",
    "Could you send the receipts to the court before Friday?",
    "We will record this session and keep the transcript.",
    "The hearing is adjourned until the experts have reported.",
    "Thank you all for joining the mediation this morning.",
)


@dataclass
class Track:
    """One speaker's audio and what was said when."""

    pcm: bytes
    text: str


@dataclass
class Outcome:
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (spoken at, latency)
    finals: list[Segment] = field(default_factory=list)


def build_tracks(folder: Path, count: int, seconds: float) -> list[Track]:
    clips = [speech.read_pcm(speech.say(t, folder / f"s{i}.wav")) for i, t in enumerate(SENTENCES)]
    tracks = []
    for n in range(count):
        rng = random.Random(n)
        pcm, said, i = speech.silence(0.5 + 0.3 * n), [], n * 3
        while len(pcm) / 2 / speech.RATE < seconds:
            k = i % len(SENTENCES)
            pcm += clips[k] + speech.silence(rng.uniform(0.5, 1.5))
            said.append(SENTENCES[k])
            i += 1
        tracks.append(Track(pcm, " ".join(said)))
    return tracks


def word_ends(segment: Segment) -> list[float]:
    """Estimated end time of each word of a final Segment (by character position)."""
    words = segment.text.split()
    total = sum(len(w) for w in words) or 1
    ends, done = [], 0
    for w in words:
        done += len(w)
        ends.append(segment.start + (segment.end - segment.start) * done / total)
    return ends


async def run_live(engine: Engine, tracks: list[Track]) -> list[Outcome]:
    outcomes = [Outcome() for _ in tracks]
    t0 = time.perf_counter() + 0.2

    def collector(outcome: Outcome) -> Callable[[Segment], Awaitable[None]]:
        async def on_segment(segment: Segment) -> None:
            if not segment.final:
                return
            now = time.perf_counter() - t0
            outcome.finals.append(segment)
            outcome.latencies += [(end, now - end) for end in word_ends(segment)]

        return on_segment

    async def feed(track: Track, outcome: Outcome, key: str) -> None:
        stream = engine.open_stream(key, on_segment=collector(outcome), language="en")
        for frame, at in speech.frames(track.pcm):
            delay = t0 + at + len(frame) / 2 / speech.RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            stream.feed(frame, at)
        await stream.finish()

    await asyncio.gather(
        *(feed(t, o, f"speaker-{i}") for i, (t, o) in enumerate(zip(tracks, outcomes, strict=True)))
    )
    return outcomes


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(values, q))


class Baseline:
    """Plain ``WhisperModel.transcribe`` with its defaults, on the same CPU settings."""

    def __init__(self, model_path: Path) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(str(model_path), device="cpu", compute_type="int8", cpu_threads=2)
        self.wer: dict[int, float] = {}  # per track, computed once

    def transcribe(self, audio: np.ndarray | str) -> tuple[str, float]:
        """The text and the seconds it took."""
        started = time.perf_counter()
        segments, _ = self.model.transcribe(audio, language="en")
        text = " ".join(s.text.strip() for s in segments)
        return text, time.perf_counter() - started

    def track_wer(self, i: int, track: Track) -> float:
        if i not in self.wer:
            audio = np.frombuffer(track.pcm, dtype="<i2").astype(np.float32) / 32768.0
            self.wer[i] = speech.wer(track.text, self.transcribe(audio)[0])
        return self.wer[i]


async def long_file(model_path: Path, baseline: Baseline, track: Track, folder: Path) -> None:
    wav = speech.write_wav(folder / "long.wav", track.pcm)
    seconds = len(track.pcm) / 2 / speech.RATE
    engine = Engine(model_path, language="en", max_streams=1)
    await engine.start()
    try:
        started = time.perf_counter()
        segments = await transcribe_file(wav, engine, language="en")
        took = time.perf_counter() - started
    finally:
        await engine.close()
    text = " ".join(s.text for s in segments)
    plain_text, plain = await asyncio.to_thread(baseline.transcribe, str(wav))
    print(
        f"  file of {seconds:.0f} s: engine {took:5.1f} s (RTF {took / seconds:.3f}, WER "
        f"{speech.wer(track.text, text):.3f}); transcribe() {plain:5.1f} s (RTF "
        f"{plain / seconds:.3f}, WER {speech.wer(track.text, plain_text):.3f}); "
        f"engine/transcribe time {took / plain:.2f}"
    )


async def scenario(
    model_path: Path,
    tracks: list[Track],
    baseline: Baseline,
    short_window: bool,
    chunk: float,
) -> None:
    engine = Engine(
        model_path,
        language="en",
        max_streams=len(tracks),
        short_window=short_window,
        chunk=chunk,
    )
    await engine.start()
    started = time.perf_counter()
    try:
        outcomes = await run_live(engine, tracks)
        stats = engine.stats()
    finally:
        await engine.close()
    offline_wer = [
        await asyncio.to_thread(baseline.track_wer, i, track) for i, track in enumerate(tracks)
    ]
    lat = [lat for o in outcomes for _, lat in o.latencies]
    half = max(len(t.pcm) for t in tracks) / 2 / speech.RATE / 2
    first = [lat for o in outcomes for at, lat in o.latencies if at < half]
    second = [lat for o in outcomes for at, lat in o.latencies if at >= half]
    streamed = [
        speech.wer(t.text, " ".join(s.text for s in o.finals))
        for t, o in zip(tracks, outcomes, strict=True)
    ]
    print(
        f"  {len(tracks)} speaker(s), {time.perf_counter() - started:5.1f} s wall: "
        f"final latency p50 {percentile(lat, 50):.2f} s p95 {percentile(lat, 95):.2f} s "
        f"(words {len(lat)}); lag growth {percentile(second, 50) - percentile(first, 50):+.2f} s"
    )
    print(
        f"    WER streaming {statistics.mean(streamed):.3f} transcribe() "
        f"{statistics.mean(offline_wer):.3f} (difference "
        f"{statistics.mean(streamed) - statistics.mean(offline_wer):+.3f}); "
        f"busy {stats['busy_fraction']:.2f}, decodes {stats['decodes']} "
        f"(final {stats['final_decodes']}), dropped interim {stats['dropped_interim']}, "
        f"decode cost {stats['decode_cost_s']:.2f} s"
    )


async def main(
    models: list[str],
    speakers: list[int],
    seconds: float,
    file_seconds: float,
    short_window: bool,
    chunk: float,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tracks = build_tracks(folder, max(speakers), seconds)
        long_track = build_tracks(folder, 1, file_seconds)[0]
        for name in models:
            resolved = resolve(name, folder / "models")
            window = "short" if short_window else "full 30-s"
            print(
                f"{name} ({resolved.source}), int8, 2 threads, 1 worker, {window} encoder "
                f"window, interim every {chunk:g} s or more, {seconds:.0f} s of speech"
            )
            baseline = Baseline(resolved.path)
            await long_file(resolved.path, baseline, long_track, folder)
            for count in speakers:
                await scenario(resolved.path, tracks[:count], baseline, short_window, chunk)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base,tiny.en", help="comma-separated model names")
    parser.add_argument("--speakers", default="1,2,4,8", help="comma-separated speaker counts")
    parser.add_argument("--seconds", type=float, default=30.0, help="speech per speaker")
    parser.add_argument("--file-seconds", type=float, default=120.0, help="length of the long file")
    parser.add_argument(
        "--full-window", action="store_true", help="decode with transcribe()'s padded 30 s"
    )
    parser.add_argument(
        "--chunk", type=float, default=0.5, help="least seconds of speech between decodes"
    )
    args = parser.parse_args()
    asyncio.run(
        main(
            args.model.split(","),
            [int(n) for n in args.speakers.split(",")],
            args.seconds,
            args.file_seconds,
            not args.full_window,
            args.chunk,
        )
    )
