"""What live transcription costs: caption latency, lag, accuracy and decoder load.

    .venv/bin/python -m bench.asr [--model base,tiny.en] [--seconds 30] [--full-window]
                                 [--chunk 0.5]

For each model (CPU, int8, 2 threads, one worker) and for one speaker and then four
speaking at once, espeak-ng English is fed to the engine in real time in 20-ms frames.
Measured in the same process, nothing asserted:

- latency: from when a word was spoken (its end in the fed audio; word times inside a
  final Segment are interpolated by characters) to when its final caption arrived,
  p50/p95; ``lag growth`` is the p50 of the second half of the run minus the first;
- WER of the streamed finals against the text, and of an offline ``transcribe()`` of
  the same audio (``engine.decode`` on the whole track);
- decoder busy fraction, decodes, dropped interim work.
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


async def scenario(
    model_path: Path,
    tracks: list[Track],
    offline: dict[int, float],
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
        for i, track in enumerate(tracks):
            if i not in offline:
                audio = np.frombuffer(track.pcm, dtype="<i2").astype(np.float32) / 32768.0
                words = await asyncio.to_thread(engine.decode, audio, "en", "")
                offline[i] = speech.wer(track.text, " ".join(w.text for w in words))
    finally:
        await engine.close()
    lat = [lat for o in outcomes for _, lat in o.latencies]
    half = max(len(t.pcm) for t in tracks) / 2 / speech.RATE / 2
    first = [lat for o in outcomes for at, lat in o.latencies if at < half]
    second = [lat for o in outcomes for at, lat in o.latencies if at >= half]
    streamed = [
        speech.wer(t.text, " ".join(s.text for s in o.finals))
        for t, o in zip(tracks, outcomes, strict=True)
    ]
    offline_wer = [offline[i] for i in range(len(tracks))]
    print(
        f"  {len(tracks)} speaker(s), {time.perf_counter() - started:5.1f} s wall: "
        f"final latency p50 {percentile(lat, 50):.2f} s p95 {percentile(lat, 95):.2f} s "
        f"(words {len(lat)}); lag growth {percentile(second, 50) - percentile(first, 50):+.2f} s"
    )
    print(
        f"    WER streaming {statistics.mean(streamed):.3f} offline "
        f"{statistics.mean(offline_wer):.3f} (difference "
        f"{statistics.mean(streamed) - statistics.mean(offline_wer):+.3f}); "
        f"busy {stats['busy_fraction']:.2f}, decodes {stats['decodes']} "
        f"(final {stats['final_decodes']}), dropped interim {stats['dropped_interim']}, "
        f"decode cost {stats['decode_cost_s']:.2f} s"
    )


async def main(models: list[str], seconds: float, short_window: bool, chunk: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tracks = build_tracks(folder, 4, seconds)
        for name in models:
            resolved = resolve(name, folder / "models")
            window = "short" if short_window else "full 30-s"
            print(
                f"{name} ({resolved.source}), int8, 2 threads, 1 worker, {window} encoder "
                f"window, interim every {chunk:g} s or more, {seconds:.0f} s of speech"
            )
            offline: dict[int, float] = {}
            await scenario(resolved.path, tracks[:1], offline, short_window, chunk)
            await scenario(resolved.path, tracks, offline, short_window, chunk)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base,tiny.en", help="comma-separated model names")
    parser.add_argument("--seconds", type=float, default=30.0, help="speech per speaker")
    parser.add_argument(
        "--full-window", action="store_true", help="decode with transcribe()'s padded 30 s"
    )
    parser.add_argument(
        "--chunk", type=float, default=0.5, help="least seconds of speech between decodes"
    )
    args = parser.parse_args()
    asyncio.run(main(args.model.split(","), args.seconds, not args.full_window, args.chunk))
