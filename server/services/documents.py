"""Documents of a dispute: receiving evidence, checking who may read what, reading bytes."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import Actor, AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.db.models import Document, StoredObject
from server.domain.documents import (
    ACCEPTED_TYPES,
    EVIDENCE_UPLOADERS,
    WRITE_ONCE,
    DocumentKind,
    may_read,
)
from server.domain.errors import N_, Forbidden, Invalid, NotFound
from server.domain.roles import Permission
from storage.base import ByteRange, ObjectMissing, ObjectStore
from storage.keys import new_key
from storage.sniff import UnsupportedType, identify
from storage.spool import Spool, Spooled

MAX_TITLE = 200


async def may_upload_evidence(db: AsyncSession, principal: Principal, dispute_id: int) -> None:
    """Checked before a single byte of the body is read."""
    await access.dispute_for(db, principal, dispute_id)
    if principal.role not in EVIDENCE_UPLOADERS:
        raise Forbidden(N_("Your role may not do this.")).audited(
            "access.denied", dispute_id=dispute_id, permission="evidence.upload"
        )


def clean_filename(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip().replace("\x00", "")
    if not name or name in (".", ".."):
        raise Invalid(N_("The file has no name."), field="file")
    return name[:255]


async def store_document(
    db: AsyncSession,
    spool: Spool,
    spooled: Spooled,
    *,
    principal: Principal,
    dispute_id: int,
    kind: DocumentKind,
    filename: str,
    title: str = "",
) -> tuple[Document, StoredObject]:
    """Check the received file's type, then record it for upload (in the caller's transaction)."""
    return await record_document(
        db,
        spool,
        spooled,
        actor=principal.actor(),
        dispute_id=dispute_id,
        kind=kind,
        filename=filename,
        title=title,
    )


async def record_document(
    db: AsyncSession,
    spool: Spool,
    spooled: Spooled,
    *,
    actor: Actor,
    dispute_id: int,
    kind: DocumentKind,
    filename: str,
    title: str = "",
) -> tuple[Document, StoredObject]:
    """:func:`store_document` for a file a person or the platform (``actor.id`` None) made:
    its type checked (:class:`Invalid` if not accepted), kept in the spool for the upload
    outbox, recorded and audited."""
    name = clean_filename(filename)
    if spooled.size == 0:
        raise Invalid(N_("The file is empty."), field="file")
    try:
        file_type = identify(name, spooled.head, spooled.path)
    except UnsupportedType:
        raise Invalid(
            N_("This file type is not accepted, or the file is not what its name says."),
            field="file",
        ) from None
    if file_type.name not in ACCEPTED_TYPES[kind]:
        raise Invalid(N_("This file type is not accepted here."), field="file")
    key = new_key(kind.value, dispute_id, file_type.extensions[0])
    await spool.keep(spooled, key)
    stored = StoredObject(
        key=key,
        kind=kind.value,
        dispute_id=dispute_id,
        size=spooled.size,
        sha256=spooled.sha256,
        content_type=file_type.content_type,
        write_once=kind in WRITE_ONCE,
        status="pending",
        next_attempt_at=datetime.now(UTC),
        created_by_id=actor.id,
    )
    db.add(stored)
    await db.flush()
    document = Document(
        dispute_id=dispute_id,
        kind=kind.value,
        title=(title.strip() or name)[:MAX_TITLE],
        filename=name,
        object_id=stored.id,
        created_by_id=actor.id,
    )
    db.add(document)
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            "document.added",
            actor,
            "document",
            document.id,
            dispute_id=dispute_id,
            details={
                "kind": kind.value,
                "size": stored.size,
                "sha256": stored.sha256,
                "name": name,
            },
        ),
    )
    return document, stored


@dataclass(frozen=True)
class Readable:
    document: Document
    stored: StoredObject


async def readable(db: AsyncSession, principal: Principal, document_id: int) -> Readable:
    """The document if the caller may see its dispute and read its kind; else NotFound."""
    row = (
        await db.execute(
            select(Document, StoredObject)
            .join(StoredObject, StoredObject.id == Document.object_id)
            .where(Document.id == document_id)
        )
    ).first()
    if row is None:
        raise NotFound(N_("No such document, or it is not yours to see.")).audited(
            "access.denied", document_id=document_id
        )
    document, stored = row
    await access.dispute_for(db, principal, document.dispute_id, Permission.VIEW_DISPUTE)
    if not may_read(principal.role, DocumentKind(document.kind)):
        raise NotFound(N_("No such document, or it is not yours to see.")).audited(
            "access.denied", dispute_id=document.dispute_id, document_id=document_id
        )
    return Readable(document, stored)


async def list_documents(db: AsyncSession, principal: Principal, dispute_id: int) -> list[Document]:
    await access.dispute_for(db, principal, dispute_id)
    rows = await db.scalars(
        select(Document).where(Document.dispute_id == dispute_id).order_by(Document.id)
    )
    return [d for d in rows if may_read(principal.role, DocumentKind(d.kind))]


def document_json(document: Document, stored: StoredObject) -> dict[str, Any]:
    return {
        "id": document.id,
        "dispute_id": document.dispute_id,
        "kind": document.kind,
        "title": document.title,
        "filename": document.filename,
        "size": stored.size,
        "sha256": stored.sha256,
        "content_type": stored.content_type,
        "stored": stored.status == "stored",
        "created_at": document.created_at.isoformat(),
    }


async def open_bytes(
    store: ObjectStore, spool: Spool, stored: StoredObject, byte_range: ByteRange | None
) -> AsyncIterator[bytes]:
    """The object's bytes: from the store once it is there, from the spool until then."""
    if stored.status != "stored":
        try:
            async for chunk in spool.open(stored.key, byte_range):
                yield chunk
            return
        except ObjectMissing:
            pass  # the outbox stored it (and cleared the spool) since the row was read
    async for chunk in store.open(stored.key, byte_range):
        yield chunk


async def copy_to(
    store: ObjectStore,
    spool: Spool,
    stored: StoredObject,
    path: Path,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, str]:
    """Copy the object's bytes into ``path``; their size and SHA-256 as read (the caller
    compares them with what was recorded). ``progress`` is told the bytes copied so far.
    ObjectMissing and StorageError go to the caller."""
    digest, size = hashlib.sha256(), 0
    with path.open("wb") as handle:
        async for chunk in open_bytes(store, spool, stored, None):
            digest.update(chunk)
            size += len(chunk)
            await asyncio.to_thread(handle.write, chunk)
            if progress is not None:
                progress(size)
    return size, digest.hexdigest()
