"""Evidence uploads (streamed) and authorised, range-capable downloads."""

from __future__ import annotations

import re
from urllib.parse import quote

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.context import DATABASE, OUTBOX, SPOOL, STORE, db, require_login, settings
from server.db.models import StoredObject
from server.domain.documents import DocumentKind
from server.domain.errors import N_, Gone, InternalError, NotFound, Unavailable
from server.domain.roles import Permission
from server.pagination import page_args, paginate
from server.routes.common import path_id
from server.routes.multipart import received_file, streams_body
from server.services import documents
from server.templating import render
from storage.base import ByteRange, ObjectMissing, StorageError

LINK_SALT = "yizhan.download-link.v1"
LINK_SECONDS = 300
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@streams_body
async def upload_evidence(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    await documents.may_upload_evidence(db(request), caller, dispute_id)
    limit = settings(request).evidence_max_mb * 1024 * 1024
    async with (
        received_file(request, limit) as upload,
        request.app[DATABASE].transaction(write=True) as session,
    ):
        document, stored = await documents.store_document(
            session,
            request.app[SPOOL],
            upload.spooled,
            principal=caller,
            dispute_id=dispute_id,
            kind=DocumentKind.EVIDENCE,
            filename=upload.filename,
            title=upload.title,
        )
    request.app[OUTBOX].wake()
    return web.json_response(documents.document_json(document, stored), status=201)


def requested_range(header: str | None, size: int) -> ByteRange | None:
    if not header:
        return None
    match = RANGE.match(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return None  # several ranges, or nonsense: send the whole object
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last)) if last else size - 1
    if start >= size or start > end:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return ByteRange(start, end)


async def check_in_store(
    request: web.Request,
    stored: StoredObject,
    dispute_id: int,
    damaged: str = N_("This file failed its integrity check; the court has been told."),
) -> None:
    """Before sending an object: one the store should have is there with its recorded
    size (one still in the spool is read there); a purged one is gone."""
    if stored.status == "deleted":  # removed by the recording purge when its retention ended
        raise Gone(N_("This session's recording was removed when its retention ended."))
    if stored.status != "stored":
        return
    try:
        info = await request.app[STORE].stat(stored.key)
    except ObjectMissing:
        info = None
    except StorageError:
        raise Unavailable(
            N_("The file store cannot be reached just now. Try again shortly.")
        ) from None
    if info is None or info.size != stored.size:
        raise InternalError(damaged).audited(
            "storage.integrity_failed", dispute_id=dispute_id, key=stored.key
        )


async def _send(request: web.Request, caller: Principal, document_id: int) -> web.StreamResponse:
    found = await documents.readable(db(request), caller, document_id)
    stored = found.stored
    store, spool = request.app[STORE], request.app[SPOOL]
    await check_in_store(request, stored, found.document.dispute_id)
    byte_range = requested_range(request.headers.get("Range"), stored.size)
    response = web.StreamResponse(status=206 if byte_range else 200)
    response.content_type = stored.content_type.split(";")[0]
    if stored.content_type.startswith("text/"):
        response.charset = "utf-8"
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = f'"{stored.sha256}"'
    response.headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(found.document.filename or 'file')}"
    )
    response.content_length = byte_range.length if byte_range else stored.size
    if byte_range:
        response.headers["Content-Range"] = (
            f"bytes {byte_range.start}-{byte_range.end}/{stored.size}"
        )
    async with request.app[DATABASE].transaction(write=True) as session:
        await audit.append(
            session,
            AuditEntry(
                "document.downloaded", caller.actor(), "document", document_id,
                dispute_id=found.document.dispute_id,
                details={"range": request.headers.get("Range", ""), "kind": found.document.kind},
            ),
        )  # fmt: skip
    await response.prepare(request)
    async for chunk in documents.open_bytes(store, spool, stored, byte_range):
        await response.write(chunk)
    await response.write_eof()
    return response


async def download(request: web.Request) -> web.StreamResponse:
    return await _send(request, require_login(request), path_id(request))


def _links(request: web.Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings(request).secret(), salt=LINK_SALT)


async def link(request: web.Request) -> web.Response:
    """A short-lived link, bound to the caller, issued after the access check."""
    caller = require_login(request)
    document_id = path_id(request)
    found = await documents.readable(db(request), caller, document_id)
    token = _links(request).dumps({"d": document_id, "u": caller.user_id, "s": caller.session_id})
    direct = None
    if found.stored.status == "stored":
        try:
            direct = await request.app[STORE].presigned_url(found.stored.key, LINK_SECONDS)
        except StorageError:
            direct = None
    return web.json_response(
        {"url": f"/files/{token}", "direct_url": direct, "expires_in": LINK_SECONDS}
    )


async def linked_file(request: web.Request) -> web.StreamResponse:
    caller = require_login(request)
    try:
        data = _links(request).loads(request.match_info["token"], max_age=LINK_SECONDS)
    except BadSignature:
        raise Gone(N_("This download link has expired. Open the document again.")) from None
    if data.get("u") != caller.user_id or data.get("s") != caller.session_id:
        raise NotFound(N_("No such document, or it is not yours to see.")).audited(
            "access.denied", document_id=data.get("d")
        )
    return await _send(request, caller, int(data["d"]))


async def dispute_documents(request: web.Request) -> web.Response:
    caller = require_login(request)
    dispute_id = path_id(request)
    rows = await documents.list_documents(db(request), caller, dispute_id)
    objects = {
        o.id: o
        for o in await db(request).scalars(
            select(StoredObject).where(StoredObject.id.in_([d.object_id for d in rows]))
        )
    }
    return web.json_response(
        {"items": [documents.document_json(d, objects[d.object_id]) for d in rows]}
    )


async def storage_admin(request: web.Request) -> web.Response:
    caller = require_login(request)
    access.require(caller, Permission.MANAGE_STORAGE)
    page, per_page = page_args(request.query)
    by_status = await db(request).execute(
        select(StoredObject.status, func.count()).group_by(StoredObject.status)
    )
    counts: dict[str, int] = {status: count for status, count in by_status.tuples()}
    pending = await paginate(
        db(request),
        select(StoredObject).where(StoredObject.status == "pending").order_by(StoredObject.id),
        page,
        per_page,
    )
    return render(request, "admin_storage.html", {"counts": counts, "page": pending})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/disputes/{id}/evidence", upload_evidence, name="api_evidence")
    r.add_get("/api/v1/disputes/{id}/documents", dispute_documents, name="api_documents")
    r.add_get("/api/v1/documents/{id}/content", download, name="api_document_content")
    r.add_get("/api/v1/documents/{id}/link", link, name="api_document_link")
    r.add_get("/files/{token}", linked_file, name="linked_file")
    r.add_get("/admin/storage", storage_admin, name="admin_storage")
