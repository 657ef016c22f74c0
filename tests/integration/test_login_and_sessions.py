"""Logging in and out: passwords, throttling, one-time codes, invitations, TOTP, CSRF."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select, update

from server.auth import invitations
from server.auth.invitations import Invitation
from server.db.engine import Database
from server.db.models import AuditEvent, Court, OneTimeCode, User
from server.demo import DEMO_PASSWORD
from tests.support import TEST_SECRET, Clients


async def _audit_actions(clients: Clients) -> list[tuple[str, str, int | None]]:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            rows = await session.execute(
                select(AuditEvent.action, AuditEvent.outcome, AuditEvent.actor_id).order_by(
                    AuditEvent.seq
                )
            )
            return [(a, o, i) for a, o, i in rows.tuples()]
    finally:
        await db.dispose()


async def _user_id(clients: Clients, **where: str) -> int:
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            user = await session.scalar(select(User).filter_by(**where))
            assert user is not None
            return user.id
    finally:
        await db.dispose()


async def _login(clients: Clients, client: Any, account: str, password: str) -> Any:
    return await clients.post_json(
        client, "/api/v1/auth/login", {"account": account, "password": password}
    )


async def test_staff_log_in_with_a_password_and_the_login_is_audited(clients: Clients) -> None:
    browser = await clients.staff("tiaojie")
    me = await (await browser.get("/api/v1/me")).json()
    assert me["role"] == "mediator" and me["login_method"] == "password"
    assert ("login.succeeded", "ok", me["id"]) in await _audit_actions(clients)


async def test_a_wrong_password_is_refused_in_chinese_and_audited(clients: Clients) -> None:
    browser = await clients.new()
    response = await _login(clients, browser, "tiaojie", "wrong-password-1")
    assert response.status == 401
    assert (await response.json())["error"]["message"] == "账号或密码错误。"
    assert (await browser.get("/api/v1/me")).status == 401
    assert any(a == "login.failed" for a, _, _ in await _audit_actions(clients))


async def test_the_login_form_shows_the_error_on_the_page(clients: Clients) -> None:
    browser = await clients.new()
    await browser.get("/login")
    token = await clients.csrf(browser)
    response = await browser.post(
        "/login", data={"_csrf": token, "account": "tiaojie", "password": "nope-nope-1"}
    )
    assert response.status == 401
    assert "账号或密码错误" in await response.text()


async def test_five_failures_lock_the_account_even_for_the_right_password(
    clients: Clients,
) -> None:
    browser = await clients.new()
    for _ in range(5):
        assert (await _login(clients, browser, "faguan", "bad-password-9")).status == 401
    response = await _login(clients, browser, "faguan", DEMO_PASSWORD)
    assert response.status == 429
    assert "失败次数过多" in (await response.json())["error"]["message"]
    assert any(a == "login.locked" for a, _, _ in await _audit_actions(clients))


async def test_failures_from_one_address_lock_that_address_across_accounts(
    clients: Clients,
) -> None:
    browser = await clients.new()
    for account in ("nobody1", "nobody2", "nobody3", "nobody4", "nobody5"):
        assert (await _login(clients, browser, account, "whatever-1")).status == 401
    # a different, valid account from the same address is now refused too
    assert (await _login(clients, browser, "tiaojie", DEMO_PASSWORD)).status == 429


async def test_a_locked_account_opens_again_after_the_lock_period(clients: Clients) -> None:
    browser = await clients.new()
    for _ in range(5):
        await _login(clients, browser, "shujiyuan", "bad-password-9")
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction() as session:
            from server.db.models import LoginThrottle

            await session.execute(
                update(LoginThrottle).values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
            )
    finally:
        await db.dispose()
    assert (await _login(clients, browser, "shujiyuan", DEMO_PASSWORD)).status == 200


async def test_a_party_logs_in_with_a_code_sent_to_the_outbox(clients: Clients) -> None:
    browser = await clients.party("13800000001")
    me = await (await browser.get("/api/v1/me")).json()
    assert me["role"] == "party" and me["login_method"] == "code"
    # a code login has just proven control of the phone: it counts as re-verified
    assert me["reverified_at"] is not None


async def test_a_code_works_once_and_a_wrong_code_is_refused(clients: Clients) -> None:
    browser = await clients.new()
    await clients.post_json(browser, "/api/v1/auth/code", {"account": "13800000002"})
    code = await clients.latest_code("13800000002")
    wrong = "000000" if code != "000000" else "111111"
    response = await clients.post_json(
        browser, "/api/v1/auth/code/verify", {"account": "13800000002", "code": wrong}
    )
    assert response.status == 401
    assert (await response.json())["error"]["message"] == "验证码错误或已过期。"
    body = {"account": "13800000002", "code": code}
    assert (await clients.post_json(browser, "/api/v1/auth/code/verify", body)).status == 200
    other = await clients.new()
    assert (await clients.post_json(other, "/api/v1/auth/code/verify", body)).status == 401


async def test_an_expired_code_is_refused_with_its_own_message(clients: Clients) -> None:
    browser = await clients.new()
    await clients.post_json(browser, "/api/v1/auth/code", {"account": "13800000003"})
    code = await clients.latest_code("13800000003")
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction() as session:
            await session.execute(
                update(OneTimeCode).values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
            )
    finally:
        await db.dispose()
    response = await clients.post_json(
        browser,
        "/api/v1/auth/code/verify",
        {"account": "13800000003", "code": code},
        Cookie="yz_lang=en",
    )
    assert response.status == 401
    assert (await response.json())["error"]["message"] == "The code has expired. Ask for a new one."


async def test_staff_cannot_log_in_by_code_and_unknown_numbers_look_the_same(
    clients: Clients,
) -> None:
    browser = await clients.new()
    for account in ("tiaojie", "13999999999"):
        response = await clients.post_json(browser, "/api/v1/auth/code", {"account": account})
        assert response.status == 202
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            assert await session.scalar(select(func.count()).select_from(OneTimeCode)) == 0
    finally:
        await db.dispose()


async def test_an_invitation_link_logs_the_party_into_their_dispute(clients: Clients) -> None:
    user_id = await _user_id(clients, phone="13800000002")
    token = invitations.sign(TEST_SECRET, Invitation(user_id=user_id, dispute_id=1))
    browser = await clients.new()
    response = await browser.get(f"/invite/{token}", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/disputes/1"
    page = await browser.get("/disputes/1")
    assert page.status == 200 and "李四" in await page.text()


async def test_a_tampered_invitation_is_refused_and_audited(clients: Clients) -> None:
    user_id = await _user_id(clients, phone="13800000002")
    token = invitations.sign(TEST_SECRET, Invitation(user_id=user_id, dispute_id=1))
    forged = invitations.sign("another-secret-" + "x" * 30, Invitation(user_id=1, dispute_id=2))
    browser = await clients.new()
    for bad in (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), forged):
        response = await browser.get(f"/invite/{bad}", allow_redirects=False)
        assert response.status == 400
        assert "邀请链接无效" in await response.text()
    assert (await browser.get("/api/v1/me")).status == 401
    tampered = [a for a, o, _ in await _audit_actions(clients) if a == "invitation.tampered"]
    assert len(tampered) == 2


async def test_an_expired_invitation_is_refused(clients: Clients) -> None:
    class MonthOldSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 30 * 86400

    serializer = URLSafeTimedSerializer(TEST_SECRET, salt=invitations.SALT, signer=MonthOldSigner)
    token = serializer.dumps({"u": 1, "d": 1, "s": None})
    response = await (await clients.new()).get(f"/invite/{token}")
    assert response.status == 410
    assert "邀请链接已过期" in await response.text()


async def test_logout_invalidates_the_session_server_side(clients: Clients) -> None:
    browser = await clients.staff("tiaojie")
    cookie = browser.session.cookie_jar.filter_cookies(browser.make_url("/"))["yz_session"].value
    response = await clients.post_json(browser, "/api/v1/auth/logout", {})
    assert response.status == 200
    thief = await clients.new()
    response = await thief.get("/api/v1/me", cookies={"yz_session": cookie})
    assert response.status == 401


async def test_a_post_without_the_csrf_token_is_refused_and_audited(clients: Clients) -> None:
    browser = await clients.new()
    await browser.get("/login")
    response = await browser.post("/login", data={"account": "tiaojie", "password": "x"})
    assert response.status == 403
    assert "表单已过期" in await response.text()
    token = await clients.csrf(browser)
    response = await browser.post(
        "/api/v1/auth/login",
        json={"account": "tiaojie", "password": DEMO_PASSWORD},
        headers={"X-CSRF-Token": token, "Origin": "https://evil.example"},
    )
    assert response.status == 403
    actions = [a for a, _, _ in await _audit_actions(clients)]
    assert actions.count("csrf.rejected") == 2


async def test_a_missing_field_gets_a_clear_message(clients: Clients) -> None:
    browser = await clients.new()
    response = await clients.post_json(browser, "/api/v1/auth/login", {"account": "tiaojie"})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error == {"code": "invalid", "message": "缺少必填项：password。", "field": "password"}
    response = await browser.post(
        "/api/v1/auth/login",
        data=b"{not json",
        headers={"X-CSRF-Token": await clients.csrf(browser), "Content-Type": "application/json"},
    )
    assert response.status == 400


async def test_totp_enrolment_then_login_needs_the_authenticator_code(clients: Clients) -> None:
    admin = await clients.staff("admin")
    page = await (await admin.get("/account")).text()
    secret = page.split('<code class="secret">')[1].split("</code>")[0]
    ticket = page.split('name="ticket" value="')[1].split('"')[0]
    token = await clients.csrf(admin)
    response = await admin.post(
        "/account/totp",
        data={"_csrf": token, "ticket": ticket, "code": pyotp.TOTP(secret).now()},
        allow_redirects=False,
    )
    assert response.status == 303
    browser = await clients.new()
    first = await (await _login(clients, browser, "admin", DEMO_PASSWORD)).json()
    assert first["totp_required"] is True
    assert (await browser.get("/api/v1/me")).status == 401
    bad = await clients.post_json(
        browser, "/api/v1/auth/totp", {"ticket": first["ticket"], "code": "000000"}
    )
    assert bad.status == 401
    good = await clients.post_json(
        browser, "/api/v1/auth/totp", {"ticket": first["ticket"], "code": pyotp.TOTP(secret).now()}
    )
    assert good.status == 200
    assert (await (await browser.get("/api/v1/me")).json())["role"] == "court_admin"


async def test_staff_reverify_with_a_fresh_code(clients: Clients) -> None:
    judge = await clients.staff("faguan")
    assert (await (await judge.get("/api/v1/me")).json())["reverified_at"] is None
    assert (await clients.post_json(judge, "/api/v1/me/reverify/send", {})).status == 202
    code = await clients.latest_code("13900000006")
    assert (await clients.post_json(judge, "/api/v1/me/reverify", {"code": code})).status == 200
    assert (await (await judge.get("/api/v1/me")).json())["reverified_at"] is not None


async def test_a_failed_request_leaves_nothing_half_written(clients: Clients) -> None:
    admin = await clients.staff("admin")
    body = {"role": "mediator", "name": "重复", "username": "tiaojie", "password": "abc12345"}
    response = await clients.post_json(admin, "/api/v1/users", body)
    assert response.status == 409
    body = {"role": "mediator", "name": "新调解员", "username": "newone", "password": "short"}
    response = await clients.post_json(admin, "/api/v1/users", body)
    assert response.status == 400 and (await response.json())["error"]["field"] == "password"
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            assert await session.scalar(select(User).where(User.username == "newone")) is None
            assert await session.scalar(select(func.count()).select_from(Court)) == 1
    finally:
        await db.dispose()
    response = await clients.post_json(
        admin, "/api/v1/users", {**body, "password": "long-enough-1"}
    )
    assert response.status == 201


async def test_a_mediator_sends_a_party_an_invitation_that_logs_them_in(
    clients: Clients,
) -> None:
    respondent = await _user_id(clients, phone="13800000002")
    mediator = await clients.staff("tiaojie")
    response = await clients.post_json(
        mediator, "/api/v1/disputes/1/invitations", {"user_id": respondent}
    )
    assert response.status == 201, await response.text()
    issued = await response.json()
    assert issued["sent_to"] == "13800000002"
    db = Database(clients.settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            from server.db.models import OutboxMessage

            message = await session.scalar(
                select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1)
            )
    finally:
        await db.dispose()
    assert message is not None and issued["url"] in message.body
    path = issued["url"].split("://", 1)[1].split("/", 1)[1]
    party = await clients.new()
    response = await party.get("/" + path)
    assert response.status == 200 and str(response.url).endswith("/disputes/1")
    assert ("invitation.issued", "ok") in [(a, o) for a, o, _ in await _audit_actions(clients)]


async def test_invitations_are_only_for_the_dispute_people_by_its_staff(clients: Clients) -> None:
    other_party = await _user_id(clients, phone="13800000003")  # on dispute 2, not 1
    mediator = await clients.staff("tiaojie")
    response = await clients.post_json(
        mediator, "/api/v1/disputes/1/invitations", {"user_id": other_party}
    )
    assert response.status == 404
    # a mediator not on dispute 2 cannot invite to it; a party cannot invite at all
    response = await clients.post_json(
        mediator, "/api/v1/disputes/2/invitations", {"user_id": other_party}
    )
    assert response.status == 404
    party = await clients.party("13800000001")
    response = await clients.post_json(
        party, "/api/v1/disputes/1/invitations", {"user_id": other_party}
    )
    assert response.status == 403
