"""Online applications through the app, on both backends: drafts saved, resumed and filed
by a party and by a clerk for a walk-in party; bad input refused by field; drafts private."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from server.db.engine import Database
from server.db.models import AuditEvent, Consent, Dispute, DisputeParty, User
from tests import samples
from tests.support import Clients

ZHANG_ID = "110101199003077571"  # 张三, the demo applicant
LI_ID = "110101198512120019"  # 李四, the demo respondent
WALK_IN_ID = "110105198001010016"
WALK_IN_PHONE = "13700000009"
CREDIT_CODE = "91110000600037341L"
NUMBER = re.compile(r"^（\d{4}）演0101诉前调(\d+)号$")

APPLICATION: dict[str, Any] = {
    "dispute_type": "loan",
    "claim_amount": "12000.50",
    "summary": "申请人借给被申请人一万二千元，到期未还。",
    "requests": "请求归还借款一万二千元及利息。",
    "applicant": {
        "name": "张三",
        "kind": "natural",
        "id_number": ZHANG_ID,
        "phone": "13800000001",
        "service_address": "zhangsan@example.cn",
    },
    "respondents": [
        {
            "name": "李四",
            "kind": "natural",
            "id_number": LI_ID,
            "phone": "13800000002",
            "service_address": "北京市东城区某街1号",
        }
    ],
}
CONSENTS = {"online_mediation_consent": True, "electronic_service_consent": True}


async def put_json(clients: Clients, client: TestClient[Any, Any], path: str, body: Any) -> Any:
    token = await clients.csrf(client)
    return await client.put(path, json=body, headers={"X-CSRF-Token": token})


async def post_form(
    clients: Clients, client: TestClient[Any, Any], path: str, data: dict[str, str]
) -> aiohttp.ClientResponse:
    token = await clients.csrf(client)
    return await client.post(path, data={"_csrf": token, **data}, allow_redirects=False)


async def create(clients: Clients, client: TestClient[Any, Any], body: Any = None) -> Any:
    response = await clients.post_json(client, "/api/v1/applications", body or {})
    assert response.status == 201, await response.text()
    return await response.json()


async def submit(clients: Clients, client: TestClient[Any, Any], dispute_id: int) -> Any:
    return await clients.post_json(client, f"/api/v1/applications/{dispute_id}/submit", CONSENTS)


async def query(clients: Clients, statement: Any) -> list[Any]:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            return list((await session.execute(statement)).all())
    finally:
        await db.dispose()


async def actions(clients: Clients, dispute_id: int) -> list[str]:
    rows = await query(
        clients,
        select(AuditEvent.action)
        .where(AuditEvent.dispute_id == dispute_id)
        .order_by(AuditEvent.seq),
    )
    return [row[0] for row in rows]


async def count(clients: Clients, model: Any) -> int:
    rows = await query(clients, select(func.count()).select_from(model))
    return int(rows[0][0])


async def test_a_party_saves_resumes_and_files_an_application(clients: Clients) -> None:
    party = await clients.party("13800000001")
    draft = await create(clients, party)
    assert NUMBER.match(draft["number"]), draft["number"]
    assert draft["status"] == "draft"
    assert draft["applicant"]["name"] == "张三"  # the caller applies in their own name
    dispute_id = draft["id"]

    first = {key: value for key, value in APPLICATION.items() if key != "respondents"}
    response = await put_json(clients, party, f"/api/v1/applications/{dispute_id}", first)
    assert response.status == 200, await response.text()
    assert (await response.json())["draft_revision"] == 1

    # evidence can be added to the draft before it is filed
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("file", samples.pdf("IOU"), filename="借条.pdf")
    token = await clients.csrf(party)
    response = await party.post(
        f"/api/v1/disputes/{dispute_id}/evidence", data=form, headers={"X-CSRF-Token": token}
    )
    assert response.status == 201, await response.text()

    # resumed later: the list of drafts, then the draft itself
    response = await party.get("/api/v1/applications?status=draft")
    assert response.status == 200
    listed = await response.json()
    assert dispute_id in [item["id"] for item in listed["items"]]
    assert listed["page"] == 1
    response = await party.get(f"/api/v1/applications/{dispute_id}")
    resumed = await response.json()
    assert resumed["claim_amount"] == "12000.50"
    assert resumed["applicant"]["id_number"] == ZHANG_ID
    assert resumed["respondents"] == []

    response = await put_json(
        clients,
        party,
        f"/api/v1/applications/{dispute_id}",
        {"respondents": APPLICATION["respondents"]},
    )
    assert response.status == 200, await response.text()
    saved = await response.json()
    assert saved["draft_revision"] == 2
    assert saved["summary"] == APPLICATION["summary"]  # fields not sent are kept

    response = await submit(clients, party, dispute_id)
    assert response.status == 200, await response.text()
    filed = await response.json()
    assert filed["status"] == "triaged"
    assert filed["triage"]["complexity"] in ("simple", "complex")
    response = await party.get(f"/api/v1/disputes/{dispute_id}")
    assert (await response.json())["status"] == "triaged"
    response = await party.get("/api/v1/applications?status=draft")
    assert dispute_id not in [item["id"] for item in (await response.json())["items"]]

    consents = await query(
        clients,
        select(Consent.stage, Consent.matter, Consent.granted, Consent.method)
        .where(Consent.dispute_id == dispute_id)
        .order_by(Consent.matter),
    )
    assert [tuple(row) for row in consents] == [
        ("mediation", "electronic_service", True, "online"),
        ("mediation", "online_handling", True, "online"),
    ]
    logged = await actions(clients, dispute_id)
    assert logged.count("dispute.draft_saved") == 2
    assert logged.index("dispute.application_submitted") < logged.index("dispute.dispute_triaged")
    assert logged[0] == "dispute.created"
    assert "dispute.triage_reasons" in logged
    details = await query(
        clients,
        select(AuditEvent.details).where(
            AuditEvent.dispute_id == dispute_id, AuditEvent.action == "dispute.draft_saved"
        ),
    )
    assert "respondents.0" in details[-1][0]["changed_fields"]


async def test_a_clerk_files_for_a_walk_in_party_who_then_logs_in(clients: Clients) -> None:
    clerk = await clients.staff("shujiyuan")
    walk_in = {
        **APPLICATION,
        "applicant": {
            "name": "赵六",
            "kind": "natural",
            "id_number": WALK_IN_ID,
            "phone": WALK_IN_PHONE,
            "service_address": "北京市西城区某路2号",
        },
        "respondents": [
            {
                "name": "某某科技有限公司",
                "kind": "legal",
                "id_number": CREDIT_CODE,
                "phone": "13600000001",
            }
        ],
    }
    draft = await create(clients, clerk, walk_in)
    dispute_id = draft["id"]
    assert draft["respondents"][0]["kind"] == "legal"
    response = await submit(clients, clerk, dispute_id)
    assert response.status == 200, await response.text()

    methods = await query(clients, select(Consent.method).where(Consent.dispute_id == dispute_id))
    assert {row[0] for row in methods} == {"counter"}
    accounts = await query(clients, select(User.role, User.name).where(User.phone == WALK_IN_PHONE))
    assert [(role.value, name) for role, name in accounts] == [("party", "赵六")]

    party = await clients.party(WALK_IN_PHONE)
    response = await party.get("/api/v1/disputes")
    assert dispute_id in [item["id"] for item in (await response.json())["items"]]
    response = await party.get(f"/disputes/{dispute_id}")
    assert response.status == 200
    assert draft["number"] in await response.text()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"applicant": {"name": "张三", "id_number": "110101199003077572"}}, "applicant.id_number"),
        ({"applicant": {"name": "张三", "id_number": "11010119900307757"}}, "applicant.id_number"),
        (
            {"respondents": [{"name": "公司", "kind": "legal", "id_number": "91110000MA00000000"}]},
            "respondents.0.id_number",
        ),
        ({"applicant": {"name": "张三", "phone": "1380000000"}}, "applicant.phone"),
        ({"respondents": [{"name": "李四", "phone": "23800000002"}]}, "respondents.0.phone"),
        ({"claim_amount": "-1"}, "claim_amount"),
        ({"claim_amount": "100.001"}, "claim_amount"),
        ({"claim_amount": "1e15"}, "claim_amount"),
        ({"claim_amount": "NaN"}, "claim_amount"),
        ({"claim_amount": "十万"}, "claim_amount"),
        ({"dispute_type": "divorce"}, "dispute_type"),
    ],
)
async def test_bad_input_is_refused_by_field_and_nothing_is_saved(
    clients: Clients, body: dict[str, Any], field: str
) -> None:
    party = await clients.party("13800000001")
    disputes_before = await count(clients, Dispute)
    response = await clients.post_json(party, "/api/v1/applications", body)
    assert response.status == 400, await response.text()
    error = (await response.json())["error"]
    assert error["field"] == field
    assert await count(clients, Dispute) == disputes_before

    draft = await create(clients, party)
    parties_before = await count(clients, DisputeParty)
    response = await put_json(clients, party, f"/api/v1/applications/{draft['id']}", body)
    assert response.status == 400, await response.text()
    assert (await response.json())["error"]["field"] == field
    assert await count(clients, DisputeParty) == parties_before
    assert "dispute.draft_saved" not in await actions(clients, draft["id"])
    response = await party.get(f"/api/v1/applications/{draft['id']}")
    assert (await response.json())["draft_revision"] == 0


async def test_an_incomplete_draft_is_not_filed(clients: Clients) -> None:
    party = await clients.party("13800000001")
    draft = await create(clients, party, {"dispute_type": "sale"})
    response = await submit(clients, party, draft["id"])
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "summary"

    complete = {key: value for key, value in APPLICATION.items() if key != "respondents"}
    response = await put_json(clients, party, f"/api/v1/applications/{draft['id']}", complete)
    assert response.status == 200
    response = await submit(clients, party, draft["id"])
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "respondents.0.name"

    response = await put_json(
        clients, party, f"/api/v1/applications/{draft['id']}", {"respondents": [{"name": "李四"}]}
    )
    assert response.status == 200
    response = await submit(clients, party, draft["id"])
    assert (await response.json())["error"]["field"] == "respondents.0.phone"

    response = await put_json(
        clients,
        party,
        f"/api/v1/applications/{draft['id']}",
        {"respondents": APPLICATION["respondents"]},
    )
    response = await clients.post_json(
        party,
        f"/api/v1/applications/{draft['id']}/submit",
        {"online_mediation_consent": False, "electronic_service_consent": True},
    )
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "online_mediation_consent"
    response = await party.get(f"/api/v1/applications/{draft['id']}")
    assert (await response.json())["status"] == "draft"
    assert await query(clients, select(Consent.id).where(Consent.dispute_id == draft["id"])) == []


async def test_a_filed_application_can_no_longer_be_saved(clients: Clients) -> None:
    party = await clients.party("13800000001")
    draft = await create(clients, party, APPLICATION)
    response = await submit(clients, party, draft["id"])
    assert response.status == 200
    path = f"/api/v1/applications/{draft['id']}"
    for body in ({"summary": "改过的概要"}, {"summary": APPLICATION["summary"]}):
        response = await put_json(clients, party, path, body)
        assert response.status == 409
        error = (await response.json())["error"]
        assert error["code"] == "illegal_transition"
        assert "已分流" in error["message"]  # the state it is in, in the default language
    response = await submit(clients, party, draft["id"])
    assert response.status == 409
    response = await party.get(path)
    assert (await response.json())["summary"] == APPLICATION["summary"]


async def test_nobody_else_reads_or_edits_a_draft(clients: Clients) -> None:
    owner = await clients.party("13800000001")
    draft = await create(clients, owner, {"summary": "私人草稿"})
    path = f"/api/v1/applications/{draft['id']}"
    other = await clients.party("13800000003")
    assert (await other.get(path)).status == 404
    assert (await put_json(clients, other, path, {"summary": "改"})).status == 404
    assert (await submit(clients, other, draft["id"])).status == 404
    assert (await other.get(f"/applications/{draft['id']}/edit")).status == 404
    assert (await other.get(f"/api/v1/disputes/{draft['id']}")).status == 404
    response = await other.get("/api/v1/applications")
    assert draft["id"] not in [item["id"] for item in (await response.json())["items"]]
    response = await owner.get(path)
    assert (await response.json())["summary"] == "私人草稿"


async def test_the_form_page_is_in_chinese_and_files_an_application(clients: Clients) -> None:
    party = await clients.party("13800000001")
    response = await party.get("/applications/new")
    assert response.status == 200
    page = await response.text()
    for words in (
        "申请调解",
        "申请人",
        "被申请人",
        "纠纷类型",
        "保存草稿",
        "提交申请",
        "民间借贷纠纷",
    ):
        assert words in page
    assert 'value="张三"' in page

    fields = {
        "dispute_type": "loan",
        "claim_amount": "8000",
        "summary": "借款未还",
        "requests": "归还借款",
        "applicant.name": "张三",
        "applicant.kind": "natural",
        "applicant.id_number": "110101199003077572",
        "applicant.phone": "13800000001",
        "applicant.service_address": "zhangsan@example.cn",
        "respondents.0.name": "李四",
        "respondents.0.kind": "natural",
        "respondents.0.phone": "13800000002",
        "action": "save",
    }
    disputes_before = await count(clients, Dispute)
    response = await post_form(clients, party, "/applications", fields)
    assert response.status == 400
    page = await response.text()
    assert 'id="error-applicant-id_number"' in page
    assert "110101199003077572" in page and "借款未还" in page  # what was typed is kept
    assert await count(clients, Dispute) == disputes_before

    response = await post_form(
        clients, party, "/applications", {**fields, "applicant.id_number": ZHANG_ID}
    )
    assert response.status == 303
    location = response.headers["Location"]
    found = re.fullmatch(r"/applications/(\d+)/edit\?saved=1", location)
    assert found, location
    dispute_id = int(found.group(1))

    response = await party.get(location)
    page = await response.text()
    assert response.status == 200
    assert f'data-url="/api/v1/disputes/{dispute_id}/evidence"' in page
    assert 'id="evidence-upload"' in page
    assert "借款未还" in page

    # filing without the consent: the form says so, and the draft stays a draft
    submit_fields = {**fields, "applicant.id_number": ZHANG_ID, "action": "submit"}
    response = await post_form(clients, party, f"/applications/{dispute_id}", submit_fields)
    assert response.status == 400
    assert 'id="error-online_mediation_consent"' in await response.text()

    response = await post_form(
        clients,
        party,
        f"/applications/{dispute_id}",
        {**submit_fields, "online_mediation_consent": "yes", "electronic_service_consent": "yes"},
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/disputes/{dispute_id}"
    response = await party.get(f"/applications/{dispute_id}/edit", allow_redirects=False)
    assert response.status == 303
    response = await party.get(f"/api/v1/disputes/{dispute_id}")
    assert (await response.json())["status"] == "triaged"
    logged = await actions(clients, dispute_id)
    assert logged.count("dispute.draft_saved") == 1  # the unchanged second form saved nothing


async def test_numbers_are_unique_and_consecutive_under_concurrency(clients: Clients) -> None:
    parties = [await clients.party(phone) for phone in ("13800000001", "13800000003")]
    clerk = await clients.staff("shujiyuan")
    callers = [*parties, clerk] * 3
    responses = await asyncio.gather(
        *(clients.post_json(caller, "/api/v1/applications", {}) for caller in callers)
    )
    assert [r.status for r in responses] == [201] * len(callers)
    numbers = [(await r.json())["number"] for r in responses]
    serials = sorted(int(NUMBER.match(n).group(1)) for n in numbers)  # type: ignore[union-attr]
    assert serials == list(range(serials[0], serials[0] + len(callers)))


async def test_an_agent_files_for_a_party_who_already_has_an_account(clients: Clients) -> None:
    agent = await clients.party("13800000005")  # 蒋律师, an agent logs in by code too
    draft = await create(clients, agent)
    assert draft["agent"]["name"] == "蒋律师"
    assert draft["applicant"]["name"] == ""
    body = {
        **APPLICATION,
        "applicant": {**APPLICATION["applicant"], "name": "王五", "id_number": LI_ID},
        "agent": None,  # the agent who writes the application stays on it
    }
    body["applicant"]["phone"] = "13900000007"  # the clerk's phone: not a party's account
    response = await put_json(clients, agent, f"/api/v1/applications/{draft['id']}", body)
    assert response.status == 200, await response.text()
    assert (await response.json())["agent"]["name"] == "蒋律师"
    response = await submit(clients, agent, draft["id"])
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "applicant.phone"

    response = await put_json(
        clients,
        agent,
        f"/api/v1/applications/{draft['id']}",
        {"applicant": {**body["applicant"], "phone": "13800000003"}},
    )
    assert response.status == 200
    response = await submit(clients, agent, draft["id"])
    assert response.status == 200, await response.text()
    users = await query(
        clients,
        select(DisputeParty.user_id, User.name)
        .join(User, User.id == DisputeParty.user_id)
        .where(DisputeParty.dispute_id == draft["id"], DisputeParty.side == "applicant"),
    )
    assert [row[1] for row in users] == ["王五"]  # linked to the existing account
    party = await clients.party("13800000003")
    response = await party.get(f"/api/v1/disputes/{draft['id']}")
    assert response.status == 200
