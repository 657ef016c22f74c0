"""Mediation sessions: scheduling one with its participants and their invitations,
opening it and closing it.

Every change goes through ``server.services.workflow.execute`` in the caller's unit
of work, so the session row, its participants, the workflow event and the
invitations are stored together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.db.models import (
    CaseSession,
    CaseSessionParticipant,
    Dispute,
    DisputeAgent,
    DisputeParty,
    User,
)
from server.domain import commands as cmd
from server.domain.calendar import COURT_ZONE, WorkingCalendar
from server.domain.errors import N_, Conflict, Invalid
from server.domain.roles import DisputeRole
from server.notify import Channel, Message
from server.services import invitations, workflow

MEDIATION = "mediation"


@dataclass(frozen=True)
class Plan:
    """What the mediator asks for.

    ``starts_at``: the session's start (aware).  With ``separate_times`` (and the
    parties' consent) ``times`` gives a party (by ``DisputeParty.id``) its own start;
    a party's agents follow it.  ``party_ids`` None: every party of the dispute.
    """

    starts_at: datetime
    separate_times: bool = False
    separate_times_consent: bool = False
    times: Mapping[int, datetime] = field(default_factory=dict)
    party_ids: frozenset[int] | None = None


@dataclass(frozen=True)
class Links:
    """How invitations are made: the signing secret, the site's address, their life."""

    secret: str
    base_url: str
    valid_days: int
    zone: ZoneInfo = COURT_ZONE


@dataclass(frozen=True)
class Scheduled:
    session: CaseSession
    participants: list[CaseSessionParticipant]
    done: workflow.Done


async def participants(
    db: AsyncSession, dispute_id: int
) -> dict[int, list[CaseSessionParticipant]]:
    """The participants of each session of a dispute, by session id."""
    rows = await db.scalars(
        select(CaseSessionParticipant)
        .where(CaseSessionParticipant.dispute_id == dispute_id)
        .order_by(CaseSessionParticipant.id)
    )
    found: dict[int, list[CaseSessionParticipant]] = {}
    for row in rows:
        found.setdefault(row.session_id, []).append(row)
    return found


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise Invalid(N_("This field is not valid: %(field)s."), field=name)
    return value.astimezone(UTC)


def _check(plan: Plan, parties: list[DisputeParty], now: datetime) -> list[DisputeParty]:
    known = {party.id for party in parties}
    chosen = known if plan.party_ids is None else set(plan.party_ids)
    if not chosen or not chosen <= known:
        raise Invalid(N_("This field is not valid: %(field)s."), field="party_ids")
    if plan.times and not plan.separate_times:
        raise Invalid(N_("This field is not valid: %(field)s."), field="times")
    if not set(plan.times) <= chosen:
        raise Invalid(N_("This field is not valid: %(field)s."), field="times")
    _aware(plan.starts_at, "starts_at")
    for moment in plan.times.values():
        if _aware(moment, "times") <= now:
            raise Invalid(N_("This field is not valid: %(field)s."), field="times")
    return [party for party in parties if party.id in chosen]


async def schedule(
    db: AsyncSession,
    principal: Principal,
    channel: Channel,
    dispute_id: int,
    plan: Plan,
    *,
    calendar: WorkingCalendar,
    links: Links,
    now: datetime | None = None,
) -> Scheduled:
    """Create the session and its participants, record ``ScheduleSession`` and send
    every participant an invitation (parties and agents: a join link; staff: a notice)."""
    now = now or datetime.now(UTC)
    dispute = await access.dispute_for(db, principal, dispute_id)
    all_parties = list(
        await db.scalars(
            select(DisputeParty)
            .where(DisputeParty.dispute_id == dispute.id)
            .order_by(DisputeParty.id)
        )
    )
    chosen = _check(plan, all_parties, now)
    own = {pid: moment.astimezone(UTC) for pid, moment in plan.times.items()}
    starts_at = plan.starts_at.astimezone(UTC)
    first = min([starts_at, *own.values()])
    session = CaseSession(
        dispute_id=dispute.id,
        kind=MEDIATION,
        status="scheduled",
        scheduled_start=first,
        host_user_id=principal.user_id,
    )
    db.add(session)
    await db.flush()
    done = await workflow.execute(
        db,
        principal,
        dispute.id,
        cmd.ScheduleSession(
            session_id=session.id,
            starts_at=first,
            separate_times=plan.separate_times,
            separate_times_consent=plan.separate_times_consent,
        ),
        calendar=calendar,
        now=now,
    )
    rows = await _add_participants(db, principal, dispute, session, chosen, own, plan, starts_at)
    await _invite(db, principal, channel, dispute, session, rows, links, now)
    await audit.append(
        db,
        AuditEntry(
            "session.participants",
            principal.actor(),
            "case_session",
            session.id,
            dispute_id=dispute.id,
            details={
                "participants": [
                    {
                        "role": row.role.value,
                        "name": row.name,
                        "starts_at": (row.starts_at or session.scheduled_start).isoformat(),
                        "invited": row.invited_at is not None,
                    }
                    for row in rows
                ]
            },
        ),
    )
    return Scheduled(session, rows, done)


async def _add_participants(
    db: AsyncSession,
    principal: Principal,
    dispute: Dispute,
    session: CaseSession,
    chosen: list[DisputeParty],
    own: Mapping[int, datetime],
    plan: Plan,
    starts_at: datetime,
) -> list[CaseSessionParticipant]:
    agents = list(
        await db.scalars(
            select(DisputeAgent)
            .where(DisputeAgent.dispute_id == dispute.id)
            .order_by(DisputeAgent.id)
        )
    )
    rows: list[CaseSessionParticipant] = []
    seen: set[tuple[int, DisputeRole]] = set()

    def add(
        user_id: int | None, party_id: int | None, role: DisputeRole, name: str, at: datetime | None
    ) -> None:
        if user_id is not None:
            if (user_id, role) in seen:
                return
            seen.add((user_id, role))
        rows.append(
            CaseSessionParticipant(
                session_id=session.id,
                dispute_id=dispute.id,
                user_id=user_id,
                party_id=party_id,
                role=role,
                name=name,
                starts_at=at,
            )
        )

    for party in chosen:
        at = own.get(party.id, starts_at) if plan.separate_times else None
        add(party.user_id, party.id, party.side, party.name, at)
        for agent in agents:
            if agent.party_id == party.id:
                add(agent.user_id, party.id, DisputeRole.AGENT, agent.name, at)
    # the mediator hosts every part of the session, whatever the parties' times
    add(principal.user_id, None, DisputeRole.MEDIATOR, principal.name, None)
    db.add_all(rows)
    await db.flush()
    return rows


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


async def _invite(
    db: AsyncSession,
    principal: Principal,
    channel: Channel,
    dispute: Dispute,
    session: CaseSession,
    rows: list[CaseSessionParticipant],
    links: Links,
    now: datetime,
) -> None:
    for row in rows:
        if row.user_id is None:
            continue  # no account to send a link to (e.g. a company without a login)
        when = _when(row.starts_at or session.scheduled_start, links.zone)
        if row.role is DisputeRole.MEDIATOR:
            user = await db.get(User, row.user_id)
            if user is None or not (user.phone or user.email):
                continue
            destination = user.phone or user.email or ""
            await channel.send(
                db,
                Message(
                    destination=destination,
                    subject="一站 Yizhan session",
                    body=f"【一站】{user.name}，您好：纠纷 {dispute.number} 的调解已安排于 "
                    f"{when}（北京时间）开始，请按时主持。 "
                    f"{links.base_url.rstrip('/')}/disputes/{dispute.id}",
                    user_id=user.id,
                ),
            )
        else:
            try:
                issued = await invitations.invite(
                    db,
                    principal,
                    channel,
                    dispute_id=dispute.id,
                    user_id=row.user_id,
                    secret=links.secret,
                    base_url=links.base_url,
                    valid_days=links.valid_days,
                )
            except Conflict:
                continue  # no phone or email on the account: the court contacts them itself
            destination = issued.sent_to
            await channel.send(
                db,
                Message(
                    destination=destination,
                    subject="一站 Yizhan session",
                    body=f"【一站】{row.name}，您好：纠纷 {dispute.number} 的在线调解定于 "
                    f"{when}（北京时间）开始，请届时通过邀请链接进入。",
                    user_id=row.user_id,
                ),
            )
        row.invited_to = destination
        row.invited_at = now
    await db.flush()


async def _session_of(db: AsyncSession, dispute_id: int, session_id: int) -> CaseSession:
    session = await db.scalar(
        select(CaseSession).where(
            CaseSession.id == session_id, CaseSession.dispute_id == dispute_id
        )
    )
    if session is None:
        raise Invalid(N_("There is no such session on this dispute."), field="session_id")
    return session


async def _default_session(db: AsyncSession, dispute: Dispute, opening: bool) -> int:
    state = workflow.state_of(dispute)
    if not opening:
        if state.open_session is None:
            raise Invalid(N_("This field is required: %(field)s."), field="session_id")
        return state.open_session
    first = await db.scalar(
        select(CaseSession.id)
        .where(CaseSession.id.in_(state.scheduled_sessions), CaseSession.dispute_id == dispute.id)
        .order_by(CaseSession.scheduled_start, CaseSession.id)
        .limit(1)
    )
    if first is None:
        raise Invalid(N_("This field is required: %(field)s."), field="session_id")
    return int(first)


async def open_session(
    db: AsyncSession,
    principal: Principal,
    dispute_id: int,
    session_id: int | None,
    *,
    calendar: WorkingCalendar,
    now: datetime | None = None,
) -> workflow.Done:
    """Open a scheduled session (``None``: the next one scheduled)."""
    return await _move(db, principal, dispute_id, session_id, True, calendar, now)


async def close_session(
    db: AsyncSession,
    principal: Principal,
    dispute_id: int,
    session_id: int | None,
    *,
    calendar: WorkingCalendar,
    now: datetime | None = None,
) -> workflow.Done:
    """Close the open session (``None``: whichever is open)."""
    return await _move(db, principal, dispute_id, session_id, False, calendar, now)


async def _move(
    db: AsyncSession,
    principal: Principal,
    dispute_id: int,
    session_id: int | None,
    opening: bool,
    calendar: WorkingCalendar,
    now: datetime | None,
) -> workflow.Done:
    now = now or datetime.now(UTC)
    dispute = await access.dispute_for(db, principal, dispute_id)
    if session_id is None:
        session_id = await _default_session(db, dispute, opening)
    session = await _session_of(db, dispute.id, session_id)
    command: cmd.Command = (
        cmd.OpenSession(session_id=session.id)
        if opening
        else cmd.CloseSession(session_id=session.id)
    )
    done = await workflow.execute(db, principal, dispute.id, command, calendar=calendar, now=now)
    if opening:
        session.status, session.opened_at = "open", now
    else:
        session.status, session.closed_at = "held", now
    await db.flush()
    return done
