"""Work queues, the court overview, the roster with loads and mediator suggestions.

On top of the demo court (dispute 1 mediating with 郑调解, dispute 2 triaged) the
tests file a dozen more disputes through the real workflow, as the platform, so that
each role's queue has something to hold and something it must not hold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from server.db.engine import Database
from server.db.models import Court, Dispute, DisputeParty, DisputeStaff, Mediator, User
from server.demo import DEMO_COURT_CODE
from server.domain import commands as cmd
from server.domain.calendar import WorkingCalendar
from server.domain.disputes import Complexity, DisputeType
from server.domain.roles import DisputeRole
from server.services import workflow
from tests.support import Clients

LOAN, TRAFFIC = 1, 2  # the demo court's disputes

SUBMIT = cmd.SubmitApplication(online_mediation_consent=True, electronic_service_consent=True)
SUITABLE = cmd.RecordTriage(Complexity.SIMPLE, 10, True)
UNSUITABLE = cmd.RecordTriage(Complexity.COMPLEX, 90, False)
OPEN = (SUBMIT, SUITABLE, cmd.AcceptTriage())
TO_FILING = (SUBMIT, UNSUITABLE, cmd.RouteToFiling(reason="不适宜调解"))


def assigned(mediator: int) -> tuple[cmd.Command, ...]:
    return (*OPEN, cmd.AssignMediator(mediator_id=mediator))


def mediating(mediator: int) -> tuple[cmd.Command, ...]:
    return (
        *assigned(mediator),
        cmd.AcceptAssignment(mediator_id=mediator),
        cmd.RecordRespondentConsent(),
    )


def agreed(mediator: int) -> tuple[cmd.Command, ...]:
    return (*mediating(mediator), cmd.RecordAgreement(summary="双方同意分期还款"))


@dataclass
class Seeded:
    """The demo court's people and the disputes added for the tests, by name."""

    users: dict[str, int]
    ids: dict[str, int]
    numbers: dict[str, str]


async def _file(
    session: Any,
    court_id: int,
    name: str,
    kind: DisputeType,
    steps: Sequence[cmd.Command] = (),
    *,
    at: datetime | None = None,
    created_by: int | None = None,
    staff: Sequence[tuple[int, DisputeRole]] = (),
) -> Dispute:
    dispute = Dispute(
        court_id=court_id,
        number=f"（2026）演0101诉前调-测试-{name}",
        dispute_type=kind.value,
        status="draft",
        claim_amount=Decimal("1000.00"),
        summary=f"测试纠纷 {name}",
        requests="请求调解",
        created_by_id=created_by,
    )
    session.add(dispute)
    await session.flush()
    session.add(DisputeParty(dispute_id=dispute.id, side=DisputeRole.APPLICANT, name="测试人"))
    for user_id, role in staff:
        session.add(DisputeStaff(dispute_id=dispute.id, user_id=user_id, role=role))
    await session.flush()
    for command in steps:
        await workflow.execute(
            session, None, dispute.id, command, calendar=WorkingCalendar(), now=at
        )
    return dispute


@pytest.fixture
async def court(clients: Clients) -> Seeded:
    database = Database(clients.settings.database_url)
    try:
        async with database.transaction() as session:
            court_id = await session.scalar(select(Court.id).where(Court.code == DEMO_COURT_CODE))
            assert court_id is not None
            users = {
                str(username): int(user_id)
                for username, user_id in (
                    await session.execute(
                        select(User.username, User.id).where(User.username.is_not(None))
                    )
                ).tuples()
            }
            users["applicant"] = int(
                await session.scalar(select(User.id).where(User.phone == "13800000001")) or 0
            )
            m1, m2 = users["tiaojie"], users["tiaojie2"]
            clerk = (users["shujiyuan"], DisputeRole.CLERK)
            judge = (users["faguan"], DisputeRole.JUDGE)
            long_ago = datetime.now(UTC) - timedelta(days=20)
            filed = {
                # 郑调解's: an overdue assignment, and an agreement awaiting signatures
                "late": await _file(
                    session, court_id, "late", DisputeType.LOAN, assigned(m1), at=long_ago
                ),
                "agreed": await _file(session, court_id, "agreed", DisputeType.SALE, agreed(m1)),
                # 冯调解's
                "other_mediator": await _file(
                    session, court_id, "m2", DisputeType.TRAFFIC, assigned(m2)
                ),
                # the triage officer's: one 郑调解 declined, one family dispute
                "declined": await _file(
                    session,
                    court_id,
                    "declined",
                    DisputeType.LOAN,
                    (*assigned(m1), cmd.DeclineAssignment(mediator_id=m1, reason="回避")),
                ),
                "family": await _file(session, court_id, "family", DisputeType.FAMILY, OPEN),
                # the judge's: a confirmation application and a fast-track case
                "confirmation": await _file(
                    session,
                    court_id,
                    "confirmation",
                    DisputeType.LOAN,
                    (*agreed(m1), cmd.RecordAllSignatures(), cmd.ApplyForConfirmation()),
                    staff=[judge],
                ),
                "filed": await _file(
                    session,
                    court_id,
                    "filed",
                    DisputeType.LABOUR,
                    (*TO_FILING, cmd.RegisterCase(case_number="（2026）演0101民初1号")),
                    staff=[judge],
                ),
                # the clerk's: cases to register (the court's filing track is the clerks'
                # as a whole), a failed mediation the clerk is on, a walk-in draft
                "to_register": await _file(
                    session, court_id, "to_register", DisputeType.SALE, TO_FILING, staff=[clerk]
                ),
                "failed": await _file(
                    session,
                    court_id,
                    "failed",
                    DisputeType.LOAN,
                    (*OPEN, cmd.RecordRespondentRefusal(reason="不同意调解")),
                    staff=[clerk],
                ),
                "walk_in": await _file(
                    session,
                    court_id,
                    "walk_in",
                    DisputeType.CONSUMER,
                    created_by=clerk[0],
                    staff=[clerk],
                ),
                "unassigned_filing": await _file(
                    session, court_id, "unassigned", DisputeType.SALE, TO_FILING
                ),
                # not the clerk's: a party's own draft, a failed mediation the clerk is not on
                "party_draft": await _file(
                    session,
                    court_id,
                    "party_draft",
                    DisputeType.OTHER,
                    created_by=users["applicant"],
                    staff=[clerk],
                ),
                "failed_elsewhere": await _file(
                    session,
                    court_id,
                    "failed_elsewhere",
                    DisputeType.SALE,
                    (*OPEN, cmd.RecordRespondentRefusal(reason="联系不上")),
                ),
            }
            # 冯调解 takes one case at a time, and has one
            await session.execute(
                update(Mediator).where(Mediator.user_id == m2).values(max_active_cases=1)
            )
    finally:
        await database.dispose()
    return Seeded(
        users,
        {name: d.id for name, d in filed.items()},
        {name: d.number for name, d in filed.items()},
    )


async def queue_ids(clients: Clients, account: str, **params: str) -> tuple[list[int], Any]:
    browser = await clients.staff(account)
    response = await browser.get("/api/v1/queue", params=params)
    assert response.status == 200, await response.text()
    body = await response.json()
    return [item["id"] for item in body["items"]], body


async def test_each_role_queue_lists_exactly_its_disputes(clients: Clients, court: Seeded) -> None:
    ids = court.ids
    listed, body = await queue_ids(clients, "tiaojie")
    assert listed == [ids["late"], LOAN, ids["agreed"]]  # overdue first, no deadline last
    assert body["role"] == "mediator" and body["overdue"] == 1 and body["total"] == 3
    assert body["counts"] == {"mediator_assigned": 1, "mediating": 1, "agreement_reached": 1}

    listed, body = await queue_ids(clients, "tiaojie2")
    assert listed == [ids["other_mediator"]]

    listed, body = await queue_ids(clients, "fenliu")
    assert sorted(listed) == sorted([TRAFFIC, ids["declined"], ids["family"]])
    assert body["overdue"] == 0

    listed, body = await queue_ids(clients, "shujiyuan")
    assert sorted(listed) == sorted(
        [ids["to_register"], ids["unassigned_filing"], ids["failed"], ids["walk_in"]]
    )
    assert body["counts"] == {"filing_pending": 2, "failed": 1, "draft": 1}

    listed, body = await queue_ids(clients, "faguan")
    assert sorted(listed) == sorted([ids["confirmation"], ids["filed"]])

    listed, body = await queue_ids(clients, "faguan", status="confirmation")
    assert listed == [ids["confirmation"]] and body["total"] == 1


async def test_the_court_overview_counts_by_status_and_lists_the_overdue(
    clients: Clients, court: Seeded
) -> None:
    listed, body = await queue_ids(clients, "admin")
    assert body["overdue_only"] is True
    assert listed == [court.ids["late"]] and body["items"][0]["overdue"] is True
    assert body["counts"] == {
        "mediating": 1,
        "triaged": 1,
        "mediator_assigned": 2,
        "agreement_reached": 1,
        "awaiting_mediator": 2,
        "confirmation": 1,
        "filed": 1,
        "filing_pending": 2,
        "failed": 2,
        "draft": 2,
    }
    admin = await clients.staff("admin")
    assert (await admin.get("/roster")).status == 200
    page = await (await admin.get("/queue")).text()
    assert 'data-status="filing_pending">2<' in page
    assert f'data-dispute="{court.ids["late"]}" data-overdue="1"' in page


async def test_an_overdue_item_is_flagged_with_its_countdown_and_listed_first(
    clients: Clients, court: Seeded
) -> None:
    _, body = await queue_ids(clients, "tiaojie")
    first, second = body["items"][0], body["items"][1]
    assert first["id"] == court.ids["late"] and first["overdue"] is True
    kinds = {d["kind"]: d for d in first["deadlines"]}
    assert kinds["acceptance"]["overdue"] is True
    assert kinds["acceptance"]["remaining_working_days"] < 0
    assert second["overdue"] is False
    assert [d["kind"] for d in second["deadlines"]] == ["mediation_period"]
    assert second["deadlines"][0]["remaining_days"] > 20

    mediator = await clients.staff("tiaojie")
    page = await (await mediator.get("/queue")).text()
    late_row = page.index(f'data-dispute="{court.ids["late"]}"')
    assert late_row < page.index(f'data-dispute="{LOAN}"')
    assert f'data-dispute="{court.ids["late"]}" data-overdue="1"' in page
    assert "<mark>" in page[late_row : page.index("</tr>", late_row)]
    home = await (await mediator.get("/")).text()
    assert court.numbers["late"] in home and 'href="/queue"' in home


async def test_queues_are_paged(clients: Clients, court: Seeded) -> None:
    seen = []
    for number in (1, 2, 3):
        listed, body = await queue_ids(clients, "tiaojie", page=str(number), per_page="1")
        assert body["pages"] == 3 and body["total"] == 3 and len(listed) == 1
        seen += listed
    assert seen == [court.ids["late"], LOAN, court.ids["agreed"]]
    listed, body = await queue_ids(clients, "tiaojie", page="4", per_page="1")
    assert listed == []
    mediator = await clients.staff("tiaojie")
    page = await (await mediator.get("/queue", params={"per_page": "1", "page": "2"})).text()
    assert f'data-dispute="{LOAN}"' in page and f'data-dispute="{court.ids["late"]}"' not in page
    assert "page=3" in page and "page=1" in page
    assert (await mediator.get("/api/v1/queue", params={"status": "filed"})).status == 400


async def test_the_roster_shows_each_mediators_load(clients: Clients, court: Seeded) -> None:
    triage = await clients.staff("fenliu")
    page = await (await triage.get("/roster")).text()
    loads = {
        int(user): load
        for user, load in re.findall(
            r'<tr data-user="(\d+)">.*?<td class="num load">(?:<mark>)?([^<]+)', page, re.S
        )
    }
    users = court.users
    assert loads == {
        users["tiaojie"]: "3 / 20",  # dispute 1, the late one and the agreement
        users["tiaojie2"]: "1 / 1",
        users["tiaojie3"]: "0 / 20",
    }
    filtered = await (await triage.get("/roster", params={"case_type": "family"})).text()
    assert "陈调解" in filtered and "郑调解" not in filtered
    assert "/admin/roster" not in page
    admin = await clients.staff("admin")
    assert "调解员名册" in await (await admin.get("/roster")).text()


async def test_suggestions_rank_a_matching_idle_mediator_first_and_leave_out_excluded_and_full(
    clients: Clients, court: Seeded
) -> None:
    users = court.users
    triage = await clients.staff("fenliu")
    response = await triage.get(
        "/api/v1/roster/suggestions", params={"dispute_id": str(court.ids["family"])}
    )
    assert response.status == 200, await response.text()
    items = (await response.json())["items"]
    # 陈调解 takes family disputes and is idle; 冯调解 is full
    assert [i["user_id"] for i in items] == [users["tiaojie3"], users["tiaojie"]]
    best = items[0]
    assert best["case_type_match"] is True and best["matched_specialities"] == ["婚姻家庭"]
    assert best["load"] == 0 and best["rank"] == 1
    assert any("0" in reason and "20" in reason for reason in best["reasons"])

    response = await triage.get(
        "/api/v1/roster/suggestions", params={"dispute_id": str(court.ids["declined"])}
    )
    items = (await response.json())["items"]
    assert users["tiaojie"] not in [i["user_id"] for i in items]  # declined it
    assert [i["user_id"] for i in items] == [users["tiaojie3"]]

    page = await (
        await triage.get("/roster", params={"dispute_id": str(court.ids["family"])})
    ).text()
    assert court.numbers["family"] in page and page.index("陈调解") < page.index("郑调解")

    admin = await clients.staff("admin")
    response = await admin.get(
        "/api/v1/roster/suggestions", params={"dispute_id": str(court.ids["family"])}
    )
    assert response.status == 200
    mediator = await clients.staff("tiaojie")
    response = await mediator.get("/api/v1/roster/suggestions", params={"dispute_id": str(LOAN)})
    assert response.status == 403
    missing = await triage.get("/api/v1/roster/suggestions", params={"dispute_id": "999999"})
    assert missing.status == 404
    assert (await triage.get("/api/v1/roster/suggestions")).status == 400


async def test_parties_have_no_queue_and_no_roster(clients: Clients, court: Seeded) -> None:
    party = await clients.party("13800000001")
    for path in ("/queue", "/roster", "/api/v1/queue", "/api/v1/roster/suggestions?dispute_id=1"):
        response = await party.get(path)
        assert response.status == 403, path


async def test_the_party_home_shows_each_dispute_with_its_next_step_in_chinese(
    clients: Clients, court: Seeded
) -> None:
    party = await clients.party("13800000001")
    home = await (await party.get("/")).text()
    start = home.index(f'<tr data-dispute="{LOAN}">')
    row = home[start : home.index("</tr>", start)]
    assert "调解中" in row  # status
    assert "申请更换调解员" in row and "撤回申请" in row  # what the applicant may do
    assert "调解期限届满" in row  # the running deadline, with its countdown
    assert f'href="/disputes/{TRAFFIC}"' not in home
