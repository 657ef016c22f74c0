"""Judicial confirmation (司法确认) on both databases: the parties apply together once
the agreement is signed, the application waits in the judges' queue, a judge of the
dispute's court asks for evidence, holds an online hearing and decides after a fresh
one-time code; the ruling (民事裁定书) is a signed PDF stored write-once and served."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pypdf import PdfReader
from sqlalchemy import select

from server.audit import SYSTEM
from server.auth.principal import Principal
from server.db.engine import Database
from server.db.models import (
    Agreement,
    AgreementVersion,
    AuditEvent,
    CaseSession,
    CaseSessionParticipant,
    Confirmation,
    Consent,
    Court,
    Dispute,
    DisputeParty,
    Document,
    OutboxMessage,
    Service,
    StoredObject,
    User,
)
from server.demo import DEMO_PASSWORD
from server.domain import commands as cmd
from server.domain.calendar import WorkingCalendar
from server.domain.documents import DocumentKind
from server.domain.errors import Conflict
from server.domain.roles import Role
from server.pdf import render_pdf
from server.services import confirmation as confirmation_service
from server.services import workflow
from server.services.documents import record_document
from server.services.users import NewUser, create_user
from server.signing import keys, pades
from storage.spool import Spool
from tests.support import Clients

Client = TestClient[Any, Any]
ZHANG, LI = "13800000001", "13800000002"
JUDGE_PHONE = "13900000006"
AGREEMENT_TEXT = (
    "一、李四于二〇二七年一月三十一日前归还张三借款人民币五万元。\n二、双方就本纠纷再无其他争议。"
)
BASE = "/api/v1/disputes/1/confirmation"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def sign_agreement(clients: Clients) -> str:
    """The demo loan dispute reaches agreement and every party signs: the workflow
    moves to agreement_signed and a signed Agreement with its final PDF exists.
    Returns the final PDF's SHA-256."""
    settings = clients.settings
    database = Database(settings.database_url)
    spool = Spool(settings.data_dir / "spool")
    pdf = render_pdf(
        "<h1>人民调解协议书</h1>" + "".join(f"<p>{line}</p>" for line in AGREEMENT_TEXT.split("\n"))
    )
    try:
        async with database.transaction() as db:
            calendar = WorkingCalendar()
            for command in (cmd.RecordAgreement(summary="还款"), cmd.RecordAllSignatures()):
                await workflow.execute(db, None, 1, command, calendar=calendar)
            spooled = await spool.receive(_one(pdf), limit=20 * 1024 * 1024)
            document, stored = await record_document(
                db,
                spool,
                spooled,
                actor=SYSTEM,
                dispute_id=1,
                kind=DocumentKind.AGREEMENT,
                filename="调解协议书.pdf",
                title="人民调解协议书",
            )
            agreement = Agreement(
                dispute_id=1,
                number="（2026）演0101调协1号",
                state="signed",
                current_version=1,
                signing_version=1,
                signed_at=datetime.now(UTC),
                final_document_id=document.id,
                final_sha256=stored.sha256,
            )
            db.add(agreement)
            await db.flush()
            db.add(
                AgreementVersion(
                    agreement_id=agreement.id,
                    version=1,
                    text=AGREEMENT_TEXT,
                    sha256="0" * 64,
                    pdf_sha256=stored.sha256,
                )
            )
            return stored.sha256
    finally:
        await database.dispose()


async def rows(clients: Clients, query: Any) -> list[Any]:
    database = Database(clients.settings.database_url)
    try:
        async with database.transaction(write=False) as db:
            return list((await db.scalars(query)).all())
    finally:
        await database.dispose()


async def audited(clients: Clients, action: str) -> list[AuditEvent]:
    return await rows(
        clients, select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
    )


async def post(clients: Clients, client: Client, path: str, body: Any = None) -> Any:
    return await clients.post_json(client, path, body if body is not None else {})


async def english(client: Client) -> Client:
    await client.get("/lang/en?next=/", allow_redirects=False)
    return client


async def applied(clients: Clients) -> tuple[Client, Client, Client]:
    """The agreement signed and both parties applied: (张三, 李四, the judge)."""
    await sign_agreement(clients)
    zhang, li = await clients.party(ZHANG), await clients.party(LI)
    for party in (zhang, li):
        response = await post(clients, party, f"{BASE}/apply")
        assert response.status == 200, await response.text()
    return zhang, li, await english(await clients.staff("faguan"))


async def reverified(clients: Clients, client: Client) -> None:
    assert (await post(clients, client, "/api/v1/me/reverify/send")).status == 202
    code = await clients.latest_code(JUDGE_PHONE)
    assert (await post(clients, client, "/api/v1/me/reverify", {"code": code})).status == 200


async def other_court_judge(clients: Clients) -> Client:
    database = Database(clients.settings.database_url)
    try:
        async with database.transaction() as db:
            court = Court(code="OTHER", name="别区人民法院", case_code="别0102")
            db.add(court)
            await db.flush()
            await create_user(
                db,
                NewUser(
                    role=Role.JUDGE,
                    name="魏法官",
                    username="weifaguan",
                    password=DEMO_PASSWORD,
                    court_id=court.id,
                ),
                SYSTEM,
            )
    finally:
        await database.dispose()
    return await english(await clients.staff("weifaguan"))


def fonts_embedded(reader: PdfReader) -> bool:
    """Every font of every page carries its font file (WeasyPrint embeds subsets)."""
    found = False
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for ref in resources["/Font"].values():
            font = ref.get_object()
            descendants = font.get("/DescendantFonts")
            target = descendants[0].get_object() if descendants else font
            descriptor = target["/FontDescriptor"].get_object()
            if not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                return False
            found = True
    return found


async def verify(clients: Clients, pdf: bytes) -> pades.Verdict:
    """pyHanko's check of every signature, against the platform's roots (it runs its own
    event loop: in a worker thread)."""
    roots = keys.platform_key(clients.settings).roots
    return await asyncio.to_thread(pades.verify_pdf, pdf, roots)


async def download(client: Client, document_id: int) -> bytes:
    response = await client.get(f"/api/v1/documents/{document_id}/content")
    assert response.status == 200, await response.text()
    return await response.read()


# --- the application --------------------------------------------------------------------------


async def test_parties_apply_together_and_the_application_reaches_the_judges_queue(
    clients: Clients,
) -> None:
    zhang = await english(await clients.party(ZHANG))
    page = await zhang.get("/disputes/1/confirmation")
    assert page.status == 200
    assert "once every party has signed the mediation agreement" in await page.text()
    # before every party has signed: refused, and the refusal audited
    response = await post(clients, zhang, f"{BASE}/apply")
    assert response.status == 409
    error = (await response.json())["error"]
    assert "only after every party has signed" in error["message"]
    refused = await audited(clients, "confirmation.refused")
    assert [(r.dispute_id, r.outcome, r.details["reason"]) for r in refused] == [
        (1, "denied", "agreement_not_signed")
    ]
    assert await rows(clients, select(Confirmation)) == []

    sha256 = await sign_agreement(clients)
    response = await post(clients, zhang, f"{BASE}/apply")
    assert response.status == 200, await response.text()
    data = await response.json()
    assert data["state"] == "applying"
    assert data["waiting_for"] == ["李四"]
    assert data["agreement"]["sha256"] == sha256
    assert (await post(clients, zhang, f"{BASE}/apply")).status == 409  # once only

    judge = await english(await clients.staff("faguan"))
    queue = await (await judge.get("/api/v1/confirmations")).json()
    assert queue["total"] == 0  # not every party has applied yet

    li = await clients.party(LI)
    # the respondent applies through the page form
    page = await li.get("/disputes/1/confirmation")
    assert page.status == 200
    assert 'action="/disputes/1/confirmation/apply"' in await page.text()
    token = await clients.csrf(li)
    response = await li.post(
        "/disputes/1/confirmation/apply", data={"_csrf": token}, allow_redirects=False
    )
    assert response.status == 303
    assert "done=apply" in response.headers["Location"]

    data = await (await zhang.get(BASE)).json()
    assert data["state"] == "applied" and data["status"] == "confirmation"
    assert sorted(a["party"] for a in data["applicants"]) == ["张三", "李四"]
    assert data["applied_at"] is not None
    queue = await (await judge.get("/api/v1/confirmations")).json()
    assert [(i["dispute_id"], i["state"]) for i in queue["items"]] == [(1, "applied")]
    assert queue["total"] == 1
    page = await judge.get("/confirmations")
    assert page.status == 200 and "/disputes/1/confirmation" in await page.text()
    page = await judge.get("/disputes/1/confirmation")
    html = await page.text()
    assert page.status == 200
    assert sha256 in html and "/sessions/" in html and "/transcript" in html
    assert "Decide on the application" in html
    # the parties may not see the judges' queue
    assert (await zhang.get("/api/v1/confirmations")).status == 403

    made = await audited(clients, "confirmation.applied")
    assert [r.details["all_applied"] for r in made] == [False, True]
    assert await audited(clients, "dispute.confirmation_applied")


# --- who may handle it ----------------------------------------------------------------------------


async def test_a_party_cannot_decide_and_a_judge_of_another_court_is_refused(
    clients: Clients,
) -> None:
    zhang, _, _ = await applied(clients)
    response = await post(clients, zhang, f"{BASE}/decision", {"decision": "confirmed"})
    assert response.status == 403
    response = await post(clients, zhang, f"{BASE}/evidence-request", {"text": "借条原件"})
    assert response.status == 403

    stranger = await other_court_judge(clients)
    response = await post(clients, stranger, f"{BASE}/decision", {"decision": "confirmed"})
    assert response.status == 403
    message = (await response.json())["error"]["message"]
    assert "Only a judge of the court handling this dispute" in message
    response = await post(clients, stranger, f"{BASE}/hearing", {"starts_at": "2030-01-01T10:00"})
    assert response.status == 403
    assert (await (await stranger.get("/api/v1/confirmations")).json())["total"] == 0
    denied = [
        r
        for r in await audited(clients, "access.denied")
        if r.details.get("reason") == "another_court"
    ]
    assert len(denied) == 2 and {r.dispute_id for r in denied} == {1}
    (confirmation,) = await rows(clients, select(Confirmation))
    assert confirmation.state == "applied" and confirmation.judge_user_id is None


# --- the judge's review --------------------------------------------------------------------------


async def test_the_judge_asks_for_evidence_and_schedules_a_hearing(clients: Clients) -> None:
    zhang, _, judge = await applied(clients)
    response = await post(clients, judge, f"{BASE}/evidence-request", {"text": "  "})
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "evidence_request"
    response = await post(
        clients, judge, f"{BASE}/evidence-request", {"text": "请提交借条原件及转账记录。"}
    )
    assert response.status == 200, await response.text()
    data = await response.json()
    assert data["state"] == "evidence_requested"
    assert data["evidence_request"] == "请提交借条原件及转账记录。"
    (judge_user,) = await rows(clients, select(User).where(User.username == "faguan"))
    (confirmation,) = await rows(clients, select(Confirmation))
    assert confirmation.judge_user_id == judge_user.id
    notices = await rows(
        clients, select(OutboxMessage).where(OutboxMessage.body.contains("请提交借条原件"))
    )
    assert {m.destination for m in notices} == {ZHANG, LI}
    page = await (await zhang.get("/disputes/1/confirmation")).text()
    assert "请提交借条原件及转账记录。" in page and 'id="evidence-upload"' in page

    starts = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    response = await post(clients, judge, f"{BASE}/hearing", {"starts_at": starts})
    assert response.status == 200, await response.text()
    data = await response.json()
    assert data["state"] == "hearing"
    hearing = data["hearing"]
    assert hearing["room"] == f"/sessions/{hearing['id']}/room"
    (session,) = await rows(
        clients, select(CaseSession).where(CaseSession.kind == "confirmation_hearing")
    )
    assert session.id == hearing["id"] and session.host_user_id == judge_user.id
    people = await rows(
        clients,
        select(CaseSessionParticipant).where(CaseSessionParticipant.session_id == session.id),
    )
    assert sorted(p.role.value for p in people) == ["applicant", "judge", "respondent"]
    assert all(p.invited_at is not None for p in people if p.role.value != "judge")
    # one hearing at a time
    assert (await post(clients, judge, f"{BASE}/hearing", {"starts_at": starts})).status == 409
    assert (await judge.get(f"/sessions/{session.id}/room")).status == 200

    for action in ("confirmation.evidence_requested", "confirmation.hearing_scheduled"):
        assert len(await audited(clients, action)) == 1


# --- the decision -------------------------------------------------------------------------------


async def test_confirming_with_a_fresh_code_issues_a_signed_ruling(clients: Clients) -> None:
    zhang, _, judge = await applied(clients)
    response = await post(clients, judge, f"{BASE}/decision", {"decision": "confirmed"})
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "reverification_required"
    # the page form sends the judge to confirm their identity first, and back
    token = await clients.csrf(judge)
    response = await judge.post(
        "/disputes/1/confirmation/decide",
        data={"_csrf": token, "decision": "confirmed"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"].startswith("/reverify?next=")

    await reverified(clients, judge)
    response = await post(clients, judge, f"{BASE}/decision", {"decision": "confirmed"})
    assert response.status == 200, await response.text()
    data = await response.json()
    assert data["state"] == "confirmed" and data["status"] == "confirmed"
    assert data["decided_at"] is not None
    ruling = data["ruling"]
    assert ruling["kind"] == "ruling" and ruling["sha256"] == data["ruling_sha256"]

    pdf = await download(zhang, ruling["id"])
    reader = PdfReader(io.BytesIO(pdf))
    # the title is letter-spaced
    text = "".join(page.extract_text() for page in reader.pages).replace(" ", "")
    for words in ("民事裁定书", "演示区人民法院", "张三", "李四", "褚法官", "民特"):
        assert words in text
    assert "第二百零五条" in text and "本裁定书送达后即发生法律效力" in text
    assert "归还张三借款人民币五万元" in text
    assert fonts_embedded(reader)

    (judge_user,) = await rows(clients, select(User).where(User.username == "faguan"))
    verdict = await verify(clients, pdf)
    assert verdict.signed_ok, verdict
    assert [s.field for s in verdict.signatures] == [f"yizhan-judge-{judge_user.id}"]
    assert verdict.sha256 == data["ruling_sha256"]

    (document,) = await rows(clients, select(Document).where(Document.kind == "ruling"))
    (stored,) = await rows(
        clients, select(StoredObject).where(StoredObject.id == document.object_id)
    )
    assert stored.write_once and stored.sha256 == verdict.sha256
    notes = {s["name"]: s for s in data["services"]}
    assert {name: note["served"] for name, note in notes.items()} == {"张三": True, "李四": True}
    services = await rows(clients, select(Service).where(Service.document_id == document.id))
    assert sorted(s.recipient_name for s in services) == ["张三", "李四"]
    # once both have been served, the dispute moves on to served
    for _ in range(100):
        (dispute,) = await rows(clients, select(Dispute).where(Dispute.id == 1))
        if dispute.status == "served":
            break
        await asyncio.sleep(0.2)
    assert dispute.status == "served"

    (done,) = await audited(clients, "confirmation.confirmed")
    assert done.details["sha256"] == verdict.sha256
    assert done.details["document_id"] == document.id
    assert await audited(clients, "dispute.agreement_confirmed")
    page = await (await judge.get("/disputes/1/confirmation")).text()
    assert verdict.sha256 in page and 'id="ruling-services"' in page
    # decided once
    again = {"decision": "rejected", "reasons": "再审"}
    response = await post(clients, judge, f"{BASE}/decision", again)
    assert response.status == 409


async def test_a_party_without_consent_is_reported_to_the_judge(clients: Clients) -> None:
    database = Database(clients.settings.database_url)
    try:
        async with database.transaction() as db:
            li = await db.scalar(select(DisputeParty).where(DisputeParty.phone == LI))
            assert li is not None
            db.add(
                Consent(
                    dispute_id=1,
                    party_id=li.id,
                    stage="confirmation",
                    matter="electronic_service",
                    granted=False,
                    recorded_by_id=li.user_id,
                    recorded_at=datetime.now(UTC) + timedelta(seconds=1),
                )
            )
    finally:
        await database.dispose()
    _, _, judge = await applied(clients)
    await reverified(clients, judge)
    response = await post(clients, judge, f"{BASE}/decision", {"decision": "confirmed"})
    assert response.status == 200, await response.text()
    notes = {s["name"]: s for s in (await response.json())["services"]}
    assert not notes["李四"]["served"]
    assert "No consent to electronic service" in notes["李四"]["text"]
    (done,) = await audited(clients, "confirmation.confirmed")
    assert notes["张三"]["served"]
    assert done.details["served"] == [notes["张三"]["party_id"]]
    (reported,) = done.details["not_served"]
    assert reported["party_id"] == notes["李四"]["party_id"]
    assert reported["reason"].startswith("No consent to electronic service")


async def test_rejecting_needs_reasons_and_issues_a_ruling_of_rejection(clients: Clients) -> None:
    _, li, judge = await applied(clients)
    await reverified(clients, judge)
    response = await post(clients, judge, f"{BASE}/decision", {"decision": "rejected"})
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "reasons"
    (confirmation,) = await rows(clients, select(Confirmation))
    assert confirmation.state == "applied"

    reasons = "经审查，借款金额与转账记录不符，存在虚假调解的可能。"
    response = await post(
        clients, judge, f"{BASE}/decision", {"decision": "rejected", "reasons": reasons}
    )
    assert response.status == 200, await response.text()
    data = await response.json()
    assert data["state"] == "rejected" and data["status"] == "confirmation_rejected"
    assert data["reasons"] == reasons
    pdf = await download(li, data["ruling"]["id"])
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "驳回申请人" in text and "借款金额与转账记录不符" in text
    assert "本裁定书送达后即发生法律效力" in text
    assert (await verify(clients, pdf)).signed_ok
    (done,) = await audited(clients, "confirmation.rejected")
    assert done.details["sha256"] == data["ruling_sha256"]
    assert await audited(clients, "dispute.confirmation_rejected")


async def test_applying_more_than_30_days_after_the_agreement_took_effect_is_refused(
    clients: Clients,
) -> None:
    await sign_agreement(clients)
    database = Database(clients.settings.database_url)
    try:
        async with database.transaction() as db:
            user = await db.scalar(select(User).where(User.phone == ZHANG))
            dispute = await db.get(Dispute, 1)
            assert user is not None and dispute is not None
            due = workflow.state_of(dispute).confirmation_due
            assert due is not None
            zhang = Principal(user.id, Role.PARTY, user.name, None, 0, "code")
            with pytest.raises(Conflict) as refused:
                await confirmation_service.apply(
                    db, zhang, 1, calendar=WorkingCalendar(), now=due + timedelta(minutes=1)
                )
            assert "within 30 days" in refused.value.message
            made = await confirmation_service.apply(
                db, zhang, 1, calendar=WorkingCalendar(), now=due - timedelta(minutes=1)
            )
            assert made.state == "applying"
    finally:
        await database.dispose()
