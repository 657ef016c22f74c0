"""The ``transcribe_statement`` job: a recorded statement of an asynchronous hearing
(非同步庭审, 人民法院在线诉讼规则 Art. 20) becomes transcript lines of its session.

The recording is read back from the object store (or the spool, until the upload
outbox has sent it) into a work file, its SHA-256 checked, and transcribed with the
shared speech engine.  Each final segment is written as a transcript line as soon as it
is committed, in the uploader's name and seat, on a clock that starts when the
statement was uploaded.  A run that is resumed keeps the lines an earlier run wrote and
skips the segments they cover (decoding is deterministic, so the same segments come
again), which makes the job safe to run twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import av
from sqlalchemy import func, select

from server.db.models import Document, StoredObject, TranscriptLine
from server.domain.errors import N_
from server.jobs.context import JobContext
from server.jobs.errors import JobFailed, RetryableError
from server.jobs.speech import SharedEngine
from server.services import transcripts
from server.services.documents import copy_to
from server.services.transcripts import Heard
from storage.base import StorageError
from transcription.engine import Segment
from transcription.files import transcribe_file

log = logging.getLogger(__name__)

TRANSCRIBE_STATEMENT = "transcribe_statement"

FETCHING = N_("Fetching the recording")
TRANSCRIBING = N_("Transcribing the recording")
MISSING = N_("The recording is no longer there.")
DAMAGED = N_("The stored recording failed its integrity check; the court has been told.")
UNREADABLE = N_("The recording could not be read: it has no sound, or the file is damaged.")

# shares of the job's progress: loading the model, fetching, transcribing
LOADED_AT, FETCHED_AT = 0.05, 0.1
SAME_SEGMENT = 0.05  # seconds: a segment ending by then was written by an earlier run


@dataclass(frozen=True)
class StatementParams:
    """What the job needs, fixed when the statement is uploaded."""

    document_id: int
    identity: str  # user:12
    name: str
    seat: str  # a msgid, e.g. Applicant
    language: str
    uploaded_at: datetime  # the lines' clock starts here

    def to_json(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "identity": self.identity,
            "name": self.name,
            "seat": self.seat,
            "language": self.language,
            "uploaded_at": self.uploaded_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StatementParams:
        return cls(
            document_id=int(data["document_id"]),
            identity=str(data["identity"]),
            name=str(data["name"]),
            seat=str(data.get("seat", "")),
            language=str(data.get("language", "")),
            uploaded_at=datetime.fromisoformat(str(data["uploaded_at"])),
        )


def statement_lines(session_id: int | None, params: StatementParams) -> Any:
    """The WHERE clause of the lines one statement wrote."""
    return (
        (TranscriptLine.session_id == session_id)
        & (TranscriptLine.identity == params.identity)
        & (TranscriptLine.clock_start == params.uploaded_at)
    )


class _Lines:
    """Writes each final segment as a transcript line, one short transaction each."""

    def __init__(self, ctx: JobContext, params: StatementParams, done_until: float) -> None:
        self.ctx = ctx
        self.params = params
        self.done_until = done_until
        self.written = 0
        self.failure: Exception | None = None
        self._writing = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def keep(self, segment: Segment) -> None:
        text = segment.text.strip()
        if self.failure is not None or not text or segment.end <= self.done_until + SAME_SEGMENT:
            return  # after a failure nothing more: the lines written stay a prefix
        self._writing += 1
        self._idle.clear()
        try:
            await self._write(segment, text)
        finally:
            self._writing -= 1
            if not self._writing:
                self._idle.set()

    async def drain(self) -> None:
        """Wait for the lines still being written: the engine reports a stream idle as
        soon as its last decode is applied, while that decode's segments are delivered."""
        while self._writing:
            await self._idle.wait()

    async def _write(self, segment: Segment, text: str) -> None:
        ctx, p = self.ctx, self.params
        assert ctx.session_id is not None and ctx.dispute_id is not None
        heard = Heard(
            session_id=ctx.session_id,
            dispute_id=ctx.dispute_id,
            identity=p.identity,
            name=p.name,
            seat=p.seat,
            clock_start=p.uploaded_at,
            start=round(segment.start, 3),
            end=round(segment.end, 3),
            text=text,
            language=segment.language,
        )
        try:
            async with ctx.database.transaction() as db:
                await transcripts.record(db, heard)
        except Exception as exc:
            log.exception("job %s: a transcript line could not be stored", ctx.id)
            self.failure = exc
            return
        self.written += 1


def _duration(path: Path) -> float:
    with av.open(str(path)) as container:
        if container.duration:
            return float(container.duration) / 1_000_000
        audio = container.streams.audio
        if audio and audio[0].duration and audio[0].time_base:
            return float(audio[0].duration * audio[0].time_base)
    return 0.0


async def _fetch(ctx: JobContext, stored: StoredObject, path: Path) -> None:
    """Copy the object into ``path``, checking its size and SHA-256."""

    def copied(size: int) -> None:
        if stored.size:
            ctx.progress(LOADED_AT + (FETCHED_AT - LOADED_AT) * size / stored.size)

    try:
        size, sha256 = await copy_to(ctx.store, ctx.spool, stored, path, copied)
    except StorageError as exc:
        raise RetryableError(f"the recording could not be read from the store: {exc}") from exc
    if size != stored.size or sha256 != stored.sha256:
        raise JobFailed(DAMAGED, f"{stored.key}: {size} bytes, sha256 {sha256}")


class StatementTranscriber:
    """The handler of ``transcribe_statement`` jobs."""

    def __init__(self, speech: SharedEngine) -> None:
        self.speech = speech

    async def __call__(self, ctx: JobContext) -> Mapping[str, Any]:
        params = StatementParams.from_json(ctx.params)
        async with ctx.database.transaction(write=False) as db:
            row = (
                await db.execute(
                    select(Document, StoredObject)
                    .join(StoredObject, StoredObject.id == Document.object_id)
                    .where(Document.id == params.document_id)
                )
            ).first()
            done_until = await db.scalar(
                select(func.max(TranscriptLine.end)).where(statement_lines(ctx.session_id, params))
            )
        if row is None:
            raise JobFailed(MISSING, f"document {params.document_id} is gone")
        document, stored = row

        loaded = await self.speech.get(progress=lambda message: ctx.progress(0.0, message))
        ctx.progress(LOADED_AT, FETCHING)
        folder = ctx.settings.data_dir / "jobs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"job-{ctx.id}{Path(stored.key).suffix}"
        try:
            await _fetch(ctx, stored, path)
            language = (
                (params.language or ctx.settings.asr_language) if loaded.multilingual else "en"
            )
            lines = _Lines(ctx, params, -1.0 if done_until is None else float(done_until))
            ctx.progress(FETCHED_AT, TRANSCRIBING)
            try:
                await transcribe_file(
                    path,
                    loaded.engine,
                    language=language,
                    progress=ctx.span(FETCHED_AT, 1.0, TRANSCRIBING),
                    on_segment=lines.keep,
                )
            except (ValueError, av.FFmpegError) as exc:
                raise JobFailed(UNREADABLE, f"{type(exc).__name__}: {exc}") from exc
            finally:
                await lines.drain()
            if lines.failure is not None:
                raise RetryableError(f"a transcript line could not be stored: {lines.failure}")
            duration = await asyncio.to_thread(_duration, path)
        finally:
            path.unlink(missing_ok=True)
        async with ctx.database.transaction(write=False) as db:
            count = await db.scalar(
                select(func.count())
                .select_from(TranscriptLine)
                .where(statement_lines(ctx.session_id, params))
            )
        return {
            "document_id": document.id,
            "session_id": ctx.session_id,
            "lines": int(count or 0),
            "written_now": lines.written,
            "duration": round(duration, 3),
            "language": language,
        }
