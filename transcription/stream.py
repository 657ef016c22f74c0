"""One speaker's audio on its way to text: the speech gate, the buffer, the agreement.

A :class:`Stream` is fed 16 kHz mono PCM. Its :class:`~transcription.vad.SpeechGate`
decides where speech starts and ends; speech goes into a growing buffer. The stream asks
its engine for work (:class:`Job`): an *interim* decode each time enough new speech has
arrived (the engine sets the interval from the measured decode cost), a *cap* decode
when the buffer reaches its size limit and a *final* decode at the end of an utterance.
The engine runs the decode and hands the words back to :meth:`Stream.apply`, which
commits stable text with LocalAgreement-2, trims the buffer and returns Segments.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Literal

import numpy as np

from transcription import chinese
from transcription.agreement import SENTENCE_END, LocalAgreement, Token, join, key, tokenize
from transcription.vad import SAMPLE_RATE, Audio, SpeechGate, VadEvent, to_float

if TYPE_CHECKING:
    from transcription.engine import Engine

JobKind = Literal["interim", "cap", "final"]
PRIORITY: dict[JobKind, int] = {"final": 0, "cap": 1, "interim": 2}
PROMPT_CHARS = 160
PROMPT_TOKENS = 120
ZH_PROMPT = "以下是普通话的句子，使用简体中文和标点。"


def drop_echo(tokens: list[Token], prompt: str, least: int = 4) -> list[Token]:
    """Drop a run of tokens that repeats the fixed prompt (the model may read it back)."""
    source = key(prompt)
    i = 0
    while i < len(tokens):
        j, run = i, ""
        while j < len(tokens) and key(run + tokens[j].text) in source and key(tokens[j].text):
            run += tokens[j].text
            j += 1
        if len(key(run)) >= least:
            return tokens[:i] + tokens[j:]
        i += 1
    return tokens


@dataclass(frozen=True)
class Segment:
    """A piece of one stream's transcript; times in seconds on the stream clock."""

    stream: str
    text: str
    start: float
    end: float
    final: bool
    language: str


@dataclass(frozen=True)
class Job:
    """A decode the stream asks for: audio samples [start, end) of its stream."""

    kind: JobKind
    start: int
    end: int
    since: float  # loop time when it became due
    audio: Audio
    prompt: str
    language: str


@dataclass(frozen=True)
class Word:
    """A recognised word, times in seconds from the start of the decoded audio."""

    text: str
    start: float
    end: float


class Stream:
    """One speaker's live transcription; made by :meth:`Engine.open_stream`."""

    def __init__(
        self,
        engine: Engine,
        key: str,
        *,
        on_segment: Callable[[Segment], Awaitable[None]],
        language: str,
        vocabulary: Sequence[str],
        clock_offset: float,
        live: bool = True,
    ) -> None:
        self.key = key
        self.live = live  # False: no interim decodes, only one per utterance (files)
        self.language = language
        self.admitted = False
        self._engine = engine
        self._on_segment = on_segment
        self._vocabulary = tuple(v.strip() for v in vocabulary if v.strip())
        self._offset = clock_offset
        self._gate = SpeechGate(min_silence=engine.end_silence)
        self._agreement = LocalAgreement()
        self._said: deque[Token] = deque(maxlen=PROMPT_TOKENS)  # committed, for the prompt
        # audio kept from absolute sample ``_origin`` on; the clock maps samples to time
        self._chunks: list[Audio] = []
        self._origin = 0
        self._received = 0
        self._anchors: list[tuple[int, float]] = []
        self._buffer_from: int | None = None  # first sample of the current utterance
        # decodes of the current utterance start here; trimming moves it past committed text
        self._window_from: int | None = None
        self._ends: deque[tuple[int, int]] = deque()  # utterance ends waiting for a final decode
        self._decoded_to = 0  # buffer end at the last decode
        self._due_since: float | None = None
        self._backlog: deque[tuple[bytes, float]] = deque()
        self._backlog_samples = 0
        self.busy = False  # a decode of this stream is running
        self.closing = False
        self._interim_shown = False
        self._settled = asyncio.Event()
        self._admitted_event = asyncio.Event()

    # -- feeding ---------------------------------------------------------------

    def feed(self, pcm: bytes, time: float) -> None:
        """Take 16 kHz mono s16le audio whose first sample is at ``time``; never blocks."""
        if self.closing or not pcm:
            return
        if not self.admitted:
            self._hold(pcm, time)
            return
        audio = to_float(pcm)
        self._anchor(time)
        self._chunks.append(audio)
        self._received += len(audio)
        self._gated(self._gate.push(audio))
        self._forget_silence()
        self._track_due()
        self._engine.wake()

    def _gated(self, events: Sequence[VadEvent]) -> None:
        for event in events:
            if event.kind == "start":
                self._buffer_from = max(event.sample, self._origin)
                self._decoded_to = self._buffer_from
                self._window_from = self._buffer_from
            elif self._buffer_from is not None:
                if self._due_since is not None:  # the final decode replaces it
                    self._engine.counters["dropped_interim"] += 1
                    self._due_since = None
                start = self._window_start()
                if event.sample > start:
                    self._ends.append((start, event.sample))
                self._buffer_from = self._window_from = None

    def _hold(self, pcm: bytes, time: float) -> None:
        """Keep a bounded backlog while waiting for a slot; the oldest audio goes first."""
        self._backlog.append((pcm, time))
        self._backlog_samples += len(pcm) // 2
        limit = int(self._engine.backlog_seconds * SAMPLE_RATE)
        while self._backlog_samples > limit and self._backlog:
            old, _ = self._backlog.popleft()
            self._backlog_samples -= len(old) // 2
            self._engine.backlog_dropped += len(old) / 2 / SAMPLE_RATE

    def _admit(self) -> None:
        self.admitted = True
        self._admitted_event.set()
        backlog, self._backlog = self._backlog, deque()
        self._backlog_samples = 0
        for pcm, time in backlog:
            self.feed(pcm, time)

    async def wait_admitted(self) -> None:
        await self._admitted_event.wait()

    def _anchor(self, time: float) -> None:
        """Re-anchor the sample clock when ``time`` disagrees with it by over 50 ms."""
        if self._anchors:
            expected = self.time_of(self._received)
            if abs(expected - time) <= 0.05:
                return
        self._anchors.append((self._received, time))

    def time_of(self, sample: int) -> float:
        """The stream clock at absolute sample ``sample``."""
        i = bisect.bisect_right(self._anchors, (sample, float("inf"))) - 1
        base, at = self._anchors[max(i, 0)]
        return at + (sample - base) / SAMPLE_RATE

    def _forget_silence(self) -> None:
        """Drop audio no decode will need; keep a little before any speech start."""
        keep_from = self._received - SAMPLE_RATE  # a second of pre-roll
        if self._ends:
            keep_from = min(keep_from, self._ends[0][0])
        if self._buffer_from is not None:
            keep_from = min(keep_from, self._window_start())
        self._trim_audio(keep_from)

    def _trim_audio(self, keep_from: int) -> None:
        while self._chunks and self._origin + len(self._chunks[0]) <= keep_from:
            self._origin += len(self._chunks.pop(0))
        if self._chunks and keep_from - self._origin >= SAMPLE_RATE:
            # cut into a long joined chunk (copy, so the cut-off part is freed)
            cut = keep_from - self._origin
            self._chunks[0] = self._chunks[0][cut:].copy()
            self._origin += cut
        if len(self._anchors) > 1:
            i = bisect.bisect_right(self._anchors, (self._origin, float("inf"))) - 1
            if i > 0:
                del self._anchors[:i]

    def retained_seconds(self) -> float:
        """How much audio the stream holds (bounded by the buffer cap plus a pre-roll)."""
        return sum(len(c) for c in self._chunks) / SAMPLE_RATE

    def _audio(self, start: int, end: int) -> Audio:
        joined = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks = [joined]
        return joined[max(0, start - self._origin) : max(0, end - self._origin)]

    # -- scheduling ------------------------------------------------------------

    def _need(self) -> JobKind | None:
        if self.busy:
            return None
        if self._ends:
            return "final"
        if self._buffer_from is None:
            return None
        if self._received - self._window_start() >= self._engine.max_buffer * SAMPLE_RATE:
            return "cap"
        if self.live and self._received - self._decoded_to >= self._interval():
            return "interim"
        return None

    def _interval(self) -> float:
        return self._engine.interval() * SAMPLE_RATE

    def _track_due(self) -> None:
        """Note when interim work falls due, and count interim work that lag drops.

        An interim decode still waiting when a further interval of speech has arrived
        is superseded (the next decode covers both); one still waiting when the
        utterance ends is replaced by the final decode. Each counts as dropped.
        """
        if self._buffer_from is None or not self.live:
            self._due_since = None
            return
        if self._received - self._decoded_to < self._interval():
            return
        if self._due_since is None:
            self._due_since = monotonic()
            self._due_at = self._received
        elif self._received - self._due_at >= self._interval():
            self._due_at = self._received
            self._engine.counters["dropped_interim"] += 1

    def want(self) -> JobKind | None:
        """What decode this stream needs now, if any (the engine asks while picking)."""
        self._track_due()
        return self._need()

    _due_at = 0

    def _window_start(self) -> int:
        if self._window_from is not None:
            return self._window_from
        assert self._buffer_from is not None
        return self._buffer_from

    def due_since(self) -> float:
        return self._due_since if self._due_since is not None else monotonic()

    @property
    def in_speech(self) -> bool:
        return self._buffer_from is not None

    def take(self, kind: JobKind) -> Job:
        """Snapshot the audio for a decode of ``kind`` and mark the stream busy."""
        if kind == "final":
            start, end = self._ends[0]
        else:
            start, end = self._window_start(), self._received
        self.busy = True
        since = self.due_since()
        self._due_since = None
        return Job(
            kind=kind,
            start=start,
            end=end,
            since=since,
            audio=self._audio(start, end).copy(),
            prompt=self._prompt(self.time_of(start)),
            language=self.language,
        )

    def _prompt(self, before: float) -> str:
        """Vocabulary, then the committed text said before ``before`` (the window start).

        Text inside the decoded window stays out: Whisper takes the prompt as what came
        before the audio, and would skip those words.
        """
        parts: list[str] = []
        if self._vocabulary:
            sep = "、" if self.language == "zh" else ", "
            end = "。" if self.language == "zh" else ". "
            parts.append(sep.join(self._vocabulary) + end)
        context = join(t for t in self._said if t.end <= before + 0.05)[-PROMPT_CHARS:]
        if self.language == "zh" and not context:
            parts.append(ZH_PROMPT)
        parts.append(context)
        return "".join(parts).strip()

    # -- results ---------------------------------------------------------------

    def apply(self, job: Job, words: Sequence[Word]) -> list[Segment]:
        """Fold a decode's words into the transcript; return the Segments to send."""
        base = job.start
        clean = chinese.normalise if self.language == "zh" else (lambda s: s)
        hypothesis = tokenize(
            (
                clean(w.text),
                self.time_of(base + round(w.start * SAMPLE_RATE)),
                self.time_of(base + round(w.end * SAMPLE_RATE)),
            )
            for w in words
        )
        if self.language == "zh":
            hypothesis = drop_echo(hypothesis, ZH_PROMPT)
        committed = self._agreement.insert(hypothesis)
        if job.kind == "final":
            committed += self._agreement.flush()
        elif job.kind == "cap":
            committed += self._agreement.force(self.time_of(job.end) - 2.0)
        out: list[Segment] = []
        if committed:
            out.append(self._segment(committed, final=True))
            self._said.extend(committed)
        interim = self._agreement.interim
        if interim or self._interim_shown:
            out.append(self._segment(interim, final=False, at=self.time_of(job.end)))
            self._interim_shown = bool(interim)
        self._advance(job)
        return out

    def _segment(self, tokens: Sequence[Token], *, final: bool, at: float = 0.0) -> Segment:
        start = tokens[0].start if tokens else at
        end = tokens[-1].end if tokens else at
        return Segment(
            stream=self.key,
            text=join(tokens),
            start=start + self._offset,
            end=end + self._offset,
            final=final,
            language=self.language,
        )

    def _advance(self, job: Job) -> None:
        """After a decode: move the buffer start past committed text, mark the stream free."""
        self.busy = False
        if job.kind == "final":
            self._ends.popleft()
            self._agreement = LocalAgreement()  # the next utterance starts afresh
        else:
            self._decoded_to = max(self._decoded_to, job.end)
        self._trim_buffer(job)
        self._forget_silence()
        self._settled.set()

    def _trim_buffer(self, job: Job) -> None:
        """Cut the buffer at the end of committed text once it grows long.

        Past ``trim_after`` seconds the window starts after the last committed sentence
        end that leaves half of that as context; at ``max_buffer`` (a cap decode) after
        the last committed token.
        """
        length = (job.end - job.start) / SAMPLE_RATE
        if length < self._engine.trim_after and job.kind != "cap":
            return
        cut: Token | None = None
        limit = self.time_of(job.end) - self._engine.trim_after / 2
        for token in reversed(self._agreement.committed):
            if job.kind == "cap" or (token.end <= limit and token.text[-1:] in SENTENCE_END):
                cut = token
                break
        if cut is None:
            return
        sample = min(self._sample_at(cut.end), job.end)
        if self._window_from == job.start and sample > job.start:
            self._window_from = sample
        elif self._ends and self._ends[0][0] == job.start and sample > job.start:
            self._ends[0] = (sample, max(sample, self._ends[0][1]))

    def _sample_at(self, time: float) -> int:
        """The absolute sample at stream time ``time`` (inverse of :meth:`time_of`)."""
        best = self._anchors[0]
        for anchor in self._anchors:
            if anchor[1] <= time:
                best = anchor
        return best[0] + round((time - best[1]) * SAMPLE_RATE)

    # -- closing ---------------------------------------------------------------

    async def idle(self) -> None:
        """Wait until no decode is due or running (the pace a file feeder keeps)."""
        while self.busy or self._need() is not None:
            self._settled.clear()
            self._engine.wake()
            await self._settled.wait()

    async def finish(self) -> None:
        """End of the track: finalise the tail, wait for the last Segments, then close."""
        if self.closing:
            return
        self.closing = True
        if self.admitted:
            self._gated(self._gate.close())
            await self.idle()
        self._engine.release(self)

    async def deliver(self, segments: Sequence[Segment]) -> None:
        for segment in segments:
            await self._on_segment(segment)
