"""Online applications for mediation (网上申请调解).

A party (or their agent) writes the application; a clerk writes it at the counter
for a walk-in party.  The draft is saved and resumed as often as needed: every
save goes through the workflow (``SaveDraft``), so it is audited and refused once
the application is filed.  Filing checks that nothing required is missing,
records the consents to online handling and to electronic service for the
mediation stage (在线诉讼规则 Art. 4), files the application (``SubmitApplication``)
and runs the automatic triage, all in the caller's unit of work.

Every problem with the input is an ``Invalid`` naming its field; several at once
are an ``ApplicationInvalid`` that lists them all, so that a form can show each
one next to its field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.login import normalise_account
from server.auth.principal import Principal
from server.db import workflow_codec
from server.db.models import (
    Consent,
    Court,
    Dispute,
    DisputeAgent,
    DisputeParty,
    DisputeStaff,
    User,
)
from server.domain import commands as cmd
from server.domain.calendar import WorkingCalendar, court_date
from server.domain.disputes import INITIAL, DisputeStatus, DisputeType
from server.domain.errors import N_, Forbidden, Invalid
from server.domain.identity import is_valid_credit_code, is_valid_resident_id
from server.domain.roles import DisputeRole, Permission, Role
from server.domain.triage import TriageResult
from server.pagination import Page, paginate
from server.services import workflow
from server.services.users import EMAIL, PHONE, NewUser, create_user

NATURAL = "natural"
LEGAL = "legal"
KINDS = (NATURAL, LEGAL)
AUTHORITIES = ("general", "special")

MAX_NAME = 100  # as for accounts, so that a walk-in applicant's account can be made
MAX_ADDRESS = 400
MAX_SUMMARY = 5000
MAX_REQUESTS = 2000
MAX_OTHERS = 20  # respondents, and third parties, on one application
MAX_CLAIM = Decimal("10000000000")  # ten billion yuan
CENT = Decimal("0.01")

STAGE = "mediation"
ONLINE_HANDLING = "online_handling"
ELECTRONIC_SERVICE = "electronic_service"

# messages ---------------------------------------------------------------------------

REQUIRED = N_("This field is required.")
NOT_VALID = N_("This field is not valid: %(field)s.")
BAD_NAME = N_("Enter a name of at most 100 characters.")
BAD_KIND = N_("Choose a natural person or a legal person.")
BAD_RESIDENT_ID = N_("Enter a valid 18-character resident ID number.")
BAD_CREDIT_CODE = N_("Enter a valid 18-character unified social credit code.")
BAD_PHONE = N_("Enter a mainland mobile number of 11 digits.")
BAD_EMAIL = N_("Enter a valid email address.")
BAD_ADDRESS = N_("Enter an email address or a postal address of at most %(max)s characters.")
BAD_AMOUNT = N_("Enter an amount in yuan from 0 to %(max)s, with at most two decimal places.")
BAD_TYPE = N_("Choose a dispute type.")
BAD_AUTHORITY = N_("Choose general or special authority.")
TOO_LONG = N_("Enter at most %(max)s characters.")
TOO_MANY = N_("At most %(max)s parties can be named on each side.")
NO_RESPONDENT = N_("Name at least one respondent.")
NO_CONTACT = N_("Enter a phone number or an address for service.")
NO_CONSENT = N_("Mediation online needs your consent.")
CHOOSE_COURT = N_("Choose the court to apply to.")
NOT_A_PARTY_PHONE = N_(
    "This phone number belongs to an account that is not a party's; enter the party's own number."
)
NOT_ALLOWED = N_("You may not do this on this dispute.")


# errors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    params: Mapping[str, Any]


class ApplicationInvalid(Invalid):
    """One or more fields of an application are wrong or missing; the first one is
    the error's own message and field, ``errors`` holds them all."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        first = errors[0]
        super().__init__(first.message, field=first.field, **first.params)
        self.errors = tuple(errors)


class _Problems:
    def __init__(self) -> None:
        self.found: list[FieldError] = []

    def add(self, name: str, message: str, **params: Any) -> None:
        if all(e.field != name for e in self.found):
            self.found.append(FieldError(name, message, params))

    def check(self) -> None:
        if self.found:
            raise ApplicationInvalid(self.found)


# identities --------------------------------------------------------------------------


def normalise_phone(value: str) -> str:
    phone = normalise_account(value)
    for prefix in ("+86", "0086"):
        if phone.startswith(prefix):
            phone = phone[len(prefix) :]
    return phone


# what an application holds ------------------------------------------------------------


@dataclass(frozen=True)
class PartyIn:
    """A party's identity: applicant, respondent or third party."""

    name: str = ""
    kind: str = NATURAL
    id_number: str = ""
    phone: str = ""
    service_address: str = ""  # an email address or a postal address for service

    def is_blank(self) -> bool:
        return not (self.name or self.id_number or self.phone or self.service_address)


@dataclass(frozen=True)
class AgentIn:
    """The applicant's agent (代理人)."""

    name: str = ""
    phone: str = ""
    authority: str = "general"  # general, special (特别授权)

    def is_blank(self) -> bool:
        return not (self.name or self.phone)


@dataclass(frozen=True)
class Application:
    """An application's content, as saved (and as cleaned from input)."""

    dispute_type: str = ""
    claim_amount: Decimal | None = None  # None: nothing in money is claimed
    summary: str = ""
    requests: str = ""
    applicant: PartyIn = field(default_factory=PartyIn)
    respondents: tuple[PartyIn, ...] = ()
    third_parties: tuple[PartyIn, ...] = ()
    agent: AgentIn | None = None


@dataclass(frozen=True)
class DraftIn:
    """What a save sends.  A field left None keeps its saved value; an empty string
    clears it; a blank agent removes the agent; blank parties in a list are dropped."""

    dispute_type: str | None = None
    claim_amount: str | Decimal | None = None
    summary: str | None = None
    requests: str | None = None
    applicant: PartyIn | None = None
    respondents: Sequence[PartyIn] | None = None
    third_parties: Sequence[PartyIn] | None = None
    agent: AgentIn | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__dataclass_fields__)


@dataclass(frozen=True)
class ConsentsIn:
    online_mediation: bool
    electronic_service: bool


@dataclass(frozen=True)
class Draft:
    dispute: Dispute
    court: Court
    application: Application
    changed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Submitted:
    dispute: Dispute
    triage: TriageResult


# cleaning input ----------------------------------------------------------------------


def _text(value: str, name: str, limit: int, problems: _Problems) -> str:
    value = value.strip()
    if len(value) > limit:
        problems.add(name, TOO_LONG, max=limit)
    return value


def _party(party: PartyIn, prefix: str, problems: _Problems) -> PartyIn:
    name = party.name.strip()
    if len(name) > MAX_NAME:
        problems.add(f"{prefix}.name", BAD_NAME)
    kind = party.kind.strip() or NATURAL
    if kind not in KINDS:
        problems.add(f"{prefix}.kind", BAD_KIND)
    id_number = re.sub(r"\s", "", party.id_number).upper()
    if id_number and kind == NATURAL and not is_valid_resident_id(id_number):
        problems.add(f"{prefix}.id_number", BAD_RESIDENT_ID)
    elif id_number and kind == LEGAL and not is_valid_credit_code(id_number):
        problems.add(f"{prefix}.id_number", BAD_CREDIT_CODE)
    phone = normalise_phone(party.phone)
    if phone and not PHONE.match(phone):
        problems.add(f"{prefix}.phone", BAD_PHONE)
    address = party.service_address.strip()
    if len(address) > MAX_ADDRESS:
        problems.add(f"{prefix}.service_address", BAD_ADDRESS, max=MAX_ADDRESS)
    elif "@" in address:
        address = address.lower()
        if not EMAIL.match(address):
            problems.add(f"{prefix}.service_address", BAD_EMAIL)
    return PartyIn(name, kind, id_number, phone, address)


def _parties(parties: Sequence[PartyIn], side: str, problems: _Problems) -> tuple[PartyIn, ...]:
    cleaned = [
        _party(p, f"{side}.{i}", problems) for i, p in enumerate(parties) if not p.is_blank()
    ]
    if len(cleaned) > MAX_OTHERS:
        problems.add(side, TOO_MANY, max=MAX_OTHERS)
    return tuple(cleaned)


def _agent(agent: AgentIn, problems: _Problems) -> AgentIn | None:
    if agent.is_blank():
        return None
    name = agent.name.strip()
    if len(name) > MAX_NAME:
        problems.add("agent.name", BAD_NAME)
    phone = normalise_phone(agent.phone)
    if phone and not PHONE.match(phone):
        problems.add("agent.phone", BAD_PHONE)
    authority = agent.authority.strip() or "general"
    if authority not in AUTHORITIES:
        problems.add("agent.authority", BAD_AUTHORITY)
    return AgentIn(name, phone, authority)


def parse_amount(value: str | Decimal | None, problems: _Problems) -> Decimal | None:
    """Yuan, at least 0, at most ``MAX_CLAIM``, at most two decimal places; blank: None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = re.sub(r"[\s,，]", "", value)
        if not value:
            return None
        try:
            value = Decimal(value)
        except InvalidOperation:
            problems.add("claim_amount", BAD_AMOUNT, max=MAX_CLAIM)
            return None
    if not value.is_finite() or value < 0 or value > MAX_CLAIM or value != value.quantize(CENT):
        problems.add("claim_amount", BAD_AMOUNT, max=MAX_CLAIM)
        return None
    return value.quantize(CENT) + 0  # + 0 turns -0 into 0


def _merge(old: Application, data: DraftIn, problems: _Problems) -> Application:
    """The application after this save, every given field cleaned."""
    dispute_type = old.dispute_type
    if data.dispute_type is not None:
        dispute_type = data.dispute_type.strip()
        if dispute_type and dispute_type not in {t.value for t in DisputeType}:
            problems.add("dispute_type", BAD_TYPE)
    claim = old.claim_amount
    if data.claim_amount is not None:
        claim = parse_amount(data.claim_amount, problems)
    summary = (
        old.summary
        if data.summary is None
        else _text(data.summary, "summary", MAX_SUMMARY, problems)
    )
    requests = (
        old.requests
        if data.requests is None
        else _text(data.requests, "requests", MAX_REQUESTS, problems)
    )
    return Application(
        dispute_type=dispute_type,
        claim_amount=claim,
        summary=summary,
        requests=requests,
        applicant=old.applicant
        if data.applicant is None
        else _party(data.applicant, "applicant", problems),
        respondents=old.respondents
        if data.respondents is None
        else _parties(data.respondents, "respondents", problems),
        third_parties=old.third_parties
        if data.third_parties is None
        else _parties(data.third_parties, "third_parties", problems),
        agent=old.agent if data.agent is None else _agent(data.agent, problems),
    )


def _complete(app: Application, problems: _Problems) -> None:
    """What must be there before the application is filed."""
    for name in ("dispute_type", "summary", "requests"):
        if not getattr(app, name):
            problems.add(name, REQUIRED)
    for name in ("name", "id_number", "phone", "service_address"):
        if not getattr(app.applicant, name):
            problems.add(f"applicant.{name}", REQUIRED)
    if not app.respondents:
        problems.add("respondents.0.name", NO_RESPONDENT)
    for i, party in enumerate(app.respondents):
        if not party.name:
            problems.add(f"respondents.{i}.name", REQUIRED)
        if not (party.phone or party.service_address):
            problems.add(f"respondents.{i}.phone", NO_CONTACT)
    for i, party in enumerate(app.third_parties):
        if not party.name:
            problems.add(f"third_parties.{i}.name", REQUIRED)
    if app.agent is not None:
        for name in ("name", "phone"):
            if not getattr(app.agent, name):
                problems.add(f"agent.{name}", REQUIRED)


def changed_fields(old: Application, new: Application) -> frozenset[str]:
    """The names of the fields a save changes, as the API and the audit log name them."""
    changed: set[str] = {
        name
        for name in ("dispute_type", "claim_amount", "summary", "requests")
        if getattr(old, name) != getattr(new, name)
    }
    changed |= _party_changes("applicant", old.applicant, new.applicant)
    for side in ("respondents", "third_parties"):
        before, after = getattr(old, side), getattr(new, side)
        for i in range(max(len(before), len(after))):
            if i >= len(before) or i >= len(after):
                changed.add(f"{side}.{i}")
            else:
                changed |= _party_changes(f"{side}.{i}", before[i], after[i])
    if (old.agent is None) != (new.agent is None):
        changed.add("agent")
    elif old.agent is not None and new.agent is not None:
        changed |= {
            f"agent.{name}"
            for name in ("name", "phone", "authority")
            if getattr(old.agent, name) != getattr(new.agent, name)
        }
    return frozenset(changed)


def _party_changes(prefix: str, old: PartyIn, new: PartyIn) -> set[str]:
    return {
        f"{prefix}.{name}"
        for name in PartyIn.__dataclass_fields__
        if getattr(old, name) != getattr(new, name)
    }


# rows --------------------------------------------------------------------------------


@dataclass
class _Rows:
    applicant: DisputeParty
    respondents: list[DisputeParty]
    third_parties: list[DisputeParty]
    agent: DisputeAgent | None


async def _rows(db: AsyncSession, dispute_id: int) -> _Rows:
    parties = list(
        await db.scalars(
            select(DisputeParty)
            .where(DisputeParty.dispute_id == dispute_id)
            .order_by(DisputeParty.id)
        )
    )
    applicants = [p for p in parties if p.side is DisputeRole.APPLICANT]
    assert applicants, "an application always has its applicant row"
    applicant = applicants[0]
    agent = await db.scalar(
        select(DisputeAgent)
        .where(DisputeAgent.dispute_id == dispute_id, DisputeAgent.party_id == applicant.id)
        .order_by(DisputeAgent.id)
        .limit(1)
    )
    return _Rows(
        applicant=applicant,
        respondents=[p for p in parties if p.side is DisputeRole.RESPONDENT],
        third_parties=[p for p in parties if p.side is DisputeRole.THIRD_PARTY],
        agent=agent,
    )


def _party_of(row: DisputeParty) -> PartyIn:
    return PartyIn(
        name=row.name,
        kind=row.kind,
        id_number=row.id_number,
        phone=row.phone,
        service_address=row.service_address or row.email,
    )


def _application(dispute: Dispute, rows: _Rows) -> Application:
    agent = rows.agent
    return Application(
        dispute_type=dispute.dispute_type,
        claim_amount=dispute.claim_amount,
        summary=dispute.summary,
        requests=dispute.requests,
        applicant=_party_of(rows.applicant),
        respondents=tuple(_party_of(p) for p in rows.respondents),
        third_parties=tuple(_party_of(p) for p in rows.third_parties),
        agent=AgentIn(agent.name, agent.phone, agent.authority) if agent else None,
    )


def _write_party(row: DisputeParty, party: PartyIn) -> None:
    row.name = party.name
    row.kind = party.kind
    row.id_number = party.id_number
    row.phone = party.phone
    row.service_address = party.service_address
    row.email = party.service_address if "@" in party.service_address else ""


async def _write_side(
    db: AsyncSession,
    dispute_id: int,
    side: DisputeRole,
    rows: list[DisputeParty],
    parties: Sequence[PartyIn],
) -> None:
    for i, party in enumerate(parties):
        if i < len(rows):
            row = rows[i]
        else:
            row = DisputeParty(dispute_id=dispute_id, side=side)
            db.add(row)
        _write_party(row, party)
    for row in rows[len(parties) :]:
        await db.delete(row)


async def _agent_account(db: AsyncSession, phone: str) -> int | None:
    """An agent named on an application gets to see it when they have an agent's account."""
    if not phone:
        return None
    found: int | None = await db.scalar(
        select(User.id).where(User.phone == phone, User.role == Role.AGENT, User.active.is_(True))
    )
    return found


async def _write(
    db: AsyncSession, principal: Principal, dispute: Dispute, rows: _Rows, app: Application
) -> None:
    dispute.dispute_type = app.dispute_type
    dispute.claim_amount = app.claim_amount
    dispute.summary = app.summary
    dispute.requests = app.requests
    _write_party(rows.applicant, app.applicant)
    await _write_side(db, dispute.id, DisputeRole.RESPONDENT, rows.respondents, app.respondents)
    await _write_side(
        db, dispute.id, DisputeRole.THIRD_PARTY, rows.third_parties, app.third_parties
    )
    agent = rows.agent
    if app.agent is None:
        if agent is not None:
            await db.delete(agent)
    else:
        if agent is None:
            agent = DisputeAgent(dispute_id=dispute.id, party_id=rows.applicant.id)
            db.add(agent)
        elif agent.user_id is not None and agent.phone != app.agent.phone:
            agent.user_id = None
        agent.name, agent.phone, agent.authority = (
            app.agent.name,
            app.agent.phone,
            app.agent.authority,
        )
        if principal.role is Role.AGENT and agent.user_id in (None, principal.user_id):
            # the agent who writes the application stays on it
            agent.user_id = principal.user_id
        elif agent.user_id is None:
            agent.user_id = await _agent_account(db, app.agent.phone)
    await db.flush()


# numbers -------------------------------------------------------------------------------

NUMBER_LOCK = 0x595A_4E4F << 32  # "YZNO", plus the court and the year


def number_prefix(court: Court, year: int) -> str:
    return f"（{year}）{court.case_code or court.code}诉前调"


async def next_number(db: AsyncSession, court: Court, now: datetime) -> str:
    """The court's next pre-filing mediation number of the year: （2026）CODE诉前调7号.

    Two writers never get the same number: on PostgreSQL an advisory lock per court
    and year orders them until the first commits; on SQLite a writing transaction
    already holds the database's write lock.  The unique column is the last guard.
    """
    year = court_date(now).year
    if db.bind.dialect.name == "postgresql":
        await db.execute(
            text("SELECT pg_advisory_xact_lock(:key)"),
            {"key": NUMBER_LOCK + court.id * 10_000 + year},
        )
    prefix = number_prefix(court, year)
    last = await db.scalar(
        select(Dispute.number)
        .where(Dispute.court_id == court.id, Dispute.number.startswith(prefix, autoescape=True))
        .order_by(func.length(Dispute.number).desc(), Dispute.number.desc())
        .limit(1)
    )
    found = re.fullmatch(r"(\d+)号", last[len(prefix) :]) if last else None
    return f"{prefix}{int(found.group(1)) + 1 if found else 1}号"


# the service ------------------------------------------------------------------------------


async def courts(db: AsyncSession) -> list[Court]:
    return list(await db.scalars(select(Court).order_by(Court.id)))


async def _court_for(db: AsyncSession, principal: Principal, code: str | None) -> Court:
    """A clerk files at their own court; a party names the court, unless there is one."""
    found: Court | None = None
    if principal.role is Role.CLERK and principal.court_id is not None:
        found = await db.get(Court, principal.court_id)
        if found is not None and code and code != found.code:
            raise Invalid(CHOOSE_COURT, field="court")
    elif code:
        found = await db.scalar(select(Court).where(Court.code == code))
    else:
        every = await db.scalars(select(Court).order_by(Court.id).limit(2))
        only = list(every)
        found = only[0] if len(only) == 1 else None
    if found is None:
        raise Invalid(CHOOSE_COURT, field="court")
    return found


async def blank(db: AsyncSession, principal: Principal) -> Application:
    """A new application's first values: a party applies in their own name."""
    access.require(principal, Permission.APPLY)
    user = await db.get(User, principal.user_id)
    assert user is not None
    if principal.role is Role.PARTY:
        return Application(applicant=PartyIn(name=user.name, phone=user.phone or ""))
    if principal.role is Role.AGENT:
        return Application(agent=AgentIn(name=user.name, phone=user.phone or ""))
    return Application()


async def create_draft(
    db: AsyncSession,
    principal: Principal,
    data: DraftIn,
    *,
    court: str | None = None,
    calendar: WorkingCalendar,
    now: datetime | None = None,
) -> Draft:
    """A new draft, numbered; the caller's first values are saved as its first save."""
    access.require(principal, Permission.APPLY)
    now = now or datetime.now(UTC)
    where = await _court_for(db, principal, court)
    first = await blank(db, principal)
    dispute = Dispute(
        court_id=where.id,
        number=await next_number(db, where, now),
        dispute_type="",
        status=DisputeStatus.DRAFT.value,
        workflow=workflow_codec.dump(INITIAL),
        created_by_id=principal.user_id,
    )
    db.add(dispute)
    await db.flush()
    applicant = DisputeParty(dispute_id=dispute.id, side=DisputeRole.APPLICANT, kind=NATURAL)
    _write_party(applicant, first.applicant)
    if principal.role is Role.PARTY:
        applicant.user_id = principal.user_id
    db.add(applicant)
    if principal.role is Role.CLERK:
        db.add(
            DisputeStaff(dispute_id=dispute.id, user_id=principal.user_id, role=DisputeRole.CLERK)
        )
    await db.flush()
    if first.agent is not None:
        db.add(
            DisputeAgent(
                dispute_id=dispute.id,
                party_id=applicant.id,
                name=first.agent.name,
                phone=first.agent.phone,
                user_id=principal.user_id,
            )
        )
        await db.flush()
    await audit.append(
        db,
        AuditEntry(
            "dispute.created",
            principal.actor(),
            "dispute",
            dispute.id,
            dispute_id=dispute.id,
            details={"after": {"status": dispute.status, "number": dispute.number}},
        ),
    )
    if data.is_empty():
        return await get_draft(db, principal, dispute.id)
    return await save_draft(
        db, principal, dispute.id, data, calendar=calendar, now=now, allow_unchanged=True
    )


async def _own(db: AsyncSession, principal: Principal, dispute_id: int) -> Dispute:
    """The dispute, if the caller may see it and write its application."""
    dispute = await access.dispute_for(db, principal, dispute_id)
    if not await workflow.may_send(db, principal, dispute, cmd.SaveDraft):
        raise Forbidden(NOT_ALLOWED).audited(
            "access.denied", dispute_id=dispute_id, command=cmd.SaveDraft.key()
        )
    return dispute


async def get_draft(db: AsyncSession, principal: Principal, dispute_id: int) -> Draft:
    dispute = await _own(db, principal, dispute_id)
    court = await db.get(Court, dispute.court_id)
    assert court is not None
    return Draft(dispute, court, _application(dispute, await _rows(db, dispute.id)))


def _is_draft(dispute: Dispute) -> bool:
    return workflow.state_of(dispute).status is DisputeStatus.DRAFT


async def save_draft(
    db: AsyncSession,
    principal: Principal,
    dispute_id: int,
    data: DraftIn,
    *,
    calendar: WorkingCalendar,
    now: datetime | None = None,
    allow_unchanged: bool = False,
) -> Draft:
    """Save what changed, through the workflow (``SaveDraft``).

    A save that changes nothing is refused by the workflow, unless
    ``allow_unchanged``: then it is simply not recorded (a form sent again).
    """
    dispute = await _own(db, principal, dispute_id)
    rows = await _rows(db, dispute.id)
    old = _application(dispute, rows)
    problems = _Problems()
    new = _merge(old, data, problems)
    if principal.role is Role.AGENT and new.agent is None:
        new = replace(new, agent=old.agent)  # the agent who writes it stays on it
    changed = changed_fields(old, new)
    if not _is_draft(dispute):
        # filed already: the workflow refuses, saying which state the dispute is in
        await workflow.execute(
            db,
            principal,
            dispute.id,
            cmd.SaveDraft(changed or frozenset({"application"})),
            calendar=calendar,
            now=now,
        )
    problems.check()
    court = await db.get(Court, dispute.court_id)
    assert court is not None
    if not changed and allow_unchanged:
        return Draft(dispute, court, old)
    await workflow.execute(
        db, principal, dispute.id, cmd.SaveDraft(changed), calendar=calendar, now=now
    )
    await _write(db, principal, dispute, rows, new)
    return Draft(dispute, court, new, changed)


async def _applicant_account(
    db: AsyncSession, applicant: DisputeParty, problems: _Problems
) -> User | None:
    """The party account of an applicant filed for by someone else, found by phone."""
    if applicant.user_id is not None or not applicant.phone:
        return None
    user = await db.scalar(select(User).where(User.phone == applicant.phone))
    if user is not None and user.role is not Role.PARTY:
        problems.add("applicant.phone", NOT_A_PARTY_PHONE)
    return user


async def submit(
    db: AsyncSession,
    principal: Principal,
    dispute_id: int,
    consents: ConsentsIn,
    *,
    calendar: WorkingCalendar,
    now: datetime | None = None,
) -> Submitted:
    """File a complete draft: consents, ``SubmitApplication``, then the automatic triage."""
    dispute = await _own(db, principal, dispute_id)
    command = cmd.SubmitApplication(
        online_mediation_consent=consents.online_mediation,
        electronic_service_consent=consents.electronic_service,
    )
    if not _is_draft(dispute):
        await workflow.execute(db, principal, dispute.id, command, calendar=calendar, now=now)
    rows = await _rows(db, dispute.id)
    problems = _Problems()
    _complete(_application(dispute, rows), problems)
    if not consents.online_mediation:
        problems.add("online_mediation_consent", NO_CONSENT)
    account = await _applicant_account(db, rows.applicant, problems)
    problems.check()
    await workflow.execute(db, principal, dispute.id, command, calendar=calendar, now=now)
    applicant = rows.applicant
    if applicant.user_id is None:
        # a walk-in party (or one filed for by an agent) logs in later with a code
        if account is None:
            account = await create_user(
                db,
                NewUser(role=Role.PARTY, name=applicant.name, phone=applicant.phone),
                principal.actor(),
            )
        applicant.user_id = account.id
    method = "counter" if principal.role is Role.CLERK else "online"
    for matter, granted in (
        (ONLINE_HANDLING, consents.online_mediation),
        (ELECTRONIC_SERVICE, consents.electronic_service),
    ):
        db.add(
            Consent(
                dispute_id=dispute.id,
                party_id=applicant.id,
                stage=STAGE,
                matter=matter,
                granted=granted,
                method=method,
                recorded_by_id=principal.user_id,
            )
        )
    await db.flush()
    result = await workflow.run_triage(db, dispute.id, calendar=calendar, now=now)
    return Submitted(dispute, result)


def _mine(principal: Principal) -> Any:
    """Applications the caller wrote, applies in, or is the applicant's agent on."""
    uid = principal.user_id
    return or_(
        Dispute.created_by_id == uid,
        exists().where(
            DisputeParty.dispute_id == Dispute.id,
            DisputeParty.user_id == uid,
            DisputeParty.side == DisputeRole.APPLICANT,
        ),
        exists().where(
            and_(
                DisputeAgent.dispute_id == Dispute.id,
                DisputeAgent.user_id == uid,
                DisputeParty.id == DisputeAgent.party_id,
                DisputeParty.side == DisputeRole.APPLICANT,
            )
        ),
    )


async def list_mine(
    db: AsyncSession,
    principal: Principal,
    page: int,
    per_page: int,
    status: str = DisputeStatus.DRAFT.value,
) -> Page[Dispute]:
    """The caller's applications in one status (drafts, to resume them), newest first."""
    access.require(principal, Permission.APPLY)
    try:
        wanted = DisputeStatus(status)
    except ValueError:
        raise Invalid(NOT_VALID, field="status") from None
    query = (
        select(Dispute)
        .where(access.visible_disputes(principal), _mine(principal), Dispute.status == wanted.value)
        .order_by(Dispute.updated_at.desc(), Dispute.id.desc())
    )
    return await paginate(db, query, page, per_page)


# JSON -----------------------------------------------------------------------------------


def party_json(party: PartyIn) -> dict[str, str]:
    return {
        "name": party.name,
        "kind": party.kind,
        "id_number": party.id_number,
        "phone": party.phone,
        "service_address": party.service_address,
    }


def application_json(draft: Draft) -> dict[str, Any]:
    d, app = draft.dispute, draft.application
    return {
        "id": d.id,
        "number": d.number,
        "court": draft.court.code,
        "status": d.status,
        "draft_revision": workflow.state_of(d).draft_revision,
        "dispute_type": app.dispute_type,
        "claim_amount": str(app.claim_amount) if app.claim_amount is not None else None,
        "summary": app.summary,
        "requests": app.requests,
        "applicant": party_json(app.applicant),
        "respondents": [party_json(p) for p in app.respondents],
        "third_parties": [party_json(p) for p in app.third_parties],
        "agent": (
            {"name": app.agent.name, "phone": app.agent.phone, "authority": app.agent.authority}
            if app.agent
            else None
        ),
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
    }


def submitted_json(done: Submitted) -> dict[str, Any]:
    result = done.triage
    return {
        "id": done.dispute.id,
        "number": done.dispute.number,
        "status": done.dispute.status,
        "triage": {
            "complexity": result.complexity.value,
            "score": result.score,
            "suitable_for_mediation": result.suitable_for_mediation,
        },
        "url": f"/disputes/{done.dispute.id}",
    }
