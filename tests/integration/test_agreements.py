"""Drafting the mediation agreement on both databases: the mediator starts it from the
court's template (filled with the dispute's facts), saves versions whose terms are checked
field by field, is told when someone else saved meanwhile, re-fills the text from the terms,
and puts a version up for signing (a PDF with embedded fonts kept with its hash, the
workflow moved on). Parties read but never edit; a court admin's own template serves their
court only and is refused, naming the line, when it is broken."""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal
from typing import Any

import pypdf
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.audit import SYSTEM
from server.auth.principal import Principal
from server.db.engine import Database
from server.db.models import (
    Agreement,
    AgreementVersion,
    AuditEvent,
    Court,
    Dispute,
    DisputeParty,
    StoredObject,
    User,
)
from server.demo import DEMO_PASSWORD
from server.domain import commands as cmd
from server.domain.calendar import WorkingCalendar
from server.domain.errors import Conflict
from server.domain.roles import Role
from server.services import agreement_templates, agreements, workflow
from server.services.users import NewUser, create_user
from tests.support import Clients, demo_session

ZHANG, LI, WANG = "13800000001", "13800000002", "13800000003"
BASE = "/api/v1/disputes/1/agreement"
ADMIN = "/api/v1/admin/agreement-templates"

Client = TestClient[Any, Any]


# helpers ------------------------------------------------------------------------------------


async def in_db(clients: Clients, work: Any, *, write: bool = False) -> Any:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=write) as session:
            return await work(session)
    finally:
        await db.dispose()


async def party_ids(clients: Clients) -> dict[str, int]:
    async def read(session: Any) -> dict[str, int]:
        rows = await session.scalars(select(DisputeParty).where(DisputeParty.dispute_id == 1))
        return {p.name: p.id for p in rows}

    found: dict[str, int] = await in_db(clients, read)
    return found


async def audited(clients: Clients, action: str) -> list[AuditEvent]:
    async def read(session: Any) -> list[AuditEvent]:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        return list(rows.all())

    found: list[AuditEvent] = await in_db(clients, read)
    return found


async def send(clients: Clients, client: Client, method: str, path: str, body: Any = None) -> Any:
    token = await clients.csrf(client)
    return await client.request(
        method, path, json=body if body is not None else {}, headers={"X-CSRF-Token": token}
    )


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status == status, await response.text()
    data: dict[str, Any] = await response.json()
    return data


async def english(clients: Clients, client: Client) -> Client:
    client.session.cookie_jar.update_cookies({"yz_lang": "en"})
    return client


async def mediator(clients: Clients) -> Client:
    return await english(clients, await clients.staff("tiaojie"))


async def started(clients: Clients) -> tuple[Client, dict[str, Any]]:
    """The demo loan dispute's agreement, started by its mediator."""
    client = await mediator(clients)
    return client, await ok(await send(clients, client, "POST", BASE), 201)


def loan_terms(ids: dict[str, int], **changes: Any) -> dict[str, Any]:
    terms: dict[str, Any] = {
        "payer": ids["李四"],
        "payee": ids["张三"],
        "total": "50000.00",
        "deadline": "2026-06-30",
        "method": "银行转账至申请人账户",
        "costs_borne_by": "respondent",
        "costs": "",
        "other_terms": [],
    }
    return terms | changes


async def save(
    clients: Clients, client: Client, text: str, terms: dict[str, Any], base: int, note: str = ""
) -> Any:
    body = {"text": text, "terms": terms, "note": note, "base_version": base}
    return await send(clients, client, "PUT", BASE, body)


def flat(text: str) -> str:
    return "".join(text.split())


# capital numerals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "capital"),
    [
        ("50000.00", "伍万元整"),
        ("12345.67", "壹万贰仟叁佰肆拾伍元陆角柒分"),
        ("100000", "壹拾万元整"),
        ("10005", "壹万零伍元整"),
        ("1409.50", "壹仟肆佰零玖元伍角整"),
        ("325.04", "叁佰贰拾伍元零肆分"),
        ("0.05", "伍分"),
        ("100010000", "壹亿零壹万元整"),
    ],
)
def test_amounts_in_capital_numerals(amount: str, capital: str) -> None:
    assert agreement_templates.capital_yuan(Decimal(amount)) == capital


# drafting -----------------------------------------------------------------------------------


async def test_the_mediator_drafts_from_the_template_and_fills_in_the_terms(
    clients: Clients,
) -> None:
    client = await mediator(clients)
    before = await ok(await client.get(BASE))
    assert before["state"] == "none" and before["may_start"] is True
    page = await client.get("/disputes/1/agreement")
    assert page.status == 200 and 'data-action="start"' in await page.text()

    data = await ok(await send(clients, client, "POST", BASE), 201)
    dispute_number = await in_db(
        clients, lambda s: s.scalar(select(Dispute.number).where(Dispute.id == 1))
    )
    assert data["number"] == f"{dispute_number}-协议"
    assert data["state"] == "drafting" and data["current_version"] == 1 and data["may_edit"]
    first = data["current"]
    for fact in ("张三", "李四", "110101********7571", dispute_number, "演示区人民法院", "郑调解"):
        assert fact in first["text"]
    assert "110101199003077571" not in first["text"]  # ID numbers are masked
    assert first["terms"]["title"] == "人民调解协议书"  # the mediator is a people's mediator
    assert first["sha256"] == agreements.version_hash(first["text"], first["terms"])
    again = await send(clients, client, "POST", BASE)
    assert again.status == 409

    ids = await party_ids(clients)
    edited = first["text"] + "\n（调解员补充：双方确认以上事实。）"
    saved = await ok(await save(clients, client, edited, loan_terms(ids), 1, "terms agreed"))
    assert saved["current_version"] == 2
    assert saved["current"]["text"] == edited  # saving never re-fills the text
    assert saved["current"]["terms"]["total"] == "50000.00"
    assert saved["current"]["terms"]["title"] == "人民调解协议书"  # kept from version 1

    refill = {"base_version": 2, "note": "filled from the terms"}
    filled = await ok(await send(clients, client, "POST", f"{BASE}/refill", refill))
    text = filled["current"]["text"]
    assert filled["current_version"] == 3
    assert "人民币50,000.00元（大写：人民币伍万元整）" in text
    assert "李四于2026年6月30日前一次性向张三支付" in text
    assert "银行转账至申请人账户" in text and "由被申请人负担" in text

    split = loan_terms(
        ids,
        total="12345.67",
        deadline=None,
        instalments=[
            {"due": "2026-04-30", "amount": "6000"},
            {"due": "2026-05-31", "amount": "6345.67"},
        ],
    )
    refill = {"base_version": 3, "terms": split}
    filled = await ok(await send(clients, client, "POST", f"{BASE}/refill", refill))
    text = filled["current"]["text"]
    assert "壹万贰仟叁佰肆拾伍元陆角柒分" in text
    assert "于2026年4月30日前支付人民币6,000.00元（大写：人民币陆仟元整）" in text
    assert filled["current"]["terms"]["instalments"][0]["amount"] == "6000.00"

    # every version is kept, newest first, with who saved it and its hash
    versions = filled["versions"]
    assert [v["version"] for v in versions] == [4, 3, 2, 1]
    assert {v["author"] for v in versions} == {"郑调解"}
    old = await ok(await client.get(f"{BASE}/versions/2"))
    assert old["text"] == edited and old["sha256"] == saved["current"]["sha256"]
    view = await client.get("/disputes/1/agreement?version=2")
    assert view.status == 200 and "调解员补充" in await view.text()
    editor = await (await client.get("/disputes/1/agreement")).text()
    assert 'id="agreement-form"' in editor and "壹万贰仟叁佰肆拾伍元陆角柒分" in editor

    started_rows = await audited(clients, "agreement.started")
    assert len(started_rows) == 1 and started_rows[0].dispute_id == 1
    saved_rows = await audited(clients, "agreement.saved")
    assert [(r.details["version"], r.details["sha256"]) for r in saved_rows] == [
        (2, saved["current"]["sha256"])
    ]
    assert saved_rows[0].actor_name == "郑调解"
    assert [r.details["version"] for r in await audited(clients, "agreement.refilled")] == [3, 4]


async def test_terms_that_do_not_add_up_are_refused_naming_the_field(clients: Clients) -> None:
    client, data = await started(clients)
    ids = await party_ids(clients)
    text = data["current"]["text"]
    cases = [
        (loan_terms(ids, total="0"), "terms.total"),
        (loan_terms(ids, total="100.005"), "terms.total"),
        (
            loan_terms(ids, instalments=[{"due": "2026-04-30", "amount": "-5"}]),
            "terms.instalments.0.amount",
        ),
        (
            loan_terms(
                ids,
                instalments=[
                    {"due": "2026-05-31", "amount": "20000"},
                    {"due": "2026-04-30", "amount": "30000"},
                ],
            ),
            "terms.instalments.1.due",
        ),
        (
            loan_terms(
                ids,
                instalments=[
                    {"due": "2026-04-30", "amount": "20000"},
                    {"due": "2026-05-31", "amount": "20000"},
                ],
            ),
            "terms.instalments",
        ),
        (
            loan_terms(ids, total=None, instalments=[{"due": "2026-04-30", "amount": "1"}]),
            "terms.total",
        ),
        (
            loan_terms(ids, instalments=[{"due": "not a date", "amount": "1"}]),
            "terms.instalments.0.due",
        ),
        (loan_terms(ids, payer=999_999), "terms.payer"),
        (loan_terms(ids, payee=ids["李四"]), "terms.payee"),
        (loan_terms(ids, costs_borne_by="the moon"), "terms.costs_borne_by"),
    ]
    for terms, field in cases:
        response = await save(clients, client, text, terms, 1)
        body = await response.json()
        assert response.status == 400, (field, body)
        assert body["error"]["field"] == field
        assert field in body["error"]["message"]
    response = await save(clients, client, "  \n ", loan_terms(ids), 1)
    assert (await response.json())["error"]["field"] == "text"
    sums = loan_terms(
        ids,
        instalments=[
            {"due": "2026-04-30", "amount": "20000"},
            {"due": "2026-05-31", "amount": "20000"},
        ],
    )
    message = (await (await save(clients, client, text, sums, 1)).json())["error"]["message"]
    assert "40000.00" in message and "50000.00" in message

    after = await ok(await client.get(BASE))
    assert after["current_version"] == 1  # nothing was saved
    assert await audited(clients, "agreement.saved") == []


async def test_a_save_from_a_stale_version_is_refused_and_nothing_is_lost(
    clients: Clients,
) -> None:
    client, data = await started(clients)
    other_tab = await mediator(clients)
    ids = await party_ids(clients)
    mine = data["current"]["text"] + "\n第一个窗口的修改。"
    theirs = data["current"]["text"] + "\n第二个窗口的修改。"

    await ok(await save(clients, client, mine, loan_terms(ids), 1))
    response = await save(clients, other_tab, theirs, loan_terms(ids, total="1.00"), 1)
    body = await response.json()
    assert response.status == 409
    assert body["error"]["code"] == "conflict"
    assert "version 2" in body["error"]["message"]

    after = await ok(await client.get(BASE))
    assert after["current_version"] == 2
    assert after["current"]["text"] == mine  # the first save stands
    assert [v["version"] for v in after["versions"]] == [2, 1]
    refill = await send(clients, other_tab, "POST", f"{BASE}/refill", {"base_version": 1})
    assert refill.status == 409
    # the second tab, told, saves again on top of the newest version
    await ok(await save(clients, other_tab, theirs, loan_terms(ids), 2))


# templates ----------------------------------------------------------------------------------

COURT_TEMPLATE = """{% set title = "调解协议书" %}
本院专用模板：{{ dispute.number }}
{% for p in parties %}{{ p.side_label }}{{ p.name }}；{% endfor %}
{% if terms.total %}金额{{ terms.total_capital }}{% endif %}
"""


async def other_court_admin(clients: Clients) -> Client:
    """An admin of a second court (no templates of its own)."""

    async def create(session: Any) -> None:
        court = Court(code="OTHER", name="另一区人民法院", case_code="另0102")
        session.add(court)
        await session.flush()
        await create_user(
            session,
            NewUser(
                role=Role.COURT_ADMIN,
                name="孙管理",
                username="other-admin",
                password=DEMO_PASSWORD,
                court_id=court.id,
            ),
            SYSTEM,
        )

    await in_db(clients, create, write=True)
    return await english(clients, await clients.staff("other-admin"))


async def test_a_court_template_serves_that_court_only_and_can_be_reverted(
    clients: Clients,
) -> None:
    admin = await english(clients, await clients.staff("admin"))
    listed = await ok(await admin.get(ADMIN))
    assert {item["source"] for item in listed["items"]} == {"platform"}
    assert {item["dispute_type"] for item in listed["items"]} >= {"loan", "traffic", "other"}
    default = await ok(await admin.get(f"{ADMIN}/loan"))
    assert default["body"] == default["default_body"] and default["version"] == 0

    saved = await ok(
        await send(
            clients, admin, "PUT", f"{ADMIN}/loan", {"body": COURT_TEMPLATE, "base_version": 0}
        )
    )
    assert saved["source"] == "court" and saved["version"] == 1 and saved["title"] == "调解协议书"
    resaved = await ok(
        await send(
            clients, admin, "PUT", f"{ADMIN}/loan", {"body": COURT_TEMPLATE, "base_version": 1}
        )
    )
    assert resaved["version"] == 2
    stale = await send(
        clients, admin, "PUT", f"{ADMIN}/loan", {"body": COURT_TEMPLATE, "base_version": 1}
    )
    assert stale.status == 409
    page = await admin.get("/admin/agreement-templates")
    listing = await page.text()
    assert page.status == 200 and "Court's own" in listing and "Platform default" in listing
    editor = await admin.get("/admin/agreement-templates?type=loan")
    assert editor.status == 200 and "本院专用模板" in await editor.text()

    # the court's disputes are drafted from it
    _, data = await started(clients)
    assert data["current"]["text"].startswith("本院专用模板：")
    assert data["current"]["terms"]["title"] == "调解协议书"

    # another court still gets the platform's template
    other = await other_court_admin(clients)
    theirs = await ok(await other.get(f"{ADMIN}/loan"))
    assert theirs["source"] == "platform" and "本院专用模板" not in theirs["body"]

    async def resolved(session: Any) -> tuple[str, str]:
        court_id = await session.scalar(select(Court.id).where(Court.code == "OTHER"))
        own = await session.scalar(select(Court.id).where(Court.code == "DEMO"))
        there = await agreement_templates.resolve(session, court_id, "loan")
        here = await agreement_templates.resolve(session, own, "loan")
        return there.source, here.source

    assert await in_db(clients, resolved) == ("platform", "court")

    # only an admin changes templates
    tiaojie = await mediator(clients)
    refused = await send(clients, tiaojie, "PUT", f"{ADMIN}/loan", {"body": "x"})
    assert refused.status == 403

    reverted = await ok(await send(clients, admin, "DELETE", f"{ADMIN}/loan"))
    assert reverted["source"] == "platform" and reverted["body"] == default["body"]

    saves = await audited(clients, "agreement_template.saved")
    assert [(r.details["dispute_type"], r.details["version"]) for r in saves] == [
        ("loan", 1),
        ("loan", 2),
    ]
    assert saves[0].details["sha256"] == hashlib.sha256(COURT_TEMPLATE.encode()).hexdigest()
    reverts = await audited(clients, "agreement_template.reverted")
    assert len(reverts) == 1 and reverts[0].actor_name == "周管理"
    denials = await audited(clients, "access.denied")
    assert any(r.details.get("permission") == "agreement_templates.manage" for r in denials)


async def test_a_broken_template_is_refused_naming_the_line(clients: Clients) -> None:
    admin = await english(clients, await clients.staff("admin"))
    cases = [
        ("第一行\n{% if %}\n", 2),  # does not compile
        ("第一行\n第二行\n{{ parties[0].nickname }}\n", 3),  # a fact that does not exist
        ("{{ court.name }}\n{{ court.__class__ }}\n", 2),  # the sandbox refuses
        ("{% for p in parties %}\n{{ p.name }}\n{% endfor %}\n{{ terms.instalments[5].due }}", 4),
    ]
    for body, line in cases:
        response = await send(clients, admin, "PUT", f"{ADMIN}/sale", {"body": body})
        data = await response.json()
        assert response.status == 400, data
        assert data["error"]["field"] == "body"
        assert f"line {line}" in data["error"]["message"], data
        preview = await send(clients, admin, "POST", f"{ADMIN}/sale/preview", {"body": body})
        assert preview.status == 400
    still = await ok(await admin.get(f"{ADMIN}/sale"))
    assert still["source"] == "platform"
    assert await audited(clients, "agreement_template.saved") == []
    good = await ok(
        await send(clients, admin, "POST", f"{ADMIN}/sale/preview", {"body": COURT_TEMPLATE})
    )
    assert "壹万贰仟叁佰肆拾伍元陆角柒分" in good["text"]  # the sample terms


# the PDF and signing ----------------------------------------------------------------------------


def fonts_of(reader: pypdf.PdfReader) -> list[tuple[str, list[str]]]:
    """Each font on each page with the FontFile keys of its descriptor."""
    found = []
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            if "/DescendantFonts" in font:
                descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            else:
                descriptor = font["/FontDescriptor"]
            keys = [k for k in descriptor.get_object() if str(k).startswith("/FontFile")]
            found.append((str(font.get("/BaseFont")), keys))
    return found


async def test_the_draft_pdf_embeds_its_fonts_and_holds_the_text(clients: Clients) -> None:
    client, data = await started(clients)
    ids = await party_ids(clients)
    refill = {"base_version": 1, "terms": loan_terms(ids)}
    filled = await ok(await send(clients, client, "POST", f"{BASE}/refill", refill))
    response = await client.get(filled["current"]["pdf_url"])
    assert response.status == 200, await response.text()
    assert response.content_type == "application/pdf"
    pdf = await response.read()
    assert pdf.startswith(b"%PDF")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    fonts = fonts_of(reader)
    assert fonts and all(keys for _, keys in fonts), fonts
    text = flat("\n".join(page.extract_text() for page in reader.pages))
    for expected in (
        "人民调解协议书",
        data["number"],
        "张三",
        "李四",
        "伍万元整",
        "约定条款一览",
        "调解员（签名）",
        "草稿",
        filled["current"]["sha256"],
    ):
        assert flat(expected) in text, expected
    assert "1/1" in text or "1/2" in text  # page X / Y


async def test_putting_up_for_signing_keeps_the_pdf_and_moves_the_workflow(
    clients: Clients,
) -> None:
    client, data = await started(clients)
    ids = await party_ids(clients)
    text = data["current"]["text"]
    await ok(await save(clients, client, text, loan_terms(ids), 1))
    stale = await send(clients, client, "POST", f"{BASE}/signing", {"base_version": 1})
    assert stale.status == 409
    out = await ok(await send(clients, client, "POST", f"{BASE}/signing", {"base_version": 2}))
    assert out["state"] == "signing" and out["signing_version"] == 2
    signing = out["signing"]
    assert signing["sign_url"] == "/disputes/1/agreement/sign"

    pdf = await (await client.get(signing["pdf_url"])).read()
    assert pdf.startswith(b"%PDF")
    assert hashlib.sha256(pdf).hexdigest() == signing["pdf_sha256"]
    assert "草稿" not in flat(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text())
    twice = await send(clients, client, "POST", f"{BASE}/signing", {})
    assert twice.status == 409

    async def read(session: Any) -> tuple[Any, ...]:
        agreement = await session.scalar(select(Agreement).where(Agreement.dispute_id == 1))
        version = await session.scalar(
            select(AgreementVersion).where(AgreementVersion.version == 2)
        )
        stored = await session.get(StoredObject, version.pdf_object_id)
        status = await session.scalar(select(Dispute.status).where(Dispute.id == 1))
        return agreement, version, stored, status

    agreement, version, stored, status = await in_db(clients, read)
    assert agreement.state == "signing" and agreement.signing_version == 2
    assert status == "agreement_reached"
    assert stored.kind == "agreement_draft" and stored.write_once
    assert stored.content_type == "application/pdf" and stored.size == len(pdf)
    assert stored.sha256 == version.pdf_sha256 == signing["pdf_sha256"]
    spooled = clients.settings.data_dir / "spool" / stored.key
    if stored.status == "pending" and spooled.exists():
        assert hashlib.sha256(spooled.read_bytes()).hexdigest() == stored.sha256

    events = await audited(clients, "agreement.put_up_for_signing")
    assert len(events) == 1
    assert events[0].details["pdf_sha256"] == stored.sha256
    assert events[0].details["sha256"] == version.sha256
    assert [e.dispute_id for e in await audited(clients, "dispute.agreement_reached")] == [1]

    # the signing page's view of it
    async def view(session: Any) -> agreements.SigningView:
        zhang = await session.scalar(select(User).where(User.phone == ZHANG))
        caller = Principal(zhang.id, Role.PARTY, zhang.name, None, 0, "test")
        return await agreements.for_signing(session, caller, 1)

    signing_view = await in_db(clients, view)
    assert signing_view.version.version == 2 and signing_view.pdf_sha256 == stored.sha256
    assert signing_view.stored.id == stored.id

    party = await english(clients, await clients.party(ZHANG))
    seen = await ok(await party.get(BASE))
    assert seen["signing"]["pdf_sha256"] == stored.sha256
    page = await (await party.get("/disputes/1/agreement")).text()
    assert "/disputes/1/agreement/sign" in page and stored.sha256 in page

    # editing again takes it back to drafting; the kept PDF stays as it was
    await ok(await save(clients, client, text + "\n补充条款。", loan_terms(ids), 2))
    after = await ok(await client.get(BASE))
    assert after["state"] == "drafting" and after["signing"] is None
    assert after["signing_version"] is None
    with pytest.raises(Conflict):
        await in_db(clients, view)
    kept = await (await client.get(f"{BASE}/versions/2/pdf")).read()
    assert kept == pdf
    saved_rows = await audited(clients, "agreement.saved")
    assert saved_rows[-1].details["withdrawn_from_signing"] == 2
    # the new version goes up without moving the workflow again
    again = await ok(await send(clients, client, "POST", f"{BASE}/signing", {"base_version": 3}))
    assert again["signing_version"] == 3
    assert len(await audited(clients, "dispute.agreement_reached")) == 1


async def test_the_workflow_can_refuse_and_then_nothing_is_kept(clients: Clients) -> None:
    client, _ = await started(clients)
    session_id = await demo_session(clients)

    async def open_session(session: Any) -> None:
        await workflow.execute(
            session, None, 1, cmd.OpenSession(session_id=session_id), calendar=WorkingCalendar()
        )

    await in_db(clients, open_session, write=True)
    response = await send(clients, client, "POST", f"{BASE}/signing", {})
    body = await response.json()
    assert response.status == 409 and body["error"]["code"] == "illegal_transition"

    async def count(session: Any) -> tuple[int, str, str]:
        drafts = len(
            (
                await session.scalars(
                    select(StoredObject).where(StoredObject.kind == "agreement_draft")
                )
            ).all()
        )
        state = await session.scalar(select(Agreement.state).where(Agreement.dispute_id == 1))
        status = await session.scalar(select(Dispute.status).where(Dispute.id == 1))
        return drafts, state, status

    assert await in_db(clients, count) == (0, "drafting", "mediating")
    assert await audited(clients, "agreement.put_up_for_signing") == []


# access -------------------------------------------------------------------------------------


async def test_parties_read_the_agreement_but_cannot_edit_it(clients: Clients) -> None:
    client, data = await started(clients)
    ids = await party_ids(clients)
    zhang = await english(clients, await clients.party(ZHANG))

    seen = await ok(await zhang.get(BASE))
    assert seen["current"]["text"] == data["current"]["text"]
    assert seen["may_edit"] is False and seen["versions"] == []
    page = await zhang.get("/disputes/1/agreement")
    html = await page.text()
    assert page.status == 200 and 'id="agreement-form"' not in html and "张三" in html
    pdf = await zhang.get(f"{BASE}/versions/1/pdf")
    assert pdf.status == 200

    text = data["current"]["text"]
    for method, path, body in (
        ("PUT", BASE, {"text": text, "terms": {}, "base_version": 1}),
        ("POST", f"{BASE}/refill", {"base_version": 1}),
        ("POST", f"{BASE}/signing", {}),
    ):
        response = await send(clients, zhang, method, path, body)
        assert response.status == 403, (method, path)

    # a newer version: the parties' side sees the current one, not the history
    await ok(await save(clients, client, text + "\n修改。", loan_terms(ids), 1))
    assert (await zhang.get(f"{BASE}/versions/1/pdf")).status == 404
    assert (await zhang.get(f"{BASE}/versions/2")).status == 200

    # the judge on the dispute reads everything and edits nothing
    judge = await english(clients, await clients.staff("faguan"))
    judged = await ok(await judge.get(BASE))
    assert judged["may_edit"] is False and len(judged["versions"]) == 2
    refused = await send(clients, judge, "PUT", BASE, {"text": text, "base_version": 2})
    assert refused.status == 403

    # a party of another dispute is told it does not exist
    wang = await english(clients, await clients.party(WANG))
    assert (await wang.get(BASE)).status == 404
    assert (await wang.get("/disputes/1/agreement")).status == 404
    assert (await wang.get(f"{BASE}/versions/1/pdf")).status == 404
    response = await send(clients, wang, "PUT", BASE, {"text": text, "base_version": 2})
    assert response.status == 404

    denials = await audited(clients, "access.denied")
    drafts = [d for d in denials if d.details.get("permission") == "agreement.draft"]
    assert len(drafts) == 4 and all(d.dispute_id == 1 for d in drafts)
    assert any(d.actor_name == "王五" and d.dispute_id == 1 for d in denials)
    assert (await ok(await client.get(BASE)))["current_version"] == 2


async def test_the_api_is_documented(clients: Clients) -> None:
    client = await clients.new()
    spec = await ok(await client.get("/api/v1/openapi.json"))
    paths = spec["paths"]
    assert set(paths["/api/v1/disputes/{id}/agreement"]) == {"get", "post", "put"}
    assert "/api/v1/disputes/{id}/agreement/versions/{version}/pdf" in paths
    assert set(paths["/api/v1/admin/agreement-templates/{dispute_type}"]) == {
        "get",
        "put",
        "delete",
    }
