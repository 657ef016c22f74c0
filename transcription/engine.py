"""The live transcription engine: one shared Whisper model, a bounded pool of decoders.

:class:`Engine` loads a faster-whisper model once and runs decodes in ``workers``
threads (CTranslate2 releases the GIL). Streams (:mod:`transcription.stream`) ask for
work; free workers pick final decodes before buffer-cap decodes before interim ones,
oldest first, so when decoding lags interim updates are the work that is dropped
(superseded, and counted) while every utterance still gets its final decode.

Pacing: a stream asks for an interim decode after ``interval()`` seconds of new speech,
``chunk`` (0.5 s) at the least, more when the measured decode cost times the number of
streams in speech exceeds what the workers can serve. Admission control: at most
``max_streams`` streams are live; later ones wait (keeping a short backlog) and are
admitted in order as slots free.

Decodes encode only the window the buffer needs (``short_window``, see
:mod:`transcription.window`): about four times cheaper than ``transcribe()``'s padded
30 s on the CPU, at a word error rate measured to be about the same (``bench/asr.py``
``--full-window`` compares).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from transcription import chinese
from transcription.stream import PRIORITY, ZH_PROMPT, JobKind, Segment, Stream, Word
from transcription.vad import SAMPLE_RATE, Audio
from transcription.window import decode_window

logger = logging.getLogger(__name__)

__all__ = ["N_", "Engine", "Segment", "Stream", "Word"]


def N_(message: str) -> str:
    """Mark a message for translation; the caller translates it."""
    return message


LOADING = N_("Loading the speech model…")
FILE_BEAM = 5  # files are not in a hurry: beam search, as transcribe() does by default
WARMING = N_("Warming up the speech model…")
READY = N_("Speech model ready")


class Engine:
    """Shared model, worker pool, admission control and pacing for many streams."""

    def __init__(
        self,
        model_path: Path,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 2,
        workers: int = 1,
        max_streams: int = 4,
        language: str = "zh",
        beam_size: int = 1,
        chunk: float = 0.5,
        end_silence: float = 0.8,
        trim_after: float = 15.0,
        max_buffer: float = 25.0,
        backlog_seconds: float = 10.0,
        word_timestamps: bool = True,
        short_window: bool = True,
    ) -> None:
        self.model_path = Path(model_path)
        self.device = device
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.workers = max(1, workers)
        self.max_streams = max(1, max_streams)
        self.language = language
        self.beam_size = beam_size
        self.chunk = chunk
        self.end_silence = end_silence
        self.trim_after = trim_after
        self.max_buffer = max_buffer
        self.backlog_seconds = backlog_seconds
        self.word_timestamps = word_timestamps
        self.short_window = short_window
        self.counters: Counter[str] = Counter()
        self.cost = 0.5  # running estimate of one decode's wall time, in seconds
        self._model: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._live: list[Stream] = []
        self._waiting: deque[Stream] = deque()
        self._wake = asyncio.Event()
        self._busy_seconds = 0.0
        self.backlog_dropped = 0.0  # seconds of audio a waiting stream could not keep
        self._started_at = 0.0

    # -- lifecycle -------------------------------------------------------------

    async def start(self, progress: Callable[[str], None] | None = None) -> None:
        """Load the model in a thread, measure one decode, then start the workers."""
        say = progress or (lambda message: None)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="asr")
        loop = asyncio.get_running_loop()
        say(LOADING)
        self._model = await loop.run_in_executor(self._pool, self._load)
        say(WARMING)
        started = time.perf_counter()
        await loop.run_in_executor(self._pool, self._warm_up)
        self.cost = time.perf_counter() - started
        self._started_at = time.monotonic()
        self._tasks = [
            asyncio.create_task(self._work(), name=f"asr-worker-{i}") for i in range(self.workers)
        ]
        say(READY)

    def _load(self) -> Any:
        from faster_whisper import WhisperModel

        return WhisperModel(
            str(self.model_path),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
            num_workers=self.workers,
        )

    def _warm_up(self) -> None:
        import numpy as np

        self.decode(np.zeros(SAMPLE_RATE, dtype=np.float32), "en", "")

    async def close(self) -> None:
        """Stop the workers (cancelling what waits) and release the model."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)
            self._pool = None
        self._model = None

    # -- streams ---------------------------------------------------------------

    def open_stream(
        self,
        key: str,
        *,
        on_segment: Callable[[Segment], Awaitable[None]],
        language: str | None = None,
        vocabulary: Sequence[str] = (),
        clock_offset: float = 0.0,
        live: bool = True,
    ) -> Stream:
        """A new stream; admitted now if a slot is free, else when one frees up.

        ``live=False`` (files) skips interim decodes: one decode per utterance.
        """
        stream = Stream(
            self,
            key,
            on_segment=on_segment,
            language=language or self.language,
            vocabulary=vocabulary,
            clock_offset=clock_offset,
            live=live,
        )
        if len(self._live) < self.max_streams:
            self._live.append(stream)
            stream._admit()
        else:
            self._waiting.append(stream)
            logger.info("asr: stream %s waits for a slot (%d live)", key, len(self._live))
        return stream

    def release(self, stream: Stream) -> None:
        """A stream finished: free its slot and admit the next waiting stream."""
        if stream in self._waiting:
            self._waiting.remove(stream)
        if stream in self._live:
            self._live.remove(stream)
        while self._waiting and len(self._live) < self.max_streams:
            nxt = self._waiting.popleft()
            self._live.append(nxt)
            nxt._admit()
            logger.info("asr: stream %s admitted", nxt.key)

    def wake(self) -> None:
        self._wake.set()

    # -- pacing ----------------------------------------------------------------

    def interval(self) -> float:
        """Seconds of new speech between interim decodes of one stream.

        The workers can serve ``workers / cost`` decodes a second; streams in speech
        share that, so each waits at least ``cost * speaking / workers``.
        """
        speaking = sum(1 for s in self._live if s.in_speech) or 1
        return max(self.chunk, 1.2 * self.cost * speaking / self.workers)

    def stats(self) -> dict[str, float | int]:
        elapsed = max(1e-9, time.monotonic() - self._started_at) if self._started_at else 0.0
        queued = sum(1 for s in self._live if not s.busy and s._need() is not None)
        return {
            "streams": len(self._live),
            "waiting": len(self._waiting),
            "queued": queued,
            "decodes": self.counters["decodes"],
            "final_decodes": self.counters["final_decodes"],
            "dropped_interim": self.counters["dropped_interim"],
            "backlog_dropped_s": round(self.backlog_dropped, 3),
            "busy_seconds": round(self._busy_seconds, 3),
            "busy_fraction": round(self._busy_seconds / elapsed / self.workers, 3)
            if elapsed
            else 0.0,
            "decode_cost_s": round(self.cost, 3),
            "audio_seconds": round(self.counters["audio_samples"] / SAMPLE_RATE, 3),
        }

    # -- workers ---------------------------------------------------------------

    def _pick(self) -> tuple[Stream, JobKind] | None:
        best: tuple[int, float, int] | None = None
        chosen: tuple[Stream, JobKind] | None = None
        for order, stream in enumerate(self._live):
            kind = stream.want()
            if kind is None:
                continue
            rank = (PRIORITY[kind], stream.due_since(), order)
            if best is None or rank < best:
                best, chosen = rank, (stream, kind)
        return chosen

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            picked = self._pick()
            if picked is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            stream, kind = picked
            job = stream.take(kind)
            started = time.perf_counter()
            try:
                words = await loop.run_in_executor(
                    self._pool, self.decode, job.audio, job.language, job.prompt
                )
            except asyncio.CancelledError:
                stream.busy = False
                raise
            except Exception:
                logger.exception("asr: decode failed for stream %s", stream.key)
                words = []
            spent = time.perf_counter() - started
            self._busy_seconds += spent
            self.cost = 0.7 * self.cost + 0.3 * spent
            self.counters["decodes"] += 1
            self.counters["audio_samples"] += len(job.audio)
            if job.kind == "final":
                self.counters["final_decodes"] += 1
            segments = stream.apply(job, words)
            try:
                await stream.deliver(segments)
            except Exception:
                logger.exception("asr: on_segment failed for stream %s", stream.key)

    def decode(self, audio: Audio, language: str, prompt: str) -> list[Word]:
        """Transcribe ``audio`` (runs in a worker thread); times from its start."""
        seconds = len(audio) / SAMPLE_RATE
        max_new_tokens = min(220, int(8 * seconds) + 16)
        if self.short_window and seconds <= 30:
            try:
                found = decode_window(
                    self._model,
                    audio,
                    language=language,
                    prompt=prompt,
                    beam_size=self.beam_size,
                    max_new_tokens=max_new_tokens,
                    word_timestamps=self.word_timestamps,
                )
            except (AttributeError, TypeError, ValueError):
                # it relies on faster-whisper internals: fall back to transcribe() for good
                logger.exception("asr: short-window decoding failed; using transcribe()")
                self.short_window = False
            else:
                return [Word(text, start, end) for text, start, end in found]
        segments, _ = self._model.transcribe(
            audio,
            language=language if self._model.model.is_multilingual else None,
            task="transcribe",
            beam_size=self.beam_size,
            initial_prompt=prompt or None,
            condition_on_previous_text=False,
            temperature=0.0,
            word_timestamps=self.word_timestamps,
            without_timestamps=False,
            vad_filter=False,
            max_new_tokens=max_new_tokens,
            suppress_blank=True,
        )
        words: list[Word] = []
        for segment in segments:
            if segment.no_speech_prob > 0.8 and segment.avg_logprob < -1.0:
                continue  # silence the model filled in
            if segment.words:
                words.extend(Word(w.word, w.start, w.end) for w in segment.words)
            else:
                words.extend(_spread(segment.text, segment.start, segment.end))
        return words

    async def transcribe_whole(
        self,
        source: str,
        *,
        language: str | None = None,
        on_segment: Callable[[Segment], Awaitable[None]] | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> list[Segment]:
        """A whole recording (a file path) with the model's own long-form ``transcribe()``.

        For files, not rooms: beam search over 30-s windows, each conditioned on the text
        before it, with the bundled speech gate. On this CPU it is about three times more
        accurate than decoding utterance by utterance as a room does (``bench/asr.py``,
        multilingual base on 124 s of speech: WER 0.048 against 0.157) at a real-time
        factor near 0.1. The decode
        runs in the engine's worker pool; each segment is handed to ``on_segment`` as it
        comes and ``progress`` gets the fraction of the recording done.
        """
        language = language or self.language
        if self._pool is None or self._model is None:
            raise RuntimeError("the engine has not been started")
        loop = asyncio.get_running_loop()
        arrived: asyncio.Queue[Segment | BaseException | None] = asyncio.Queue()
        clean = chinese.normalise if language == "zh" else (lambda text: text)

        def run() -> None:
            try:
                segments, info = self._model.transcribe(
                    source,
                    language=language if self._model.model.is_multilingual else None,
                    task="transcribe",
                    beam_size=FILE_BEAM,
                    initial_prompt=ZH_PROMPT if language == "zh" else None,
                    condition_on_previous_text=True,
                    vad_filter=True,
                    word_timestamps=False,
                )
                duration = float(info.duration or 0.0)
                for segment in segments:
                    if segment.no_speech_prob > 0.8 and segment.avg_logprob < -1.0:
                        continue  # silence the model filled in
                    text = clean(segment.text.strip())
                    if text:
                        found = Segment(
                            stream=source,
                            text=text,
                            start=float(segment.start),
                            end=float(segment.end),
                            final=True,
                            language=language,
                        )
                        loop.call_soon_threadsafe(arrived.put_nowait, found)
                    if progress is not None and duration:
                        share = min(0.99, float(segment.end) / duration)
                        loop.call_soon_threadsafe(progress, share)
            except BaseException as exc:  # handed to the caller in the loop
                loop.call_soon_threadsafe(arrived.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(arrived.put_nowait, None)

        started = time.perf_counter()
        work = loop.run_in_executor(self._pool, run)
        found_all: list[Segment] = []
        failure: BaseException | None = None
        while (item := await arrived.get()) is not None:
            if isinstance(item, BaseException):
                failure = item
                continue
            found_all.append(item)
            if on_segment is not None:
                await on_segment(item)
        await work
        self._busy_seconds += time.perf_counter() - started
        if failure is not None:
            raise failure
        if progress is not None:
            progress(1.0)
        return found_all


def _spread(text: str, start: float, end: float) -> list[Word]:
    """Words of a segment without word times, spread evenly over its span."""
    parts = text.split() or ([text] if text.strip() else [])
    if not parts:
        return []
    step = (end - start) / len(parts)
    return [Word(p, start + i * step, start + (i + 1) * step) for i, p in enumerate(parts)]
