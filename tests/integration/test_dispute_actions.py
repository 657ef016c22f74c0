"""Driving disputes through the workflow by its actions, as each role would.

Dispute 2 (traffic) goes from triage through a declined assignment to a mediator
who accepts; dispute 1 (loan, mediating) gets a session with invitations, is opened
and closed, fails, is pushed to case filing by the applicant and registered by the
clerk.  Illegal moves answer 409 with the state in Chinese and change nothing; the
timeline shows every step; the dispute page tells each role what to do next.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.db.engine import Database
from server.db.models import (
    AuditEvent,
    CaseSession,
    CaseSessionParticipant,
    DisputeParty,
    OutboxMessage,
    User,
)
from server.domain.roles import DisputeRole
from server.pdf import render_pdf
from tests.support import Clients

LOAN, TRAFFIC = 1, 2
SHANGHAI = ZoneInfo("Asia/Shanghai")
Browser = TestClient[Any, Any]


async def act(clients: Clients, who: Browser, dispute: int, key: str, body: Any) -> ClientResponse:
    response: ClientResponse = await clients.post_json(
        who, f"/api/v1/disputes/{dispute}/actions/{key}", body
    )
    return response


async def upload_judgment(clients: Clients, who: Browser, pdf: bytes) -> ClientResponse:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("title", "民事判决书")
    form.add_field("file", pdf, filename="判决书.pdf", content_type="application/pdf")
    token = await clients.csrf(who)
    response: ClientResponse = await who.post(
        f"/api/v1/disputes/{LOAN}/judgment", data=form, headers={"X-CSRF-Token": token}
    )
    return response


async def ok(response: ClientResponse) -> dict[str, Any]:
    assert response.status == 200, await response.text()
    data: dict[str, Any] = await response.json()
    return data


async def refused(response: ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    error: dict[str, Any] = (await response.json())["error"]
    return error


async def steps(who: Browser, dispute: int) -> dict[str, Any]:
    response = await who.get(f"/api/v1/disputes/{dispute}/next-steps")
    return await ok(response)


def keys(next_steps: dict[str, Any]) -> list[str]:
    return [step["key"] for step in next_steps["steps"]]


async def timeline(who: Browser, dispute: int) -> dict[str, Any]:
    return await ok(await who.get(f"/api/v1/disputes/{dispute}/timeline?per_page=100"))


async def status_of(who: Browser, dispute: int) -> str:
    return str((await ok(await who.get(f"/api/v1/disputes/{dispute}")))["status"])


async def page(who: Browser, dispute: int) -> str:
    response = await who.get(f"/disputes/{dispute}")
    assert response.status == 200
    return await response.text()


def mediator_option(next_steps: dict[str, Any], name: str) -> int | None:
    for step in next_steps["steps"]:
        for field in step["fields"]:
            if field["name"] == "mediator_id":
                for option in field["options"]:
                    if option["label"].startswith(name):
                        return int(option["value"])
    return None


async def rows(clients: Clients, query: Any) -> list[Any]:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            return list((await session.scalars(query)).all())
    finally:
        await db.dispose()


def later(days: int, hour: int) -> datetime:
    """A time ``days`` from now at ``hour`` o'clock in the court's zone."""
    day = datetime.now(SHANGHAI) + timedelta(days=days)
    return day.replace(hour=hour, minute=0, second=0, microsecond=0)


async def test_an_assignment_is_declined_and_the_court_assigns_another_mediator(
    clients: Clients,
) -> None:
    officer = await clients.staff("fenliu")
    offered = await steps(officer, TRAFFIC)
    assert offered["status"] == "triaged"
    assert {"accept_triage", "override_triage", "route_to_filing"} <= set(keys(offered))

    accepted = await ok(await act(clients, officer, TRAFFIC, "accept_triage", {}))
    assert accepted["status"] == "awaiting_mediator"
    assert [e["name"] for e in accepted["events"]] == ["triage_accepted"]
    assert "assign_mediator" in keys(accepted)

    feng = mediator_option(accepted, "冯调解")
    chen = mediator_option(accepted, "陈调解")
    assert feng is not None and chen is not None
    assigned = await ok(
        await act(clients, officer, TRAFFIC, "assign_mediator", {"mediator_id": feng})
    )
    assert assigned["status"] == "mediator_assigned"

    mediator2 = await clients.staff("tiaojie2")
    assert (await mediator2.get(f"/api/v1/disputes/{TRAFFIC}")).status == 200
    assert set(keys(await steps(mediator2, TRAFFIC))) >= {"accept_assignment", "decline_assignment"}
    reason = "近期承办案件过多，无法在期限内组织调解"
    declined = await ok(
        await act(clients, mediator2, TRAFFIC, "decline_assignment", {"reason": reason})
    )
    assert declined["status"] == "awaiting_mediator"
    assert declined["events"][0]["details"]["reason"] == reason
    # the mediator who declined no longer sees the dispute, let alone accepts it
    assert (await mediator2.get(f"/api/v1/disputes/{TRAFFIC}")).status == 404
    await refused(await act(clients, mediator2, TRAFFIC, "accept_assignment", {}), 404)

    again = await steps(officer, TRAFFIC)
    assert mediator_option(again, "冯调解") is None
    error = await refused(
        await act(clients, officer, TRAFFIC, "assign_mediator", {"mediator_id": feng}), 409
    )
    assert "不能再被指派" in error["message"]
    await ok(await act(clients, officer, TRAFFIC, "assign_mediator", {"mediator_id": chen}))

    mediator3 = await clients.staff("tiaojie3")
    taken = await ok(await act(clients, mediator3, TRAFFIC, "accept_assignment", {}))
    assert taken["status"] == "mediating"

    before = (await timeline(officer, TRAFFIC))["total"]
    error = await refused(await act(clients, mediator3, TRAFFIC, "accept_assignment", {}), 409)
    assert error["code"] == "illegal_transition"
    assert "该纠纷当前状态为“调解中”" in error["message"]
    assert "现在可以：" in error["message"]
    assert await status_of(officer, TRAFFIC) == "mediating"
    assert (await timeline(officer, TRAFFIC))["total"] == before

    events = (await timeline(officer, TRAFFIC))["items"]
    names = [e["event"] for e in events]
    assert names[-4:] == [
        "mediator_assigned",
        "assignment_declined",
        "mediator_assigned",
        "assignment_accepted",
    ]
    decline = events[names.index("assignment_declined")]
    assert decline["actor"]["name"] == "冯调解"
    assert decline["actor"]["role"] == "mediator"
    assert decline["actor"]["role_label"] == "调解员"
    assert decline["reason"] == reason
    assert decline["to_status"] == "awaiting_mediator"
    assigned_events = [e for e in events if e["event"] == "mediator_assigned"]
    assert [e["facts"]["mediator"] for e in assigned_events] == ["冯调解", "陈调解"]
    assert all(e["actor"]["name"] == "吴分流" for e in assigned_events)


async def test_illegal_or_foreign_moves_are_refused_and_change_nothing(clients: Clients) -> None:
    judge = await clients.staff("faguan")
    applicant = await clients.party("13800000001")
    mediator = await clients.staff("tiaojie")
    before = (await timeline(mediator, LOAN))["total"]

    # a ruling is made on the confirmation page, never as a bare step
    error = await refused(await act(clients, judge, LOAN, "confirm_agreement", {}), 400)
    assert error["field"] == "action"
    error = await refused(await act(clients, judge, LOAN, "record_judgment", {}), 409)
    assert error["code"] == "illegal_transition"
    assert error["message"].startswith("该纠纷当前状态为“调解中”；现在可以：")
    assert "安排调解场次" in error["message"]

    failure = {"grounds": ["irreconcilable"], "report": "双方分歧较大"}
    error = await refused(await act(clients, applicant, LOAN, "record_failure", failure), 403)
    assert error["code"] == "forbidden"
    start = {"starts_at": later(3, 10).isoformat()}
    await refused(await act(clients, applicant, LOAN, "schedule_session", start), 403)

    error = await refused(
        await act(clients, mediator, LOAN, "record_failure", {"report": "双方分歧较大"}), 400
    )
    assert error["field"] == "grounds"
    error = await refused(
        await act(
            clients, mediator, LOAN, "record_failure", {**failure, "grounds": ["agreement_reached"]}
        ),
        400,
    )
    assert error["field"] == "grounds"
    await refused(await act(clients, mediator, LOAN, "fly_to_the_moon", {}), 400)

    assert await status_of(mediator, LOAN) == "mediating"
    assert (await timeline(mediator, LOAN))["total"] == before
    sessions = await rows(clients, select(CaseSession).where(CaseSession.dispute_id == LOAN))
    assert len(sessions) == 1  # the refused scheduling left no session behind


async def test_a_session_is_held_mediation_fails_and_the_case_is_filed(clients: Clients) -> None:
    mediator = await clients.staff("tiaojie")
    applicant = await clients.party("13800000001")
    respondent = await clients.party("13800000002")
    clerk = await clients.staff("shujiyuan")

    offered = await steps(mediator, LOAN)
    assert {"schedule_session", "open_session", "record_failure"} <= set(keys(offered))

    # a session at the same time for both parties
    starts = later(3, 10)
    scheduled = await ok(
        await act(clients, mediator, LOAN, "schedule_session", {"starts_at": starts.isoformat()})
    )
    assert scheduled["status"] == "mediating"
    assert [e["name"] for e in scheduled["events"]] == ["session_scheduled"]
    session = scheduled["session"]
    assert datetime.fromisoformat(session["scheduled_start"]) == starts
    people = {(p["role"], p["name"]) for p in session["participants"]}
    assert people == {("applicant", "张三"), ("respondent", "李四"), ("mediator", "郑调解")}
    assert all(p["invited"] for p in session["participants"])
    stored = await rows(
        clients,
        select(CaseSessionParticipant).where(CaseSessionParticipant.session_id == session["id"]),
    )
    assert sorted(p.role.value for p in stored) == ["applicant", "mediator", "respondent"]
    assert all(p.invited_to for p in stored)
    for phone in ("13800000001", "13800000002"):
        sent = await rows(clients, select(OutboxMessage).where(OutboxMessage.destination == phone))
        assert any("/invite/" in m.body for m in sent), phone
        assert any(starts.strftime("%Y-%m-%d %H:%M") in m.body for m in sent), phone
    notices = await rows(
        clients, select(OutboxMessage).where(OutboxMessage.destination == "13900000003")
    )
    assert any(f"/disputes/{LOAN}" in m.body for m in notices)

    # separate times need the parties' consent; then each party has its own start
    parties = {
        p["side"]: p["id"] for p in (await ok(await applicant.get("/api/v1/disputes/1")))["parties"]
    }
    separate = {
        "starts_at": later(4, 9).isoformat(),
        "separate_times": True,
        "times": {str(parties["respondent"]): later(4, 11).isoformat()},
    }
    error = await refused(await act(clients, mediator, LOAN, "schedule_session", separate), 409)
    assert "分别安排调解时间须经当事人同意" in error["message"]
    split = await ok(
        await act(
            clients,
            mediator,
            LOAN,
            "schedule_session",
            {**separate, "separate_times_consent": True},
        )
    )
    own = {
        p["role"]: datetime.fromisoformat(p["starts_at"]) for p in split["session"]["participants"]
    }
    assert own["applicant"] == later(4, 9) and own["respondent"] == later(4, 11)

    told = await steps(applicant, LOAN)
    assert told["hint"]["kind"] == "wait"
    listed = (await ok(await applicant.get(f"/api/v1/disputes/{LOAN}")))["sessions"]
    first = min(datetime.fromisoformat(s["scheduled_start"]) for s in listed)
    assert first <= starts
    assert first.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") in told["hint"]["text"]

    # open and close the first session
    opened = await ok(
        await act(clients, mediator, LOAN, "open_session", {"session_id": session["id"]})
    )
    assert [e["name"] for e in opened["events"]] == ["session_opened"]
    error = await refused(
        await act(
            clients,
            mediator,
            LOAN,
            "record_failure",
            {"grounds": ["irreconcilable"], "report": "分歧较大"},
        ),
        409,
    )
    assert "请先结束正在进行的调解场次" in error["message"]
    await ok(await act(clients, mediator, LOAN, "close_session", {}))
    held = await rows(clients, select(CaseSession).where(CaseSession.id == session["id"]))
    assert held[0].status == "held"
    assert held[0].opened_at is not None and held[0].closed_at is not None
    assert held[0].opened_at <= held[0].closed_at

    # failure with the Art. 25 grounds and the mediator's report
    report = "双方对借款金额和利息计算分歧较大，难以达成一致"
    conduct = "被申请人两次无故缺席调解，增加了对方的交通和误工成本"
    failed = await ok(
        await act(
            clients,
            mediator,
            LOAN,
            "record_failure",
            {
                "grounds": ["irreconcilable", "party_unwilling"],
                "report": report,
                "cost_increasing_conduct": conduct,
            },
        )
    )
    assert failed["status"] == "failed"

    told = await steps(applicant, LOAN)
    assert keys(told)[:2] == ["choose_filing", "decline_filing"]
    assert [s["label"] for s in told["steps"][:2]] == ["选择立案", "不申请立案"]
    assert told["hint"]["kind"] == "act"
    told = await steps(respondent, LOAN)
    assert keys(told) == [] and told["hint"]["kind"] == "wait"
    assert told["status_label"] == "调解不成"

    # the applicant chooses filing from the page form
    token = await clients.csrf(applicant)
    response = await applicant.post(
        f"/disputes/{LOAN}/actions/choose_filing", data={"_csrf": token}, allow_redirects=False
    )
    assert response.status == 303
    target = urlsplit(response.headers["Location"])
    assert target.path == f"/disputes/{LOAN}"
    assert parse_qs(target.query) == {"done": ["choose_filing"]}
    assert await status_of(applicant, LOAN) == "filing_pending"
    packages = await rows(
        clients,
        select(AuditEvent).where(
            AuditEvent.dispute_id == LOAN, AuditEvent.action == "dispute.filing_package"
        ),
    )
    assert len(packages) == 1
    listed = packages[0].details
    assert listed["report"]["report"] == report
    assert listed["report"]["grounds"] == ["irreconcilable", "party_unwilling"]
    [held] = listed["sessions"]  # the held session, with its transcript and recording
    assert held["session_id"] == session["id"]
    assert held["transcript_lines"] == 0 and held["transcript_review"] == ""
    assert held["recording"] == "" and held["recording_document_id"] is None

    # the clerk sees the package and registers the case
    assert keys(await steps(clerk, LOAN)) == ["register_case"]
    package = await ok(await clerk.get(f"/api/v1/disputes/{LOAN}/filing-package"))
    assert package["report"]["cost_increasing_conduct"] == conduct
    await refused(await applicant.get(f"/api/v1/disputes/{LOAN}/filing-package"), 403)
    number = "（2026）演0101民初88号"
    registered = await ok(await act(clients, clerk, LOAN, "register_case", {"case_number": number}))
    assert registered["status"] == "filed"
    told = await steps(applicant, LOAN)
    assert told["status_label"] == "已立案" and number in told["hint"]["text"]

    # the fast-track hearing and its judgment: by a judge of the court, served like a ruling
    judge = await clients.staff("faguan")
    starts = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    response = await clients.post_json(
        judge, f"/api/v1/disputes/{LOAN}/hearings", {"starts_at": starts}
    )
    assert response.status == 201, await response.text()
    hearing = await response.json()
    assert set(hearing["invited"]) >= {"张三", "李四"}  # sent a link to the hearing room
    again = await clients.post_json(
        judge, f"/api/v1/disputes/{LOAN}/hearings", {"starts_at": starts}
    )
    await refused(again, 409)
    await refused(
        await clients.post_json(
            applicant, f"/api/v1/disputes/{LOAN}/hearings", {"starts_at": starts}
        ),
        403,
    )
    room = await judge.get(f"/sessions/{hearing['session_id']}/room")
    assert room.status == 200
    judgment = render_pdf("<h1>民事判决书</h1><p>被告于本判决生效之日起十日内归还借款。</p>")
    assert (await upload_judgment(clients, applicant, judgment)).status == 403
    response = await upload_judgment(clients, judge, judgment)
    assert response.status == 201, await response.text()
    issued = await response.json()
    assert issued["kind"] == "judgment" and issued["sha256"] == sha256(judgment).hexdigest()
    assert await status_of(judge, LOAN) == "judged"
    response = await clients.post_json(
        clerk, f"/api/v1/disputes/{LOAN}/services", {"document_id": issued["id"]}
    )
    assert response.status in (200, 201), await response.text()
    deadline = time.monotonic() + 30
    while await status_of(clerk, LOAN) != "served":  # every party's inbox reached
        assert time.monotonic() < deadline, "the judgment was not served"
        await asyncio.sleep(0.3)

    # the timeline lists every step with who did it and why
    items = (await timeline(applicant, LOAN))["items"]
    steps_done = [(e["event"], e["actor"]["name"], e["actor"]["role"]) for e in items]
    assert [event for event, _, _ in steps_done[-2:]] == ["judgment_recorded", "documents_served"]
    assert steps_done[-2][1:] == ("褚法官", "judge") and steps_done[-1][2] == "system"
    assert steps_done[-9:-2] == [
        ("session_scheduled", "郑调解", "mediator"),
        ("session_scheduled", "郑调解", "mediator"),
        ("session_opened", "郑调解", "mediator"),
        ("session_closed", "郑调解", "mediator"),
        ("mediation_failed", "郑调解", "mediator"),
        ("filing_chosen", "张三", "party"),
        ("case_registered", "卫书记员", "clerk"),
    ]
    failure = next(e for e in items if e["event"] == "mediation_failed")
    assert [g["label"] for g in failure["grounds"]] == [
        "当事人分歧较大且难以达成调解协议",
        "当事人一方明确表示不愿意继续调解",
    ]
    assert failure["facts"]["report"] == report
    assert failure["facts"]["cost_increasing_conduct"] == conduct
    registered_event = next(e for e in items if e["event"] == "case_registered")
    assert registered_event["facts"]["case_number"] == number
    assert registered_event["to_status"] == "filed"
    assert items[0]["event"] == "application_submitted"
    assert items[0]["actor"]["role"] == "system"


async def test_page_forms_act_and_come_back_to_the_dispute_page(clients: Clients) -> None:
    mediator = await clients.staff("tiaojie")
    token = await clients.csrf(mediator)
    response = await mediator.post(
        f"/disputes/{LOAN}/actions/record_failure",
        data={"_csrf": token, "report": "分歧较大"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"].startswith(f"/disputes/{LOAN}?error=")
    assert await status_of(mediator, LOAN) == "mediating"

    # scheduling from the form: court-local datetime-local values
    local = later(5, 15)
    response = await mediator.post(
        f"/disputes/{LOAN}/actions/schedule_session",
        data={"_csrf": token, "starts_at": local.strftime("%Y-%m-%dT%H:%M")},
        allow_redirects=False,
    )
    assert response.status == 303
    assert "done=schedule_session" in response.headers["Location"]
    created = await rows(
        clients, select(CaseSession).where(CaseSession.dispute_id == LOAN).order_by(CaseSession.id)
    )
    assert created[-1].scheduled_start == local.astimezone(UTC)

    # failure from the form, with the grounds as checkboxes
    response = await mediator.post(
        f"/disputes/{LOAN}/actions/record_failure",
        data=[
            ("_csrf", token),
            ("grounds", "irreconcilable"),
            ("grounds", "other"),
            ("report", "分歧较大"),
        ],
        allow_redirects=False,
    )
    assert response.status == 303 and "done=record_failure" in response.headers["Location"]
    assert await status_of(mediator, LOAN) == "failed"

    # a party sending a mediator's form is refused outright
    applicant = await clients.party("13800000001")
    token = await clients.csrf(applicant)
    response = await applicant.post(
        f"/disputes/{LOAN}/actions/record_agreement",
        data={"_csrf": token},
        allow_redirects=False,
    )
    assert response.status == 403


async def test_the_dispute_page_tells_each_role_what_to_do_next(clients: Clients) -> None:
    mediator = await clients.staff("tiaojie")
    applicant = await clients.party("13800000001")
    respondent = await clients.party("13800000002")
    clerk = await clients.staff("shujiyuan")
    officer = await clients.staff("fenliu")

    text = await page(mediator, LOAN)
    assert 'id="next-steps"' in text
    assert "安排调解场次" in text and "记录调解不成" in text and "开始调解场次" in text
    assert 'name="grounds" value="irreconcilable"' in text
    assert "当事人分歧较大且难以达成调解协议" in text  # the Art. 25 grounds, as checkboxes
    assert "调解期限届满" in text and 'data-deadline="running"' in text  # the countdown
    assert 'data-event="assignment_accepted"' in text and "郑调解" in text  # the timeline
    text = await page(officer, TRAFFIC)
    assert "确认分流结果" in text and "调整分流结果" in text and "转立案" in text
    assert 'id="triage"' in text and "机动车交通事故责任纠纷" in text  # a reason's param
    assert "法院指派调解员" in text  # the assignment countdown
    text = await page(applicant, LOAN)
    assert 'data-hint="wait"' in text and "记录调解不成" not in text
    assert 'id="triage"' not in text

    # a refused form comes back with the reason on the page; a forged one shows nothing
    token = await clients.csrf(mediator)
    response = await mediator.post(
        f"/disputes/{LOAN}/actions/record_failure",
        data={"_csrf": token, "report": "分歧较大"},
    )
    assert response.status == 200 and "该项填写不正确：grounds" in await response.text()
    text = await (await mediator.get(f"/disputes/{LOAN}?error=forged")).text()
    assert 'role="alert"' not in text

    report = "双方对借款金额和利息计算分歧较大，难以达成一致"
    failure = {"grounds": ["irreconcilable"], "report": report}
    await ok(await act(clients, mediator, LOAN, "record_failure", failure))
    text = await page(applicant, LOAN)
    assert "选择立案" in text and "不申请立案" in text and 'data-hint="act"' in text
    text = await page(respondent, LOAN)
    assert "选择立案" not in text and 'data-hint="wait"' in text and "调解不成" in text
    await ok(await act(clients, applicant, LOAN, "choose_filing", {}))
    text = await page(clerk, LOAN)
    assert "登记立案" in text and 'name="case_number"' in text
    assert 'id="filing-package"' in text and report in text
    text = await page(applicant, LOAN)
    assert 'id="filing-package"' not in text and 'data-hint="wait"' in text
    await ok(
        await act(clients, clerk, LOAN, "register_case", {"case_number": "（2026）演0101民初9号"})
    )
    text = await page(applicant, LOAN)
    assert "已转立案" in text and "（2026）演0101民初9号" in text
    assert 'data-event="case_registered"' in text and "卫书记员" in text


async def test_a_clerk_registers_any_case_in_the_courts_filing_queue(clients: Clients) -> None:
    """The clerk is on no staff list of dispute 2, but its filing is the clerk's work."""
    clerk = await clients.staff("shujiyuan")
    assert (await clerk.get("/api/v1/disputes/2")).status == 404  # not in filing yet
    officer = await clients.staff("fenliu")
    routed = await clients.post_json(
        officer, "/api/v1/disputes/2/actions/route_to_filing", {"reason": "保险合同纠纷，需要审理"}
    )
    assert routed.status == 200, await routed.text()
    assert (await clerk.get("/api/v1/disputes/2")).status == 200
    registered = await clients.post_json(
        clerk, "/api/v1/disputes/2/actions/register_case", {"case_number": "（2026）演0101民初9号"}
    )
    assert registered.status == 200, await registered.text()
    assert (await registered.json())["status"] == "filed"
    staff = (await (await clerk.get("/api/v1/disputes/2")).json())["staff"]
    assert {"role": "clerk", "name": "卫书记员"} in staff  # the registering clerk is on the case


async def test_opening_mediation_asks_the_respondent_who_can_then_answer_online(
    clients: Clients,
) -> None:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction() as session:
            insurer = await session.scalar(
                select(DisputeParty).where(
                    DisputeParty.dispute_id == 2, DisputeParty.side == DisputeRole.RESPONDENT
                )
            )
            assert insurer is not None and insurer.user_id is None
            insurer.phone = "13700000009"
    finally:
        await db.dispose()
    officer = await clients.staff("fenliu")
    accepted = await clients.post_json(officer, "/api/v1/disputes/2/actions/accept_triage", {})
    assert accepted.status == 200, await accepted.text()
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            sent = list(
                await session.scalars(
                    select(OutboxMessage).where(OutboxMessage.destination == "13700000009")
                )
            )
    finally:
        await db.dispose()
    assert any("/invite/" in m.body for m in sent)
    respondent = await clients.party("13700000009")
    assert (await respondent.get("/api/v1/disputes/2")).status == 200
    answered = await clients.post_json(
        respondent, "/api/v1/disputes/2/actions/record_respondent_consent", {}
    )
    assert answered.status == 200, await answered.text()


async def test_the_parties_choose_a_mediator_together(clients: Clients) -> None:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction() as session:
            insurer = await session.scalar(
                select(DisputeParty).where(
                    DisputeParty.dispute_id == 2, DisputeParty.side == DisputeRole.RESPONDENT
                )
            )
            assert insurer is not None
            insurer.phone = "13700000010"
            mediator = await session.scalar(select(User).where(User.username == "tiaojie3"))
            other = await session.scalar(select(User).where(User.username == "tiaojie"))
            assert mediator is not None and other is not None
    finally:
        await db.dispose()
    officer = await clients.staff("fenliu")
    assert (
        await clients.post_json(officer, "/api/v1/disputes/2/actions/accept_triage", {})
    ).status == 200
    applicant = await clients.party("13800000003")
    respondent = await clients.party("13700000010")
    steps = await (await applicant.get("/api/v1/disputes/2/next-steps")).json()
    assert "propose_mediator" in [s["key"] for s in steps["steps"]]

    async def propose(client: Any, user_id: int) -> Any:
        response = await clients.post_json(
            client, "/api/v1/disputes/2/actions/propose_mediator", {"mediator_id": user_id}
        )
        assert response.status == 200, await response.text()
        return await response.json()

    assert (await propose(applicant, mediator.id))["status"] == "awaiting_mediator"
    assert (await propose(respondent, other.id))["status"] == "awaiting_mediator"
    chosen = await propose(respondent, mediator.id)
    assert chosen["status"] == "mediator_assigned"
    assert [e["name"] for e in chosen["events"]] == ["mediator_chosen_jointly"]
    tiaojie3 = await clients.staff("tiaojie3")
    assert (await tiaojie3.get("/api/v1/disputes/2")).status == 200
