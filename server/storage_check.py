"""``yizhan storage verify``: every stored object is there, whole, with its recorded hash."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from server.db.engine import Database
from server.db.models import StoredObject
from storage.base import ObjectMissing, ObjectStore, StorageError

BATCH = 200


@dataclass
class VerifyReport:
    checked: int = 0
    pending: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def _check(store: ObjectStore, row: StoredObject) -> str | None:
    try:
        info = await store.stat(row.key)
    except ObjectMissing:
        return f"object {row.id} ({row.key}): missing from the store"
    except StorageError as exc:
        return f"object {row.id} ({row.key}): cannot be read: {exc}"
    if info.size != row.size:
        return f"object {row.id} ({row.key}): size {info.size}, recorded {row.size}"
    digest = hashlib.sha256()
    size = 0
    async for chunk in store.open(row.key):
        digest.update(chunk)
        size += len(chunk)
    if size != row.size or digest.hexdigest() != row.sha256:
        return f"object {row.id} ({row.key}): SHA-256 differs from the recorded one"
    return None


async def verify_store(
    database: Database,
    store: ObjectStore,
    *,
    sample: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Re-hash every stored object (or a random sample of ``sample`` of them)."""
    report = VerifyReport()
    async with database.transaction(write=False) as session:
        ids = list(
            await session.scalars(
                select(StoredObject.id)
                .where(StoredObject.status == "stored")
                .order_by(StoredObject.id)
            )
        )
        report.pending = len(
            list(
                await session.scalars(
                    select(StoredObject.id).where(StoredObject.status != "stored")
                )
            )
        )
    if sample is not None and sample < len(ids):
        ids = sorted(random.sample(ids, sample))
    for start in range(0, len(ids), BATCH):
        async with database.transaction(write=False) as session:
            rows = list(
                await session.scalars(
                    select(StoredObject).where(StoredObject.id.in_(ids[start : start + BATCH]))
                )
            )
        for row in rows:
            problem = await _check(store, row)
            report.checked += 1
            if problem:
                report.problems.append(problem)
            if progress:
                progress(report.checked, len(ids))
    return report
