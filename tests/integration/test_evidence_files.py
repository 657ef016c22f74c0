"""Evidence uploads and downloads through the app: types by content, limits, access, ranges,
the upload outbox, and `yizhan storage verify`."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from server.db.engine import Database
from server.db.models import AuditEvent, Document, StoredObject
from tests import samples
from tests.integration.test_cli_and_migrations import cli
from tests.support import Clients


async def upload(
    clients: Clients,
    client: TestClient[Any, Any],
    dispute: int,
    name: str,
    data: bytes,
    **extra: str,
) -> aiohttp.ClientResponse:
    form = aiohttp.FormData(quote_fields=False)  # as browsers send UTF-8 names
    for key, value in extra.items():
        form.add_field(key, value)
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    token = await clients.csrf(client)
    return await client.post(
        f"/api/v1/disputes/{dispute}/evidence", data=form, headers={"X-CSRF-Token": token}
    )


async def rows(clients: Clients) -> tuple[int, int]:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            objects = await session.scalar(select(func.count()).select_from(StoredObject))
            documents = await session.scalar(select(func.count()).select_from(Document))
            return int(objects or 0), int(documents or 0)
    finally:
        await db.dispose()


async def wait_stored(clients: Clients, object_count: int, seconds: float = 20.0) -> None:
    db = Database(clients.settings.database_url)
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            async with db.transaction(write=False) as session:
                stored = await session.scalar(
                    select(func.count())
                    .select_from(StoredObject)
                    .where(StoredObject.status == "stored")
                )
            if stored == object_count:
                return
            assert asyncio.get_running_loop().time() < deadline, "uploads did not reach the store"
            await asyncio.sleep(0.05)
    finally:
        await db.dispose()


def spool_files(clients: Clients) -> list[Path]:
    folder = clients.settings.data_dir / "spool"
    return sorted(folder.iterdir()) if folder.exists() else []


async def test_a_party_uploads_evidence_and_both_sides_can_read_it(clients: Clients) -> None:
    applicant = await clients.party("13800000001")
    data = samples.pdf("IOU 50000")
    response = await upload(clients, applicant, 1, "借条.pdf", data, title="借条原件")
    assert response.status == 201, await response.text()
    document = await response.json()
    assert document["sha256"] == hashlib.sha256(data).hexdigest()
    assert document["title"] == "借条原件" and document["content_type"] == "application/pdf"
    # readable at once (from the spool), and after the outbox has stored it
    respondent = await clients.party("13800000002")
    first = await respondent.get(f"/api/v1/documents/{document['id']}/content")
    assert first.status == 200 and await first.read() == data
    await wait_stored(clients, 1)
    assert spool_files(clients) == []
    stored = await respondent.get(f"/api/v1/documents/{document['id']}/content")
    assert stored.status == 200 and await stored.read() == data
    assert stored.headers["ETag"] == f'"{document["sha256"]}"'
    assert "filename*=UTF-8''%E5%80%9F%E6%9D%A1.pdf" in stored.headers["Content-Disposition"]
    listing = await (await respondent.get("/api/v1/disputes/1/documents")).json()
    assert [item["id"] for item in listing["items"]] == [document["id"]]
    page = await (await respondent.get("/disputes/1")).text()
    assert "借条原件" in page


async def test_range_requests_return_206_with_the_right_bytes(clients: Clients) -> None:
    mediator = await clients.staff("tiaojie")
    data = ("调解笔录 " * 2000).encode()
    document = await (await upload(clients, mediator, 1, "notes.txt", data)).json()
    await wait_stored(clients, 1)
    url = f"/api/v1/documents/{document['id']}/content"
    part = await mediator.get(url, headers={"Range": "bytes=100-199"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert await part.read() == data[100:200]
    tail = await mediator.get(url, headers={"Range": "bytes=-10"})
    assert tail.status == 206 and await tail.read() == data[-10:]
    beyond = await mediator.get(url, headers={"Range": f"bytes={len(data) + 5}-"})
    assert beyond.status == 416


async def test_others_cannot_read_or_add_to_a_dispute_that_is_not_theirs(clients: Clients) -> None:
    applicant = await clients.party("13800000001")
    document = await (await upload(clients, applicant, 1, "a.png", samples.png())).json()
    outsider = await clients.party("13800000003")  # a party of dispute 2 only
    assert (await outsider.get(f"/api/v1/documents/{document['id']}/content")).status == 404
    assert (await outsider.get(f"/api/v1/documents/{document['id']}/link")).status == 404
    assert (await upload(clients, outsider, 1, "b.png", samples.png())).status == 404
    judge = await clients.staff("faguan")  # on the dispute, but judges do not file evidence
    assert (await upload(clients, judge, 1, "c.png", samples.png())).status == 403
    assert await rows(clients) == (1, 1)
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            denied = await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "access.denied")
            )
    finally:
        await db.dispose()
    assert denied == 4


async def test_bad_uploads_are_refused_and_nothing_is_kept(clients: Clients) -> None:
    applicant = await clients.party("13800000001")
    cases = [
        ("invoice.pdf", samples.png(), 400, "不是其名称所示"),
        ("virus.exe", b"MZ\x90\x00" + b"\x00" * 100, 400, "不接受"),
        ("empty.pdf", b"", 400, "文件为空"),
        ("../../etc/passwd.txt", b"x", 201, ""),  # the path is dropped, the name kept
    ]
    for name, data, status, message in cases:
        response = await upload(clients, applicant, 1, name, data)
        assert response.status == status, (name, await response.text())
        if message:
            assert message in (await response.json())["error"]["message"], name
    objects, documents = await rows(clients)
    assert (objects, documents) == (1, 1)
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            kept = await session.scalar(select(Document))
    finally:
        await db.dispose()
    assert kept is not None and kept.filename == "passwd.txt"
    await wait_stored(clients, 1)
    assert spool_files(clients) == []


async def test_an_oversized_upload_is_refused_before_it_is_stored(
    clients: Clients, tmp_path: Path
) -> None:
    applicant = await clients.party("13800000001")
    limit = clients.settings.evidence_max_mb * 1024 * 1024
    big = b"a" * (limit + 1024)
    response = await upload(clients, applicant, 1, "big.txt", big)
    assert response.status == 413
    assert "请求内容过大" in (await response.json())["error"]["message"]

    async def chunked() -> Any:  # no Content-Length: the limit is enforced while reading
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
        for _ in range(limit // (1024 * 1024) + 2):
            yield b"a" * 1024 * 1024
        yield b"\r\n--b--\r\n"

    token = await clients.csrf(applicant)
    response = await applicant.post(
        "/api/v1/disputes/1/evidence",
        data=chunked(),
        headers={"X-CSRF-Token": token, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status == 413
    assert await rows(clients) == (0, 0)
    assert [p.name for p in spool_files(clients)] == []


async def test_a_multipart_body_without_boundary_is_refused(clients: Clients) -> None:
    applicant = await clients.party("13800000001")
    token = await clients.csrf(applicant)
    for content_type in ("multipart/form-data", "application/json", "text/plain"):
        response = await applicant.post(
            "/api/v1/disputes/1/evidence",
            data=b"--x\r\n\r\nhello",
            headers={"X-CSRF-Token": token, "Content-Type": content_type},
        )
        assert response.status == 400, content_type
        assert (await response.json())["error"]["field"] == "file"
    # and without the CSRF header nothing is even read
    response = await applicant.post("/api/v1/disputes/1/evidence", data=b"x")
    assert response.status == 403
    assert await rows(clients) == (0, 0)


async def test_a_short_lived_link_works_only_for_its_owner(clients: Clients) -> None:
    applicant = await clients.party("13800000001")
    document = await (await upload(clients, applicant, 1, "w.wav", samples.wav())).json()
    link = await (await applicant.get(f"/api/v1/documents/{document['id']}/link")).json()
    assert link["url"].startswith("/files/") and link["expires_in"] == 300
    assert (await applicant.get(link["url"])).status == 200
    other = await clients.staff("tiaojie")  # may read the document, but not with this link
    assert (await other.get(link["url"])).status == 404
    assert (await applicant.get(link["url"][:-3] + "xyz")).status == 410


async def test_storage_verify_finds_a_changed_and_a_missing_object(clients: Clients) -> None:
    applicant = await clients.party("13800000001")
    for name in ("one.txt", "two.txt", "three.txt"):
        assert (await upload(clients, applicant, 1, name, name.encode() * 100)).status == 201
    await wait_stored(clients, 3)
    data_dir = clients.settings.data_dir
    result = await cli(clients.settings.database_url, data_dir, "storage", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 objects checked, 0 problems" in result.stdout
    files = sorted(p for p in (data_dir / "objects").rglob("*.txt"))
    changed = bytearray(files[0].read_bytes())
    changed[0] ^= 0xFF  # same size, different content
    files[0].write_bytes(bytes(changed))
    files[1].unlink()
    result = await cli(clients.settings.database_url, data_dir, "storage", "verify")
    assert result.returncode == 1
    assert "2 problems" in result.stdout
    assert "missing from the store" in result.stdout and "SHA-256 differs" in result.stdout
    # a download of the changed file fails its size or hash check instead of serving it
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            missing_key = files[1].relative_to(data_dir / "objects").as_posix()
            row = await session.scalar(
                select(Document)
                .join(StoredObject, StoredObject.id == Document.object_id)
                .where(StoredObject.key == missing_key)
            )
    finally:
        await db.dispose()
    assert row is not None
    response = await applicant.get(f"/api/v1/documents/{row.id}/content")
    assert response.status == 500
    assert "完整性校验" in (await response.json())["error"]["message"]


async def test_the_admin_sees_pending_uploads(clients: Clients) -> None:
    admin = await clients.staff("admin")
    page = await admin.get("/admin/storage")
    assert page.status == 200
    text = await page.text()
    assert "等待上传" in text
    party = await clients.party("13800000001")
    assert (await party.get("/admin/storage")).status == 403
