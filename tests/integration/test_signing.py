"""Signing the mediation agreement on both databases, with the demo loan dispute: 张三, 李四
and the mediator sign the PDF out for signing with a drawn PNG, after which the agreement
takes effect and the final PDF (signatures page, audit page, the platform's PAdES
signature) is issued and checks out; bad attempts are refused with a clear message and
an audit row; a party's refusal to sign ends the mediation; /verify tells an issued PDF
from a changed one."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from PIL import Image, ImageDraw
from pypdf import PdfReader
from sqlalchemy import select, update

from server.config import Settings
from server.db.engine import Database
from server.db.models import (
    Agreement,
    AgreementSignature,
    AgreementVersion,
    AuditEvent,
    Dispute,
    DisputeAgent,
    DisputeParty,
    Document,
    LoginSession,
    StoredObject,
    User,
)
from server.domain import commands as cmd
from server.domain.calendar import WorkingCalendar
from server.pdf import render_pdf
from server.services import workflow
from server.services.agreement_final import court_time
from server.signing import pades
from server.signing.keys import platform_key
from server.signing.verify_cli import main as verify_pdf_command
from storage.keys import new_key
from storage.spool import Spool
from tests.support import TEST_SECRET, Clients, environment, make_settings

ZHANG, LI, WANG = "13800000001", "13800000002", "13800000003"
MEDIATOR_PHONE = "13900000003"
LOAN = 1
NUMBER = "（2026）演0101民调协1号"
SIGNATURES = "/api/v1/disputes/1/agreement/signatures"
REFUSAL = "/api/v1/disputes/1/agreement/refusal"

Client = TestClient[Any, Any]


# --- setting the scene ------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The app's settings with the mediation organisation's e-seal configured."""
    seal = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    ImageDraw.Draw(seal).ellipse((10, 10, 290, 290), outline=(200, 20, 20, 255), width=12)
    path = tmp_path / "seal.png"
    seal.save(path, format="PNG")
    return make_settings(tmp_path / "data", database_url, YIZHAN_SIGNING_SEAL_IMAGE=str(path))


def drawn_png(seed: int = 1, *, size: tuple[int, int] = (600, 200)) -> bytes:
    """A signature as a pad draws it: dark strokes on a transparent background."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    width, height = size
    points = [
        (int(width * (0.08 + 0.11 * i)), int(height * (0.5 + 0.3 * ((i * seed) % 3 - 1) / 2)))
        for i in range(8)
    ]
    pen.line(points, fill=(16, 19, 26, 255), width=5, joint="curve")
    pen.ellipse(
        (width * 0.7, height * 0.2, width * 0.85, height * 0.7), outline=(16, 19, 26, 255), width=4
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (600, 200), (0, 0, 0, 0)).save(out, format="PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def in_db(clients: Clients, work: Any, *, write: bool = True) -> Any:
    database = Database(clients.settings.database_url)
    try:
        async with database.transaction(write=write) as session:
            return await work(session)
    finally:
        await database.dispose()


async def open_for_signing(clients: Clients) -> str:
    """The mediator records the agreement; its version 1 is out for signing as a PDF.
    Returns the PDF's SHA-256."""
    pdf = await asyncio.to_thread(
        render_pdf,
        "<h1>人民调解协议书</h1><p>申请人张三与被申请人李四民间借贷纠纷一案，经调解，双方自愿达成如下协议：</p>"
        "<p>一、被申请人于2027年1月31日前归还借款人民币五万元。</p>",
    )
    sha = hashlib.sha256(pdf).hexdigest()
    key = new_key("agreement_draft", LOAN, "pdf")
    await Spool(clients.settings.data_dir / "spool").put_bytes(key, pdf)

    async def work(session: Any) -> None:
        await workflow.execute(
            session,
            None,
            LOAN,
            cmd.RecordAgreement(summary="借款五万元分期归还"),
            calendar=WorkingCalendar(),
        )
        mediator = await session.scalar(select(User.id).where(User.username == "tiaojie"))
        stored = StoredObject(
            key=key,
            kind="agreement_draft",
            dispute_id=LOAN,
            size=len(pdf),
            sha256=sha,
            content_type="application/pdf",
            write_once=True,
            status="pending",
            next_attempt_at=datetime.now(UTC),
            created_by_id=mediator,
        )
        session.add(stored)
        await session.flush()
        agreement = Agreement(
            dispute_id=LOAN,
            number=NUMBER,
            state="signing",
            current_version=1,
            signing_version=1,
            created_by_id=mediator,
        )
        session.add(agreement)
        await session.flush()
        text = "被申请人于2027年1月31日前归还借款人民币五万元。"
        session.add(
            AgreementVersion(
                agreement_id=agreement.id,
                version=1,
                text=text,
                terms="{}",
                sha256=hashlib.sha256(text.encode()).hexdigest(),
                created_by_id=mediator,
                pdf_object_id=stored.id,
                pdf_sha256=sha,
            )
        )

    await in_db(clients, work)
    return sha


async def english(client: Client) -> Client:
    client.session.cookie_jar.update_cookies({"yz_lang": "en"})
    return client


async def party(clients: Clients, phone: str) -> Client:
    return await english(await clients.party(phone))


async def mediator(clients: Clients) -> Client:
    client = await english(await clients.staff("tiaojie"))
    assert (await clients.post_json(client, "/api/v1/me/reverify/send", {})).status == 202
    code = await clients.latest_code(MEDIATOR_PHONE)
    assert (await clients.post_json(client, "/api/v1/me/reverify", {"code": code})).status == 200
    return client


async def sign(
    clients: Clients, client: Client, sha: str, png: bytes | None = None, **extra: Any
) -> Any:
    body = {"document_sha256": sha, "image": b64(png if png is not None else drawn_png())}
    return await clients.post_json(client, SIGNATURES, {**body, **extra})


async def audited(clients: Clients, action: str) -> list[AuditEvent]:
    async def work(session: Any) -> list[AuditEvent]:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        return list(rows.all())

    result: list[AuditEvent] = await in_db(clients, work, write=False)
    return result


async def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    error: dict[str, Any] = (await response.json())["error"]
    return error


async def dispute_row(clients: Clients) -> Dispute:
    result: Dispute = await in_db(clients, lambda s: s.get(Dispute, LOAN), write=False)
    return result


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- the whole signing ------------------------------------------------------------------


async def test_parties_and_mediator_sign_and_the_final_pdf_is_issued(
    clients: Clients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = await open_for_signing(clients)
    zhang, li, tiaojie = (
        await party(clients, ZHANG),
        await party(clients, LI),
        await mediator(clients),
    )

    page = await zhang.get("/disputes/1/agreement/sign")
    assert page.status == 200
    html = await page.text()
    assert sha in html and 'id="signature-canvas"' in html and "signature_pad.js" in html
    assert f"I have read the agreement whose SHA-256 is {sha} and sign it." in html
    draft = await zhang.get("/disputes/1/agreement/draft.pdf")
    assert draft.status == 200 and hashlib.sha256(await draft.read()).hexdigest() == sha

    state = await (await zhang.get(SIGNATURES)).json()
    assert state["may_sign"] and state["may_refuse"] and state["pdf_sha256"] == sha
    assert state["me"]["role"] == "party" and state["me"]["seat"] == "Applicant"
    assert state["missing"] == ["张三", "李四", "郑调解"]

    first = await sign(clients, zhang, sha, drawn_png(1))
    assert first.status == 201, await first.text()
    body = await first.json()
    assert body["complete"] is False and body["signature"]["decision"] == "signed"
    assert body["missing"] == ["李四", "郑调解"] and not body["may_sign"]
    assert (await sign(clients, li, sha, drawn_png(2))).status == 201
    started = asyncio.get_running_loop().time()
    last = await sign(clients, tiaojie, sha, drawn_png(3))
    took = asyncio.get_running_loop().time() - started
    assert last.status == 201, await last.text()
    done = await last.json()
    assert done["complete"] is True and done["state"] == "signed" and done["missing"] == []
    print(f"last signature with the final PDF made: {took:.2f} s")

    # the final PDF: a write-once agreement document, its hash recorded
    document_id = done["final_document_id"]
    response = await li.get(f"/api/v1/documents/{document_id}/content")
    assert response.status == 200
    final = await response.read()
    assert hashlib.sha256(final).hexdigest() == done["final_sha256"]

    async def rows(session: Any) -> tuple[Document, StoredObject, Agreement]:
        document = await session.get(Document, document_id)
        stored = await session.get(StoredObject, document.object_id)
        agreement = await session.scalar(select(Agreement).where(Agreement.dispute_id == LOAN))
        return document, stored, agreement

    document, stored, agreement = await in_db(clients, rows, write=False)
    assert document.kind == "agreement" and stored.write_once
    assert stored.sha256 == agreement.final_sha256 == done["final_sha256"]
    assert agreement.state == "signed" and agreement.signed_at is not None
    issued = await audited(clients, "agreement.issued")
    assert len(issued) == 1 and issued[0].details["sha256"] == stored.sha256

    # it checks out with pyHanko against the platform root
    key = platform_key(clients.settings)
    verdict = await asyncio.to_thread(pades.verify_pdf, final, key.roots)
    assert verdict.signed_ok, verdict
    (check,) = verdict.signatures
    assert check.field == "yizhan-platform" and check.covers_whole_file

    # the draft's page(s), then the signatures page and the audit page
    reader = PdfReader(io.BytesIO(final))
    draft_pages = len(
        PdfReader(
            io.BytesIO(await (await zhang.get("/disputes/1/agreement/draft.pdf")).read())
        ).pages
    )
    assert len(reader.pages) == draft_pages + 2
    assert len(reader.pages[draft_pages].images) == 3 + 1  # the three signatures, the e-seal
    signatures_page = squeeze(reader.pages[draft_pages].extract_text())
    audit_page = squeeze(reader.pages[-1].extract_text())
    signed_rows = await audited(clients, "agreement.signed")
    assert [row.actor_name for row in signed_rows] == ["张三", "李四", "郑调解"]
    timezone = clients.settings.timezone
    for row in signed_rows:
        assert row.actor_name in audit_page and row.actor_name in signatures_page
        assert squeeze(court_time(row.at, timezone)) in audit_page
        assert squeeze(court_time(row.at, timezone)) in signatures_page
        assert row.details["image_sha256"] in audit_page
        assert row.details["document_sha256"] == sha
        assert row.details["method"] == "one_time_code"
        assert row.row_hash in audit_page
        assert row.ip in audit_page
    assert audit_page.count(sha) == len(signed_rows) + 1  # each row's, and the header's

    async def answers(session: Any) -> list[AgreementSignature]:
        found = await session.scalars(select(AgreementSignature).order_by(AgreementSignature.id))
        return list(found.all())

    stored_signatures = await in_db(clients, answers, write=False)
    assert [s.image_sha256 for s in stored_signatures] == [
        r.details["image_sha256"] for r in signed_rows
    ]
    assert [s.at for s in stored_signatures] == [r.at for r in signed_rows]

    async def images(session: Any) -> list[StoredObject]:
        ids = [s.image_object_id for s in stored_signatures]
        found = await session.scalars(select(StoredObject).where(StoredObject.id.in_(ids)))
        return list(found.all())

    for image in await in_db(clients, images, write=False):
        assert image.kind == "signature_image" and image.write_once
        assert image.sha256 in {s.image_sha256 for s in stored_signatures}

    # the workflow moved on
    dispute = await dispute_row(clients)
    assert dispute.status == "agreement_signed"
    assert [r.details["to_status"] for r in await audited(clients, "dispute.agreement_signed")] == [
        "agreement_signed"
    ]

    # after signing the page shows who signed, and the download
    html = await (await zhang.get("/disputes/1/agreement/sign")).text()
    assert "Everyone has signed" in html and f"/api/v1/documents/{document_id}/content" in html

    # /verify: no login needed; the issued file is valid, one changed byte is "changed"
    anonymous = await english(await clients.new())
    form = FormData()
    form.add_field("file", final, filename="agreement.pdf", content_type="application/pdf")
    token = await clients.csrf(anonymous)
    response = await anonymous.post("/verify", data=form, headers={"X-CSRF-Token": token})
    assert response.status == 200
    html = await response.text()
    assert (
        'data-verdict="valid"' in html and "Valid: this is a document the platform issued" in html
    )
    assert NUMBER in html and "张三" not in html
    changed = bytearray(final)
    position = final.index(b"stream", final.index(b"/Length")) + len(b"stream\n") + 7
    changed[position] ^= 0x20
    form = FormData()
    form.add_field("file", bytes(changed), filename="agreement.pdf", content_type="application/pdf")
    response = await anonymous.post("/verify", data=form, headers={"X-CSRF-Token": token})
    html = await response.text()
    assert (
        'data-verdict="changed"' in html
        and "Changed: this file was altered after it was signed" in html
    )
    form = FormData()
    form.add_field("file", final, filename="agreement.pdf", content_type="application/pdf")
    response = await anonymous.post("/api/v1/verify", data=form, headers={"X-CSRF-Token": token})
    result = await response.json()
    assert result["ok"] and result["verdict"] == "valid" and result["number"] == NUMBER
    assert (await anonymous.get("/verify")).status == 200

    # yizhan verify-pdf, with the app's settings: signed, unchanged, and issued here
    path = tmp_path / "final.pdf"
    path.write_bytes(final)
    settings = clients.settings
    capsys.readouterr()
    with environment(
        YIZHAN_DATA_DIR=str(settings.data_dir),
        YIZHAN_DATABASE_URL=settings.database_url,
        YIZHAN_SECRET_KEY=TEST_SECRET,
    ):
        assert await asyncio.to_thread(verify_pdf_command, [str(path), "--json"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["ok"] and printed["looked_up"] and printed["issued"]["number"] == NUMBER
        path.write_bytes(bytes(changed))
        assert await asyncio.to_thread(verify_pdf_command, [str(path)]) == 1
        assert "NOT VALID" in capsys.readouterr().out


# --- refused attempts -------------------------------------------------------------------


async def test_bad_attempts_are_refused_with_a_message_and_an_audit_row(clients: Clients) -> None:
    sha = await open_for_signing(clients)

    # a party of another dispute: as if the dispute did not exist
    wang = await party(clients, WANG)
    error = await error_of(await sign(clients, wang, sha), 404)
    assert error["message"] == "No such dispute, or it is not yours to see."
    denied = await audited(clients, "access.denied")
    assert denied[-1].dispute_id == LOAN and denied[-1].actor_name == "王五"

    # on the dispute but not a signer: the clerk; an agent of the other side without
    # special authority
    clerk = await english(await clients.staff("shujiyuan"))
    error = await error_of(await sign(clients, clerk, sha), 403)
    assert (
        "only its parties, their agents with special authority and the mediator" in error["message"]
    )

    async def general_agent(session: Any) -> None:
        li_party = await session.scalar(select(DisputeParty.id).where(DisputeParty.name == "李四"))
        agent = await session.scalar(select(User.id).where(User.phone == "13800000005"))
        session.add(
            DisputeAgent(
                dispute_id=LOAN,
                party_id=li_party,
                name="蒋律师",
                authority="general",
                user_id=agent,
            )
        )

    await in_db(clients, general_agent)
    jiang = await party(clients, "13800000005")
    error = await error_of(await sign(clients, jiang, sha), 403)
    assert (
        error["message"]
        == "Signing or refusing the agreement for a party needs an agent's special authority."
    )
    rejected = await audited(clients, "agreement.sign_rejected")
    assert [(r.actor_name, r.details["reason"], r.outcome) for r in rejected] == [
        ("卫书记员", "not_a_signer", "denied"),
        ("蒋律师", "not_a_signer", "denied"),
    ]

    zhang = await party(clients, ZHANG)
    # a stale hash: the agreement changed since it was read
    stale = hashlib.sha256(b"an earlier version").hexdigest()
    error = await error_of(await sign(clients, zhang, stale), 409)
    assert error["message"].startswith("The agreement changed since you opened it.")
    assert sha in error["message"]
    # not a PNG, a blank pad, a tiny image
    error = await error_of(await sign(clients, zhang, sha, b"GIF89a not a png at all"), 400)
    assert error["message"] == "The signature must be a PNG image." and error["field"] == "image"
    error = await error_of(await sign(clients, zhang, sha, blank_png()), 400)
    assert error["message"] == "The signature is empty: draw your signature first."
    error = await error_of(await sign(clients, zhang, sha, drawn_png(size=(40, 20))), 400)
    assert error["message"].startswith("The signature image must be between")
    error = await error_of(
        await clients.post_json(zhang, SIGNATURES, {"document_sha256": sha, "image": "!!!"}), 400
    )
    assert error["message"] == "The signature must be a PNG image."

    # a one-time code an hour old: confirm the identity again first
    async def stale_code(session: Any) -> None:
        user_id = await session.scalar(select(User.id).where(User.phone == ZHANG))
        await session.execute(
            update(LoginSession)
            .where(LoginSession.user_id == user_id)
            .values(reverified_at=datetime.now(UTC) - timedelta(hours=1))
        )

    await in_db(clients, stale_code)
    error = await error_of(await sign(clients, zhang, sha), 403)
    assert error["code"] == "reverification_required"
    assert error["message"] == "Confirm your identity with a new one-time code first."
    page = await zhang.get("/disputes/1/agreement/sign", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"].startswith("/reverify?next=")
    rejected = await audited(clients, "agreement.sign_rejected")
    assert [r.details["reason"] for r in rejected[2:]] == [
        "stale_hash",
        "bad_image",
        "bad_image",
        "bad_image",
        "reverification_required",
    ]
    assert rejected[2].details["current"] == sha and rejected[2].details["sent"] == stale
    assert not await audited(clients, "agreement.signed")

    # a fresh code, then it works once; twice is refused
    assert (await clients.post_json(zhang, "/api/v1/me/reverify/send", {})).status == 202
    code = await clients.latest_code(ZHANG)
    assert (await clients.post_json(zhang, "/api/v1/me/reverify", {"code": code})).status == 200
    assert (await sign(clients, zhang, sha)).status == 201
    error = await error_of(await sign(clients, zhang, sha), 409)
    assert error["message"] == "You have already signed this version of the agreement."
    last = (await audited(clients, "agreement.sign_rejected"))[-1]
    assert last.details["reason"] == "already_signed" and last.actor_name == "张三"
    assert len(await audited(clients, "agreement.signed")) == 1

    # the mediator may sign but not refuse
    tiaojie = await mediator(clients)
    error = await error_of(await clients.post_json(tiaojie, REFUSAL, {"reason": "不同意"}), 403)
    assert error["message"].startswith("Only a party, or an agent with special authority")


async def test_an_agent_with_special_authority_signs_for_the_party(clients: Clients) -> None:
    sha = await open_for_signing(clients)

    async def special_agent(session: Any) -> None:
        li_party = await session.scalar(select(DisputeParty.id).where(DisputeParty.name == "李四"))
        agent = await session.scalar(select(User.id).where(User.phone == "13800000005"))
        session.add(
            DisputeAgent(
                dispute_id=LOAN,
                party_id=li_party,
                name="蒋律师",
                authority="special",
                user_id=agent,
            )
        )

    await in_db(clients, special_agent)
    jiang = await party(clients, "13800000005")
    state = await (await jiang.get(SIGNATURES)).json()
    assert state["me"] == {
        "role": "agent",
        "seat": "Respondent's agent",
        "name": "蒋律师",
        "party_name": "李四",
    }
    assert (await sign(clients, jiang, sha)).status == 201
    li = await party(clients, LI)
    error = await error_of(await sign(clients, li, sha), 409)
    assert (
        error["message"]
        == "This party has already signed or refused this version of the agreement."
    )
    state = await (await li.get(SIGNATURES)).json()
    respondent = next(s for s in state["signers"] if s["name"] == "李四")
    assert respondent["signed"] and respondent["answer"]["name"] == "蒋律师"
    assert state["missing"] == ["张三", "郑调解"]


# --- refusal ------------------------------------------------------------------------------


async def test_a_party_refusing_to_sign_ends_the_mediation(clients: Clients) -> None:
    sha = await open_for_signing(clients)
    zhang, li = await party(clients, ZHANG), await party(clients, LI)
    assert (await sign(clients, zhang, sha)).status == 201

    error = await error_of(await clients.post_json(li, REFUSAL, {"reason": "  "}), 400)
    assert error["field"] == "reason"
    response = await clients.post_json(li, REFUSAL, {"reason": "还款期限太短"})
    assert response.status == 200, await response.text()
    state = await response.json()
    assert state["state"] == "refused" and state["mine"]["decision"] == "refused"

    dispute = await dispute_row(clients)
    assert dispute.status == "failed"
    assert workflow.state_of(dispute).termination_grounds == frozenset({"refused_to_sign"})
    refused = await audited(clients, "agreement.refused")
    assert len(refused) == 1 and refused[0].actor_name == "李四"
    assert refused[0].details["reason"] == "还款期限太短"
    failed = await audited(clients, "dispute.mediation_failed")
    assert failed and failed[-1].details["grounds"] == ["refused_to_sign"]
    assert "还款期限太短" in failed[-1].details["report"]

    # nothing more can be signed
    tiaojie = await mediator(clients)
    error = await error_of(await sign(clients, tiaojie, sha), 409)
    assert error["message"] == "No agreement is out for signing."
    html = await (await li.get("/disputes/1/agreement/sign")).text()
    assert "A party refused to sign this agreement" in html
