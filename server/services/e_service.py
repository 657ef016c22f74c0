"""Electronic service (电子送达, 人民法院在线诉讼规则 Arts. 29–32): the one place where a
service and its deliveries change state.

- :func:`serve` checks each recipient's consent first (Art. 29: a granted consent to
  electronic service, or an email address the party gave in the application, which is
  taken as consent to service at that address), then makes one :class:`Service` per
  recipient with a delivery per channel (the platform inbox always; email to the
  consented address when the email channel is configured; a text-message notice) and
  queues a ``service_delivery`` job for each.  A recipient who cannot be served refuses
  the whole request: nothing is created, and the refusal is audited.
- The delivery job reports each attempt through :func:`begin_attempt`,
  :func:`record_success` and :func:`record_failure`: a failed attempt is tried again
  after ``service_retry_seconds * 2 ** (attempts - 1)`` until ``service_max_attempts``,
  then the delivery gives up.
- A service is complete at the earliest moment one of its deliveries reached the
  recipient's system (Art. 31: ``effective_channel``/``effective_at``); it has failed
  when every channel that carries the document gave up.
- The recipient's steps (opening the inbox item, downloading the document,
  acknowledging receipt) are recorded on the inbox delivery, the first time each.

Every change is audited (``service.*``), and the audit rows are the service's history:
the certificate (:mod:`server.services.service_certificate`) reads its failures and
retries there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import SYSTEM, Actor, AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.config import Settings
from server.db.base import utcnow
from server.db.models import (
    AuditEvent,
    Consent,
    Court,
    Dispute,
    DisputeParty,
    Document,
    Service,
    ServiceDelivery,
    StoredObject,
    User,
)
from server.domain import commands as cmd
from server.domain import workflow as workflow_rules
from server.domain.documents import DocumentKind
from server.domain.errors import N_, Conflict, Forbidden, Invalid, NotFound
from server.domain.roles import Role
from server.eservice.channels import (
    EMAIL,
    INBOX,
    SERVING,
    SMS,
    Notice,
    Outcome,
    email_configured,
    mask_address,
)
from server.i18n import DEFAULT_LOCALE
from server.jobs import queue
from server.jobs.runner import JobRunner
from server.pagination import Page, paginate
from server.services import workflow

log = logging.getLogger(__name__)

SERVICE_DELIVERY = "service_delivery"
CONSENT_MATTER = "electronic_service"

# service states
PENDING, COMPLETE, FAILED = "pending", "complete", "failed"
# delivery states (a delivery that failed and will be tried again is "failed")
QUEUED, SENT, REACHED, RETRYING, GAVE_UP = "queued", "sent", "reached", "failed", "gave_up"
OPEN_DELIVERY = frozenset({QUEUED, RETRYING})
PROBLEM_DELIVERY = frozenset({RETRYING, GAVE_UP})

# consent bases
CONSENTED = "consent"
APPLICATION_EMAIL = "application_email"

SERVERS = frozenset({Role.CLERK, Role.JUDGE, Role.MEDIATOR})  # may serve and retry
VIEWERS = SERVERS | {Role.COURT_ADMIN}  # may follow a dispute's services
COURT_DESK = frozenset({Role.CLERK, Role.COURT_ADMIN})  # the court's failed services
SERVABLE = frozenset(
    {
        DocumentKind.EVIDENCE,
        DocumentKind.TRANSCRIPT_EXPORT,
        DocumentKind.AGREEMENT,
        DocumentKind.RULING,
        DocumentKind.JUDGMENT,
    }
)
# served on every party, these end the court's part: the dispute moves to served
FINAL_KINDS = frozenset({DocumentKind.RULING.value, DocumentKind.JUDGMENT.value})
MAX_ERROR = 2000
MAX_RETRY_DELAY = 7 * 24 * 3600.0  # seconds: the doubling stops here

STATE_LABELS = {
    PENDING: N_("Being delivered"),
    COMPLETE: N_("Served"),
    FAILED: N_("Service failed"),
}
DELIVERY_LABELS = {
    QUEUED: N_("Queued"),
    SENT: N_("Sent"),
    REACHED: N_("Reached the recipient's system"),
    RETRYING: N_("Failed, will be tried again"),
    GAVE_UP: N_("Gave up"),
}
BASIS_LABELS = {
    CONSENTED: N_("The party consented to electronic service"),
    APPLICATION_EMAIL: N_(
        "The party gave this email address in the application: taken as consent to "
        "service at that address"
    ),
}

NO_CONSENT = N_(
    "Not consented to electronic service, and no email address given in the application: "
    "%(names)s. Record the consent first, or serve the document another way."
)
NO_ACCOUNT = N_(
    "No account on the platform to receive documents: %(names)s. Serve the document another way."
)
ALREADY_SERVED = N_("Already served this document: %(names)s.")
REFUSALS = {"no_consent": NO_CONSENT, "no_account": NO_ACCOUNT, "already_served": ALREADY_SERVED}
NOT_YOURS = N_("No such served document, or it is not yours to see.")


# consent ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentBasis:
    """Why a party may be served electronically, and at which email address."""

    kind: str  # CONSENTED or APPLICATION_EMAIL
    consent_id: int | None
    email: str


async def consent_basis(db: AsyncSession, party: DisputeParty) -> ConsentBasis | None:
    """The party's latest answer on electronic service wins; without one, an email
    address given in the application is consent to that address; else None."""
    latest = await db.scalar(
        select(Consent)
        .where(
            Consent.dispute_id == party.dispute_id,
            Consent.party_id == party.id,
            Consent.matter == CONSENT_MATTER,
        )
        .order_by(Consent.recorded_at.desc(), Consent.id.desc())
        .limit(1)
    )
    email = party.email.strip()
    if latest is not None:
        return ConsentBasis(CONSENTED, latest.id, email) if latest.granted else None
    if email:
        return ConsentBasis(APPLICATION_EMAIL, None, email)
    return None


def basis_of(service: Service) -> str:
    return CONSENTED if service.consent_id is not None else APPLICATION_EMAIL


# serving ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """A party of the dispute as the serve form shows it."""

    party: DisputeParty
    basis: ConsentBasis | None
    has_account: bool

    @property
    def servable(self) -> bool:
        return self.basis is not None and self.has_account


async def _dispute_as_server(db: AsyncSession, principal: Principal, dispute_id: int) -> Dispute:
    dispute = await access.dispute_for(db, principal, dispute_id)
    if principal.role not in SERVERS:
        raise Forbidden(
            N_("Only the clerk, the judge or the mediator of the dispute may serve documents.")
        ).audited("access.denied", dispute_id=dispute_id, permission="service.serve")
    return dispute


async def _dispute_as_viewer(db: AsyncSession, principal: Principal, dispute_id: int) -> Dispute:
    dispute = await access.dispute_for(db, principal, dispute_id)
    if principal.role not in VIEWERS:
        raise Forbidden(N_("Your role may not do this.")).audited(
            "access.denied", dispute_id=dispute_id, permission="service.view"
        )
    return dispute


async def recipients(db: AsyncSession, principal: Principal, dispute_id: int) -> list[Recipient]:
    """The dispute's parties, each with whether and why they may be served."""
    await _dispute_as_viewer(db, principal, dispute_id)
    return [
        Recipient(party, await consent_basis(db, party), party.user_id is not None)
        for party in await _parties(db, dispute_id)
    ]


async def servable_documents(
    db: AsyncSession, principal: Principal, dispute_id: int
) -> list[Document]:
    await _dispute_as_viewer(db, principal, dispute_id)
    rows = await db.scalars(
        select(Document)
        .where(
            Document.dispute_id == dispute_id,
            Document.kind.in_([kind.value for kind in SERVABLE]),
        )
        .order_by(Document.id.desc())
    )
    return list(rows)


async def _parties(db: AsyncSession, dispute_id: int) -> list[DisputeParty]:
    rows = await db.scalars(
        select(DisputeParty).where(DisputeParty.dispute_id == dispute_id).order_by(DisputeParty.id)
    )
    return list(rows)


async def _document_of(
    db: AsyncSession, dispute_id: int, document_id: int
) -> tuple[Document, StoredObject]:
    row = (
        await db.execute(
            select(Document, StoredObject)
            .join(StoredObject, StoredObject.id == Document.object_id)
            .where(Document.id == document_id, Document.dispute_id == dispute_id)
        )
    ).first()
    if row is None:
        raise Invalid(N_("Choose a document of this dispute."), field="document_id")
    document, stored = row
    if document.kind not in {kind.value for kind in SERVABLE}:
        raise Invalid(N_("This kind of document is not served."), field="document_id")
    return document, stored


async def _already_served(db: AsyncSession, party_id: int, document_id: int) -> bool:
    found = await db.scalar(
        select(Service.id).where(
            Service.recipient_party_id == party_id,
            Service.document_id == document_id,
            Service.state.in_([PENDING, COMPLETE]),
        )
    )
    return found is not None


def _refusal(
    dispute_id: int, document_id: int, refused: list[tuple[DisputeParty, str]]
) -> Conflict:
    reason = refused[0][1]
    names = "、".join(party.name for party, why in refused if why == reason)
    error = Conflict(REFUSALS[reason], names=names)
    error.audited(
        "service.refused",
        dispute_id=dispute_id,
        document_id=document_id,
        refused=[{"party_id": p.id, "name": p.name, "reason": why} for p, why in refused],
    )
    return error


async def serve(
    db: AsyncSession,
    principal: Principal,
    dispute_id: int,
    document_id: int,
    recipients: Sequence[int] | None,
    *,
    runner: JobRunner,
) -> list[Service]:
    """Serve a document of the dispute on the chosen parties (default: every party)."""
    await _dispute_as_server(db, principal, dispute_id)
    document, stored = await _document_of(db, dispute_id, document_id)
    parties = await _parties(db, dispute_id)
    if recipients is None:
        chosen = parties
    else:
        by_id = {party.id: party for party in parties}
        wanted = list(dict.fromkeys(recipients))
        if not wanted or any(party_id not in by_id for party_id in wanted):
            raise Invalid(
                N_("Choose recipients among the parties of this dispute."), field="party_ids"
            )
        chosen = [by_id[party_id] for party_id in wanted]
    # every recipient is checked before anything is made: all are served, or none
    plans: list[tuple[DisputeParty, ConsentBasis]] = []
    refused: list[tuple[DisputeParty, str]] = []
    for party in chosen:
        basis = await consent_basis(db, party)
        if basis is None:
            refused.append((party, "no_consent"))
        elif party.user_id is None:
            refused.append((party, "no_account"))
        elif await _already_served(db, party.id, document.id):
            refused.append((party, "already_served"))
        else:
            plans.append((party, basis))
    if refused:
        raise _refusal(dispute_id, document.id, refused)
    email_on = email_configured(runner.settings)
    made: list[Service] = []
    for party, basis in plans:
        made.append(
            await _create(db, principal, runner, party, basis, document, stored, email_on=email_on)
        )
    return made


async def _create(
    db: AsyncSession,
    principal: Principal,
    runner: JobRunner,
    party: DisputeParty,
    basis: ConsentBasis,
    document: Document,
    stored: StoredObject,
    *,
    email_on: bool,
) -> Service:
    assert party.user_id is not None
    user = await db.get(User, party.user_id)
    now = utcnow()
    service = Service(
        dispute_id=party.dispute_id,
        document_id=document.id,
        recipient_user_id=party.user_id,
        recipient_party_id=party.id,
        recipient_name=party.name,
        consent_id=basis.consent_id,
        state=PENDING,
        effective_channel="",
        created_by_id=principal.user_id,
        created_at=now,
    )
    db.add(service)
    await db.flush()
    plan = [(INBOX, "")]
    if email_on and basis.email:
        plan.append((EMAIL, basis.email))
    phone = party.phone.strip() or ((user.phone or "") if user is not None else "")
    if phone:
        plan.append((SMS, phone))
    deliveries = [
        ServiceDelivery(
            service_id=service.id,
            channel=channel,
            address=address,
            state=QUEUED,
            attempts=0,
            next_attempt_at=now,
            last_error="",
            created_at=now,
        )
        for channel, address in plan
    ]
    db.add_all(deliveries)
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            "service.created",
            principal.actor(),
            "service",
            service.id,
            dispute_id=service.dispute_id,
            details={
                "party_id": party.id,
                "recipient": party.name,
                "document_id": document.id,
                "title": document.title,
                "sha256": stored.sha256,
                "consent": basis.kind,
                "consent_id": basis.consent_id,
                "deliveries": [
                    {
                        "id": d.id,
                        "channel": d.channel,
                        "address": mask_address(d.channel, d.address),
                    }
                    for d in deliveries
                ],
            },
        ),
    )
    for delivery in deliveries:
        await runner.enqueue(
            db,
            SERVICE_DELIVERY,
            _job_params(delivery),
            dispute_id=service.dispute_id,
            created_by=principal.actor(),
        )
    return service


# delivering (the job) -------------------------------------------------------------------


def due_token(at: datetime | None) -> str:
    """A delivery's planned attempt time as the job carries it (its identity: a job whose
    token no longer matches was replaced and does nothing)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds") if at is not None else ""


def _job_params(delivery: ServiceDelivery) -> dict[str, Any]:
    return {"delivery_id": delivery.id, "due": due_token(delivery.next_attempt_at)}


@dataclass(frozen=True)
class Attempt:
    """One attempt of a delivery, claimed by the job that makes it."""

    delivery_id: int
    service_id: int
    dispute_id: int
    channel: str
    number: int  # 1 for the first attempt
    notice: Notice


async def begin_attempt(
    db: AsyncSession, delivery_id: int, due: str | None, settings: Settings
) -> Attempt | None:
    """The attempt a job was queued for; None when the delivery is no longer open, or when
    a later plan (a clerk's "retry now", a rescheduled try) replaced the job's (``due``,
    the delivery's ``next_attempt_at`` when the job was queued)."""
    delivery = await db.get(ServiceDelivery, delivery_id, populate_existing=True)
    if delivery is None or delivery.state not in OPEN_DELIVERY:
        return None
    if due is not None and due_token(delivery.next_attempt_at) != due:
        return None
    if due is None and delivery.next_attempt_at is not None and delivery.next_attempt_at > utcnow():
        return None
    service = await db.get(Service, delivery.service_id)
    assert service is not None
    dispute = await db.get(Dispute, service.dispute_id)
    assert dispute is not None
    court = await db.get(Court, dispute.court_id)
    document = await db.get(Document, service.document_id)
    assert document is not None
    stored = await db.get(StoredObject, document.object_id)
    user = await db.get(User, service.recipient_user_id) if service.recipient_user_id else None
    notice = Notice(
        service_id=service.id,
        delivery_id=delivery.id,
        channel=delivery.channel,
        address=delivery.address,
        recipient_name=service.recipient_name,
        court_name=court.name if court is not None else "",
        dispute_number=dispute.number,
        document_title=document.title,
        document_sha256=stored.sha256 if stored is not None else "",
        inbox_url=f"{settings.base_url}/inbox/{service.id}",
        locale=(user.locale if user is not None and user.locale else DEFAULT_LOCALE),
    )
    return Attempt(
        delivery.id, service.id, service.dispute_id, delivery.channel, delivery.attempts + 1, notice
    )


@dataclass(frozen=True)
class Settled:
    service: Service
    delivery: ServiceDelivery
    completed: bool  # this report made the service complete
    next_attempt_at: datetime | None = None


async def _locked_delivery(db: AsyncSession, delivery_id: int) -> tuple[ServiceDelivery, Service]:
    delivery = await db.get(
        ServiceDelivery, delivery_id, with_for_update=True, populate_existing=True
    )
    assert delivery is not None
    service = await db.get(
        Service, delivery.service_id, with_for_update=True, populate_existing=True
    )
    assert service is not None
    return delivery, service


async def _delivery_audit(
    db: AsyncSession,
    action: str,
    service: Service,
    delivery: ServiceDelivery,
    actor: Actor = SYSTEM,
    outcome: str = "ok",
    **details: Any,
) -> None:
    await audit.append(
        db,
        AuditEntry(
            action,
            actor,
            "service_delivery",
            delivery.id,
            dispute_id=service.dispute_id,
            outcome=outcome,
            details={
                "service_id": service.id,
                "channel": delivery.channel,
                "address": mask_address(delivery.channel, delivery.address),
                **details,
            },
        ),
    )


async def record_success(
    db: AsyncSession,
    delivery_id: int,
    outcome: Outcome,
    sent_at: datetime,
    settings: Settings,
) -> Settled:
    """The channel took the delivery at ``sent_at``; reached now when ``outcome`` says so."""
    delivery, service = await _locked_delivery(db, delivery_id)
    if delivery.state not in OPEN_DELIVERY:  # reported already
        return Settled(service, delivery, completed=False)
    now = utcnow()
    delivery.attempts += 1
    delivery.sent_at = sent_at
    delivery.next_attempt_at = None
    if outcome.reached:
        delivery.state, delivery.reached_at = REACHED, max(now, sent_at)
    else:
        delivery.state = SENT
    await db.flush()
    await _delivery_audit(
        db,
        "service.delivered",
        service,
        delivery,
        attempt=delivery.attempts,
        reference=outcome.reference,
        sent_at=delivery.sent_at,
        reached_at=delivery.reached_at,
    )
    completed = await _settle(db, service, settings)
    return Settled(service, delivery, completed)


async def record_failure(
    db: AsyncSession, delivery_id: int, error: str, settings: Settings
) -> Settled:
    """The attempt failed: try again later with a doubled wait, or give up."""
    delivery, service = await _locked_delivery(db, delivery_id)
    if delivery.state not in OPEN_DELIVERY:
        return Settled(service, delivery, completed=False)
    now = utcnow()
    delivery.attempts += 1
    delivery.last_error = error[:MAX_ERROR]
    if delivery.attempts >= settings.service_max_attempts:
        delivery.state, delivery.next_attempt_at = GAVE_UP, None
        await db.flush()
        await _delivery_audit(
            db,
            "service.gave_up",
            service,
            delivery,
            outcome="failed",
            attempt=delivery.attempts,
            error=delivery.last_error,
        )
        await _settle(db, service, settings)
        return Settled(service, delivery, completed=False)
    delay = min(MAX_RETRY_DELAY, settings.service_retry_seconds * 2 ** (delivery.attempts - 1))
    delivery.state = RETRYING
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    await db.flush()
    await _delivery_audit(
        db,
        "service.delivery_failed",
        service,
        delivery,
        outcome="failed",
        attempt=delivery.attempts,
        error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at,
    )
    job = await queue.add(
        db, SERVICE_DELIVERY, _job_params(delivery), dispute_id=service.dispute_id
    )
    job.not_before = delivery.next_attempt_at
    await db.flush()
    return Settled(service, delivery, completed=False, next_attempt_at=delivery.next_attempt_at)


async def _deliveries(db: AsyncSession, service_ids: Iterable[int]) -> list[ServiceDelivery]:
    ids = list(service_ids)
    if not ids:
        return []
    rows = await db.scalars(
        select(ServiceDelivery)
        .where(ServiceDelivery.service_id.in_(ids))
        .order_by(ServiceDelivery.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def _settle(db: AsyncSession, service: Service, settings: Settings) -> bool:
    """Complete the service at its earliest reached delivery (Art. 31), or fail it when
    every channel carrying the document gave up. True when it has just completed."""
    deliveries = [d for d in await _deliveries(db, [service.id]) if d.channel in SERVING]
    reached = sorted(
        (d for d in deliveries if d.reached_at is not None),
        key=lambda d: (d.reached_at, d.id),
    )
    if reached:
        first = reached[0]
        if (
            service.state == COMPLETE
            and service.effective_channel == first.channel
            and service.effective_at == first.reached_at
        ):
            return False
        before = service.state
        service.state = COMPLETE
        service.effective_channel, service.effective_at = first.channel, first.reached_at
        await db.flush()
        await _service_audit(
            db,
            "service.completed",
            service,
            before=before,
            channel=first.channel,
            delivery_id=first.id,
            effective_at=first.reached_at,
        )
        if before != COMPLETE:
            await _after_completion(db, service, settings)
            return True
        return False
    if deliveries and all(d.state == GAVE_UP for d in deliveries) and service.state != FAILED:
        service.state = FAILED
        await db.flush()
        await _service_audit(
            db,
            "service.failed",
            service,
            outcome="failed",
            reasons=[{"channel": d.channel, "error": d.last_error} for d in deliveries],
        )
    return False


async def _service_audit(
    db: AsyncSession,
    action: str,
    service: Service,
    actor: Actor = SYSTEM,
    outcome: str = "ok",
    **details: Any,
) -> None:
    await audit.append(
        db,
        AuditEntry(
            action,
            actor,
            "service",
            service.id,
            dispute_id=service.dispute_id,
            outcome=outcome,
            details={"document_id": service.document_id, **details},
        ),
    )


async def _after_completion(db: AsyncSession, service: Service, settings: Settings) -> None:
    """A ruling or judgment served on every party moves the dispute to ``served``, where
    the workflow allows it (the platform sends ServeDocuments)."""
    document = await db.get(Document, service.document_id)
    if document is None or document.kind not in FINAL_KINDS:
        return
    dispute = await db.get(Dispute, service.dispute_id)
    assert dispute is not None
    if cmd.ServeDocuments not in workflow_rules.allowed_commands(workflow.state_of(dispute)):
        return
    parties = [p.id for p in await _parties(db, service.dispute_id)]
    served = set(
        await db.scalars(
            select(Service.recipient_party_id).where(
                Service.document_id == service.document_id, Service.state == COMPLETE
            )
        )
    )
    if parties and all(party_id in served for party_id in parties):
        await workflow.execute(
            db,
            None,
            service.dispute_id,
            cmd.ServeDocuments(),
            calendar=workflow.calendar_for(settings),
        )


# the recipient's steps ------------------------------------------------------------------


async def _own(
    db: AsyncSession, principal: Principal, service_id: int
) -> tuple[Service, ServiceDelivery]:
    """The caller's own service, delivered to their inbox; else NotFound."""
    service = await db.get(Service, service_id, populate_existing=True)
    inbox = None
    if service is not None and service.recipient_user_id == principal.user_id:
        inbox = await db.scalar(
            select(ServiceDelivery)
            .where(ServiceDelivery.service_id == service.id, ServiceDelivery.channel == INBOX)
            .execution_options(populate_existing=True)
        )
    if service is None or inbox is None or inbox.reached_at is None:
        raise NotFound(NOT_YOURS).audited(
            "access.denied",
            dispute_id=service.dispute_id if service is not None else None,
            service_id=service_id,
        )
    return service, inbox


async def open_item(db: AsyncSession, principal: Principal, service_id: int) -> Service:
    """The recipient opens the inbox item (``opened_at`` the first time)."""
    service, inbox = await _own(db, principal, service_id)
    if inbox.opened_at is None:
        inbox.opened_at = utcnow()
        await db.flush()
        await _delivery_audit(
            db, "service.opened", service, inbox, principal.actor(), opened_at=inbox.opened_at
        )
    return service


async def record_download(
    db: AsyncSession, principal: Principal, service_id: int
) -> tuple[Service, Document, StoredObject]:
    """The recipient downloads the served document through the item (``downloaded_at`` the
    first time; every download audited)."""
    service, inbox = await _own(db, principal, service_id)
    document = await db.get(Document, service.document_id)
    assert document is not None
    stored = await db.get(StoredObject, document.object_id)
    assert stored is not None
    now = utcnow()
    first = inbox.downloaded_at is None
    if first:
        inbox.downloaded_at = now
        if inbox.opened_at is None:  # a download from the list opens the item too
            inbox.opened_at = now
        await db.flush()
    await _delivery_audit(
        db,
        "service.downloaded",
        service,
        inbox,
        principal.actor(),
        document_id=document.id,
        sha256=stored.sha256,
        first=first,
    )
    return service, document, stored


async def acknowledge(db: AsyncSession, principal: Principal, service_id: int) -> Service:
    """The recipient acknowledges receipt (``acknowledged_at`` the first time)."""
    service, inbox = await _own(db, principal, service_id)
    if inbox.acknowledged_at is None:
        inbox.acknowledged_at = utcnow()
        await db.flush()
        await _delivery_audit(
            db,
            "service.acknowledged",
            service,
            inbox,
            principal.actor(),
            acknowledged_at=inbox.acknowledged_at,
        )
    return service


# the clerk's steps ---------------------------------------------------------------------


async def retry_delivery(
    db: AsyncSession, principal: Principal, delivery_id: int, *, runner: JobRunner
) -> ServiceDelivery:
    """Try a failed delivery again now (one more attempt after it gave up)."""
    delivery = await db.get(ServiceDelivery, delivery_id)
    service = await db.get(Service, delivery.service_id) if delivery is not None else None
    if delivery is None or service is None:
        raise NotFound(N_("No such delivery.")).audited("access.denied", delivery_id=delivery_id)
    await _dispute_as_server(db, principal, service.dispute_id)
    delivery, service = await _locked_delivery(db, delivery_id)
    if delivery.state not in PROBLEM_DELIVERY:
        raise Conflict(N_("Only a failed delivery can be tried again."))
    before = delivery.state
    delivery.state, delivery.next_attempt_at = QUEUED, utcnow()
    if service.state == FAILED:
        service.state = PENDING
    await db.flush()
    await _delivery_audit(
        db,
        "service.retry_requested",
        service,
        delivery,
        principal.actor(),
        before=before,
        attempts=delivery.attempts,
        error=delivery.last_error,
    )
    await runner.enqueue(
        db,
        SERVICE_DELIVERY,
        _job_params(delivery),
        dispute_id=service.dispute_id,
        created_by=principal.actor(),
    )
    return delivery


async def record_certificate(
    db: AsyncSession,
    service_id: int,
    document: Document,
    stored: StoredObject,
    actor: Actor,
    version: int,
) -> Service:
    """Point the service at its newest certificate (documents are write-once)."""
    service = await db.get(Service, service_id, with_for_update=True, populate_existing=True)
    assert service is not None
    service.certificate_document_id = document.id
    await db.flush()
    await _service_audit(
        db,
        "service.certificate_made",
        service,
        actor,
        certificate_document_id=document.id,
        sha256=stored.sha256,
        version=version,
    )
    return service


async def certificate_versions(db: AsyncSession, service_id: int) -> int:
    """How many certificates were made for the service so far."""
    count = await db.scalar(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.action == "service.certificate_made",
            AuditEvent.object_type == "service",
            AuditEvent.object_id == str(service_id),
        )
    )
    return int(count or 0)


# reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One entry of a service's history, from its audit rows."""

    at: datetime
    action: str  # service.delivered, service.delivery_failed, ...
    channel: str
    delivery_id: int | None
    attempt: int | None
    error: str
    next_attempt_at: str | None
    actor: str


@dataclass(frozen=True)
class Trace:
    service: Service
    dispute: Dispute
    court: Court | None
    document: Document
    stored: StoredObject
    deliveries: list[ServiceDelivery]
    history: list[Step]
    consent: Consent | None = None

    @property
    def inbox(self) -> ServiceDelivery | None:
        return next((d for d in self.deliveries if d.channel == INBOX), None)

    @property
    def basis(self) -> str:
        return basis_of(self.service)

    @property
    def problems(self) -> list[ServiceDelivery]:
        return [d for d in self.deliveries if d.state in PROBLEM_DELIVERY]

    @property
    def rank(self) -> int:
        """0: the service failed; 1: a delivery failed; 2: nothing wrong."""
        if self.service.state == FAILED:
            return 0
        return 1 if self.problems else 2

    @property
    def unread(self) -> bool:
        inbox = self.inbox
        return inbox is not None and inbox.opened_at is None

    @property
    def failures(self) -> list[Step]:
        return [
            s
            for s in self.history
            if s.action in ("service.delivery_failed", "service.gave_up", "service.retry_requested")
        ]


async def traces(
    db: AsyncSession, services: Sequence[Service], *, history: bool = False
) -> list[Trace]:
    """Everything shown about each service, loaded in a few queries."""
    if not services:
        return []
    deliveries = await _deliveries(db, [s.id for s in services])
    documents = {
        d.id: d
        for d in await db.scalars(
            select(Document).where(Document.id.in_({s.document_id for s in services}))
        )
    }
    stored = {
        o.id: o
        for o in await db.scalars(
            select(StoredObject).where(
                StoredObject.id.in_({d.object_id for d in documents.values()})
            )
        )
    }
    disputes = {
        d.id: d
        for d in await db.scalars(
            select(Dispute).where(Dispute.id.in_({s.dispute_id for s in services}))
        )
    }
    courts = {
        c.id: c
        for c in await db.scalars(
            select(Court).where(Court.id.in_({d.court_id for d in disputes.values()}))
        )
    }
    consent_ids = {s.consent_id for s in services if s.consent_id is not None}
    consents = (
        {c.id: c for c in await db.scalars(select(Consent).where(Consent.id.in_(consent_ids)))}
        if consent_ids
        else {}
    )
    result = []
    for service in services:
        document = documents[service.document_id]
        dispute = disputes[service.dispute_id]
        own = [d for d in deliveries if d.service_id == service.id]
        result.append(
            Trace(
                service=service,
                dispute=dispute,
                court=courts.get(dispute.court_id),
                document=document,
                stored=stored[document.object_id],
                deliveries=own,
                history=await _history(db, service, own) if history else [],
                consent=consents.get(service.consent_id) if service.consent_id else None,
            )
        )
    return result


async def _history(
    db: AsyncSession, service: Service, deliveries: list[ServiceDelivery]
) -> list[Step]:
    channels = {str(d.id): d.channel for d in deliveries}
    rows = await db.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.dispute_id == service.dispute_id,
            or_(
                and_(AuditEvent.object_type == "service", AuditEvent.object_id == str(service.id)),
                and_(
                    AuditEvent.object_type == "service_delivery",
                    AuditEvent.object_id.in_(list(channels)),
                ),
            ),
        )
        .order_by(AuditEvent.seq)
    )
    steps = []
    for row in rows:
        details = row.details or {}
        attempt = details.get("attempt")
        steps.append(
            Step(
                at=row.at,
                action=row.action,
                channel=channels.get(row.object_id, "")
                if row.object_type == "service_delivery"
                else "",
                delivery_id=int(row.object_id) if row.object_type == "service_delivery" else None,
                attempt=int(attempt) if isinstance(attempt, int) else None,
                error=str(details.get("error") or ""),
                next_attempt_at=details.get("next_attempt_at"),
                actor=row.actor_name or row.actor_role,
            )
        )
    return steps


async def trace(db: AsyncSession, principal: Principal, service_id: int) -> Trace:
    """One service with its history: for staff who may follow the dispute's services, and
    for its recipient; NotFound for everyone else."""
    service = await db.get(Service, service_id, populate_existing=True)
    if service is None:
        raise NotFound(NOT_YOURS).audited("access.denied", service_id=service_id)
    if service.recipient_user_id != principal.user_id:
        if principal.role not in VIEWERS:
            raise NotFound(NOT_YOURS).audited(
                "access.denied", dispute_id=service.dispute_id, service_id=service_id
            )
        await _dispute_as_viewer(db, principal, service.dispute_id)
    return (await traces(db, [service], history=True))[0]


async def trace_for_certificate(db: AsyncSession, service_id: int) -> Trace:
    """The platform's own reading (the certificate made when a service completes)."""
    service = await db.get(Service, service_id, populate_existing=True)
    if service is None:
        raise NotFound(NOT_YOURS)
    return (await traces(db, [service], history=True))[0]


async def dispute_services(db: AsyncSession, principal: Principal, dispute_id: int) -> list[Trace]:
    """The dispute's services for the clerk: failed ones first, then the newest."""
    await _dispute_as_viewer(db, principal, dispute_id)
    services = await db.scalars(
        select(Service)
        .where(Service.dispute_id == dispute_id)
        .order_by(Service.created_at.desc(), Service.id.desc())
    )
    found = await traces(db, list(services), history=True)
    return sorted(found, key=lambda t: t.rank)  # stable: newest first within a rank


async def inbox(db: AsyncSession, principal: Principal, page: int, per_page: int) -> Page[Trace]:
    """Documents served on the caller, newest first (those delivered to their inbox)."""
    query = (
        select(Service)
        .where(
            Service.recipient_user_id == principal.user_id,
            exists().where(
                ServiceDelivery.service_id == Service.id,
                ServiceDelivery.channel == INBOX,
                ServiceDelivery.reached_at.is_not(None),
            ),
        )
        .order_by(Service.created_at.desc(), Service.id.desc())
    )
    found = await paginate(db, query, page, per_page)
    return Page(await traces(db, list(found.items)), found.page, found.per_page, found.total)


async def failed_in_court(
    db: AsyncSession, principal: Principal, page: int, per_page: int
) -> Page[Trace]:
    """The court's services that failed or have a failed delivery, failed ones first."""
    if principal.role not in COURT_DESK or principal.court_id is None:
        raise Forbidden(N_("Your role may not do this.")).audited(
            "access.denied", permission="service.failed_list"
        )
    failing = exists().where(
        ServiceDelivery.service_id == Service.id,
        ServiceDelivery.state.in_(list(PROBLEM_DELIVERY)),
    )
    query = (
        select(Service)
        .join(Dispute, Dispute.id == Service.dispute_id)
        .where(Dispute.court_id == principal.court_id, or_(Service.state == FAILED, failing))
        .order_by(
            case((Service.state == FAILED, 0), else_=1),
            Service.created_at.desc(),
            Service.id.desc(),
        )
    )
    found = await paginate(db, query, page, per_page)
    return Page(
        await traces(db, list(found.items), history=True), found.page, found.per_page, found.total
    )
