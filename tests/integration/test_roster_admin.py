"""The court admin keeps the mediator roster: organisations and mediators, through the
JSON API and the pages; deactivated mediators leave the suggestions but keep their
disputes; every change is audited; nobody else may touch it.

The demo court has dispute 1 (a loan) mediating with 郑调解 and dispute 2 (a traffic
accident) triaged and waiting for the triage officer, for whom every active mediator
of the court with free capacity is a suggestion.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.db.engine import Database
from server.db.models import AuditEvent, Dispute, MediationOrganisation, Mediator, User
from tests.support import Clients

LOAN, TRAFFIC = 1, 2
ORGANISATIONS = "/api/v1/roster/organisations"
MEDIATORS = "/api/v1/roster/mediators"
NEW_PASSWORD = "Mediator-2026-pass"


async def patch_json(clients: Clients, client: TestClient[Any, Any], path: str, body: Any) -> Any:
    token = await clients.csrf(client)
    return await client.patch(path, json=body, headers={"X-CSRF-Token": token})


async def post_form(
    clients: Clients, client: TestClient[Any, Any], path: str, data: list[tuple[str, str]]
) -> Any:
    token = await clients.csrf(client)
    return await client.post(path, data=[("_csrf", token), *data], allow_redirects=False)


async def suggested(clients: Clients, dispute_id: int) -> list[int]:
    triage = await clients.staff("fenliu")
    response = await triage.get(
        "/api/v1/roster/suggestions", params={"dispute_id": str(dispute_id)}
    )
    assert response.status == 200, await response.text()
    return [item["user_id"] for item in (await response.json())["items"]]


async def audit_rows(clients: Clients) -> list[AuditEvent]:
    database = Database(clients.settings.database_url)
    try:
        async with database.transaction(write=False) as session:
            return list(
                (
                    await session.scalars(
                        select(AuditEvent)
                        .where(AuditEvent.action.like("roster.%"))
                        .order_by(AuditEvent.seq)
                    )
                ).all()
            )
    finally:
        await database.dispose()


async def user_id(clients: Clients, username: str) -> int:
    database = Database(clients.settings.database_url)
    try:
        async with database.transaction(write=False) as session:
            found = await session.scalar(select(User.id).where(User.username == username))
    finally:
        await database.dispose()
    assert found is not None
    return int(found)


async def test_the_admin_adds_an_organisation_and_a_mediator_edits_and_deactivates(
    clients: Clients,
) -> None:
    admin = await clients.staff("admin")
    response = await clients.post_json(
        admin, ORGANISATIONS, {"name": "演示区保险纠纷调解中心", "kind": "industry"}
    )
    assert response.status == 201, await response.text()
    organisation = await response.json()
    assert organisation["active"] is True and organisation["mediators"] == 0
    assert organisation["kind"] == "industry"

    response = await clients.post_json(
        admin,
        MEDIATORS,
        {
            "account": {
                "name": "韩调解",
                "username": "tiaojie9",
                "phone": "13900000099",
                "password": NEW_PASSWORD,
            },
            "organisation_id": organisation["id"],
            "specialities": ["保险理赔", "交通事故"],
            "case_types": ["traffic", "consumer"],
            "languages": ["zh", "YUE"],
            "max_active_cases": 5,
        },
    )
    assert response.status == 201, await response.text()
    mediator = await response.json()
    assert mediator["name"] == "韩调解" and mediator["organisation"] == "演示区保险纠纷调解中心"
    assert mediator["languages"] == ["zh", "yue"] and mediator["max_active_cases"] == 5
    assert mediator["active"] is True and mediator["load"] == 0
    new_user = mediator["user_id"]
    assert new_user == await user_id(clients, "tiaojie9")

    # the new account logs in as a mediator, and is suggested for the traffic dispute
    assert (await clients.staff("tiaojie9", NEW_PASSWORD)) is not None
    assert new_user in await suggested(clients, TRAFFIC)

    response = await patch_json(
        clients, admin, f"{MEDIATORS}/{mediator['id']}", {"case_types": ["family", "labour"]}
    )
    assert response.status == 200, await response.text()
    changed = await response.json()
    assert changed["case_types"] == ["family", "labour"]
    assert changed["specialities"] == ["保险理赔", "交通事故"]  # untouched

    response = await patch_json(
        clients, admin, f"{MEDIATORS}/{mediator['id']}", {"case_types": ["family", "piracy"]}
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["field"] == "case_types" and "piracy" in error["message"]
    listed = await (await admin.get(f"{MEDIATORS}/{mediator['id']}")).json()
    assert listed["case_types"] == ["family", "labour"]  # the refused change left nothing

    response = await patch_json(clients, admin, f"{MEDIATORS}/{mediator['id']}", {"active": False})
    assert response.status == 200 and (await response.json())["active"] is False
    assert new_user not in await suggested(clients, TRAFFIC)

    # still on the admin's list, as inactive; gone from the active roster
    response = await admin.get(MEDIATORS, params={"active": "no"})
    assert [m["id"] for m in (await response.json())["items"]] == [mediator["id"]]
    response = await admin.get("/api/v1/roster", params={"case_type": "family"})
    assert new_user not in [m["user_id"] for m in (await response.json())["items"]]
    response = await admin.get(ORGANISATIONS)
    mine = [o for o in (await response.json())["items"] if o["id"] == organisation["id"]]
    assert mine[0]["mediators"] == 1

    rows = await audit_rows(clients)
    assert [row.action for row in rows] == [
        "roster.organisation_created",
        "roster.mediator_added",
        "roster.mediator_updated",
        "roster.mediator_deactivated",
    ]
    created, added, updated, deactivated = rows
    assert created.details["after"]["name"] == "演示区保险纠纷调解中心"
    assert added.details["after"]["case_types"] == ["traffic", "consumer"]
    assert added.details["after"]["new_account"] is True
    assert "password" not in str(added.details)
    assert updated.details == {
        "before": {"case_types": ["traffic", "consumer"]},
        "after": {"case_types": ["family", "labour"]},
    }
    assert deactivated.details["before"] == {"active": True}
    assert deactivated.details["after"] == {"active": False}
    assert all(row.actor_role == "court_admin" for row in rows)


async def test_deactivating_keeps_the_mediators_disputes_and_drops_them_from_suggestions(
    clients: Clients,
) -> None:
    zheng = await user_id(clients, "tiaojie")
    assert zheng in await suggested(clients, TRAFFIC)
    admin = await clients.staff("admin")
    response = await admin.get(MEDIATORS, params={"q": "郑"})
    entry = (await response.json())["items"][0]
    assert entry["user_id"] == zheng and entry["load"] == 1

    response = await patch_json(clients, admin, f"{MEDIATORS}/{entry['id']}", {"active": False})
    assert response.status == 200, await response.text()
    assert zheng not in await suggested(clients, TRAFFIC)

    database = Database(clients.settings.database_url)
    try:
        async with database.transaction(write=False) as session:
            loan = await session.get(Dispute, LOAN)
            assert loan is not None and loan.mediator_user_id == zheng
    finally:
        await database.dispose()
    mediator = await clients.staff("tiaojie")
    queue = await (await mediator.get("/api/v1/queue")).json()
    assert LOAN in [item["id"] for item in queue["items"]]
    rows = await audit_rows(clients)
    assert rows[-1].action == "roster.mediator_deactivated"
    assert rows[-1].details["kept_disputes"] == 1

    # reactivated, suggested again
    response = await patch_json(clients, admin, f"{MEDIATORS}/{entry['id']}", {"active": True})
    assert response.status == 200
    assert zheng in await suggested(clients, TRAFFIC)
    assert (await audit_rows(clients))[-1].action == "roster.mediator_reactivated"


async def test_bad_input_is_refused_naming_the_field(clients: Clients) -> None:
    admin = await clients.staff("admin")
    organisations = (await (await admin.get(ORGANISATIONS)).json())["items"]
    people = next(o for o in organisations if o["kind"] == "people")
    mediators = (await (await admin.get(MEDIATORS)).json())["items"]
    zheng = next(m for m in mediators if m["name"] == "郑调解")
    account = {"name": "秦调解", "username": "tiaojie8", "password": NEW_PASSWORD}
    good = {"account": account, "organisation_id": people["id"], "case_types": ["loan"]}

    cases: list[tuple[str, str, Any, str]] = [
        ("post", ORGANISATIONS, {"name": "  ", "kind": "people"}, "name"),
        ("post", ORGANISATIONS, {"name": "调" * 201}, "name"),
        ("post", ORGANISATIONS, {"name": "某调解中心", "kind": "secret"}, "kind"),
        ("post", ORGANISATIONS, {"name": "某调解中心", "colour": "red"}, "colour"),
        ("patch", f"{ORGANISATIONS}/{people['id']}", {"kind": "secret"}, "kind"),
        ("post", MEDIATORS, {**good, "case_types": ["loan", "duel"]}, "case_types"),
        ("post", MEDIATORS, {**good, "languages": ["chinese!"]}, "languages"),
        ("post", MEDIATORS, {**good, "languages": []}, "languages"),
        ("post", MEDIATORS, {**good, "max_active_cases": 0}, "max_active_cases"),
        ("post", MEDIATORS, {**good, "max_active_cases": 201}, "max_active_cases"),
        ("post", MEDIATORS, {**good, "specialities": ["专" * 51]}, "specialities"),
        ("post", MEDIATORS, {**good, "organisation_id": 999999}, "organisation_id"),
        ("post", MEDIATORS, {**good, "organisation_id": 2**40}, "organisation_id"),
        ("post", MEDIATORS, {"user_id": 2**40, "organisation_id": people["id"]}, "user_id"),
        ("post", MEDIATORS, {**good, "user_id": zheng["user_id"]}, "user_id"),
        ("post", MEDIATORS, {"organisation_id": people["id"]}, "user_id"),
        ("post", MEDIATORS, {**good, "account": {"name": "秦调解"}}, "username"),
        ("patch", f"{MEDIATORS}/{zheng['id']}", {"max_active_cases": "many"}, "max_active_cases"),
        ("patch", f"{MEDIATORS}/{zheng['id']}", {"languages": ["zh", "e n"]}, "languages"),
        ("patch", f"{MEDIATORS}/{zheng['id']}", {"organisation_id": 999999}, "organisation_id"),
    ]
    for method, path, body, field in cases:
        if method == "post":
            response = await clients.post_json(admin, path, body)
        else:
            response = await patch_json(clients, admin, path, body)
        assert response.status == 400, (path, body, await response.text())
        assert (await response.json())["error"]["field"] == field, (path, body)

    # a judge's account is not a mediator's; a mediator already listed is a conflict
    judge = await user_id(clients, "faguan")
    response = await clients.post_json(
        admin, MEDIATORS, {"user_id": judge, "organisation_id": people["id"]}
    )
    assert response.status == 400 and (await response.json())["error"]["field"] == "user_id"
    response = await clients.post_json(
        admin,
        MEDIATORS,
        {"user_id": zheng["user_id"], "organisation_id": people["id"]},
    )
    assert response.status == 409
    assert (await admin.get(f"{MEDIATORS}/999999")).status == 404
    assert (await patch_json(clients, admin, f"{ORGANISATIONS}/999999", {})).status == 404
    assert (await admin.get(MEDIATORS, params={"case_type": "duel"})).status == 400
    assert await audit_rows(clients) == []
    assert await user_id(clients, "tiaojie") > 0
    database = Database(clients.settings.database_url)
    try:
        async with database.transaction(write=False) as session:
            assert await session.scalar(select(User).where(User.username == "tiaojie8")) is None
    finally:
        await database.dispose()


async def test_an_existing_mediator_account_is_added_and_edited_through_the_pages(
    clients: Clients,
) -> None:
    admin = await clients.staff("admin")
    response = await clients.post_json(
        admin,
        "/api/v1/users",
        {"role": "mediator", "name": "褚调解", "username": "tiaojie7", "password": NEW_PASSWORD},
    )
    assert response.status == 201, await response.text()
    account = (await response.json())["id"]

    roster_page = await (await admin.get("/roster")).text()
    assert 'href="/admin/roster"' in roster_page
    page = await (await admin.get("/admin/roster")).text()
    assert "演示区人民调解委员会" in page and f'<option value="{account}">褚调解' in page

    response = await post_form(
        clients,
        admin,
        "/admin/roster",
        [("form", "organisation"), ("name", "律师调解工作室"), ("kind", "lawyer")],
    )
    assert response.status == 303 and response.headers["Location"] == "/admin/roster?saved=1"
    database = Database(clients.settings.database_url)
    try:
        async with database.transaction(write=False) as session:
            lawyers = await session.scalar(
                select(MediationOrganisation).where(MediationOrganisation.name == "律师调解工作室")
            )
            assert lawyers is not None and lawyers.kind == "lawyer"
            lawyers_id = lawyers.id
    finally:
        await database.dispose()

    fields = [
        ("form", "mediator"),
        ("user_id", str(account)),
        ("organisation_id", str(lawyers_id)),
        ("case_types", "sale"),
        ("case_types", "property"),
        ("specialities", "买卖合同、物业服务"),
        ("languages", "zh, en"),
        ("max_active_cases", "12"),
    ]
    refused = await post_form(
        clients, admin, "/admin/roster", [*fields[:-1], ("max_active_cases", "500")]
    )
    assert refused.status == 400
    text = await refused.text()
    assert 'role="alert"' in text and "200" in text
    response = await post_form(clients, admin, "/admin/roster", fields)
    assert response.status == 303, await response.text()
    location = response.headers["Location"]
    found = re.fullmatch(r"/admin/roster/mediators/(\d+)\?saved=1", location)
    assert found is not None
    mediator_id = int(found.group(1))
    edit = await (await admin.get(location)).text()
    assert "褚调解" in edit and 'value="sale" checked' in edit and "买卖合同、物业服务" in edit

    path = f"/admin/roster/mediators/{mediator_id}"
    edited = [
        ("organisation_id", str(lawyers_id)),
        ("case_types", "sale"),
        ("specialities", "买卖合同"),
        ("languages", "zh"),
        ("max_active_cases", "12"),
    ]
    refused = await post_form(clients, admin, path, [*edited, ("case_types", "duel")])
    assert refused.status == 400 and "duel" in await refused.text()
    response = await post_form(clients, admin, path, edited)  # no "active": deactivated
    assert response.status == 303 and response.headers["Location"] == f"{path}?saved=1"

    database = Database(clients.settings.database_url)
    try:
        async with database.transaction(write=False) as session:
            mediator = await session.get(Mediator, mediator_id)
            assert mediator is not None
            assert mediator.case_types == ["sale"] and mediator.specialities == ["买卖合同"]
            assert mediator.languages == ["zh"] and mediator.active is False
    finally:
        await database.dispose()
    assert account not in await suggested(clients, TRAFFIC)
    assert [row.action for row in await audit_rows(clients)] == [
        "roster.organisation_created",
        "roster.mediator_added",
        "roster.mediator_deactivated",
    ]

    # an organisation deactivated through its row's form takes its mediators off the roster
    response = await post_form(
        clients,
        admin,
        "/admin/roster",
        [
            ("form", "organisation_update"),
            ("id", str(lawyers_id)),
            ("name", "律师调解工作室"),
            ("kind", "lawyer"),
        ],
    )
    assert response.status == 303
    assert (await audit_rows(clients))[-1].action == "roster.organisation_deactivated"
    listing = await (await admin.get(ORGANISATIONS, params={"active": "no"})).json()
    assert [o["id"] for o in listing["items"]] == [lawyers_id]


async def test_only_the_court_admin_may_keep_the_roster(clients: Clients) -> None:
    others = [
        await clients.staff("fenliu"),
        await clients.staff("tiaojie"),
        await clients.staff("faguan"),
        await clients.staff("shujiyuan"),
        await clients.party("13800000001"),
    ]
    for browser in others:
        gets = (
            "/admin/roster",
            "/admin/roster/mediators/1",
            ORGANISATIONS,
            MEDIATORS,
            f"{MEDIATORS}/1",
        )
        for path in gets:
            response = await browser.get(path)
            assert response.status == 403, path
        changes: list[tuple[str, str, Any]] = [
            ("post", ORGANISATIONS, {"name": "某调解中心"}),
            ("patch", f"{ORGANISATIONS}/1", {"active": False}),
            ("post", MEDIATORS, {"user_id": 3, "organisation_id": 1}),
            ("patch", f"{MEDIATORS}/1", {"active": False}),
        ]
        for method, path, body in changes:
            if method == "post":
                response = await clients.post_json(browser, path, body)
            else:
                response = await patch_json(clients, browser, path, body)
            assert response.status == 403, path
        for path in ("/admin/roster", "/admin/roster/mediators/1"):
            response = await post_form(
                clients, browser, path, [("form", "organisation"), ("name", "某")]
            )
            assert response.status == 403, path
    triage_roster = await (await others[0].get("/roster")).text()
    assert "/admin/roster" not in triage_roster
    assert await audit_rows(clients) == []
    anonymous = await clients.new()
    assert (await anonymous.get(MEDIATORS)).status == 401


async def test_the_roster_endpoints_are_in_the_openapi_document(clients: Clients) -> None:
    anonymous = await clients.new()
    document = await (await anonymous.get("/api/v1/openapi.json")).json()
    paths = document["paths"]
    assert set(paths[ORGANISATIONS]) == {"get", "post"}
    assert set(paths[f"{ORGANISATIONS}/{{id}}"]) == {"patch"}
    assert set(paths[MEDIATORS]) == {"get", "post"}
    assert set(paths[f"{MEDIATORS}/{{id}}"]) == {"get", "patch"}
    body = paths[MEDIATORS]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/MediatorIn"}
    assert "case_types" in document["components"]["schemas"]["MediatorPatch"]["properties"]
