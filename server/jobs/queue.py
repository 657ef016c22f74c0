"""The jobs table as a queue: adding a job, claiming one, and every later change of state.

Claiming is one ``UPDATE ... WHERE id = ? AND state = 'queued'`` whose row count says
whether this worker won: on PostgreSQL a second process's UPDATE of the same row waits
for the first to commit, sees the new state and changes nothing; on SQLite writers queue
on the file lock.  Every later change checks that the row is still this worker's (a
heartbeat with ``AND worker = ?``, the end of a run on the row read ``FOR UPDATE``), so
a worker that lost its job (its heartbeat went stale and another took the job over)
cannot overwrite what the new owner does.  Each change of state is audited.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import SYSTEM, Actor, AuditEntry
from server.db.base import utcnow
from server.db.engine import Database
from server.db.models import Job

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
FINISHED = frozenset({DONE, FAILED, CANCELLED})

MAX_ERROR = 4000
MAX_STAGE = 120


def dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), ensure_ascii=False, sort_keys=True, default=str)


def loads(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _changed(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class Claimed:
    """A job this worker now runs."""

    id: int
    kind: str
    params: dict[str, Any]
    attempts: int  # this run included
    dispute_id: int | None
    session_id: int | None
    created_by_id: int | None
    progress: float
    stage: str
    saved: dict[str, Any] = field(default_factory=dict)  # the last checkpoint


async def _audit(
    db: AsyncSession,
    action: str,
    job: Job,
    actor: Actor = SYSTEM,
    **details: Any,
) -> None:
    await audit.append(
        db,
        AuditEntry(
            action,
            actor,
            "job",
            job.id,
            dispute_id=job.dispute_id,
            details={"kind": job.kind, "session_id": job.session_id, **details},
        ),
    )


async def add(
    db: AsyncSession,
    kind: str,
    params: Mapping[str, Any],
    *,
    dispute_id: int | None = None,
    session_id: int | None = None,
    created_by: Actor = SYSTEM,
) -> Job:
    """Write a queued job in the caller's transaction (audited ``job.queued``)."""
    job = Job(
        kind=kind,
        state=QUEUED,
        params=dumps(params),
        result="{}",
        progress=0.0,
        stage="",
        error="",
        error_message="",
        attempts=0,
        dispute_id=dispute_id,
        session_id=session_id,
        created_by_id=created_by.id,
        worker="",
        created_at=utcnow(),
    )
    db.add(job)
    await db.flush()
    await _audit(db, "job.queued", job, created_by)
    return job


async def claim(
    database: Database, worker: str, kinds: Sequence[str], *, batch: int = 5
) -> Claimed | None:
    """Take the oldest due queued job of one of ``kinds``, or None if there is none."""
    if not kinds:
        return None
    now = utcnow()
    # look first with a reader: an idle worker takes no write lock (SQLite has only one)
    async with database.transaction(write=False) as db:
        candidates = (
            await db.scalars(
                select(Job.id)
                .where(
                    Job.state == QUEUED,
                    Job.kind.in_(list(kinds)),
                    or_(Job.not_before.is_(None), Job.not_before <= now),
                )
                .order_by(Job.created_at, Job.id)
                .limit(batch)
            )
        ).all()
    if not candidates:
        return None
    async with database.transaction() as db:
        for job_id in candidates:
            won = await db.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == QUEUED)
                .values(
                    state=RUNNING,
                    worker=worker,
                    heartbeat_at=now,
                    not_before=None,
                    attempts=Job.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if _changed(won) != 1:
                continue  # another worker took it first
            job = await db.get(Job, job_id, populate_existing=True)
            assert job is not None
            if job.started_at is None:
                job.started_at = now
            await _audit(db, "job.started", job, worker=worker, attempt=job.attempts)
            return Claimed(
                id=job.id,
                kind=job.kind,
                params=loads(job.params),
                attempts=job.attempts,
                dispute_id=job.dispute_id,
                session_id=job.session_id,
                created_by_id=job.created_by_id,
                progress=job.progress,
                stage=job.stage,
                saved=loads(job.result),
            )
    return None


async def next_due_in(database: Database, kinds: Sequence[str]) -> float | None:
    """Seconds until the soonest queued job of ``kinds`` is due; None when none waits."""
    if not kinds:
        return None
    async with database.transaction(write=False) as db:
        waiting, soonest = (
            (
                await db.execute(
                    select(func.count(), func.min(Job.not_before)).where(
                        Job.state == QUEUED, Job.kind.in_(list(kinds))
                    )
                )
            )
            .tuples()
            .one()
        )
    if not waiting:
        return None
    if soonest is None:
        return 0.0
    return max(0.0, (soonest - utcnow()).total_seconds())


def _mine(job_id: int, worker: str) -> Any:
    return update(Job).where(Job.id == job_id, Job.state == RUNNING, Job.worker == worker)


async def beat(database: Database, job_id: int, worker: str, progress: float, stage: str) -> bool:
    """Heartbeat with the latest progress; False when the job is no longer this worker's."""
    async with database.transaction() as db:
        result = await db.execute(
            _mine(job_id, worker)
            .values(heartbeat_at=utcnow(), progress=progress, stage=stage[:MAX_STAGE])
            .execution_options(synchronize_session=False)
        )
        return _changed(result) == 1


async def checkpoint(
    database: Database, job_id: int, worker: str, saved: Mapping[str, Any]
) -> bool:
    """Keep what a handler needs to resume (read back as ``Claimed.saved``)."""
    async with database.transaction() as db:
        result = await db.execute(
            _mine(job_id, worker)
            .values(result=dumps(saved), heartbeat_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return _changed(result) == 1


async def _owned(db: AsyncSession, job_id: int, worker: str) -> Job | None:
    job = await db.get(Job, job_id, populate_existing=True, with_for_update=True)
    if job is None or job.state != RUNNING or job.worker != worker:
        return None
    return job


async def finish(
    database: Database, job_id: int, worker: str, result: Mapping[str, Any], stage: str
) -> bool:
    async with database.transaction() as db:
        job = await _owned(db, job_id, worker)
        if job is None:
            return False
        job.state, job.progress, job.stage = DONE, 1.0, stage[:MAX_STAGE]
        job.result = dumps(result)
        job.error, job.error_message = "", ""
        job.finished_at = utcnow()
        await _audit(db, "job.done", job, worker=worker, attempt=job.attempts, result=dict(result))
        return True


async def fail(database: Database, job_id: int, worker: str, error: str, message: str) -> bool:
    async with database.transaction() as db:
        job = await _owned(db, job_id, worker)
        if job is None:
            return False
        _failed(job, error, message)
        await _audit(db, "job.failed", job, worker=worker, attempt=job.attempts, error=job.error)
        return True


def _failed(job: Job, error: str, message: str) -> None:
    job.state = FAILED
    job.error = error[:MAX_ERROR]
    job.error_message = message[:200]
    job.worker = ""
    job.finished_at = utcnow()


async def retry(
    database: Database, job_id: int, worker: str, error: str, not_before: datetime
) -> bool:
    """Back to the queue until ``not_before`` (audited ``job.retry``)."""
    async with database.transaction() as db:
        job = await _owned(db, job_id, worker)
        if job is None:
            return False
        job.state, job.worker, job.not_before = QUEUED, "", not_before
        job.error = error[:MAX_ERROR]
        await _audit(
            db,
            "job.retry",
            job,
            worker=worker,
            attempt=job.attempts,
            error=job.error,
            not_before=not_before,
        )
        return True


async def release(database: Database, job_id: int, worker: str) -> bool:
    """Hand a job back when its worker stops; the interrupted run does not count."""
    async with database.transaction() as db:
        job = await _owned(db, job_id, worker)
        if job is None:
            return False
        job.state, job.worker = QUEUED, ""
        job.attempts = max(0, job.attempts - 1)
        await _audit(db, "job.requeued", job, worker=worker, reason="worker stopped")
        return True


async def recover_stale(
    database: Database, *, older_than: timedelta, max_attempts: int, message: str
) -> tuple[int, int]:
    """Jobs left running by a worker that died: queued again, or failed when they have
    used up their attempts.  Returns (requeued, failed)."""
    cutoff = utcnow() - older_than
    requeued = failed = 0
    async with database.transaction(write=False) as db:
        stale = (
            await db.scalars(
                select(Job.id).where(
                    Job.state == RUNNING,
                    or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff),
                )
            )
        ).all()
    if not stale:
        return 0, 0
    async with database.transaction() as db:
        for job_id in stale:
            # locked: a worker's heartbeat or another process's recovery waits for us
            job = await db.get(Job, job_id, populate_existing=True, with_for_update=True)
            if job is None or job.state != RUNNING:
                continue
            if job.heartbeat_at is not None and job.heartbeat_at >= cutoff:
                continue
            dead = job.worker
            if job.attempts >= max_attempts:
                _failed(
                    job,
                    f"the worker {dead} stopped during each of {job.attempts} attempts",
                    message,
                )
                await _audit(
                    db, "job.failed", job, worker=dead, attempt=job.attempts, error=job.error
                )
                failed += 1
            else:
                job.state, job.worker = QUEUED, ""
                await _audit(db, "job.resumed", job, worker=dead, attempt=job.attempts)
                requeued += 1
    return requeued, failed
