"""Synthetic speech for the transcription tests: espeak-ng reads known text.

Each clip is made once per session into a temporary folder as 16 kHz mono s16 WAV
(espeak-ng writes 22.05 kHz; sox resamples). Helpers join clips with silences, cut
audio into 20-ms frames and score transcripts (WER for words, CER for Chinese).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
import wave
from collections.abc import Iterator, Sequence
from pathlib import Path

RATE = 16000
FRAME = 320  # 20 ms

ENGLISH = (
    "The court will now hear the case.",
    "Please state your name for the record.",
    "The mediator has reviewed the contract and the payment schedule.",
    "Both parties agree to meet again next week.",
)
CHINESE = (
    "今天开庭审理合同纠纷案件。",
    "请原告陈述诉讼请求。",
    "被告是否同意调解？",
)

NUMBERS = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four",
    "5": "five", "6": "six", "7": "seven", "8": "eight", "9": "nine", "10": "ten",
}  # fmt: skip


def have_tools() -> bool:
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


def say(text: str, out: Path, *, voice: str = "en-us", speed: int = 150) -> Path:
    """Speak ``text`` into ``out`` as a 16 kHz mono 16-bit WAV."""
    raw = out.with_suffix(".raw.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        # -D: no dither, so the same text always makes the same samples (sox dithers with
        # random noise by default, which made the measured error rates vary run to run)
        ["sox", "-D", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out)],
        check=True,
        capture_output=True,
    )
    raw.unlink()
    return out


def read_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)
        return wav.readframes(wav.getnframes())


def write_wav(path: Path, pcm: bytes) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm)
    return path


def silence(seconds: float) -> bytes:
    return b"\0\0" * int(seconds * RATE)


def conversation(
    texts: Sequence[str], folder: Path, *, voice: str = "en-us", pause: float = 1.2
) -> tuple[bytes, list[tuple[float, float]]]:
    """The sentences spoken one after another with pauses; returns PCM and their spans."""
    pcm = silence(0.5)
    spans: list[tuple[float, float]] = []
    for i, text in enumerate(texts):
        clip = read_pcm(say(text, folder / f"{voice}-{i}.wav", voice=voice))
        start = len(pcm) / 2 / RATE
        pcm += clip
        spans.append((start, len(pcm) / 2 / RATE))
        pcm += silence(pause)
    return pcm, spans


def frames(pcm: bytes, start: float = 0.0) -> Iterator[tuple[bytes, float]]:
    """20-ms frames of ``pcm`` with the stream time of their first sample."""
    step = FRAME * 2
    for offset in range(0, len(pcm), step):
        yield pcm[offset : offset + step], start + offset / 2 / RATE


def words(text: str) -> list[str]:
    """Lower case, digits spelled out, punctuation dropped."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"\d+", lambda m: f" {NUMBERS.get(m.group(0), m.group(0))} ", text)
    text = "".join(c if c.isalnum() or c.isspace() or c == "'" else " " for c in text)
    return text.split()


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def wer(reference: str, hypothesis: str) -> float:
    ref = words(reference)
    return edit_distance(ref, words(hypothesis)) / max(1, len(ref))


def chars(text: str) -> list[str]:
    """Chinese characters and other letters/digits, punctuation and spaces dropped."""
    return [c for c in text if unicodedata.category(c)[0] in "LN"]


def cer(reference: str, hypothesis: str) -> float:
    ref = chars(reference)
    return edit_distance(ref, chars(hypothesis)) / max(1, len(ref))
