"""The upload outbox: files wait in the local spool until the object store has them.

A row in ``stored_objects`` is written with status ``pending`` in the same
transaction as whatever the file belongs to; this worker then sends the spooled
file to the store, retrying with back-off while the store is down, and marks the
row ``stored`` only after the store has the whole object.  A restart resumes
every pending row.  Uploading a key twice cannot duplicate anything: the key is
fixed when the row is written, and a write-once object already there with the
right size counts as done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select

from server.db.engine import Database
from server.db.models import StoredObject
from storage.base import ObjectExists, ObjectStore, StorageError
from storage.spool import Spool

log = logging.getLogger(__name__)

PENDING = "pending"
STORED = "stored"


@dataclass(frozen=True)
class RetryPolicy:
    first_delay: float = 0.5
    max_delay: float = 60.0

    def delay(self, attempts: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** max(0, attempts - 1)))


class UploadOutbox:
    def __init__(
        self,
        database: Database,
        store: ObjectStore,
        spool: Spool,
        policy: RetryPolicy | None = None,
        batch: int = 20,
    ) -> None:
        self.database = database
        self.store = store
        self.spool = spool
        self.policy = policy or RetryPolicy()
        self.batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.uploaded = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="upload-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def _due(self) -> list[StoredObject]:
        now = datetime.now(UTC)
        async with self.database.transaction(write=False) as session:
            rows = await session.scalars(
                select(StoredObject)
                .where(
                    StoredObject.status == PENDING,
                    or_(
                        StoredObject.next_attempt_at.is_(None), StoredObject.next_attempt_at <= now
                    ),
                )
                .order_by(StoredObject.id)
                .limit(self.batch)
            )
            return list(rows)

    async def _next_due_in(self) -> float | None:
        """Seconds until the next pending upload is due; None when nothing is pending."""
        async with self.database.transaction(write=False) as session:
            pending = await session.execute(
                select(func.count(), func.min(StoredObject.next_attempt_at)).where(
                    StoredObject.status == PENDING
                )
            )
            waiting, soonest = pending.tuples().one()
        if not waiting:
            return None
        if soonest is None:
            return 0.0  # pending rows with no retry time are due now
        return max(0.0, (soonest - datetime.now(UTC)).total_seconds())

    async def run_once(self) -> tuple[int, int]:
        """Try one batch of due uploads; return (tried, reached the store)."""
        due = await self._due()
        done = 0
        for row in due:
            done += await self._upload(row)
        return len(due), done

    async def sweep(self, older_than: timedelta = timedelta(hours=1)) -> int:
        """Remove spool files no pending row needs: uploads cut off mid-body, and files
        kept for a request whose transaction then failed.  Returns how many went."""
        folder = self.spool.folder
        if not folder.exists():
            return 0
        async with self.database.transaction(write=False) as session:
            wanted = {
                self.spool.path_for(key).name
                for key in await session.scalars(
                    select(StoredObject.key).where(StoredObject.status == PENDING)
                )
            }
        cutoff = time.time() - older_than.total_seconds()
        removed = 0
        for path in folder.iterdir():
            if path.name in wanted or not path.is_file() or path.stat().st_mtime > cutoff:
                continue
            await self.spool.discard(path)
            removed += 1
        if removed:
            log.info("removed %s unneeded spool files", removed)
        return removed

    async def _run(self) -> None:
        try:
            await self.store.ensure_ready()
        except StorageError as exc:
            log.warning("object store not ready yet: %s", exc)
        try:
            await self.sweep()
        except Exception:
            log.exception("spool sweep failed")
        while True:
            try:
                tried, _ = await self.run_once()
                wait = 0.0 if tried == self.batch else await self._next_due_in()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("upload outbox round failed")
                wait = self.policy.max_delay
            self._wake.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the
            # cancellation that stop() sends when the wake-up lands at the same moment
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait if wait is not None else 30.0):
                    await self._wake.wait()

    async def _upload(self, row: StoredObject) -> int:
        path = self.spool.path_for(row.key)
        started = time.perf_counter()
        error = ""
        try:
            if not path.exists():
                # already sent by an earlier run that stopped before marking the row
                info = await self.store.stat(row.key)
            else:
                try:
                    info = await self.store.put_file(
                        row.key, path, content_type=row.content_type, write_once=row.write_once
                    )
                except ObjectExists:
                    info = await self.store.stat(row.key)
            if info.size != row.size:
                error = f"size mismatch: the store has {info.size} bytes, expected {row.size}"
        except StorageError as exc:
            error = str(exc) or type(exc).__name__
        async with self.database.transaction(write=True) as session:
            current = await session.get(StoredObject, row.id)
            if current is None or current.status != PENDING:
                return 0
            if error:
                current.attempts += 1
                current.last_error = error[:2000]
                current.next_attempt_at = datetime.now(UTC) + timedelta(
                    seconds=self.policy.delay(current.attempts)
                )
                log.warning(
                    "upload of %s failed (attempt %s): %s", row.key, current.attempts, error
                )
                return 0
            current.status = STORED
            current.stored_at = datetime.now(UTC)
            current.last_error = ""
        await self.spool.discard(path)
        self.uploaded += 1
        log.info("stored %s (%s bytes) in %.2f s", row.key, row.size, time.perf_counter() - started)
        return 1
