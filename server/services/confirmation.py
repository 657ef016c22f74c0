"""Judicial confirmation (司法确认) of a signed mediation agreement.

Once every party has signed the agreement (调解规则 Art. 19) the parties apply together,
within 30 days of it taking effect (民事诉讼法 2023 Art. 205): each party, or an agent
with special authority, joins the joint application; when all have, the application is
made (the workflow's ``ApplyForConfirmation``) and waits in the judges' queue of the
dispute's court. A judge of that court takes it and may ask the parties for evidence
(a check for false mediation), hold an online hearing (a ``confirmation_hearing``
session), and decides after confirming their identity again: the ruling (民事裁定书,
``server.services.ruling``) is stored as a write-once document, the workflow records
``ConfirmAgreement`` or ``RejectConfirmation``, and the ruling is served to every party
electronically where they consented; a party who cannot be served so is reported back.

Everything happens in the caller's unit of work; every step is audited. The
``Confirmation`` row is changed only here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.config import Settings
from server.db.models import (
    Agreement,
    AgreementVersion,
    CaseSession,
    Confirmation,
    Court,
    Dispute,
    DisputeAgent,
    DisputeParty,
    DisputeStaff,
    Document,
    MediationOrganisation,
    Mediator,
    Service,
    StoredObject,
    User,
)
from server.domain import commands as cmd
from server.domain.calendar import WorkingCalendar, court_date
from server.domain.disputes import DisputeStatus, type_label
from server.domain.documents import DEFAULT_LIMITS, DocumentKind, may_read
from server.domain.errors import N_, Conflict, DomainError, Forbidden, Invalid, NotFound
from server.domain.roles import DisputeRole, Permission, Role
from server.i18n import translate_in
from server.jobs.runner import JobRunner
from server.notify import Channel, Message
from server.pagination import Page, paginate
from server.services import court_hearings, e_service, ruling, workflow
from server.services.documents import record_document
from server.services.sessions import Links
from storage.spool import Spool

log = logging.getLogger(__name__)

APPLYING, APPLIED = "applying", "applied"
EVIDENCE_REQUESTED, HEARING = "evidence_requested", "hearing"
CONFIRMED, REJECTED = ruling.CONFIRMED, ruling.REJECTED
OPEN_STATES = (APPLIED, EVIDENCE_REQUESTED, HEARING)  # in the judges' queue
DECIDED_STATES = (CONFIRMED, REJECTED)
HEARING_KIND = "confirmation_hearing"
SPECIAL_AUTHORITY = "special"
MAX_TEXT = 4000

STATE_LABELS = {
    APPLYING: N_("Waiting for every party to apply"),
    APPLIED: N_("Applied: waiting for a judge"),
    EVIDENCE_REQUESTED: N_("Evidence requested from the parties"),
    HEARING: N_("Online hearing scheduled"),
    CONFIRMED: N_("Confirmed"),
    REJECTED: N_("Rejected"),
}

NOT_SIGNED = N_(
    "Judicial confirmation can be applied for only after every party has signed the mediation agreement."
)
TOO_LATE = N_(
    "Judicial confirmation must be applied for within 30 days of the agreement taking effect."
)
NOT_APPLICANT = N_(
    "Only a party, or an agent with special authority, may apply for judicial confirmation."
)
OTHER_COURT = N_(
    "Only a judge of the court handling this dispute may handle its judicial confirmation."
)
NO_CONSENT = N_("No consent to electronic service: serve this party another way.")
NO_ACCOUNT = N_("No account on the platform to receive documents: serve this party another way.")
NOT_SERVED = N_("Not served electronically: serve this party another way.")

EVIDENCE_TEXT = (
    "【一站】纠纷 {number} 的司法确认申请：审查法官要求补充以下材料，请登录平台在纠纷页面上传证据：{text}"
    " The judge reviewing the application for judicial confirmation of dispute {number}"
    " asks for more evidence; log in and upload it on the dispute's page."
)
HEARING_TEXT = (
    "【一站】{name}，您好：纠纷 {number} 的司法确认在线询问定于 {when}（北京时间）进行，"
    "请届时通过邀请链接进入。 The judge will hear the parties on the application for"
    " judicial confirmation of dispute {number} online at {when} (Beijing time)."
)


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applicant:
    """A party's part in the joint application, and who made it (the party or an agent)."""

    party_id: int
    user_id: int
    name: str  # of the person who applied
    at: datetime
    role: str = "party"  # party, agent


def applicants_of(confirmation: Confirmation) -> list[Applicant]:
    rows = json.loads(confirmation.applicants or "[]")
    return [
        Applicant(
            party_id=int(row["party_id"]),
            user_id=int(row["user_id"]),
            name=str(row.get("name", "")),
            at=datetime.fromisoformat(str(row["at"])),
            role=str(row.get("role", "party")),
        )
        for row in rows
    ]


def _dump_applicants(items: Sequence[Applicant]) -> str:
    return json.dumps(
        [
            {
                "party_id": a.party_id,
                "user_id": a.user_id,
                "name": a.name,
                "at": a.at.astimezone(UTC).isoformat(),
                "role": a.role,
            }
            for a in items
        ],
        ensure_ascii=False,
    )


async def _confirmation(db: AsyncSession, dispute_id: int) -> Confirmation | None:
    found: Confirmation | None = await db.scalar(
        select(Confirmation).where(Confirmation.dispute_id == dispute_id)
    )
    return found


async def _locked(db: AsyncSession, dispute_id: int) -> Dispute | None:
    found: Dispute | None = await db.scalar(
        select(Dispute).where(Dispute.id == dispute_id).with_for_update()
    )
    return found


async def _parties(db: AsyncSession, dispute_id: int) -> list[DisputeParty]:
    return list(
        await db.scalars(
            select(DisputeParty)
            .where(DisputeParty.dispute_id == dispute_id)
            .order_by(DisputeParty.id)
        )
    )


async def _agents(db: AsyncSession, dispute_id: int) -> list[DisputeAgent]:
    return list(
        await db.scalars(
            select(DisputeAgent)
            .where(DisputeAgent.dispute_id == dispute_id)
            .order_by(DisputeAgent.id)
        )
    )


async def _represented(db: AsyncSession, dispute_id: int, principal: Principal) -> dict[int, str]:
    """The parties the caller may apply for: their own, or those whose agent with special
    authority they are (party id -> "party" | "agent")."""
    found: dict[int, str] = {}
    if principal.role is Role.PARTY:
        own = await db.scalars(
            select(DisputeParty.id).where(
                DisputeParty.dispute_id == dispute_id, DisputeParty.user_id == principal.user_id
            )
        )
        found.update({party_id: "party" for party_id in own})
    elif principal.role is Role.AGENT:
        agents = await db.scalars(
            select(DisputeAgent.party_id).where(
                DisputeAgent.dispute_id == dispute_id,
                DisputeAgent.user_id == principal.user_id,
                DisputeAgent.authority == SPECIAL_AUTHORITY,
            )
        )
        found.update({party_id: "agent" for party_id in agents})
    return found


def _signed(dispute: Dispute, agreement: Agreement | None) -> bool:
    return (
        dispute.status == DisputeStatus.AGREEMENT_SIGNED.value
        and agreement is not None
        and agreement.state == "signed"
        and agreement.final_document_id is not None
    )


def _in_time(dispute: Dispute, now: datetime) -> bool:
    due = workflow.state_of(dispute).confirmation_due
    return due is None or now <= due


# --- the parties' joint application -------------------------------------------------------------


async def apply(
    db: AsyncSession,
    principal: Principal,
    dispute_id: int,
    *,
    calendar: WorkingCalendar,
    now: datetime | None = None,
) -> Confirmation:
    """The caller joins the joint application for every party they stand for; the last
    one makes the application (state ``applied``, the workflow's ``ApplyForConfirmation``)."""
    now = now or datetime.now(UTC)
    await access.dispute_for(db, principal, dispute_id)
    dispute = await _locked(db, dispute_id)
    assert dispute is not None
    represented = await _represented(db, dispute.id, principal)
    if not represented:
        raise Forbidden(NOT_APPLICANT).audited(
            "access.denied", dispute_id=dispute.id, step="confirmation.apply"
        )
    confirmation = await _confirmation(db, dispute.id)
    if confirmation is None:
        agreement = await db.scalar(select(Agreement).where(Agreement.dispute_id == dispute.id))
        if agreement is None or not _signed(dispute, agreement):
            raise Conflict(NOT_SIGNED).audited(
                "confirmation.refused",
                dispute_id=dispute.id,
                reason="agreement_not_signed",
                status=dispute.status,
                agreement_state=agreement.state if agreement is not None else None,
            )
        confirmation = Confirmation(
            dispute_id=dispute.id, agreement_id=agreement.id, state=APPLYING, applicants="[]"
        )
        db.add(confirmation)
        await db.flush()
    elif confirmation.state != APPLYING:
        raise Conflict(N_("The parties have already applied for judicial confirmation."))
    if not _in_time(dispute, now):
        raise Conflict(TOO_LATE)
    made = applicants_of(confirmation)
    done = {a.party_id for a in made}
    new = [
        Applicant(party_id, principal.user_id, principal.name, now, role)
        for party_id, role in sorted(represented.items())
        if party_id not in done
    ]
    if not new:
        raise Conflict(N_("You have already applied for judicial confirmation."))
    made += new
    confirmation.applicants = _dump_applicants(made)
    parties = await _parties(db, dispute.id)
    missing = [p for p in parties if p.id not in {a.party_id for a in made}]
    if not missing:
        confirmation.state = APPLIED
        confirmation.applied_at = now
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            "confirmation.applied",
            principal.actor(),
            "confirmation",
            confirmation.id,
            dispute_id=dispute.id,
            details={
                "party_ids": [a.party_id for a in new],
                "as": new[0].role,
                "all_applied": not missing,
                "waiting_for": [p.id for p in missing],
            },
        ),
    )
    if not missing:
        await workflow.execute(
            db,
            principal,
            dispute.id,
            cmd.ApplyForConfirmation(all_parties_apply=True),
            calendar=calendar,
            now=now,
        )
    return confirmation


# --- the judges' queue --------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    confirmation: Confirmation
    dispute: Dispute
    judge_name: str


async def queue(db: AsyncSession, principal: Principal, page: int, per_page: int) -> Page[Any]:
    """Applications of the judge's court waiting for a decision, the oldest first."""
    access.require(principal, Permission.DECIDE_CONFIRMATION)
    query = (
        select(Confirmation, Dispute, User.name)
        .join(Dispute, Dispute.id == Confirmation.dispute_id)
        .outerjoin(User, User.id == Confirmation.judge_user_id)
        .where(
            Dispute.court_id == (principal.court_id or -1),
            Confirmation.state.in_(OPEN_STATES),
        )
        .order_by(Confirmation.applied_at, Confirmation.id)
    )
    found = await paginate(db, query, page, per_page, rows=True)
    items = [QueueItem(c, d, name or "") for c, d, name in found.items]
    return Page(items, found.page, found.per_page, found.total)


# --- the judge's handling -----------------------------------------------------------------------


async def _for_judge(
    db: AsyncSession, principal: Principal, dispute_id: int, action: str
) -> tuple[Dispute, Confirmation]:
    """The dispute and its open application, for a judge of the dispute's court who is
    (now) handling it; anyone else is refused, and the refusal audited."""
    access.require(principal, Permission.DECIDE_CONFIRMATION)
    dispute = await _locked(db, dispute_id)
    if dispute is None:
        raise NotFound(N_("No such dispute, or it is not yours to see.")).audited(
            "access.denied", dispute_id=dispute_id, step=action
        )
    if principal.court_id is None or dispute.court_id != principal.court_id:
        raise Forbidden(OTHER_COURT).audited(
            "access.denied",
            dispute_id=dispute.id,
            step=action,
            reason="another_court",
            judge_court_id=principal.court_id,
        )
    confirmation = await _confirmation(db, dispute.id)
    if confirmation is None or confirmation.state == APPLYING:
        raise Conflict(N_("Not every party has applied for judicial confirmation yet."))
    if confirmation.state in DECIDED_STATES:
        raise Conflict(N_("This application has already been decided."))
    if confirmation.judge_user_id not in (None, principal.user_id):
        raise Forbidden(N_("Another judge is handling this application.")).audited(
            "access.denied", dispute_id=dispute.id, step=action, reason="another_judge"
        )
    if confirmation.judge_user_id is None:
        await _take(db, principal, dispute, confirmation)
    return dispute, confirmation


async def _take(
    db: AsyncSession, principal: Principal, dispute: Dispute, confirmation: Confirmation
) -> None:
    confirmation.judge_user_id = principal.user_id
    on = await db.scalar(
        select(DisputeStaff.id).where(
            DisputeStaff.dispute_id == dispute.id,
            DisputeStaff.user_id == principal.user_id,
            DisputeStaff.role == DisputeRole.JUDGE,
        )
    )
    if on is None:
        db.add(
            DisputeStaff(dispute_id=dispute.id, user_id=principal.user_id, role=DisputeRole.JUDGE)
        )
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            "confirmation.taken",
            principal.actor(),
            "confirmation",
            confirmation.id,
            dispute_id=dispute.id,
            details={"judge_user_id": principal.user_id},
        ),
    )


async def take(db: AsyncSession, principal: Principal, dispute_id: int) -> Confirmation:
    """A judge of the court takes the application (and the dispute's file with it)."""
    _, confirmation = await _for_judge(db, principal, dispute_id, "confirmation.take")
    return confirmation


def _text(value: str, name: str, *, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise Invalid(N_("This field is required: %(field)s."), field=name)
    if len(value) > MAX_TEXT:
        raise Invalid(N_("This field is not valid: %(field)s."), field=name)
    return value


async def _recipients(db: AsyncSession, dispute_id: int) -> list[tuple[str, int | None]]:
    """Where to tell the parties and their agents something: (phone or email, user)."""
    found: list[tuple[str, int | None]] = []
    seen: set[str] = set()
    for party in await _parties(db, dispute_id):
        destination = party.phone or party.email
        if destination and destination not in seen:
            seen.add(destination)
            found.append((destination, party.user_id))
    for agent in await _agents(db, dispute_id):
        if agent.phone and agent.phone not in seen:
            seen.add(agent.phone)
            found.append((agent.phone, agent.user_id))
    return found


async def request_evidence(
    db: AsyncSession,
    principal: Principal,
    channel: Channel,
    dispute_id: int,
    text: str,
    *,
    now: datetime | None = None,
) -> Confirmation:
    """Ask the parties for evidence (to rule out false mediation); they are told what is
    needed and upload it as evidence of the dispute."""
    now = now or datetime.now(UTC)
    wanted = _text(text, "evidence_request")
    dispute, confirmation = await _for_judge(
        db, principal, dispute_id, "confirmation.request_evidence"
    )
    confirmation.state = EVIDENCE_REQUESTED
    confirmation.evidence_request = wanted
    confirmation.evidence_requested_at = now
    await db.flush()
    told = []
    for destination, user_id in await _recipients(db, dispute.id):
        await channel.send(
            db,
            Message(
                destination=destination,
                subject="一站 Yizhan judicial confirmation",
                body=EVIDENCE_TEXT.format(number=dispute.number, text=wanted),
                user_id=user_id,
            ),
        )
        told.append(destination)
    await audit.append(
        db,
        AuditEntry(
            "confirmation.evidence_requested",
            principal.actor(),
            "confirmation",
            confirmation.id,
            dispute_id=dispute.id,
            details={"request": wanted, "notified": len(told)},
        ),
    )
    return confirmation


async def schedule_hearing(
    db: AsyncSession,
    principal: Principal,
    channel: Channel,
    dispute_id: int,
    starts_at: datetime,
    *,
    links: Links,
    now: datetime | None = None,
) -> court_hearings.Hearing:
    """An online hearing of the parties on the application, hosted by the judge: a
    ``confirmation_hearing`` session with the parties, their agents and the judge, each
    party and agent sent a link."""
    now = now or datetime.now(UTC)
    start = court_hearings.aware_start(starts_at, now)
    dispute, confirmation = await _for_judge(
        db, principal, dispute_id, "confirmation.schedule_hearing"
    )
    if confirmation.hearing_session_id is not None:
        earlier = await db.get(CaseSession, confirmation.hearing_session_id)
        if earlier is not None and earlier.status in ("scheduled", "open"):
            raise Conflict(N_("A hearing on this application is already scheduled."))
    hearing = await court_hearings.convene(
        db, principal, channel, dispute, kind=HEARING_KIND, start=start, links=links,
        text=HEARING_TEXT, now=now,
    )  # fmt: skip
    session, rows = hearing.session, hearing.participants
    confirmation.state = HEARING
    confirmation.mode = "hearing"
    confirmation.hearing_session_id = session.id
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            "confirmation.hearing_scheduled",
            principal.actor(),
            "confirmation",
            confirmation.id,
            dispute_id=dispute.id,
            details={
                "session_id": session.id,
                "starts_at": start,
                "participants": [
                    {
                        "role": row.role.value,
                        "name": row.name,
                        "invited": row.invited_at is not None,
                    }
                    for row in rows
                ],
            },
        ),
    )
    return hearing


# --- the decision and its ruling ----------------------------------------------------------------


@dataclass(frozen=True)
class Issuing:
    """What issuing a ruling needs: the spool its bytes go to, the settings (the signing
    key), and the job runner that delivers the services."""

    spool: Spool
    settings: Settings
    runner: JobRunner


@dataclass(frozen=True)
class ServiceNote:
    """How the ruling reached (or did not reach) one party."""

    party_id: int
    name: str
    service_id: int | None
    state: str  # the service's state, or "" when none was made
    text: str  # a message id: the state's label, or why no service was made

    @property
    def served(self) -> bool:
        return self.service_id is not None


@dataclass(frozen=True)
class Decided:
    confirmation: Confirmation
    document: Document
    stored: StoredObject
    services: list[ServiceNote] = field(default_factory=list)

    @property
    def not_served(self) -> list[ServiceNote]:
        return [note for note in self.services if not note.served]


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def decide(
    db: AsyncSession,
    principal: Principal,
    dispute_id: int,
    decision: str,
    reasons: str = "",
    *,
    issuing: Issuing,
    calendar: WorkingCalendar,
    reverify_minutes: int,
    now: datetime | None = None,
) -> Decided:
    """Confirm the agreement or reject the application, after a fresh one-time code:
    the ruling is laid out, signed, stored and served, and the workflow moves on."""
    now = now or datetime.now(UTC)
    if decision not in ruling.DECISIONS:
        raise Invalid(N_("This field is not valid: %(field)s."), field="decision")
    reasons = _text(reasons, "reasons", required=decision == REJECTED)
    dispute, confirmation = await _for_judge(db, principal, dispute_id, f"confirmation.{decision}")
    access.require_reverified(principal, reverify_minutes)
    command: cmd.Command = (
        cmd.ConfirmAgreement() if decision == CONFIRMED else cmd.RejectConfirmation(reason=reasons)
    )
    await workflow.execute(db, principal, dispute.id, command, calendar=calendar, now=now)
    facts = await _facts(db, principal, dispute, confirmation, decision, reasons, now)
    data = await asyncio.to_thread(ruling.render, facts)
    data = await asyncio.to_thread(
        ruling.sign,
        issuing.settings,
        data,
        judge_id=principal.user_id,
        judge_name=principal.name,
        court=facts.court,
    )
    limit = DEFAULT_LIMITS[DocumentKind.RULING]
    spooled = await issuing.spool.receive(_one(data), limit=limit)
    document, stored = await record_document(
        db,
        issuing.spool,
        spooled,
        actor=principal.actor(),
        dispute_id=dispute.id,
        kind=DocumentKind.RULING,
        filename=f"{facts.number}{ruling.TITLE}.pdf",
        title=f"{ruling.TITLE} {facts.number}",
    )
    confirmation.state = decision
    confirmation.decided_at = now
    confirmation.reasons = reasons
    confirmation.ruling_document_id = document.id
    confirmation.ruling_sha256 = stored.sha256
    await db.flush()
    services = await _serve_ruling(db, principal, dispute.id, document.id, issuing.runner)
    await audit.append(
        db,
        AuditEntry(
            f"confirmation.{decision}",
            principal.actor(),
            "confirmation",
            confirmation.id,
            dispute_id=dispute.id,
            details={
                "ruling_number": facts.number,
                "document_id": document.id,
                "sha256": stored.sha256,
                "reasons": reasons,
                "served": [note.party_id for note in services if note.served],
                "not_served": [
                    {"party_id": note.party_id, "reason": note.text}
                    for note in services
                    if not note.served
                ],
            },
        ),
    )
    return Decided(confirmation, document, stored, services)


def ruling_number(court: Court, confirmation: Confirmation, now: datetime) -> str:
    """The ruling's case number: （year）court code 民特 n 号, numbered by application."""
    return f"（{court_date(now).year}）{court.case_code}民特{confirmation.id}号"


async def _facts(
    db: AsyncSession,
    principal: Principal,
    dispute: Dispute,
    confirmation: Confirmation,
    decision: str,
    reasons: str,
    now: datetime,
) -> ruling.RulingFacts:
    court = await db.get(Court, dispute.court_id)
    agreement = await db.get(Agreement, confirmation.agreement_id)
    assert court is not None and agreement is not None
    version = agreement.signing_version or agreement.current_version
    text = await db.scalar(
        select(AgreementVersion.text).where(
            AgreementVersion.agreement_id == agreement.id, AgreementVersion.version == version
        )
    )
    parties = await _parties(db, dispute.id)
    agents = await _agents(db, dispute.id)
    clerk = await db.scalar(
        select(User.name)
        .join(DisputeStaff, DisputeStaff.user_id == User.id)
        .where(DisputeStaff.dispute_id == dispute.id, DisputeStaff.role == DisputeRole.CLERK)
        .order_by(DisputeStaff.id)
        .limit(1)
    )
    signed_at = agreement.signed_at or workflow.state_of(dispute).signed_at or now
    applied_at = confirmation.applied_at or now
    return ruling.RulingFacts(
        decision=decision,
        court=court.name,
        number=ruling_number(court, confirmation, now),
        dispute_number=dispute.number,
        dispute_type=translate_in("zh_CN", type_label(dispute.dispute_type)),
        parties=tuple(
            ruling.PartyLine(
                name=p.name,
                legal_person=p.kind == "legal",
                address=p.service_address,
                agents=tuple(a.name for a in agents if a.party_id == p.id),
            )
            for p in parties
        ),
        applicant_names="、".join(p.name for p in parties),
        applied_on=ruling.chinese_date(court_date(applied_at)),
        agreement_number=agreement.number,
        agreement_signed_on=ruling.chinese_date(court_date(signed_at)),
        agreement_text=ruling.paragraphs(text or ""),
        agreement_sha256=await _agreement_sha256(db, agreement),
        mediated_by=await _mediated_by(db, dispute),
        reasons=ruling.paragraphs(reasons),
        judge=principal.name,
        clerk=clerk or "",
        decided_on=ruling.chinese_date(court_date(now)),
    )


async def _agreement_sha256(db: AsyncSession, agreement: Agreement) -> str:
    if agreement.final_document_id is not None:
        found = await db.scalar(
            select(StoredObject.sha256)
            .join(Document, Document.object_id == StoredObject.id)
            .where(Document.id == agreement.final_document_id)
        )
        if found:
            return str(found)
    return agreement.final_sha256


async def _mediated_by(db: AsyncSession, dispute: Dispute) -> str:
    if dispute.mediator_user_id is None:
        return ""
    row = (
        await db.execute(
            select(User.name, MediationOrganisation.name)
            .outerjoin(Mediator, Mediator.user_id == User.id)
            .outerjoin(MediationOrganisation, MediationOrganisation.id == Mediator.organisation_id)
            .where(User.id == dispute.mediator_user_id)
        )
    ).first()
    if row is None:
        return ""
    name, organisation = row
    return f"{organisation}调解员{name}" if organisation else f"调解员{name}"


# --- serving the ruling -------------------------------------------------------------------------


async def _serve_ruling(
    db: AsyncSession, principal: Principal, dispute_id: int, document_id: int, runner: JobRunner
) -> list[ServiceNote]:
    """Serve the ruling on every party who may be served electronically; the others, and
    any failure, are reported back (never silently dropped)."""
    parties = await _parties(db, dispute_id)
    servable = [p.id for p in parties if not await _unservable(db, p)]
    failure = ""
    if servable:
        try:
            async with db.begin_nested():
                await _serve(db, principal, dispute_id, document_id, servable, runner)
        except DomainError as exc:
            log.warning("ruling %s of dispute %s not served: %s", document_id, dispute_id, exc)
            failure = exc.message if not exc.params else NOT_SERVED
        except Exception:  # the ruling stands; its service is reported as not made
            log.exception("ruling %s of dispute %s not served", document_id, dispute_id)
            failure = NOT_SERVED
    return await service_notes(db, dispute_id, document_id, failure=failure)


async def _serve(
    db: AsyncSession,
    principal: Principal,
    dispute_id: int,
    document_id: int,
    party_ids: list[int],
    runner: JobRunner,
) -> list[Service]:
    """The one place that serves a document (through the e-service module)."""
    return await e_service.serve(db, principal, dispute_id, document_id, party_ids, runner=runner)


async def _unservable(db: AsyncSession, party: DisputeParty) -> str:
    """Why a party cannot be served electronically (a message id), or ""."""
    if await e_service.consent_basis(db, party) is None:
        return NO_CONSENT
    if party.user_id is None:
        return NO_ACCOUNT
    return ""


async def service_notes(
    db: AsyncSession, dispute_id: int, document_id: int, *, failure: str = ""
) -> list[ServiceNote]:
    """For each party: the service of the document made for them, or why there is none."""
    services = {
        s.recipient_party_id: s
        for s in await db.scalars(
            select(Service).where(Service.document_id == document_id).order_by(Service.id)
        )
        if s.recipient_party_id is not None
    }
    notes = []
    for party in await _parties(db, dispute_id):
        found = services.get(party.id)
        if found is not None:
            label = e_service.STATE_LABELS.get(found.state, found.state)
            notes.append(ServiceNote(party.id, party.name, found.id, found.state, label))
            continue
        reason = await _unservable(db, party) or failure or NOT_SERVED
        notes.append(ServiceNote(party.id, party.name, None, "", reason))
    return notes


# --- the application's file -----------------------------------------------------------------------


@dataclass(frozen=True)
class FileDocument:
    document: Document
    sha256: str
    size: int


@dataclass(frozen=True)
class ApplicationFile:
    """What the application page and its JSON show."""

    dispute: Dispute
    court: str
    confirmation: Confirmation | None
    agreement: Agreement | None
    agreement_document: FileDocument | None
    signed: bool  # the agreement is signed by all: the parties may apply
    confirmation_due: datetime | None
    parties: list[DisputeParty]
    applicants: list[Applicant]
    waiting_for: list[DisputeParty]
    documents: list[FileDocument]
    sessions: list[CaseSession]
    hearing: CaseSession | None
    judge_name: str
    ruling: FileDocument | None
    services: list[ServiceNote]
    may_apply: bool
    may_handle: bool
    applied_by_me: bool

    @property
    def state(self) -> str:
        return self.confirmation.state if self.confirmation else ""


async def _viewable(db: AsyncSession, principal: Principal, dispute_id: int) -> Dispute:
    """Whoever may see the dispute; and a judge of its court once the application is made
    (before they take it and join the dispute's staff)."""
    if principal.role is Role.JUDGE and principal.court_id is not None:
        dispute = await db.get(Dispute, dispute_id)
        if dispute is not None and dispute.court_id == principal.court_id:
            found = await _confirmation(db, dispute.id)
            if found is not None and found.state != APPLYING:
                return dispute
    return await access.dispute_for(db, principal, dispute_id)


async def _file_documents(db: AsyncSession, dispute_id: int) -> list[FileDocument]:
    rows = await db.execute(
        select(Document, StoredObject)
        .join(StoredObject, StoredObject.id == Document.object_id)
        .where(Document.dispute_id == dispute_id)
        .order_by(Document.id)
    )
    return [FileDocument(d, s.sha256, s.size) for d, s in rows.tuples()]


async def application_file(
    db: AsyncSession, principal: Principal, dispute_id: int, *, now: datetime | None = None
) -> ApplicationFile:
    now = now or datetime.now(UTC)
    dispute = await _viewable(db, principal, dispute_id)
    confirmation = await _confirmation(db, dispute.id)
    agreement = await db.scalar(select(Agreement).where(Agreement.dispute_id == dispute.id))
    parties = await _parties(db, dispute.id)
    applicants = applicants_of(confirmation) if confirmation else []
    applied = {a.party_id for a in applicants}
    documents = [
        f
        for f in await _file_documents(db, dispute.id)
        if may_read(principal.role, DocumentKind(f.document.kind))
    ]
    by_id = {f.document.id: f for f in documents}
    agreement_document = (
        by_id.get(agreement.final_document_id)
        if agreement is not None and agreement.final_document_id is not None
        else None
    )
    ruling_document = (
        by_id.get(confirmation.ruling_document_id)
        if confirmation is not None and confirmation.ruling_document_id is not None
        else None
    )
    sessions = list(
        await db.scalars(
            select(CaseSession)
            .where(CaseSession.dispute_id == dispute.id)
            .order_by(CaseSession.scheduled_start, CaseSession.id)
        )
    )
    hearing = next(
        (s for s in sessions if confirmation and s.id == confirmation.hearing_session_id), None
    )
    judge_name = ""
    if confirmation is not None and confirmation.judge_user_id is not None:
        judge = await db.get(User, confirmation.judge_user_id)
        judge_name = judge.name if judge else ""
    represented = await _represented(db, dispute.id, principal)
    signed = _signed(dispute, agreement) or (confirmation is not None)
    open_to_apply = confirmation is None or confirmation.state == APPLYING
    may_apply = (
        bool(set(represented) - applied)
        and open_to_apply
        and _signed(dispute, agreement)
        and _in_time(dispute, now)
    )
    court = await db.get(Court, dispute.court_id)
    return ApplicationFile(
        dispute=dispute,
        court=court.name if court else "",
        confirmation=confirmation,
        agreement=agreement,
        agreement_document=agreement_document,
        signed=signed,
        confirmation_due=workflow.state_of(dispute).confirmation_due,
        parties=parties,
        applicants=applicants,
        waiting_for=[p for p in parties if p.id not in applied],
        documents=documents,
        sessions=sessions,
        hearing=hearing,
        judge_name=judge_name,
        ruling=ruling_document,
        services=(
            await service_notes(db, dispute.id, confirmation.ruling_document_id)
            if confirmation is not None and confirmation.ruling_document_id is not None
            else []
        ),
        may_apply=may_apply,
        may_handle=(
            principal.role is Role.JUDGE
            and principal.court_id == dispute.court_id
            and confirmation is not None
            and confirmation.state in OPEN_STATES
            and confirmation.judge_user_id in (None, principal.user_id)
        ),
        applied_by_me=bool(represented) and set(represented) <= applied,
    )
