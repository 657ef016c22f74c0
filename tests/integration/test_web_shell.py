"""The web shell: Chinese first, English switchable, error pages, headers, health, metrics."""

from __future__ import annotations

from tests.support import Clients


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
