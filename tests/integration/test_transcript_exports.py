"""DOCX and PDF transcripts in the court's layout, on both databases: asked for through
the API, made by the background job with progress, stored as documents of the dispute
with their SHA-256, and audited; a frozen transcript's document carries its hash and the
parties' answers; a draft says it is one; people of other disputes get nothing."""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Any

import docx
import pypdf
from sqlalchemy import select

from server.db.engine import Database
from server.db.models import AuditEvent, Document, StoredObject
from tests.integration.test_transcript_review import act, session_ended, state
from tests.support import Clients

ZHANG, WANG = "13800000001", "13800000003"


async def export(clients: Clients, client: Any, session_id: int, fmt: str) -> dict[str, Any]:
    """Ask for the document, follow the job to its end; the finished job."""
    response = await clients.post_json(
        client, f"/api/v1/sessions/{session_id}/transcript/exports", {"format": fmt}
    )
    assert response.status == 202, await response.text()
    job = (await response.json())["job"]
    seen = [job["progress"]]
    for _ in range(600):
        response = await client.get(f"/api/v1/jobs/{job['id']}")
        assert response.status == 200, await response.text()
        job = await response.json()
        seen.append(job["progress"])
        if job["state"] in ("done", "failed"):
            break
        await asyncio.sleep(0.05)
    assert job["state"] == "done", job
    assert seen == sorted(seen) and seen[-1] == 1.0, seen
    result: dict[str, Any] = job["result"]
    return result


async def content(client: Any, document_id: int) -> bytes:
    response = await client.get(f"/api/v1/documents/{document_id}/content")
    assert response.status == 200, await response.text()
    return bytes(await response.read())


def pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "".join(page.extract_text() or "" for page in reader.pages)


def docx_text(data: bytes) -> str:
    document = docx.Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        parts += [cell.text for row in table.rows for cell in row.cells]
    return "\n".join(parts)


async def rows(clients: Clients, document_id: int) -> tuple[Document, StoredObject, list[Any]]:
    database = Database(clients.settings.database_url)
    try:
        async with database.transaction(write=False) as db:
            document = await db.get(Document, document_id)
            assert document is not None
            stored = await db.get(StoredObject, document.object_id)
            assert stored is not None
            audits = (
                await db.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.action == "transcript.exported")
                    .order_by(AuditEvent.seq)
                )
            ).all()
            return document, stored, list(audits)
    finally:
        await database.dispose()


async def test_the_clerk_gets_a_draft_pdf_stored_with_its_hash(clients: Clients) -> None:
    session_id, _ = await session_ended(clients)
    clerk = await clients.staff("shujiyuan")
    result = await export(clients, clerk, session_id, "pdf")
    data = await content(clerk, result["document_id"])
    assert data.startswith(b"%PDF")
    assert hashlib.sha256(data).hexdigest() == result["sha256"]
    text = pdf_text(data)
    for said in ("我借给他五万元", "约定一年后归还", "我确实借了钱", "张三", "李四"):
        assert said in text, said
    assert "草稿" in text  # not confirmed by the parties yet
    assert result["frozen"] is False
    document, stored, audits = await rows(clients, result["document_id"])
    assert document.kind == "transcript_export" and document.dispute_id == 1
    assert stored.sha256 == result["sha256"] and stored.size == len(data)
    assert audits[-1].details["sha256"] == result["sha256"]
    assert audits[-1].details["format"] == "pdf"


async def test_a_frozen_transcript_docx_carries_the_hash_and_the_answers(
    clients: Clients,
) -> None:
    session_id, _ = await session_ended(clients)
    clerk = await clients.staff("shujiyuan")
    response = await act(clients, clerk, session_id, "open", {})
    assert response.status == 201, await response.text()
    review = await state(clerk, session_id)
    missing = [{"user_id": p["user_id"], "reason": "absent"} for p in review["missing"]]
    response = await act(
        clients, clerk, session_id, "freeze", {"sha256": review["sha256"], "missing": missing}
    )
    assert response.status == 200, await response.text()
    frozen = (await state(clerk, session_id))["sha256"]

    zhang = await clients.party(ZHANG)  # a party downloads the record of his own dispute
    result = await export(clients, zhang, session_id, "docx")
    assert result["frozen"] is True
    text = docx_text(await content(zhang, result["document_id"]))
    assert "我确实借了钱" in text
    assert "未到场" in text  # the clerk's record of the missing answer
    xml = docx.Document(io.BytesIO(await content(zhang, result["document_id"])))
    footer = "".join(p.text for s in xml.sections for p in s.footer.paragraphs)
    assert frozen in footer + text
    _, _, audits = await rows(clients, result["document_id"])
    assert audits[-1].details["frozen_sha256"] == frozen


async def test_a_party_of_another_dispute_and_a_bad_format_are_refused(
    clients: Clients,
) -> None:
    session_id, _ = await session_ended(clients)
    wang = await clients.party(WANG)  # 王五 is not on the demo loan dispute
    response = await clients.post_json(
        wang, f"/api/v1/sessions/{session_id}/transcript/exports", {"format": "pdf"}
    )
    assert response.status == 404
    clerk = await clients.staff("shujiyuan")
    response = await clients.post_json(
        clerk, f"/api/v1/sessions/{session_id}/transcript/exports", {"format": "exe"}
    )
    assert response.status == 400
    assert (await response.json())["error"]["message"]
