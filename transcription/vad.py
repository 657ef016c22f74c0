"""An incremental speech gate on 16 kHz mono audio, using the Silero VAD bundled with
faster-whisper (``faster_whisper.vad``, ONNX, run here one 32-ms window at a time).

:class:`SpeechGate` takes audio in any chunk size (20-ms frames from the audio tap),
scores each 512-sample window and reports speech ``start`` and ``end`` events at
absolute sample positions. Speech starts on one window above ``threshold`` (reported
``pad`` seconds earlier, so the first syllable is kept) and ends after ``min_silence``
seconds below ``neg_threshold`` (the hangover; the event sits where the silence began,
plus ``pad``). One shared ONNX session, a small recurrent state per gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from faster_whisper.vad import get_vad_model

SAMPLE_RATE = 16000
WINDOW = 512
CONTEXT = 64

Audio = npt.NDArray[np.float32]


def to_float(pcm: bytes) -> Audio:
    """Signed 16-bit little-endian PCM → float32 in [-1, 1)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


@dataclass(frozen=True)
class VadEvent:
    kind: Literal["start", "end"]
    sample: int  # absolute sample position in the gate's stream


class SpeechGate:
    """Speech start/end decisions for one stream of audio, fed incrementally."""

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        neg_threshold: float = 0.35,
        min_silence: float = 0.8,
        pad: float = 0.2,
    ) -> None:
        self.threshold = threshold
        self.neg_threshold = neg_threshold
        self._min_silence = int(min_silence * SAMPLE_RATE)
        self._pad = int(pad * SAMPLE_RATE)
        self._session: Any = get_vad_model().session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self.position = 0  # samples scored so far
        self.speaking = False
        self._silence_from: int | None = None
        self.last_probability = 0.0

    def probability(self, window: Audio) -> float:
        """Score one 512-sample window, carrying the model's state to the next one."""
        batch = np.concatenate([self._context, window])[None, :]
        out, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = window[-CONTEXT:]
        return float(np.asarray(out).reshape(-1)[0])

    def push(self, audio: Audio) -> list[VadEvent]:
        """Score whatever whole windows ``audio`` completes; return the decisions made."""
        events: list[VadEvent] = []
        pending = np.concatenate([self._pending, audio]) if self._pending.size else audio
        whole = len(pending) // WINDOW * WINDOW
        for offset in range(0, whole, WINDOW):
            prob = self.probability(pending[offset : offset + WINDOW])
            self.last_probability = prob
            here = self.position
            self.position += WINDOW
            if not self.speaking:
                if prob >= self.threshold:
                    self.speaking = True
                    self._silence_from = None
                    events.append(VadEvent("start", max(0, here - self._pad)))
                continue
            if prob >= self.threshold:
                self._silence_from = None
            elif prob < self.neg_threshold and self._silence_from is None:
                self._silence_from = here
            if self._silence_from is not None and self.position - self._silence_from >= (
                self._min_silence
            ):
                self.speaking = False
                events.append(VadEvent("end", min(self.position, self._silence_from + self._pad)))
                self._silence_from = None
        self._pending = pending[whole:].copy()
        return events

    def close(self) -> list[VadEvent]:
        """End of the stream: end any speech in progress where the audio stops."""
        end = self.position + len(self._pending)
        self._pending = np.zeros(0, dtype=np.float32)
        if not self.speaking:
            return []
        self.speaking = False
        silence = self._silence_from
        self._silence_from = None
        return [VadEvent("end", end if silence is None else min(end, silence + self._pad))]
