"""What a live stream does with input that is not clean speech: silence, noise, clipped
speech, a monologue of half an hour, a speaker cut off in the middle of a word.

Each must end (no hang), keep its memory bounded and never send the same final text twice.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tests.transcription import speech
from tests.transcription.streams import Recorder, ScriptedEngine, stream_speech
from transcription.engine import Engine

pytestmark = pytest.mark.skipif(not speech.have_tools(), reason="needs espeak-ng and sox")

# tiny.en on clean espeak English measured 0.13-0.16 offline and 0.25-0.38 streamed (see
# test_engine.py); six times too loud and hard clipped it measured 0.28 in two runs here
CLIPPED_WER_BOUND = 0.45


def pcm_of(samples: np.ndarray) -> bytes:
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def assert_no_repeats(recorder: Recorder) -> None:
    """No final is sent twice, and finals move forward in time."""
    finals = recorder.finals
    keys = [(s.start, s.end, s.text) for s in finals]
    assert len(keys) == len(set(keys)), keys
    starts = [s.start for s in finals]
    assert starts == sorted(starts), starts


@pytest.mark.timeout(60)
async def test_silence_gives_no_text_and_no_decodes(engine: Engine) -> None:
    recorder = await stream_speech(engine, speech.silence(20.0))
    assert recorder.segments == []
    assert engine.stats()["decodes"] == 0


@pytest.mark.timeout(60)
async def test_steady_noise_ends_without_hanging_or_repeating(engine: Engine) -> None:
    rng = np.random.default_rng(7)
    noise = pcm_of(rng.standard_normal(speech.RATE * 20) * 3000)  # white noise, -21 dBFS
    recorder = await stream_speech(engine, noise)
    print(f"\nnoise gave {len(recorder.finals)} finals: {recorder.text!r} {engine.stats()}")
    assert_no_repeats(recorder)
    # the speech gate hears no speech in steady noise: at most a stray word or two
    assert len(speech.words(recorder.text)) <= 3


@pytest.mark.timeout(90)
async def test_clipped_speech_is_still_understood(engine: Engine, folder: Path) -> None:
    pcm, _ = speech.conversation(speech.ENGLISH, folder)
    loud = np.frombuffer(pcm, dtype="<i2").astype(np.float64) * 6.0
    clipped = pcm_of(loud)  # six times too loud: hard clipped at full scale
    assert np.mean(np.abs(np.frombuffer(clipped, dtype="<i2")) >= 32767) > 0.01
    recorder = await stream_speech(engine, clipped)
    reference = " ".join(speech.ENGLISH)
    error = speech.wer(reference, recorder.text)
    print(f"\nclipped speech WER {error:.3f}: {recorder.text!r}")
    assert_no_repeats(recorder)
    assert error <= CLIPPED_WER_BOUND


@pytest.mark.timeout(60)
async def test_a_speaker_cut_off_mid_word_gets_the_tail_once(engine: Engine, folder: Path) -> None:
    clip = speech.read_pcm(speech.say(speech.ENGLISH[2], folder / "cut.wav"))
    cut = clip[: (len(clip) * 3 // 5) & ~1]  # three fifths in: inside a word, no silence after
    recorder = await stream_speech(engine, speech.silence(0.5) + cut)
    heard = speech.words(recorder.text)
    said = speech.words(speech.ENGLISH[2])
    print(f"\ncut off: {recorder.text!r}")
    assert_no_repeats(recorder)
    assert heard, "the words before the cut were lost"
    assert len(heard) <= len(said)  # nothing doubled
    # the last whole word before the cut is there (tiny.en mishears "The mediator" as
    # "For me-dader" or "For me" in some runs, so the words before it are not checked)
    assert "contract" in heard
    assert not {"payment", "schedule"} & set(heard)  # and nothing made up past the cut


@pytest.mark.timeout(120)
async def test_half_an_hour_of_monologue_keeps_memory_bounded(folder: Path) -> None:
    """30 minutes of speech with pauses too short to end the utterance (scripted decodes:
    the point is what the stream keeps, not what the model hears)."""
    engine = ScriptedEngine(max_buffer=20.0, trim_after=10.0)
    await engine.start()
    try:
        clip = speech.read_pcm(speech.say(speech.ENGLISH[2], folder / "monologue.wav"))
        piece = clip + speech.silence(0.3)
        pieces = int(30 * 60 / (len(piece) / 2 / speech.RATE)) + 1
        finals = 0

        async def count(segment: object) -> None:
            nonlocal finals
            finals += bool(getattr(segment, "final", False))

        stream = engine.open_stream("monologue", on_segment=count, language="en")
        tracemalloc.start()
        try:
            at, sizes = 0.0, []
            for n in range(pieces):
                for frame, time in speech.frames(piece, at):
                    stream.feed(frame, time)
                at += len(piece) / 2 / speech.RATE
                await stream.idle()
                assert stream.retained_seconds() <= 20.0 + 1.5 + len(piece) / 2 / speech.RATE
                if n % 50 == 0:
                    sizes.append(tracemalloc.get_traced_memory()[0])
            await stream.finish()
        finally:
            tracemalloc.stop()
        minutes = at / 60
        print(
            f"\n{minutes:.1f} min: {finals} finals, decoded at most {max(engine.lengths):.1f} s, "
            f"traced memory {sizes[1] / 1e6:.1f} -> {sizes[-1] / 1e6:.1f} MB"
        )
        assert minutes >= 30
        assert max(engine.lengths) <= 20.0 + 0.6
        assert finals > 30
        # what the stream holds does not grow with the length of the session
        assert sizes[-1] - sizes[1] < 4_000_000
    finally:
        await engine.close()
