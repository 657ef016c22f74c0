"""Convening an online hearing of a dispute's parties before a judge: the session, its
participants (each party, their agents, the judge) and each party's and agent's
invitation link. Used for a judicial-confirmation hearing and a fast-track hearing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Principal
from server.db.models import (
    CaseSession,
    CaseSessionParticipant,
    Dispute,
    DisputeAgent,
    DisputeParty,
)
from server.domain.errors import N_, Conflict, Invalid
from server.domain.roles import DisputeRole
from server.notify import Channel, Message
from server.services import invitations
from server.services.sessions import Links


@dataclass(frozen=True)
class Hearing:
    session: CaseSession
    participants: list[CaseSessionParticipant]


def aware_start(value: datetime, now: datetime) -> datetime:
    """A start time with its zone, in the future; in UTC."""
    if value.tzinfo is None or value.utcoffset() is None or value <= now:
        raise Invalid(N_("This field is not valid: %(field)s."), field="starts_at")
    return value.astimezone(UTC)


async def convene(
    db: AsyncSession,
    principal: Principal,
    channel: Channel,
    dispute: Dispute,
    *,
    kind: str,
    start: datetime,
    links: Links,
    text: str,
    now: datetime,
) -> Hearing:
    """A scheduled session of ``kind`` hosted by the judge (``principal``), everyone on
    it, each party and agent sent ``text`` (with {name}, {number}, {when}) and a link."""
    session = CaseSession(
        dispute_id=dispute.id,
        kind=kind,
        status="scheduled",
        scheduled_start=start,
        host_user_id=principal.user_id,
    )
    db.add(session)
    await db.flush()
    rows = await _participants(db, principal, dispute.id, session.id)
    await _invite(db, principal, channel, dispute, session, rows, links, text, now)
    return Hearing(session, rows)


async def _participants(
    db: AsyncSession, principal: Principal, dispute_id: int, session_id: int
) -> list[CaseSessionParticipant]:
    rows: list[CaseSessionParticipant] = []
    seen: set[tuple[int, DisputeRole]] = set()

    def add(user_id: int | None, party_id: int | None, role: DisputeRole, name: str) -> None:
        if user_id is not None:
            if (user_id, role) in seen:
                return
            seen.add((user_id, role))
        rows.append(
            CaseSessionParticipant(
                session_id=session_id,
                dispute_id=dispute_id,
                user_id=user_id,
                party_id=party_id,
                role=role,
                name=name,
            )
        )

    agents = list(
        await db.scalars(
            select(DisputeAgent)
            .where(DisputeAgent.dispute_id == dispute_id)
            .order_by(DisputeAgent.id)
        )
    )
    parties = await db.scalars(
        select(DisputeParty).where(DisputeParty.dispute_id == dispute_id).order_by(DisputeParty.id)
    )
    for party in parties:
        add(party.user_id, party.id, party.side, party.name)
        for agent in agents:
            if agent.party_id == party.id:
                add(agent.user_id, party.id, DisputeRole.AGENT, agent.name)
    add(principal.user_id, None, DisputeRole.JUDGE, principal.name)
    db.add_all(rows)
    await db.flush()
    return rows


async def _invite(
    db: AsyncSession,
    principal: Principal,
    channel: Channel,
    dispute: Dispute,
    session: CaseSession,
    rows: list[CaseSessionParticipant],
    links: Links,
    text: str,
    now: datetime,
) -> None:
    when = session.scheduled_start.astimezone(links.zone).strftime("%Y-%m-%d %H:%M")
    for row in rows:
        if row.user_id is None or row.role is DisputeRole.JUDGE:
            continue
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
        await channel.send(
            db,
            Message(
                destination=issued.sent_to,
                subject="一站 Yizhan hearing",
                body=text.format(name=row.name, number=dispute.number, when=when),
                user_id=row.user_id,
            ),
        )
        row.invited_to = issued.sent_to
        row.invited_at = now
    await db.flush()
