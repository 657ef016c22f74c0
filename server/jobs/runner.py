"""The durable background-job runner.

Handlers are registered by kind; :meth:`JobRunner.enqueue` writes a queued row in the
caller's transaction and wakes the workers once it commits.  ``workers`` tasks each
claim one job at a time (see :mod:`server.jobs.queue`), run its handler with a
:class:`JobContext`, and beat a heartbeat (with the latest progress) every few seconds.
A janitor puts back jobs whose worker died (a stale heartbeat) at start and then
regularly, so a restart, or another process, resumes them: handlers must therefore be
safe to run again.

A handler's return value is the job's result; :class:`RetryableError` queues it again
with back-off until ``max_attempts``; :class:`JobFailed` and any other exception fail it
(the details kept for staff).  Whoever starts a task owns it and cancels it in
:meth:`JobRunner.stop`; a job interrupted by ``stop`` is handed back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit import SYSTEM, Actor
from server.config import Settings
from server.db.base import utcnow
from server.db.engine import Database
from server.db.models import Job
from server.domain.errors import N_
from server.jobs import queue
from server.jobs.context import Handler, JobContext
from server.jobs.errors import GENERIC_FAILURE, JobFailed, RetryableError
from server.jobs.queue import Claimed
from storage.base import ObjectStore
from storage.spool import Spool

T = TypeVar("T")

log = logging.getLogger(__name__)

DONE_STAGE = N_("Done")
STOP_GRACE = 5.0  # seconds a cancelled handler has to clean up
STOPPED_TOO_OFTEN = N_("This task was interrupted too many times and has stopped.")


async def whole(operation: Awaitable[T]) -> T:
    """Run a database operation to its end even if the caller is cancelled meanwhile.

    Cancelling a task in the middle of a transaction leaves SQLAlchemy to close the
    session in a task of its own; on SQLite, where that close may queue behind another
    connection's wait for the write lock, the event loop could then not finish. So the
    operation runs in its own task, the caller waits for it (however often it is
    cancelled meanwhile: the operation is bounded by the database's lock timeout), and
    the cancellation is raised afterwards.
    """
    task = asyncio.ensure_future(operation)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task])
        raise


@dataclass(frozen=True)
class RunnerPolicy:
    workers: int = 1
    max_attempts: int = 3
    heartbeat_seconds: float = 5.0
    stale_seconds: float = 60.0  # a running job without a heartbeat this long is orphaned
    progress_seconds: float = 0.4  # progress is written at most this often
    poll_seconds: float = 5.0  # look for jobs queued by other processes this often
    first_retry_delay: float = 5.0
    max_retry_delay: float = 600.0

    def __post_init__(self) -> None:
        if self.stale_seconds < 2 * self.heartbeat_seconds:
            raise ValueError("stale_seconds must be at least twice heartbeat_seconds")

    def retry_delay(self, attempts: int) -> float:
        return float(min(self.max_retry_delay, self.first_retry_delay * 2 ** max(0, attempts - 1)))

    @classmethod
    def from_settings(cls, settings: Settings) -> RunnerPolicy:
        return cls(
            workers=settings.job_workers,
            max_attempts=settings.job_max_attempts,
            heartbeat_seconds=settings.job_heartbeat_seconds,
            stale_seconds=settings.job_stale_seconds,
        )


def worker_name() -> str:
    """Unique per runner: host, process and a random part (two runners may share a pid)."""
    host = socket.gethostname()[:40]
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobRunner:
    def __init__(
        self,
        database: Database,
        *,
        settings: Settings,
        store: ObjectStore,
        spool: Spool,
        policy: RunnerPolicy | None = None,
        name: str | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.store = store
        self.spool = spool
        self.policy = policy or RunnerPolicy.from_settings(settings)
        self.worker = name or worker_name()
        self._handlers: dict[str, Handler] = {}
        self._wakes: list[asyncio.Event] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._owned: set[int] = set()
        self._children: set[asyncio.Task[Any]] = set()  # handlers and heartbeats of runs
        self.finished = 0  # runs that ended (done, failed or retried), for tests and metrics

    # -- set-up ------------------------------------------------------------------------

    def register(self, kind: str, handler: Handler) -> None:
        if len(kind) > 32:
            raise ValueError(f"job kind {kind!r} is longer than 32 characters")
        self._handlers[kind] = handler
        self.wake()

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    async def enqueue(
        self,
        db: AsyncSession,
        kind: str,
        params: Mapping[str, Any],
        *,
        dispute_id: int | None = None,
        session_id: int | None = None,
        created_by: Actor = SYSTEM,
    ) -> Job:
        """Queue a job in the caller's transaction; the workers wake when it commits."""
        if kind not in self._handlers:
            raise ValueError(f"no handler for job kind {kind!r}")
        job = await queue.add(
            db, kind, params, dispute_id=dispute_id, session_id=session_id, created_by=created_by
        )
        self.wake_after_commit(db)
        return job

    def wake_after_commit(self, db: AsyncSession) -> None:
        """Wake the workers when ``db``'s transaction commits (a job queued in it)."""
        event.listen(db.sync_session, "after_commit", lambda _session: self.wake(), once=True)

    def wake(self) -> None:
        for wake in self._wakes:
            wake.set()

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._tasks:
            return
        self._wakes = [asyncio.Event() for _ in range(self.policy.workers)]
        self._tasks = [asyncio.create_task(self._janitor(), name="jobs:janitor")] + [
            asyncio.create_task(self._work(wake), name=f"jobs:worker-{i}")
            for i, wake in enumerate(self._wakes)
        ]
        log.info("job runner %s started with %s workers", self.worker, self.policy.workers)

    async def stop(self) -> None:
        """Cancel the workers and hand the jobs they were running back to the queue."""
        pending = set(self._tasks)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=STOP_GRACE)
            if pending:
                log.warning("job tasks still running after cancel: %s", pending)
        self._tasks, self._wakes = [], []
        # a handler that outlived its worker's grace period is still this runner's to end
        children = set(self._children)
        while children:
            for task in children:
                task.cancel()
            _, children = await asyncio.wait(children, timeout=STOP_GRACE)
            if children:
                log.warning("job handlers still running after cancel: %s", children)
        for job_id in sorted(self._owned):
            try:
                await whole(queue.release(self.database, job_id, self.worker))
            except Exception:
                log.exception("job %s could not be handed back; it resumes once stale", job_id)
        self._owned.clear()

    # -- the loops -----------------------------------------------------------------------

    async def recover(self) -> tuple[int, int]:
        """Put back jobs whose worker died; returns (requeued, failed)."""
        requeued, failed = await whole(
            queue.recover_stale(
                self.database,
                older_than=timedelta(seconds=self.policy.stale_seconds),
                max_attempts=self.policy.max_attempts,
                message=STOPPED_TOO_OFTEN,
            )
        )
        if requeued or failed:
            log.warning("jobs left by a stopped worker: %s resumed, %s failed", requeued, failed)
            self.wake()
        return requeued, failed

    async def _janitor(self) -> None:
        every = max(1.0, self.policy.stale_seconds / 2)
        while True:
            try:
                await self.recover()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("looking for orphaned jobs failed")
            await asyncio.sleep(every)

    async def _work(self, wake: asyncio.Event) -> None:
        while True:
            wake.clear()  # before looking: a wake from now on is not lost
            wait: float | None = self.policy.poll_seconds
            try:
                claimed = await whole(queue.claim(self.database, self.worker, self.kinds))
                if claimed is not None:
                    await self.run(claimed)
                    continue
                due = await whole(queue.next_due_in(self.database, self.kinds))
                if due is not None:
                    wait = min(self.policy.poll_seconds, due)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job worker round failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # not wait_for: in 3.11 it can eat a cancel
                    await wake.wait()

    async def run_once(self) -> bool:
        """Claim and run one job now (tests, the command line); False if none was due."""
        claimed = await whole(queue.claim(self.database, self.worker, self.kinds))
        if claimed is None:
            return False
        await self.run(claimed)
        return True

    async def run(self, claimed: Claimed) -> None:
        handler = self._handlers[claimed.kind]
        ctx = JobContext(
            claimed,
            worker=self.worker,
            database=self.database,
            store=self.store,
            spool=self.spool,
            settings=self.settings,
        )
        self._owned.add(claimed.id)
        task = asyncio.create_task(handler(ctx), name=f"job:{claimed.id}:{claimed.kind}")
        keeper = asyncio.create_task(self._keep(ctx, task), name=f"job:{claimed.id}:heartbeat")
        for child in (task, keeper):
            self._children.add(child)
            child.add_done_callback(self._children.discard)
        started = time.perf_counter()
        outcome = "?"
        try:
            result = await task
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.wait([task], timeout=STOP_GRACE)  # let the handler clean up
            current = asyncio.current_task()
            if ctx.lost and (current is None or not current.cancelling()):
                outcome = "lost"
                self._owned.discard(claimed.id)
                log.warning("job %s was taken over by another worker", claimed.id)
                return
            raise  # the runner stops: stop() hands the job back
        except RetryableError as exc:
            outcome = await self._retry(ctx, exc)
        except JobFailed as exc:
            outcome = "failed"
            await self._fail(ctx, str(exc) or exc.message, exc.message)
        except Exception as exc:
            outcome = "failed"
            log.exception("job %s (%s) failed", claimed.id, claimed.kind)
            await self._fail(ctx, f"{type(exc).__name__}: {exc}", GENERIC_FAILURE)
        else:
            outcome = "done"
            await self._settle(
                ctx, queue.finish(self.database, ctx.id, self.worker, result or {}, DONE_STAGE)
            )
        finally:
            keeper.cancel()
            await asyncio.wait([keeper])  # a cancellation of this task itself still counts
            log.info(
                "job %s (%s) attempt %s: %s in %.2f s",
                claimed.id,
                claimed.kind,
                claimed.attempts,
                outcome,
                time.perf_counter() - started,
            )
        self._owned.discard(claimed.id)
        self.finished += 1

    async def _settle(self, ctx: JobContext, change: Awaitable[bool]) -> None:
        try:
            if not await whole(change):
                log.warning("job %s was no longer this worker's when it ended", ctx.id)
        except Exception:
            # the row stays running; once its heartbeat is stale it is resumed
            log.exception("the end of job %s could not be recorded", ctx.id)

    async def _fail(self, ctx: JobContext, error: str, message: str) -> None:
        await self._settle(ctx, queue.fail(self.database, ctx.id, self.worker, error, message))

    async def _retry(self, ctx: JobContext, exc: RetryableError) -> str:
        detail = str(exc) or type(exc).__name__
        if ctx.attempt >= self.policy.max_attempts:
            await self._fail(ctx, f"{detail} (after {ctx.attempt} attempts)", GENERIC_FAILURE)
            return "failed"
        delay = exc.delay if exc.delay is not None else self.policy.retry_delay(ctx.attempt)
        not_before = utcnow() + timedelta(seconds=max(0.0, delay))
        log.warning("job %s will be tried again in %.1f s: %s", ctx.id, delay, detail)
        await self._settle(ctx, queue.retry(self.database, ctx.id, self.worker, detail, not_before))
        return "retry"

    async def _keep(self, ctx: JobContext, task: asyncio.Task[Any]) -> None:
        """Heartbeat and progress writes while the handler runs."""
        policy = self.policy
        ctx.changed.set()  # the first write says the job has started
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(policy.heartbeat_seconds):
                    await ctx.changed.wait()
            ctx.changed.clear()
            try:
                mine = await whole(
                    queue.beat(self.database, ctx.id, self.worker, ctx.fraction, ctx.stage)
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat of job %s failed", ctx.id)
                mine = True
            if not mine:
                ctx.lost = True
                task.cancel()
                return
            await asyncio.sleep(policy.progress_seconds)
