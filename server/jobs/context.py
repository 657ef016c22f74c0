"""What a job handler is given: the job, the shared services, and a way to say how far
it has got.

``progress(fraction, stage)`` only records the latest figure (it is cheap enough to call
from a tight loop or a synchronous callback); the runner writes it to the database with
the heartbeat, a few times a second at most.  The fraction never goes backwards, not
even across a resumed run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from server.config import Settings
from server.db.engine import Database
from server.jobs import queue
from server.jobs.queue import Claimed
from storage.base import ObjectStore
from storage.spool import Spool


class JobContext:
    def __init__(
        self,
        job: Claimed,
        *,
        worker: str,
        database: Database,
        store: ObjectStore,
        spool: Spool,
        settings: Settings,
    ) -> None:
        self.id = job.id
        self.kind = job.kind
        self.params: dict[str, Any] = dict(job.params)
        self.attempt = job.attempts  # 1 on the first run
        self.dispute_id = job.dispute_id
        self.session_id = job.session_id
        self.created_by_id = job.created_by_id
        self.saved: dict[str, Any] = dict(job.saved)  # the last checkpoint, {} at first
        self.worker = worker
        self.database = database
        self.store = store
        self.spool = spool
        self.settings = settings
        self.fraction = max(0.0, min(1.0, job.progress))
        self.stage = job.stage
        self.lost = False  # set when another worker took the job over
        self.changed = asyncio.Event()

    def progress(self, fraction: float, stage: str | None = None) -> None:
        """How far the job is (0..1) and, optionally, what it does now (a msgid)."""
        fraction = max(0.0, min(1.0, float(fraction)))
        moved = fraction > self.fraction or (stage is not None and stage != self.stage)
        self.fraction = max(self.fraction, fraction)
        if stage is not None:
            self.stage = stage
        if moved:
            self.changed.set()

    def span(self, start: float, end: float, stage: str | None = None) -> Callable[[float], None]:
        """A progress callback for one step: its 0..1 maps onto ``start``..``end``."""

        def report(fraction: float) -> None:
            self.progress(start + (end - start) * max(0.0, min(1.0, fraction)), stage)

        return report

    async def checkpoint(self, **values: Any) -> None:
        """Keep what a resumed run needs (merged into ``saved``)."""
        self.saved.update(values)
        await queue.checkpoint(self.database, self.id, self.worker, self.saved)


Handler = Callable[[JobContext], Coroutine[Any, Any, Mapping[str, Any]]]
