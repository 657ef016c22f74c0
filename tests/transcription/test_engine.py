"""The live engine on synthetic speech (espeak-ng), with the real tiny.en and base models.

Word error rates are measured here and printed (pytest -s shows them); the bounds were
set from measurements on a 2-core machine with a margin (see each test).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.transcription import speech
from tests.transcription.streams import Recorder, ScriptedEngine, model, stream_speech
from transcription import chinese
from transcription.engine import Engine
from transcription.files import AudioFile, transcribe_file
from transcription.stream import Word
from transcription.vad import Audio, SpeechGate, to_float

pytestmark = pytest.mark.skipif(not speech.have_tools(), reason="needs espeak-ng and sox")

# tiny.en on espeak English (short encoder window): streaming measured 0.25-0.34 over six
# runs, offline 0.13-0.16 (it hears "will out here" for "will now hear", "media" for
# "mediator"); the bound leaves three to four words of margin on 32.
ENGLISH_WER_BOUND = 0.45


@pytest.fixture(scope="module")
def english(folder: Path) -> tuple[bytes, list[tuple[float, float]]]:
    return speech.conversation(speech.ENGLISH, folder)


@pytest.mark.timeout(90)
async def test_streamed_english_is_close_to_the_text_and_in_order(
    engine: Engine, english: tuple[bytes, list[tuple[float, float]]]
) -> None:
    pcm, spans = english
    reference = " ".join(speech.ENGLISH)
    recorder = await stream_speech(engine, pcm, start=100.0)
    streamed = speech.wer(reference, recorder.text)

    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    offline = speech.wer(reference, " ".join(w.text for w in engine.decode(audio, "en", "")))
    print(f"\ntiny.en WER streaming {streamed:.3f} offline {offline:.3f}: {recorder.text!r}")
    print(engine.stats())
    assert streamed <= ENGLISH_WER_BOUND

    finals = recorder.finals
    assert len(finals) >= len(speech.ENGLISH)
    starts = [s.start for s in finals]
    assert starts == sorted(starts)
    assert all(a.end <= b.start + 0.05 for a, b in itertools.pairwise(finals))
    # on the stream clock: the speech began 0.5 s after time 100 and ends with the last span
    assert 100.0 <= finals[0].start <= 100.0 + spans[0][0] + 0.5
    assert finals[-1].end <= 100.0 + spans[-1][1] + 1.0
    first_interim = next(i for i, s in enumerate(recorder.segments) if not s.final and s.text)
    first_final = next(i for i, s in enumerate(recorder.segments) if s.final)
    assert first_interim < first_final
    assert engine.stats()["dropped_interim"] <= 2  # at most superseded by an utterance's end


@pytest.mark.timeout(60)
async def test_a_stream_beyond_max_streams_waits_for_a_slot(tiny_en: Path, folder: Path) -> None:
    engine = Engine(tiny_en, language="en", max_streams=1)
    await engine.start()
    try:
        first_pcm, _ = speech.conversation(speech.ENGLISH[:1], folder)
        second_pcm, _ = speech.conversation(speech.ENGLISH[1:2], folder)
        first, second = Recorder(), Recorder()
        a = engine.open_stream("a", on_segment=first, language="en")
        b = engine.open_stream("b", on_segment=second, language="en")
        assert a.admitted and not b.admitted
        assert engine.stats()["waiting"] == 1
        for frame, at in speech.frames(second_pcm):
            b.feed(frame, at)  # held in b's backlog meanwhile
        for frame, at in speech.frames(first_pcm):
            a.feed(frame, at)
        await asyncio.sleep(0.5)
        assert second.segments == [] and not b.admitted
        await a.finish()
        assert b.admitted
        await b.finish()
        print(f"\nfirst {first.text!r} second {second.text!r}")
        assert speech.wer(speech.ENGLISH[0], first.text) <= 0.5
        assert speech.wer(speech.ENGLISH[1], second.text) <= 0.5
        assert engine.stats()["streams"] == 0
    finally:
        await engine.close()


class SlowEngine(Engine):
    """Every decode takes 0.6 s longer: decoding lags the speech."""

    def decode(self, audio: Audio, language: str, prompt: str) -> list[Word]:
        time.sleep(0.6)
        return super().decode(audio, language, prompt)


@pytest.mark.timeout(90)
async def test_lagging_decodes_drop_interims_but_keep_every_final(
    tiny_en: Path, english: tuple[bytes, list[tuple[float, float]]]
) -> None:
    engine = SlowEngine(tiny_en, language="en", max_streams=2)
    await engine.start()
    try:
        recorder = await stream_speech(engine, english[0], lockstep=False)
        stats = engine.stats()
        streamed = speech.wer(" ".join(speech.ENGLISH), recorder.text)
        print(f"\nslow decoder: WER {streamed:.3f} {stats}")
        assert stats["dropped_interim"] > 0
        assert stats["final_decodes"] >= len(speech.ENGLISH)
        # one decode per utterance, little prompt context: measured 0.25-0.38
        assert streamed <= 0.5
        for sentence in speech.ENGLISH:  # every sentence reached the finals
            assert speech.words(sentence)[-1] in speech.words(recorder.text)
    finally:
        await engine.close()


def ffmpeg(source: Path, target: Path, *codec: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), *codec, str(target)],
        check=True,
    )
    return target


def file_pcm(path: Path) -> bytes:
    audio = AudioFile(path)
    try:
        out = b""
        while piece := audio.read():
            out += piece
        return out
    finally:
        audio.close()


async def file_text(path: Path, engine: Engine) -> str:
    fractions: list[float] = []
    segments = await transcribe_file(path, engine, language="en", progress=fractions.append)
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    return " ".join(s.text for s in segments)


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
async def test_a_wav_and_its_video_containers_give_the_same_text(
    engine: Engine, folder: Path
) -> None:
    pcm, _ = speech.conversation(speech.ENGLISH[1:3], folder, pause=0.8)
    wav = speech.write_wav(folder / "two.wav", pcm)
    video = ("-f", "lavfi", "-i", "color=c=black:s=160x120:r=10", "-shortest")
    # lossless audio beside a video track: the file reader must pick the audio and give
    # back the very samples, so the engine hears exactly what it heard from the WAV
    mkv = ffmpeg(wav, folder / "two.mkv", *video, "-c:v", "libvpx", "-c:a", "flac")
    mov = ffmpeg(wav, folder / "two.mov", *video, "-c:v", "libx264", "-c:a", "pcm_s16le")
    assert file_pcm(wav) == pcm
    assert file_pcm(mkv) == pcm
    assert file_pcm(mov) == pcm
    reference = " ".join(speech.ENGLISH[1:3])
    texts = {path.suffix: await file_text(path, engine) for path in (wav, mkv)}
    assert texts[".mkv"] == texts[".wav"]
    # lossy codecs change the samples, and tiny.en then hears a hard word ("mediator")
    # differently from run to run ("me-dader", "meat-taker", "media"): each is judged
    # against the known text with the same bound as the WAV, not word for word against it
    webm = ffmpeg(wav, folder / "two.webm", "-c:a", "libopus", "-b:a", "96k")
    mp4 = ffmpeg(wav, folder / "two.mp4", *video, "-c:v", "libx264", "-c:a", "aac", "-b:a", "96k")
    for path in (webm, mp4):
        texts[path.suffix] = await file_text(path, engine)
    print(f"\n{texts}")
    for suffix, text in texts.items():
        assert speech.wer(reference, text) <= ENGLISH_WER_BOUND, suffix


@pytest.fixture(scope="module")
def chinese_speech(folder: Path) -> Iterator[tuple[bytes, str]]:
    pcm, _ = speech.conversation(speech.CHINESE, folder, voice="cmn", pause=1.0)
    yield pcm, "".join(speech.CHINESE)


@pytest.mark.timeout(120)
async def test_chinese_with_multilingual_base_comes_out_simplified(
    folder: Path, chinese_speech: tuple[bytes, str]
) -> None:
    engine = Engine(model("base", folder / "models"), language="zh")
    await engine.start()
    try:
        pcm, reference = chinese_speech
        recorder = Recorder()
        stream = engine.open_stream("zh", on_segment=recorder)
        for i, (frame, at) in enumerate(speech.frames(pcm), 1):
            stream.feed(frame, at)
            if i % round(engine.chunk * 50) == 0:
                await stream.idle()
        await stream.finish()
        text = "".join(s.text for s in recorder.finals)
        error = speech.cer(reference, text)
        # espeak-ng's Mandarin is barely intelligible to base (measured CER 2.1-2.4, mostly
        # hallucinated text): only measured here, and the output checked for Simplified
        # characters and full-width punctuation.
        print(f"\nbase Chinese CER {error:.3f}: {text!r} {engine.stats()}")
        assert chinese.to_simplified(text) == text
        assert not re.search(r"[\u4e00-\u9fff][,.?!]", text)
    finally:
        await engine.close()


@pytest.mark.timeout(60)
async def test_a_long_unbroken_utterance_keeps_the_buffer_and_memory_bounded(
    folder: Path,
) -> None:
    engine = ScriptedEngine(max_buffer=8.0, trim_after=4.0)
    await engine.start()
    try:
        clip = speech.read_pcm(speech.say(speech.ENGLISH[2], folder / "long.wav"))
        pcm = b"".join([clip + speech.silence(0.3)] * 12)  # ~45 s, pauses under 0.8 s
        recorder = Recorder()
        stream = engine.open_stream("long", on_segment=recorder, language="en")
        for i, (frame, at) in enumerate(speech.frames(pcm), 1):
            stream.feed(frame, at)
            if i % 25 == 0:
                await stream.idle()
                assert stream.retained_seconds() <= 8.0 + 1.5
        await stream.finish()
        print(f"\ndecoded lengths: max {max(engine.lengths):.1f} s over {len(engine.lengths)}")
        assert max(engine.lengths) <= 8.0 + 0.6
        assert len(recorder.finals) > 3
        ends = [s.end for s in recorder.finals]
        assert ends == sorted(ends)
    finally:
        await engine.close()


@pytest.mark.timeout(30)
def test_the_speech_gate_finds_each_sentence_in_20_ms_frames(
    english: tuple[bytes, list[tuple[float, float]]],
) -> None:
    pcm, spans = english
    gate = SpeechGate(min_silence=0.8)
    events = [e for frame, _ in speech.frames(pcm) for e in gate.push(to_float(frame))]
    events += gate.close()
    starts = [e.sample / speech.RATE for e in events if e.kind == "start"]
    ends = [e.sample / speech.RATE for e in events if e.kind == "end"]
    assert len(starts) == len(ends) == len(spans)
    for (start, end), began, ended in zip(spans, starts, ends, strict=True):
        assert start - 0.3 <= began <= start + 0.1
        assert end - 0.2 <= ended <= end + 0.5
