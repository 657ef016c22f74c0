"""``yizhan storage verify``: every stored object is there, whole, with its recorded hash;
every recording's manifest, segments and database rows agree.

Objects are re-hashed from the store. A recording is checked as a whole: its manifest
(the object must hash to ``Recording.manifest_sha256`` and be a manifest of this
recording), every segment it lists (in the store, or still in the spool while its upload
is pending, with the listed size and SHA-256), and the database's segments against the
manifest's. Segments written after the manifest (a crash before the next one) are
reported as "not in manifest": a warning, or a problem with ``strict``. A purged
recording keeps only its manifest; a live one has none yet, so its database segments are
checked directly. The objects of recordings are hashed once, by the recording check.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from server.db.engine import Database
from server.db.models import Recording, RecordingSegment, StoredObject
from server.services.recordings import MANIFEST_FORMAT, PURGED, STOPPED
from storage.base import ObjectMissing, ObjectStore, StorageError
from storage.spool import Spool

BATCH = 200
PENDING, STORED, DELETED = "pending", "stored", "deleted"
# what the manifest lists of each segment, and the type each must have
SEGMENT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "key": str,
    "sha256": str,
    "size": int,
    "track": str,
    "identity": str,
    "name": str,
    "seat": str,
    "source": str,
    "kind": str,
    "run": int,
    "index": int,
    "start": (int, float),
    "end": (int, float),
    "packets": int,
}
# the fields the manifest and the database must agree on
COMPARED = ("sha256", "size", "run", "track", "index")


@dataclass
class VerifyReport:
    checked: int = 0
    pending: int = 0
    deleted: int = 0  # removed by the recording purge: not expected in the store
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
    skip_recordings: bool = False,
) -> VerifyReport:
    """Re-hash every stored object (or a random sample of ``sample`` of them); with
    ``skip_recordings``, not the segments and manifests that :func:`verify_recordings`
    checks."""
    report = VerifyReport()
    async with database.transaction(write=False) as session:
        query = select(StoredObject.id).where(StoredObject.status == STORED)
        if skip_recordings:
            segments = select(RecordingSegment.object_id).where(
                RecordingSegment.object_id.is_not(None)
            )
            manifests = select(Recording.manifest_object_id).where(
                Recording.manifest_object_id.is_not(None)
            )
            query = query.where(StoredObject.id.not_in(segments), StoredObject.id.not_in(manifests))
        ids = list(await session.scalars(query.order_by(StoredObject.id)))
        counts = dict(
            (
                await session.execute(
                    select(StoredObject.status, func.count()).group_by(StoredObject.status)
                )
            )
            .tuples()
            .all()
        )
    report.pending = int(counts.get(PENDING, 0))
    report.deleted = int(counts.get(DELETED, 0))
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


# --- recordings -------------------------------------------------------------------------


@dataclass
class RecordingCheck:
    """What ``verify_recordings`` found for one recording."""

    recording_id: int
    session_id: int
    dispute_id: int
    state: str
    manifest: str = "none"  # ok, none, missing, mismatch, invalid, unreadable
    segments: int = 0  # segments expected in the store
    checked: int = 0  # of them read back whole, matching their recorded size and hash
    from_spool: int = 0  # of them still waiting for upload, read from the spool
    not_in_manifest: int = 0  # in the database, written after the manifest
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "recording_id": self.recording_id,
            "session_id": self.session_id,
            "dispute_id": self.dispute_id,
            "state": self.state,
            "manifest": self.manifest,
            "segments": self.segments,
            "checked": self.checked,
            "from_spool": self.from_spool,
            "not_in_manifest": self.not_in_manifest,
            "ok": self.ok,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }

    def line(self) -> str:
        head = f"recording {self.recording_id} (session {self.session_id}, {self.state})"
        if self.state == PURGED:
            counts = f"purged, manifest {self.manifest}"
        else:
            counts = (
                f"manifest {self.manifest}, {self.segments} segments, {self.checked} whole"
                f" ({self.from_spool} still in the spool), {self.not_in_manifest} not in manifest"
            )
        verdict = "OK" if self.ok else f"{len(self.problems)} problems"
        if self.warnings:
            verdict += f", {len(self.warnings)} warnings"
        return f"{head}: {counts}; {verdict}"


@dataclass(frozen=True)
class _Expected:
    """A segment as the manifest or the database describes it."""

    label: str
    key: str
    size: int
    sha256: str
    status: str  # the StoredObject's, or "" when the database has no row for the key


def _label(track: object, run: object, index: object, key: str) -> str:
    return f"segment {track} run {run} #{index} ({key})"


async def _hash(chunks: AsyncIterator[bytes]) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    async for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


async def _read(store: ObjectStore, spool: Spool, key: str, status: str) -> tuple[int, str, bool]:
    """Size and SHA-256 of the object's bytes, and whether they came from the spool."""
    if status == PENDING:
        try:
            size, digest = await _hash(spool.open(key))
            return size, digest, True
        except ObjectMissing:
            pass  # uploaded (and cleared from the spool) since the row was read
    size, digest = await _hash(store.open(key))
    return size, digest, False


async def _read_bytes(store: ObjectStore, spool: Spool, key: str, status: str) -> bytes:
    if status == PENDING:
        try:
            return b"".join([chunk async for chunk in spool.open(key)])
        except ObjectMissing:
            pass
    return b"".join([chunk async for chunk in store.open(key)])


async def _check_segment(
    check: RecordingCheck, store: ObjectStore, spool: Spool, expected: _Expected, against: str
) -> None:
    check.segments += 1
    where = "the spool or the store" if expected.status == PENDING else "the store"
    if expected.status == DELETED:
        check.problems.append(
            f"{expected.label}: removed from the store, but the recording is not purged"
        )
        return
    try:
        size, digest, spooled = await _read(store, spool, expected.key, expected.status)
    except ObjectMissing:
        check.problems.append(f"{expected.label}: missing from {where}")
        return
    except StorageError as exc:
        check.problems.append(f"{expected.label}: cannot be read: {exc}")
        return
    if size != expected.size:
        check.problems.append(f"{expected.label}: size {size}, {against} says {expected.size}")
    elif digest != expected.sha256:
        check.problems.append(f"{expected.label}: SHA-256 differs from {against}")
    else:
        check.checked += 1
        check.from_spool += int(spooled)


def _manifest_problem(document: Any, recording: Recording) -> str | None:
    """Why ``document`` is not a manifest of this recording in the documented format."""
    if not isinstance(document, dict):
        return "not a JSON object"
    if document.get("format") != MANIFEST_FORMAT:
        return f"format {document.get('format')!r}, expected {MANIFEST_FORMAT!r}"
    for name, value in (
        ("recording_id", recording.id),
        ("session_id", recording.session_id),
        ("dispute_id", recording.dispute_id),
    ):
        if document.get(name) != value:
            return f"{name} {document.get(name)!r}, expected {value!r}"
    if not isinstance(document.get("started_at"), str):
        return "no started_at"
    if not isinstance(document.get("events"), list):
        return "no list of events"
    segments = document.get("segments")
    if not isinstance(segments, list):
        return "no list of segments"
    keys = set()
    for number, item in enumerate(segments):
        if not isinstance(item, dict):
            return f"segment {number} is not an object"
        for name, kind in SEGMENT_FIELDS.items():
            given = item.get(name)
            if not isinstance(given, kind) or isinstance(given, bool):
                return f"segment {number}: {name} is missing or of the wrong type"
        if item["key"] in keys:
            return f"segment {number}: key {item['key']} listed twice"
        keys.add(item["key"])
    return None


async def _load_manifest(
    check: RecordingCheck,
    store: ObjectStore,
    spool: Spool,
    recording: Recording,
    row: StoredObject | None,
) -> list[dict[str, Any]] | None:
    """The manifest's segments when the manifest is whole and valid; else None."""
    if row is None:
        check.manifest = "missing"
        check.problems.append("manifest: its object row is missing from the database")
        return None
    name = f"manifest ({row.key})"
    if row.status == DELETED:
        check.manifest = "missing"
        check.problems.append(f"{name}: removed from the store")
        return None
    try:
        data = await _read_bytes(store, spool, row.key, row.status)
    except ObjectMissing:
        check.manifest = "missing"
        check.problems.append(f"{name}: missing from the store")
        return None
    except StorageError as exc:
        check.manifest = "unreadable"
        check.problems.append(f"{name}: cannot be read: {exc}")
        return None
    digest = hashlib.sha256(data).hexdigest()
    if digest != recording.manifest_sha256 or digest != row.sha256:
        check.manifest = "mismatch"
        check.problems.append(f"{name}: SHA-256 differs from the recording's manifest_sha256")
        return None
    why: str | None
    try:
        document = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        document, why = None, f"not UTF-8 JSON: {exc}"
    else:
        why = _manifest_problem(document, recording)
    if why is not None:
        check.manifest = "invalid"
        check.problems.append(f"{name}: not a valid {MANIFEST_FORMAT} document: {why}")
        return None
    check.manifest = "ok"
    segments: list[dict[str, Any]] = document["segments"]
    return segments


async def _check_recording(
    database: Database, store: ObjectStore, spool: Spool, recording_id: int, strict: bool
) -> RecordingCheck | None:
    async with database.transaction(write=False) as session:
        recording = await session.get(Recording, recording_id)
        if recording is None:
            return None  # removed with its session since the list was read
        rows = (
            await session.execute(
                select(RecordingSegment, StoredObject)
                .outerjoin(StoredObject, StoredObject.id == RecordingSegment.object_id)
                .where(RecordingSegment.recording_id == recording_id)
                .order_by(RecordingSegment.run, RecordingSegment.track, RecordingSegment.index)
            )
        ).tuples()
        segments = list(rows)
        manifest_row = (
            await session.get(StoredObject, recording.manifest_object_id)
            if recording.manifest_object_id is not None
            else None
        )
    check = RecordingCheck(
        recording.id, recording.session_id, recording.dispute_id, recording.state
    )

    def note(message: str) -> None:
        (check.problems if strict else check.warnings).append(message)

    listed: list[dict[str, Any]] | None = None
    if recording.manifest_object_id is not None:
        listed = await _load_manifest(check, store, spool, recording, manifest_row)
    elif recording.state == STOPPED:
        note("stopped, but no manifest was written")
    if recording.state == PURGED:
        return check  # the media are gone on purpose: only the manifest remains
    in_database: dict[str, _Expected] = {}
    for segment, stored in segments:
        label = _label(segment.track, segment.run, segment.index, stored.key if stored else "?")
        if stored is None:
            check.segments += 1
            check.problems.append(f"{label}: no stored object in the database")
            continue
        if (stored.size, stored.sha256) != (segment.size, segment.sha256):
            check.problems.append(f"{label}: the segment row and its object row differ")
        in_database[stored.key] = _Expected(
            label, stored.key, segment.size, segment.sha256, stored.status
        )
    if listed is None:
        for expected in in_database.values():
            await _check_segment(check, store, spool, expected, "the database")
        return check
    by_key = {o.key: s for s, o in segments if o is not None}
    statuses = await _statuses(database, [str(item["key"]) for item in listed])
    for item in listed:
        key = str(item["key"])
        label = _label(item["track"], item["run"], item["index"], key)
        row = by_key.get(key)
        if row is None:
            check.problems.append(f"{label}: in the manifest but not in the database")
        else:
            for name in COMPARED:
                if item[name] != getattr(row, name):
                    check.problems.append(
                        f"{label}: the manifest says {name} {item[name]!r}, "
                        f"the database {getattr(row, name)!r}"
                    )
        expected = _Expected(
            label, key, int(item["size"]), str(item["sha256"]), statuses.get(key, STORED)
        )
        await _check_segment(check, store, spool, expected, "the manifest")
    listed_keys = {str(item["key"]) for item in listed}
    for key, expected in in_database.items():
        if key in listed_keys:
            continue
        check.not_in_manifest += 1
        note(f"{expected.label}: not in manifest")
        await _check_segment(check, store, spool, expected, "the database")
    return check


async def _statuses(database: Database, keys: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(keys), BATCH):
        async with database.transaction(write=False) as session:
            rows = await session.execute(
                select(StoredObject.key, StoredObject.status).where(
                    StoredObject.key.in_(list(keys[start : start + BATCH]))
                )
            )
            found.update(rows.tuples().all())
    return found


async def verify_recordings(
    database: Database,
    store: ObjectStore,
    spool: Spool,
    *,
    recording_id: int | None = None,
    session_id: int | None = None,
    strict: bool = False,
    sample: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[RecordingCheck]:
    """Check every recording (or the one named, or a random ``sample`` of them)."""
    query = select(Recording.id).order_by(Recording.id)
    if recording_id is not None:
        query = query.where(Recording.id == recording_id)
    if session_id is not None:
        query = query.where(Recording.session_id == session_id)
    async with database.transaction(write=False) as session:
        ids = list(await session.scalars(query))
    if sample is not None and sample < len(ids):
        ids = sorted(random.sample(ids, sample))
    checks = []
    for done, found in enumerate(ids, start=1):
        check = await _check_recording(database, store, spool, found, strict)
        if check is not None:
            checks.append(check)
        if progress:
            progress(done, len(ids))
    return checks
