"""Who may open what: every role of the demo court against every page and API read.

One expectations table drives the walk.  A dispute the caller may not see answers
404 (as if it did not exist, and without any of its data); a role that may not
use an endpoint at all answers 403; every such refusal leaves an ``access.denied``
audit row naming the caller.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.db.engine import Database
from server.db.models import AuditEvent
from tests.support import Clients

LOAN, TRAFFIC = 1, 2
# a phrase of each dispute's summary: it must never reach someone who may not see it
SUMMARY = {LOAN: "借给被申请人人民币五万元", TRAFFIC: "两车在路口相撞"}
DISPUTE_TYPE = {LOAN: "loan", TRAFFIC: "traffic"}

PAGES = ("/", "/disputes", "/disputes/1", "/disputes/2", "/admin/users", "/admin/audit", "/account")
APIS = (
    "/api/v1/me",
    "/api/v1/disputes",
    "/api/v1/disputes/1",
    "/api/v1/disputes/2",
    "/api/v1/users",
    "/api/v1/roster",
    "/api/v1/audit",
    "/api/v1/audit/verify",
)

# the permission an endpoint's refusal is audited with
PERMISSION = {
    "/disputes/1": "dispute.view",
    "/disputes/2": "dispute.view",
    "/api/v1/disputes/1": "dispute.view",
    "/api/v1/disputes/2": "dispute.view",
    "/admin/users": "users.manage",
    "/api/v1/users": "users.manage",
    "/admin/audit": "audit.view",
    "/api/v1/audit": "audit.view",
    "/api/v1/audit/verify": "audit.view",
    "/api/v1/roster": "roster.view",
}


@dataclass(frozen=True)
class Who:
    """How a role logs in: a staff username, a party's phone, or not at all."""

    login: str | None = None
    staff: bool = False
    role: str | None = None  # what /api/v1/me reports


@dataclass(frozen=True)
class Expected:
    pages: tuple[int, ...]
    api: tuple[int, ...]
    visible: frozenset[int]  # the dispute ids GET /api/v1/disputes lists


def row(pages: tuple[int, ...], api: tuple[int, ...], *visible: int) -> Expected:
    assert len(pages) == len(PAGES) and len(api) == len(APIS)
    return Expected(pages, api, frozenset(visible))


WHO: dict[str, Who] = {
    "anonymous": Who(),
    "applicant-1": Who("13800000001", role="party"),
    "party-2": Who("13800000003", role="party"),
    "agent-2": Who("13800000005", role="agent"),
    "mediator-1": Who("tiaojie", staff=True, role="mediator"),
    "mediator-none": Who("tiaojie2", staff=True, role="mediator"),
    "triage": Who("fenliu", staff=True, role="triage_officer"),
    "judge-1": Who("faguan", staff=True, role="judge"),
    "clerk-1": Who("shujiyuan", staff=True, role="clerk"),
    "admin": Who("admin", staff=True, role="court_admin"),
}

# fmt: off
EXPECTED: dict[str, Expected] = {
    # first tuple: PAGES, second tuple: APIS, then the dispute ids the role may see
    # (usr: users, aud: audit, acct: account, rost: roster, vrfy: audit/verify)
    #                     /    list d/1  d/2  usr  aud  acct
    #                     me   list d/1  d/2  usr  rost aud  vrfy            visible
    "anonymous":     row((303, 303, 303, 303, 303, 303, 303),
                         (401, 401, 401, 401, 401, 401, 401, 401)),
    "applicant-1":   row((200, 200, 200, 404, 403, 403, 200),
                         (200, 200, 200, 404, 403, 403, 403, 403),           LOAN),
    "party-2":       row((200, 200, 404, 200, 403, 403, 200),
                         (200, 200, 404, 200, 403, 403, 403, 403),           TRAFFIC),
    "agent-2":       row((200, 200, 404, 200, 403, 403, 200),
                         (200, 200, 404, 200, 403, 403, 403, 403),           TRAFFIC),
    "mediator-1":    row((200, 200, 200, 404, 403, 403, 200),
                         (200, 200, 200, 404, 403, 200, 403, 403),           LOAN),
    "mediator-none": row((200, 200, 404, 404, 403, 403, 200),
                         (200, 200, 404, 404, 403, 200, 403, 403)),
    "triage":        row((200, 200, 200, 200, 403, 403, 200),
                         (200, 200, 200, 200, 403, 200, 403, 403),           LOAN, TRAFFIC),
    "judge-1":       row((200, 200, 200, 404, 403, 403, 200),
                         (200, 200, 200, 404, 403, 200, 403, 403),           LOAN),
    "clerk-1":       row((200, 200, 200, 404, 403, 403, 200),
                         (200, 200, 200, 404, 403, 200, 403, 403),           LOAN),
    "admin":         row((200, 200, 200, 200, 200, 200, 200),
                         (200, 200, 200, 200, 200, 200, 200, 200),           LOAN, TRAFFIC),
}
# fmt: on


def dispute_of(path: str) -> int | None:
    """The dispute id a /disputes/<id> or /api/v1/disputes/<id> path names."""
    head, _, tail = path.rpartition("/")
    return int(tail) if head.endswith("/disputes") and tail.isdigit() else None


async def login(clients: Clients, who: Who) -> TestClient[Any, Any]:
    if who.login is None:
        return await clients.new()
    if who.staff:
        return await clients.staff(who.login)
    return await clients.party(who.login)


async def denied_rows(clients: Clients) -> list[AuditEvent]:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            rows = await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "access.denied")
                .order_by(AuditEvent.seq)
            )
            return list(rows.all())
    finally:
        await db.dispose()


def check_content(
    role: str, path: str, response: ClientResponse, text: str, expected: Expected
) -> list[str]:
    """What a response shows, beyond its status; returns the problems found."""
    problems: list[str] = []

    def fail(what: str) -> None:
        problems.append(f"{role:<14} GET {path:<22} {what}")

    for dispute_id, phrase in SUMMARY.items():
        if dispute_id not in expected.visible and phrase in text:
            fail(f"leaks the summary of dispute {dispute_id}")
    status = response.status
    is_api = path.startswith("/api/")
    if status == 303:
        location = response.headers.get("Location")
        if location != f"/login?next={quote(path, safe='')}":
            fail(f"redirects to {location!r}, not to the login page")
        return problems
    if is_api and status != 200:
        code = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}[status]
        body = as_json(text)
        if body.get("error", {}).get("code") != code:
            fail(f"answers {status} with {text[:120]!r}, not error code {code!r}")
        return problems
    if status != 200:
        return problems
    wanted = dispute_of(path)
    if wanted is not None:
        if is_api:
            body = as_json(text)
            if body.get("id") != wanted or body.get("type") != DISPUTE_TYPE[wanted]:
                fail(f"shows dispute {body.get('id')} ({body.get('type')}), not {wanted}")
        if SUMMARY[wanted] not in text:
            fail(f"does not show the summary of dispute {wanted}")
    elif path in ("/", "/disputes"):
        for dispute_id in SUMMARY:
            linked = f'href="/disputes/{dispute_id}"' in text
            if linked != (dispute_id in expected.visible):
                fail(f"links dispute {dispute_id}: {linked}, expected {not linked}")
    elif path == "/api/v1/me":
        body = as_json(text)
        if body.get("role") != WHO[role].role:
            fail(f"reports role {body.get('role')!r}, expected {WHO[role].role!r}")
    elif path == "/api/v1/disputes":
        body = as_json(text)
        listed = sorted(item["id"] for item in body["items"])
        if listed != sorted(expected.visible) or body["total"] != len(expected.visible):
            fail(f"lists {listed} (total {body['total']}), expected {sorted(expected.visible)}")
    elif path == "/api/v1/users":
        body = as_json(text)
        if body["total"] != 11:
            fail(f"lists {body['total']} accounts, expected the 11 demo accounts")
    elif path == "/api/v1/roster":
        body = as_json(text)
        names = sorted(item["name"] for item in body["items"])
        if names != sorted(["郑调解", "冯调解", "陈调解"]):
            fail(f"lists mediators {names}")
    elif path == "/api/v1/audit/verify":
        body = as_json(text)
        if body.get("ok") is not True:
            fail(f"reports a broken audit chain: {body}")
    return problems


def as_json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    assert isinstance(value, dict), text
    return value


async def test_each_role_sees_exactly_its_share_and_every_refusal_is_audited(
    clients: Clients,
) -> None:
    browsers = {role: await login(clients, who) for role, who in WHO.items()}
    user_ids: dict[str, int] = {}
    for role, browser in browsers.items():
        if WHO[role].login is not None:
            me = await browser.get("/api/v1/me")
            assert me.status == 200, f"{role}: /api/v1/me answered {me.status}"
            user_ids[role] = (await me.json())["id"]
    assert len(set(user_ids.values())) == len(user_ids), user_ids

    failures: list[str] = []
    refusals: Counter[tuple[int | None, str, int | None, Any]] = Counter()
    for role, expected in EXPECTED.items():
        browser = browsers[role]
        for paths, statuses in ((PAGES, expected.pages), (APIS, expected.api)):
            for path, status in zip(paths, statuses, strict=True):
                response = await browser.get(path, allow_redirects=False)
                text = await response.text()
                if response.content_type == "application/json":
                    # JSON escapes Chinese; compare against the decoded text
                    text = json.dumps(json.loads(text), ensure_ascii=False)
                if response.status != status:
                    failures.append(
                        f"{role:<14} GET {path:<22} expected {status}, got {response.status}"
                    )
                    continue
                failures += check_content(role, path, response, text, expected)
                if status in (403, 404):
                    refusals[
                        (user_ids[role], f"GET {path}", dispute_of(path), PERMISSION[path])
                    ] += 1
    assert not failures, "access matrix mismatches:\n" + "\n".join(failures)

    audited = Counter(
        (row.actor_id, row.object_id, row.dispute_id, row.details.get("permission"))
        for row in await denied_rows(clients)
        if row.outcome == "denied"
    )
    missing = refusals - audited
    extra = audited - refusals
    assert not missing and not extra, (
        f"refusals without an access.denied row: {sorted(missing, key=str)}\n"
        f"access.denied rows for no refusal: {sorted(extra, key=str)}"
    )


async def test_someone_elses_dispute_looks_like_one_that_does_not_exist(
    clients: Clients,
) -> None:
    applicant = await clients.party("13800000001")
    admin = await clients.staff("admin")
    me = await (await applicant.get("/api/v1/me")).json()

    foreign = await applicant.get("/api/v1/disputes/2")
    missing = await applicant.get("/api/v1/disputes/999999")
    assert foreign.status == missing.status == 404
    assert await foreign.json() == await missing.json()
    page_foreign = await applicant.get("/disputes/2")
    page_missing = await applicant.get("/disputes/999999")
    assert page_foreign.status == page_missing.status == 404
    assert SUMMARY[TRAFFIC] not in await page_foreign.text()

    audit = await admin.get("/api/v1/audit", params={"per_page": "100"})
    assert audit.status == 200
    denials = [
        item
        for item in (await audit.json())["items"]
        if item["action"] == "access.denied" and item["actor_id"] == me["id"]
    ]
    seen = sorted((item["object_id"], item["dispute_id"]) for item in denials)
    assert seen == [
        ("GET /api/v1/disputes/2", 2),
        ("GET /api/v1/disputes/999999", 999999),
        ("GET /disputes/2", 2),
        ("GET /disputes/999999", 999999),
    ]
    for item in denials:
        assert item["actor_role"] == "party" and item["actor_name"] == "张三"
        assert item["outcome"] == "denied"
        assert item["details"]["permission"] == "dispute.view"
