"""The web shell: Chinese first, English switchable, error pages, headers, health, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from server.app import init_app
from server.config import Settings
from server.context import db
from server.db.engine import Database
from server.db.models import AuditEvent, Court
from server.domain.errors import N_, Invalid
from tests.support import Clients, make_settings


async def test_the_login_page_speaks_chinese_by_default_and_english_on_request(
    clients: Clients,
) -> None:
    browser = await clients.new()
    page = await (await browser.get("/login", headers={"Accept-Language": "en-US"})).text()
    assert "登录" in page and 'lang="zh-CN"' in page
    response = await browser.get("/lang/en?next=/login")
    assert response.status == 200 and str(response.url).endswith("/login")
    page = await response.text()
    assert "Log in" in page and 'lang="en"' in page and "登录</h1>" not in page


async def test_an_unknown_page_gets_a_translated_404_page(clients: Clients) -> None:
    browser = await clients.new()
    response = await browser.get("/no/such/page")
    assert response.status == 404
    assert "您访问的页面不存在" in await response.text()
    response = await browser.get("/api/v1/no-such-thing", cookies={"yz_lang": "en"})
    assert response.status == 404
    assert (await response.json())["error"]["message"] == "The page you asked for does not exist."


async def test_pages_carry_security_headers(clients: Clients) -> None:
    browser = await clients.new()
    response = await browser.get("/login")
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    cookie = response.headers.getall("Set-Cookie")
    assert any("yz_csrf=" in c and "HttpOnly" in c and "SameSite=Strict" in c for c in cookie)


async def test_health_readiness_and_metrics(clients: Clients) -> None:
    browser = await clients.new()
    assert (await (await browser.get("/healthz")).json()) == {"status": "ok"}
    ready = await browser.get("/readyz")
    assert ready.status == 200 and (await ready.json())["database"] == "ok"
    await browser.get("/login")
    metrics = await (await browser.get("/metrics")).text()
    assert 'yizhan_http_requests_total{method="GET",route="/login",status="200"}' in metrics


async def test_an_oversized_body_is_refused_with_a_message(clients: Clients) -> None:
    browser = await clients.new()
    token = await clients.csrf(browser)
    limit = clients.settings.max_body_bytes
    response = await browser.post(
        "/api/v1/auth/login",
        data=b"x" * (limit + 1),
        headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
    )
    assert response.status == 413
    assert "请求内容过大" in (await response.json())["error"]["message"]


@pytest.fixture
async def app_with_faults(settings: Settings) -> AsyncIterator[Clients]:
    """The app plus two routes that fail on purpose, to test the error and rollback paths."""
    app = init_app(settings)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    async def half_write(request: web.Request) -> web.Response:
        db(request).add(Court(code="HALF", name="半条记录"))
        await db(request).flush()
        raise Invalid(N_("The request could not be understood."))

    app.router.add_get("/test/boom", boom)
    app.router.add_get("/api/v1/test/boom", boom)
    app.router.add_post("/api/v1/test/half-write", half_write)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    pool = Clients(server, settings)
    try:
        yield pool
    finally:
        await pool.close()
        await server.close()


async def test_an_unexpected_error_gets_a_500_page_without_details(
    app_with_faults: Clients,
) -> None:
    browser = await app_with_faults.new()
    response = await browser.get("/test/boom")
    assert response.status == 500
    page = await response.text()
    assert "系统出现错误" in page and "a bug" not in page and "Traceback" not in page
    response = await browser.get("/api/v1/test/boom")
    assert response.status == 500
    assert (await response.json())["error"]["code"] == "internal"


async def test_a_failed_request_rolls_back_what_it_wrote(app_with_faults: Clients) -> None:
    browser = await app_with_faults.new()
    response = await app_with_faults.post_json(browser, "/api/v1/test/half-write", {})
    assert response.status == 400
    database = Database(app_with_faults.settings.database_url)
    try:
        async with database.transaction(write=False) as session:
            assert await session.scalar(select(Court).where(Court.code == "HALF")) is None
    finally:
        await database.dispose()


async def test_only_a_trusted_proxy_may_name_the_client_address(
    settings: Settings, tmp_path: Path
) -> None:
    for trusted, expected in (("127.0.0.1", "203.0.113.7"), ("", "127.0.0.1")):
        proxied = make_settings(
            tmp_path / f"p{trusted or 'none'}",
            settings.database_url,
            YIZHAN_TRUSTED_PROXIES=trusted,
        )
        server = TestServer(init_app(proxied), host="127.0.0.1")
        await server.start_server()
        pool = Clients(server, proxied)
        try:
            browser = await pool.new()
            await pool.post_json(
                browser,
                "/api/v1/auth/login",
                {"account": "nobody", "password": "x-1234567"},
                **{"X-Forwarded-For": "198.51.100.1, 203.0.113.7"},
            )
            database = Database(proxied.database_url)
            try:
                async with database.transaction(write=False) as session:
                    row = await session.scalar(
                        select(AuditEvent)
                        .where(AuditEvent.action == "login.failed")
                        .order_by(AuditEvent.seq.desc())
                        .limit(1)
                    )
            finally:
                await database.dispose()
            assert row is not None and row.ip == expected
        finally:
            await pool.close()
            await server.close()


async def test_an_id_out_of_range_is_a_400_not_a_crash(clients: Clients) -> None:
    admin = await clients.staff("admin")
    for raw in ("99999999999", "0", "abc", "2147483648"):
        response = await admin.get(f"/api/v1/disputes/{raw}")
        assert response.status == 400, raw
        assert (await response.json())["error"]["message"] == "网址无效。"


async def test_the_api_describes_itself_in_openapi(clients: Clients) -> None:
    browser = await clients.new()
    document = await (await browser.get("/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    login = document["paths"]["/api/v1/auth/login"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PasswordLogin"
    }
    assert set(document["components"]["schemas"]["PasswordLogin"]["required"]) == {
        "account",
        "password",
    }
    assert "X-CSRF-Token" in [p["name"] for p in login["parameters"]]
    detail = document["paths"]["/api/v1/disputes/{id}"]["get"]
    assert detail["parameters"][0]["name"] == "id"
    # every JSON route is listed
    listed = {path for path in document["paths"]}
    routes = {
        r.resource.canonical
        for r in browser.server.app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api/v1/")
    }
    assert routes <= listed
