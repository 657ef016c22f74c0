"""Electronic service by email through a real SMTP server (aiosmtpd on 127.0.0.1), on
SQLite and PostgreSQL: the email carries a notice with the inbox link and is delivered
when the server accepts it; the service is complete at the earliest channel; the
recipient's steps and the effective channel show on the service certificate.  With the
SMTP server down, the email delivery is tried again with a growing wait, gives up after
the last attempt, and the clerk sees why; the inbox still serves the document."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pypdf
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.config import Settings
from server.db.models import ServiceDelivery
from tests.integration.test_e_service import (
    ZHANG,
    a_document,
    audit_rows,
    delivery,
    enable,
    english,
    free_port,
    in_db,
    party_id,
    serve,
    service_rows,
    set_email,
    settled,
    wait_for,
)
from tests.support import Clients, make_settings

pytestmark = pytest.mark.timeout(120)

EMAIL = "zhangsan@example.com"
MAX_ATTEMPTS = 3
RETRY_SECONDS = 0.2


class Collector:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=default_policy)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.collector = Collector()
        self.port = free_port()
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)
        self.running = False

    def start(self) -> None:
        self.controller.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.controller.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, smtp: SmtpServer) -> Settings:
    return make_settings(
        tmp_path / "data",
        database_url,
        YIZHAN_SMTP_HOST="127.0.0.1",
        YIZHAN_SMTP_PORT=str(smtp.port),
        YIZHAN_SMTP_FROM="service@court.example",
        YIZHAN_SMTP_TIMEOUT_SECONDS="5",
        YIZHAN_SERVICE_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        YIZHAN_SERVICE_RETRY_SECONDS=str(RETRY_SECONDS),
        YIZHAN_PUBLIC_URL="http://court.example",
    )


def local(settings: Settings, iso: str | None) -> str:
    """A stored time as the certificate prints it (the court's timezone)."""
    assert iso is not None
    zone = ZoneInfo(settings.timezone)
    return datetime.fromisoformat(iso).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def pdf_text(data: bytes) -> str:
    """The PDF's text without white space (the layout may break lines and space letters)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "".join("".join(page.extract_text() or "" for page in reader.pages).split())


def squashed(text: str) -> str:
    return "".join(text.split())


async def test_an_email_served_through_a_real_smtp_server_and_the_whole_trace(
    clients: Clients, smtp: SmtpServer
) -> None:
    enable(clients)
    await set_email(clients, ZHANG, EMAIL)
    clerk = await english(await clients.staff("shujiyuan"))
    document = await a_document(clients, clerk)
    (made,) = await serve(clients, clerk, document["id"], [await party_id(clients, ZHANG)])
    assert [d["channel"] for d in made["deliveries"]] == ["inbox", "email", "sms"]
    service = await wait_for(clerk, made["id"], settled)
    sid = service["id"]
    inbox, email = delivery(service, "inbox"), delivery(service, "email")

    # the SMTP server took a notice with the link to the inbox item, not the document
    (recipients, message) = smtp.collector.messages[0]
    assert recipients == [EMAIL] and len(smtp.collector.messages) == 1
    assert message["To"] == EMAIL and message["From"] == "service@court.example"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert f"http://court.example/inbox/{sid}" in text
    assert document["sha256"] in text and "张三" in text
    assert not any(part.get_filename() for part in message.walk())  # no attachment
    # reached the recipient's mail system when the server accepted it
    assert email["state"] == "reached" and email["attempts"] == 1
    assert email["sent_at"] <= email["reached_at"]
    assert inbox["state"] == "reached"
    # complete at the earliest channel to reach him: the inbox, at once
    assert service["state"] == "complete"
    assert service["effective_channel"] == "inbox"
    assert service["effective_at"] == inbox["reached_at"] <= email["reached_at"]

    zhang = await clients.party(ZHANG)
    assert (await zhang.get(f"/inbox/{sid}")).status == 200
    content = await zhang.get(f"/inbox/{sid}/document")
    assert content.status == 200 and await content.read() == document["data"]
    response = await clients.post_json(zhang, f"/api/v1/services/{sid}/acknowledge", {})
    assert response.status == 200, await response.text()
    traced = delivery(await response.json(), "inbox")
    assert traced["opened_at"] <= traced["downloaded_at"] <= traced["acknowledged_at"]

    # the certificate made at completion, then a new version showing every step
    first = service["certificate_document_id"]
    assert first is not None
    response = await clients.post_json(clerk, f"/api/v1/services/{sid}/certificate", {})
    assert response.status == 201, await response.text()
    made_now = await response.json()
    assert made_now["made"] is True and made_now["document_id"] != first
    newest = await (await clerk.get(f"/api/v1/services/{sid}/certificate")).json()
    assert newest["document_id"] == made_now["document_id"] and newest["made"] is False
    data = await (await clerk.get(newest["url"])).read()
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    settings = clients.settings
    for expected in (
        "Electronic service certificate",
        "演示区人民法院",
        "张三",
        "民事裁定书",
        document["sha256"],
        "zh******@example.com",  # the address, partly masked
        "138****0001",
        "Platform inbox",
        "Email",
        "Text message",
        local(settings, email["sent_at"]),
        local(settings, email["reached_at"]),
        local(settings, traced["opened_at"]),
        local(settings, traced["downloaded_at"]),
        local(settings, traced["acknowledged_at"]),
        f"Platform inbox · {local(settings, service['effective_at'])}",
        settings.timezone,
    ):
        assert squashed(expected) in text, expected
    assert EMAIL not in text
    rows = service_rows(await audit_rows(clients, "service.certificate_made"), service)
    assert [r.details["version"] for r in rows] == [1, 2]
    assert rows[-1].details["sha256"] == made_now["sha256"]


async def test_with_the_smtp_server_down_the_email_is_retried_then_given_up(
    clients: Clients, smtp: SmtpServer
) -> None:
    smtp.stop()  # nobody listens on its port any more
    enable(clients)
    await set_email(clients, ZHANG, EMAIL)
    clerk = await english(await clients.staff("shujiyuan"))
    document = await a_document(clients, clerk)
    (made,) = await serve(clients, clerk, document["id"], [await party_id(clients, ZHANG)])
    email_id = delivery(made, "email")["id"]
    seen: list[tuple[int, Any]] = []

    def gave_up(service: dict[str, Any]) -> bool:
        email = delivery(service, "email")
        seen.append((email["attempts"], email["next_attempt_at"]))
        return email["state"] == "gave_up" and settled(service)

    service = await wait_for(clerk, made["id"], gave_up)
    email = delivery(service, "email")
    assert email["attempts"] == MAX_ATTEMPTS and email["next_attempt_at"] is None
    assert "could not be reached" in email["last_error"]
    attempts = [a for a, _ in seen]
    assert attempts == sorted(attempts) and attempts[-1] == MAX_ATTEMPTS

    # each failure planned the next attempt further off, and it ran no earlier
    failures = service_rows(await audit_rows(clients, "service.delivery_failed"), service)
    assert [r.details["attempt"] for r in failures] == list(range(1, MAX_ATTEMPTS))
    planned = [datetime.fromisoformat(r.details["next_attempt_at"]) for r in failures]
    waits = [(at - row.at).total_seconds() for at, row in zip(planned, failures, strict=True)]
    assert waits[1] > waits[0] > 0  # retry_seconds * 2 ** (attempts - 1)
    (given_up,) = service_rows(await audit_rows(clients, "service.gave_up"), service)
    assert given_up.details["attempt"] == MAX_ATTEMPTS
    assert given_up.at >= planned[-1] and failures[1].at >= planned[0]
    assert "could not be reached" in given_up.details["error"]

    async def email_row(db: AsyncSession) -> ServiceDelivery:
        row = await db.scalar(select(ServiceDelivery).where(ServiceDelivery.id == email_id))
        assert row is not None
        return row

    row = await in_db(clients, email_row)
    assert row.state == "gave_up" and row.sent_at is None and row.reached_at is None

    # the inbox delivery still served the document
    assert delivery(service, "inbox")["state"] == "reached"
    assert service["state"] == "complete" and service["effective_channel"] == "inbox"

    # the clerk sees the failure and its reason, on the dispute's page and the court's
    reason = email["last_error"].split("(")[0]
    page = await (await clerk.get("/disputes/1/services")).text()
    assert f'data-delivery="{email_id}" data-channel="email" data-state="gave_up"' in page
    assert reason in page and "Retry now" in page
    court = await (await clerk.get("/services/failed")).text()
    assert f'id="service-{service["id"]}"' in court and reason in court
    failed = await (await clerk.get("/api/v1/services/failed")).json()
    (listed,) = failed["items"]
    assert listed["id"] == service["id"]
    assert delivery(listed, "email")["last_error"] == email["last_error"]
    # the certificate records the failures and retries with their reasons
    response = await clients.post_json(clerk, f"/api/v1/services/{service['id']}/certificate", {})
    assert response.status == 201, await response.text()
    text = pdf_text(await (await clerk.get((await response.json())["url"])).read())
    for expected in ("Attempt failed, tried again later", "Attempt failed, gave up", reason):
        assert squashed(expected) in text, expected
