"""Electronic service (电子送达) on SQLite and PostgreSQL, with the real job runner: a
party who has not consented is not served (a clear message, an audit row, nothing made);
a party sees only their own services and cannot serve; the text-message notice lands in
the outbox with a link, not the document; the recipient's steps are traced and every
step is audited; the service is complete at the earliest channel that reached the
recipient; the clerk's page lists failures first."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Principal
from server.config import Settings
from server.db import workflow_codec
from server.db.base import utcnow
from server.db.engine import Database
from server.db.models import (
    AuditEvent,
    Consent,
    Dispute,
    DisputeParty,
    Job,
    OutboxMessage,
    Service,
    ServiceDelivery,
    User,
)
from server.domain.disputes import DisputeStatus
from server.domain.documents import DocumentKind
from server.domain.roles import Role
from server.eservice.channels import Outcome
from server.jobs import JobRunner
from server.jobs.deliver import SERVICE_DELIVERY, deliver
from server.jobs.setup import RUNNER
from server.services import e_service, workflow
from server.services.documents import record_document
from storage.factory import open_store
from storage.spool import Spool
from tests import samples
from tests.integration.test_evidence_files import upload
from tests.support import Clients, make_settings

pytestmark = pytest.mark.timeout(120)

ZHANG, LI, WANG = "13800000001", "13800000002", "13800000003"
T = TypeVar("T")
Client = TestClient[Any, Any]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Email through a port nobody listens on: an email delivery fails, and gives up at once."""
    return make_settings(
        tmp_path / "data",
        database_url,
        YIZHAN_SMTP_HOST="127.0.0.1",
        YIZHAN_SMTP_PORT=str(free_port()),
        YIZHAN_SMTP_TIMEOUT_SECONDS="3",
        YIZHAN_SERVICE_MAX_ATTEMPTS="1",
        YIZHAN_SERVICE_RETRY_SECONDS="0.1",
        YIZHAN_PUBLIC_URL="http://court.example",
    )


# helpers shared with test_e_service_smtp ---------------------------------------------------


def enable(clients: Clients) -> None:
    """The app's runner delivers services: the kind is registered at start-up."""
    assert SERVICE_DELIVERY in clients.server.app[RUNNER].kinds


async def in_db(clients: Clients, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    database = Database(clients.settings.database_url)
    try:
        async with database.transaction() as db:
            return await work(db)
    finally:
        await database.dispose()


async def party_id(clients: Clients, phone: str) -> int:
    async def find(db: AsyncSession) -> int:
        found = await db.scalar(
            select(DisputeParty.id).where(DisputeParty.dispute_id == 1, DisputeParty.phone == phone)
        )
        assert found is not None
        return int(found)

    return await in_db(clients, find)


async def set_email(clients: Clients, phone: str, email: str) -> None:
    async def change(db: AsyncSession) -> None:
        party = await db.scalar(
            select(DisputeParty).where(DisputeParty.dispute_id == 1, DisputeParty.phone == phone)
        )
        assert party is not None
        party.email = email

    await in_db(clients, change)


async def a_document(clients: Clients, clerk: Client, title: str = "民事裁定书") -> dict[str, Any]:
    data = samples.pdf(f"{title} 2026")
    response = await upload(clients, clerk, 1, f"{title}.pdf", data, title=title)
    assert response.status == 201, await response.text()
    document: dict[str, Any] = await response.json()
    document["data"] = data
    return document


async def serve(
    clients: Clients, clerk: Client, document_id: int, party_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    payload: dict[str, Any] = {"document_id": document_id}
    if party_ids is not None:
        payload["party_ids"] = party_ids
    response = await clients.post_json(clerk, "/api/v1/disputes/1/services", payload)
    assert response.status == 201, await response.text()
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items


def delivery(service: dict[str, Any], channel: str) -> dict[str, Any]:
    found = [d for d in service["deliveries"] if d["channel"] == channel]
    assert len(found) == 1, service
    return found[0]


async def wait_for(
    staff: Client,
    service_id: int,
    ready: Callable[[dict[str, Any]], bool],
    seconds: float = 30.0,
) -> dict[str, Any]:
    """The service as staff see it, once ``ready`` says so."""
    service: dict[str, Any] = {}
    for _ in range(int(seconds / 0.05)):
        response = await staff.get(f"/api/v1/services/{service_id}")
        assert response.status == 200, await response.text()
        service = await response.json()
        if ready(service):
            return service
        await asyncio.sleep(0.05)
    raise AssertionError(f"the service never got there: {service}")


def settled(service: dict[str, Any]) -> bool:
    """Every delivery reported, and the certificate made if the service completed."""
    done = all(d["state"] in ("reached", "sent", "gave_up") for d in service["deliveries"])
    made = service["state"] != "complete" or service["certificate_document_id"] is not None
    return done and made


async def audit_rows(clients: Clients, *actions: str) -> list[AuditEvent]:
    async def read(db: AsyncSession) -> list[AuditEvent]:
        rows = await db.scalars(
            select(AuditEvent).where(AuditEvent.action.in_(actions)).order_by(AuditEvent.seq)
        )
        return list(rows)

    return await in_db(clients, read)


def service_rows(rows: list[AuditEvent], service: dict[str, Any]) -> list[AuditEvent]:
    deliveries = {str(d["id"]) for d in service["deliveries"]}
    return [
        r
        for r in rows
        if (r.object_type == "service" and r.object_id == str(service["id"]))
        or (r.object_type == "service_delivery" and r.object_id in deliveries)
    ]


async def english(client: Client) -> Client:
    client.session.cookie_jar.update_cookies({"yz_lang": "en"})
    return client


# the tests -------------------------------------------------------------------------------


async def test_serving_without_consent_is_refused_with_a_clear_message_and_an_audit_row(
    clients: Clients,
) -> None:
    enable(clients)
    li = await party_id(clients, LI)

    async def refuse(db: AsyncSession) -> None:  # 李四 withdraws his consent to e-service
        db.add(
            Consent(
                dispute_id=1,
                party_id=li,
                stage="service",
                matter="electronic_service",
                granted=False,
            )
        )

    await in_db(clients, refuse)
    clerk = await english(await clients.staff("shujiyuan"))
    document = await a_document(clients, clerk)

    response = await clients.post_json(
        clerk, "/api/v1/disputes/1/services", {"document_id": document["id"]}
    )
    assert response.status == 409
    error = (await response.json())["error"]
    assert "李四" in error["message"] and "张三" not in error["message"]
    assert "Not consented to electronic service" in error["message"]
    # the page form says the same on the page
    token = await clients.csrf(clerk)
    form = {"_csrf": token, "document_id": str(document["id"]), "party_id": str(li)}
    response = await clerk.post("/disputes/1/services", data=form, allow_redirects=False)
    assert response.status == 303
    page = await (await clerk.get(response.headers["Location"])).text()
    assert "Not consented to electronic service" in page and "李四" in page
    empty = {"_csrf": token, "document_id": str(document["id"])}  # nobody ticked
    response = await clerk.post("/disputes/1/services", data=empty, allow_redirects=False)
    page = await (await clerk.get(response.headers["Location"])).text()
    assert "Choose recipients among the parties of this dispute." in page

    async def counts(db: AsyncSession) -> tuple[int, int, int]:
        services = await db.scalar(select(func.count(Service.id)))
        deliveries = await db.scalar(select(func.count(ServiceDelivery.id)))
        jobs = await db.scalar(select(func.count(Job.id)).where(Job.kind == SERVICE_DELIVERY))
        return int(services or 0), int(deliveries or 0), int(jobs or 0)

    assert await in_db(clients, counts) == (0, 0, 0)  # nothing half-made
    refusals = await audit_rows(clients, "service.refused")
    assert len(refusals) == 2
    for row in refusals:
        assert row.outcome == "denied" and row.dispute_id == 1
        assert row.actor_name == "卫书记员"
        assert row.details["document_id"] == document["id"]
        assert row.details["refused"] == [{"party_id": li, "name": "李四", "reason": "no_consent"}]


async def test_a_party_sees_only_their_own_services_and_cannot_serve(clients: Clients) -> None:
    enable(clients)
    clerk = await clients.staff("shujiyuan")
    document = await a_document(clients, clerk)
    zhang_party = await party_id(clients, ZHANG)
    (made,) = await serve(clients, clerk, document["id"], [zhang_party])
    assert made["recipient_name"] == "张三" and made["consent"] == "consent"
    service = await wait_for(clerk, made["id"], settled)
    sid = service["id"]

    li = await clients.party(LI)  # the other party of the same dispute
    for path in (f"/api/v1/services/{sid}", f"/inbox/{sid}", f"/inbox/{sid}/document"):
        assert (await li.get(path)).status == 404, path
    response = await clients.post_json(li, f"/api/v1/services/{sid}/acknowledge", {})
    assert response.status == 404
    inbox = await (await li.get("/api/v1/inbox")).json()
    assert inbox["items"] == []
    response = await clients.post_json(
        li, "/api/v1/disputes/1/services", {"document_id": document["id"]}
    )
    assert response.status == 403
    assert (await li.get("/api/v1/disputes/1/services")).status == 403
    response = await clients.post_json(
        li, f"/api/v1/service-deliveries/{delivery(service, 'inbox')['id']}/retry", {}
    )
    assert response.status == 403
    wang = await clients.party(WANG)  # a party of another dispute
    assert (await wang.get(f"/api/v1/services/{sid}")).status == 404
    assert (await wang.get("/api/v1/disputes/1/services")).status == 404

    again = await clients.post_json(
        clerk,
        "/api/v1/disputes/1/services",
        {"document_id": document["id"], "party_ids": [zhang_party]},
    )
    assert again.status == 409  # served once is enough
    zhang = await clients.party(ZHANG)  # the recipient does see it
    inbox = await (await zhang.get("/api/v1/inbox")).json()
    assert [item["id"] for item in inbox["items"]] == [sid]
    assert (await zhang.get(f"/api/v1/services/{sid}")).status == 200
    denied = await audit_rows(clients, "access.denied")
    assert any(r.details.get("service_id") == sid for r in denied)


async def test_the_sms_notice_lands_in_the_outbox_and_every_step_is_audited(
    clients: Clients,
) -> None:
    enable(clients)
    clerk = await clients.staff("shujiyuan")
    document = await a_document(clients, clerk, "调解书")
    (made,) = await serve(clients, clerk, document["id"], [await party_id(clients, ZHANG)])
    assert [d["channel"] for d in made["deliveries"]] == ["inbox", "sms"]  # no email given
    service = await wait_for(clerk, made["id"], settled)
    sid = service["id"]
    inbox, sms = delivery(service, "inbox"), delivery(service, "sms")
    assert inbox["state"] == "reached" and inbox["reached_at"] is not None
    assert service["state"] == "complete" and service["effective_channel"] == "inbox"
    assert service["effective_at"] == inbox["reached_at"]
    # the text message is a notice with a link to the inbox item, not the document
    assert sms["state"] == "sent" and sms["sent_at"] and sms["reached_at"] is None
    assert sms["address"] == ZHANG

    async def texts(db: AsyncSession) -> list[OutboxMessage]:
        rows = await db.scalars(select(OutboxMessage).where(OutboxMessage.channel == "sms"))
        return list(rows)

    (text,) = await in_db(clients, texts)
    assert text.destination == ZHANG
    assert f"http://court.example/inbox/{sid}" in text.body
    assert document["sha256"] not in text.body
    admin = await clients.staff("admin")
    outbox_page = await (await admin.get("/outbox")).text()
    assert f"http://court.example/inbox/{sid}" in outbox_page

    zhang = await english(await clients.party(ZHANG))
    listing = await (await zhang.get("/inbox")).text()
    assert "调解书" in listing and 'data-unread="true"' in listing
    page = await zhang.get(f"/inbox/{sid}")
    assert page.status == 200
    assert "I acknowledge receipt" in await page.text()
    assert 'data-unread="false"' in await (await zhang.get("/inbox")).text()
    content = await zhang.get(f"/inbox/{sid}/document")
    assert content.status == 200 and await content.read() == document["data"]
    response = await clients.post_json(zhang, f"/api/v1/services/{sid}/acknowledge", {})
    assert response.status == 200, await response.text()
    first = delivery(await response.json(), "inbox")
    assert first["opened_at"] and first["downloaded_at"] and first["acknowledged_at"]
    # the first time counts: opening and acknowledging again change nothing
    assert (await zhang.get(f"/inbox/{sid}")).status == 200
    await clients.post_json(zhang, f"/api/v1/services/{sid}/acknowledge", {})
    again = delivery(await wait_for(clerk, sid, settled), "inbox")
    assert again["opened_at"] == first["opened_at"]
    assert again["acknowledged_at"] == first["acknowledged_at"]

    rows = service_rows(
        await audit_rows(
            clients,
            "service.created",
            "service.delivered",
            "service.completed",
            "service.certificate_made",
            "service.opened",
            "service.downloaded",
            "service.acknowledged",
        ),
        service,
    )
    actions = [r.action for r in rows]
    assert actions[0] == "service.created"
    for action in ("service.completed", "service.certificate_made"):
        assert actions.count(action) == 1, actions
    assert actions.count("service.delivered") == 2  # the inbox and the text message
    assert actions[-3:] == ["service.opened", "service.downloaded", "service.acknowledged"]
    created = rows[0]
    assert created.actor_name == "卫书记员" and created.details["sha256"] == document["sha256"]
    assert created.details["consent"] == "consent"
    certificate = next(r for r in rows if r.action == "service.certificate_made")
    assert certificate.details["certificate_document_id"] == service["certificate_document_id"]
    assert len(certificate.details["sha256"]) == 64
    by_zhang = [r for r in rows if r.action in ("service.opened", "service.acknowledged")]
    assert {r.actor_name for r in by_zhang} == {"张三"}


@dataclass
class Platform:
    """The service layer without the web: a runner that is never started (each test
    makes the attempts itself, in the order it needs), the clerk, a ruling to serve."""

    database: Database
    runner: JobRunner
    settings: Settings
    clerk: Principal
    ruling: int

    async def serve(self, *phones: str) -> list[dict[str, int]]:
        """Serve the ruling on these parties; each service's delivery ids by channel."""
        async with self.database.transaction() as db:
            parties = [
                await db.scalar(
                    select(DisputeParty.id).where(
                        DisputeParty.dispute_id == 1, DisputeParty.phone == phone
                    )
                )
                for phone in phones
            ]
            made = await e_service.serve(
                db, self.clerk, 1, self.ruling, [int(p or 0) for p in parties], runner=self.runner
            )
            return [
                {
                    d.channel: d.id
                    for d in await db.scalars(
                        select(ServiceDelivery).where(ServiceDelivery.service_id == service.id)
                    )
                }
                for service in made
            ]

    async def attempt(self, delivery_id: int, reached: bool) -> e_service.Settled:
        """One attempt the channel took: reached now, or only handed on."""
        async with self.database.transaction() as db:
            row = await db.get(ServiceDelivery, delivery_id)
            assert row is not None
            due = e_service.due_token(row.next_attempt_at)
            begun = await e_service.begin_attempt(db, row.id, due, self.settings)
            assert begun is not None
            outcome = Outcome(reached=reached, reference="test")
            return await e_service.record_success(db, row.id, outcome, utcnow(), self.settings)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    database = Database(settings.database_url)
    runner = JobRunner(
        database,
        settings=settings,
        store=open_store(settings.storage_url),
        spool=Spool(settings.data_dir / "spool"),
    )
    runner.register(SERVICE_DELIVERY, deliver)
    try:
        async with database.transaction() as db:
            user = await db.scalar(select(User).where(User.username == "shujiyuan"))
            assert user is not None
            clerk = Principal(user.id, Role.CLERK, user.name, user.court_id, 0, "test")
            spooled = await runner.spool.receive(_one(samples.pdf("判决书")), limit=1 << 20)
            ruling, _ = await record_document(
                db,
                runner.spool,
                spooled,
                actor=clerk.actor(),
                dispute_id=1,
                kind=DocumentKind.RULING,
                filename="判决书.pdf",
            )
        yield Platform(database, runner, settings, clerk, ruling.id)
    finally:
        await runner.stop()
        await database.dispose()


async def test_completion_takes_the_earliest_reached_channel(platform: Platform) -> None:
    """The email reached the recipient's mail system before the inbox job ran: the
    service took effect then, by email, and a later channel does not move it."""
    async with platform.database.transaction() as db:
        zhang = await db.scalar(
            select(DisputeParty).where(DisputeParty.dispute_id == 1, DisputeParty.phone == ZHANG)
        )
        assert zhang is not None
        zhang.email = "zhangsan@example.com"
    (channels,) = await platform.serve(ZHANG)
    assert set(channels) == {"inbox", "email", "sms"}
    assert (await platform.attempt(channels["email"], reached=True)).completed
    assert not (await platform.attempt(channels["inbox"], reached=True)).completed
    await platform.attempt(channels["sms"], reached=False)
    async with platform.database.transaction(write=False) as db:
        rows = {
            d.channel: d
            for d in await db.scalars(
                select(ServiceDelivery).where(ServiceDelivery.id.in_(list(channels.values())))
            )
        }
        final = await db.get(Service, rows["inbox"].service_id)
    assert final is not None and final.state == "complete"
    assert final.effective_channel == "email"
    assert rows["email"].reached_at is not None and rows["inbox"].reached_at is not None
    assert final.effective_at == rows["email"].reached_at < rows["inbox"].reached_at
    assert rows["sms"].reached_at is None  # a notice never serves the document
    # a job queued for a plan that was replaced since does nothing
    async with platform.database.transaction() as db:
        stale = await e_service.begin_attempt(db, channels["sms"], "stale", platform.settings)
        assert stale is None


async def test_a_ruling_served_on_every_party_moves_the_dispute_to_served(
    platform: Platform,
) -> None:
    async with platform.database.transaction() as db:  # the judge has confirmed the agreement
        dispute = await db.get(Dispute, 1)
        assert dispute is not None
        state = replace(workflow.state_of(dispute), status=DisputeStatus.CONFIRMED)
        dispute.workflow, dispute.status = workflow_codec.dump(state), state.status.value
    zhang, li = await platform.serve(ZHANG, LI)
    await platform.attempt(zhang["inbox"], reached=True)

    async def status() -> str:
        async with platform.database.transaction(write=False) as db:
            found = await db.get(Dispute, 1, populate_existing=True)
            assert found is not None
            return found.status

    assert await status() == "confirmed"  # 李四 has not been served yet
    await platform.attempt(li["inbox"], reached=True)
    assert await status() == "served"
    async with platform.database.transaction(write=False) as db:
        moved = await db.scalar(
            select(AuditEvent).where(AuditEvent.action == "dispute.documents_served")
        )
    assert moved is not None and moved.actor_role == "system"


async def test_the_clerks_page_lists_failures_first(clients: Clients) -> None:
    enable(clients)
    li_party = await party_id(clients, LI)

    async def no_consent_row(db: AsyncSession) -> None:
        # 李四 recorded no consent, but gave an email address in the application
        for consent in await db.scalars(select(Consent).where(Consent.party_id == li_party)):
            await db.delete(consent)

    await in_db(clients, no_consent_row)
    await set_email(clients, LI, "lisi@example.com")
    clerk = await english(await clients.staff("shujiyuan"))
    document = await a_document(clients, clerk)
    (li_made,) = await serve(clients, clerk, document["id"], [li_party])
    assert li_made["consent"] == "application_email" and li_made["consent_id"] is None
    (zhang_made,) = await serve(clients, clerk, document["id"], [await party_id(clients, ZHANG)])
    li_service = await wait_for(clerk, li_made["id"], settled)
    await wait_for(clerk, zhang_made["id"], settled)
    email = delivery(li_service, "email")
    assert email["state"] == "gave_up" and email["attempts"] == 1
    assert "could not be reached" in email["last_error"]
    # the inbox still served him: the service is complete all the same
    assert li_service["state"] == "complete" and li_service["effective_channel"] == "inbox"

    listing = await (await clerk.get("/api/v1/disputes/1/services")).json()
    assert [s["id"] for s in listing["items"]] == [li_made["id"], zhang_made["id"]]
    page = await clerk.get("/disputes/1/services")
    assert page.status == 200
    html = await page.text()
    assert html.index(f'id="service-{li_made["id"]}"') < html.index(
        f'id="service-{zhang_made["id"]}"'
    )
    reason = email["last_error"].split("(")[0]  # what precedes the quoted address
    assert reason in html and "Retry now" in html
    assert "gave this email address in the application" in html
    failed = await (await clerk.get("/api/v1/services/failed")).json()
    assert [s["id"] for s in failed["items"]] == [li_made["id"]]
    court_page = await (await clerk.get("/services/failed")).text()
    assert f'id="service-{li_made["id"]}"' in court_page
    assert f'id="service-{zhang_made["id"]}"' not in court_page

    # "retry now": one more attempt, audited; it fails again and gives up again
    response = await clients.post_json(clerk, f"/api/v1/service-deliveries/{email['id']}/retry", {})
    assert response.status == 200, await response.text()
    again = await wait_for(
        clerk, li_made["id"], lambda s: delivery(s, "email")["attempts"] == 2 and settled(s)
    )
    assert delivery(again, "email")["state"] == "gave_up"
    retried = await audit_rows(clients, "service.retry_requested")
    assert [r.object_id for r in retried] == [str(email["id"])]
    assert retried[0].actor_name == "卫书记员"
    # a party cannot ask for a retry; a delivery that did not fail cannot be retried
    inbox_id = delivery(again, "inbox")["id"]
    response = await clients.post_json(clerk, f"/api/v1/service-deliveries/{inbox_id}/retry", {})
    assert response.status == 409


async def test_a_party_gives_or_withdraws_consent_and_the_address_on_their_page(
    clients: Clients,
) -> None:
    zhang = await clients.party(ZHANG)
    clerk = await clients.staff("shujiyuan")
    zhang_party = await party_id(clients, ZHANG)
    page = await (await zhang.get("/disputes/1")).text()
    assert 'id="service-consent"' in page  # the party's own answer, which they may change
    clerk_page = await (await clerk.get("/disputes/1")).text()
    assert 'id="service-consent"' not in clerk_page

    # withdrawn: serving on him is refused until he agrees again
    token = await clients.csrf(zhang)
    response = await zhang.post(
        "/disputes/1/service-consent",
        data={"_csrf": token, "granted": "no"},
        allow_redirects=False,
    )
    assert response.status == 303
    document = await a_document(clients, clerk)
    refused = await clients.post_json(
        clerk,
        "/api/v1/disputes/1/services",
        {"document_id": document["id"], "party_ids": [zhang_party]},
    )
    assert refused.status == 409, await refused.text()

    bad = await clients.post_json(
        zhang, "/api/v1/disputes/1/service-consent", {"granted": True, "email": "not-an-email"}
    )
    assert bad.status == 400 and (await bad.json())["error"]["field"] == "email"
    given = await clients.post_json(
        zhang,
        "/api/v1/disputes/1/service-consent",
        {"granted": True, "email": "zhangsan@example.com"},
    )
    assert given.status == 200 and (await given.json())["consented"] is True
    (made,) = await serve(clients, clerk, document["id"], [zhang_party])
    assert made["consent_id"] is not None
    # only a party answers for themselves
    other = await clients.post_json(
        clerk, "/api/v1/disputes/1/service-consent", {"granted": True, "email": ""}
    )
    assert other.status == 403

    async def answers(db: AsyncSession) -> list[str]:
        rows = await db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "service.consent_recorded")
            .order_by(AuditEvent.id)
        )
        return [str(r.details["granted"]) for r in rows]

    assert await in_db(clients, answers) == ["False", "True"]
