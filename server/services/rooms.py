"""The database side of a session's live room: who the caller is in it (role and seat),
the room's log and chat, its guests, and the hearing state it last reached.

The live state itself (who is in which sub-room, the hearing's state now) is owned by
``media.room.Room`` in memory; this module records what happened and answers who may
come in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.db.models import (
    CaseSession,
    ChatLine,
    Court,
    Dispute,
    DisputeAgent,
    DisputeParty,
    RoomLogEntry,
    SessionGuest,
)
from server.domain.errors import N_, Forbidden, Gone, Invalid, NotFound
from server.domain.roles import DisputeRole, Permission, Role
from server.rooms.guests import GUEST_ROLES, GuestPass

Caller = Principal | GuestPass

OPEN_STATUSES = ("scheduled", "open")
HEARING_KINDS = ("hearing", "confirmation_hearing")
CHAT_HISTORY = 200
MAX_GUEST_NAME = 100

SEATS = {
    "mediator": N_("Mediator"),
    "judge": N_("Presiding judge"),
    "clerk": N_("Court clerk"),
    "applicant": N_("Applicant"),
    "respondent": N_("Respondent"),
    "third_party": N_("Third party"),
    "applicant_agent": N_("Applicant's agent"),
    "respondent_agent": N_("Respondent's agent"),
    "third_party_agent": N_("Third party's agent"),
    "witness": N_("Witness"),
    "interpreter": N_("Interpreter"),
    "observer": N_("Observer"),
}
TITLES = {"mediation": N_("Online mediation"), "hearing": N_("Online hearing")}


@dataclass(frozen=True)
class RoomSeat:
    """The caller as the room sees them."""

    identity: str  # user:12, guest:3
    name: str
    role: str  # a media.room.RoomRole value
    seat: str  # a msgid from SEATS


@dataclass(frozen=True)
class SessionFacts:
    session_id: int
    dispute_id: int
    kind: str  # mediation | hearing
    title: str  # msgid
    court: str
    court_en: str
    case_number: str
    recording: bool
    requires_reverification: bool
    host_user_id: int | None
    language: str | None  # of the live transcription; None: the court's default


def room_kind(session_kind: str) -> str:
    return "hearing" if session_kind in HEARING_KINDS else "mediation"


async def facts(db: AsyncSession, session_id: int, *, joinable: bool = True) -> SessionFacts:
    """What the room shows of its session; ``joinable``: refuse a held or cancelled one."""
    row = (
        await db.execute(
            select(CaseSession, Dispute, Court)
            .join(Dispute, Dispute.id == CaseSession.dispute_id)
            .join(Court, Court.id == Dispute.court_id)
            .where(CaseSession.id == session_id)
        )
    ).first()
    if row is None:
        raise NotFound(N_("No such session, or it is not yours to join."))
    case_session, dispute, court = row
    if joinable and case_session.status not in OPEN_STATUSES:
        raise Gone(N_("This session has ended or was cancelled."))
    kind = room_kind(case_session.kind)
    return SessionFacts(
        session_id=case_session.id,
        dispute_id=dispute.id,
        kind=kind,
        title=TITLES[kind],
        court=court.name,
        court_en=court.name_en or court.name,
        case_number=dispute.number,
        recording=case_session.recorded,
        requires_reverification=case_session.requires_reverification,
        host_user_id=case_session.host_user_id,
        language=case_session.language,
    )


async def seat_for(
    db: AsyncSession, caller: Caller, session_id: int, *, reverify_minutes: int
) -> tuple[SessionFacts, RoomSeat]:
    """Who the caller is in this session's room, or an audited refusal."""
    if isinstance(caller, GuestPass):
        if caller.session_id != session_id:
            raise NotFound(N_("No such session, or it is not yours to join.")).audited(
                "access.denied", session_id=session_id
            )
        known = await facts(db, session_id)
        seat = RoomSeat(caller.identity, caller.name, caller.role, SEATS[caller.role])
        return known, seat
    case_session = await db.get(CaseSession, session_id)
    if case_session is None:
        raise NotFound(N_("No such session, or it is not yours to join."))
    dispute = await access.dispute_for(db, caller, case_session.dispute_id)
    known = await facts(db, session_id)
    identity = f"user:{caller.user_id}"
    if caller.role in (Role.MEDIATOR, Role.JUDGE):
        hosting = caller.user_id == known.host_user_id or (
            known.host_user_id is None
            and caller.role == (Role.JUDGE if known.kind == "hearing" else Role.MEDIATOR)
        )
        return known, RoomSeat(
            identity, caller.name, "host" if hosting else "co_host", SEATS[caller.role.value]
        )
    if caller.role == Role.CLERK:
        return known, RoomSeat(identity, caller.name, "clerk", SEATS["clerk"])
    if caller.role in (Role.PARTY, Role.AGENT):
        if known.requires_reverification:
            access.require_reverified(caller, reverify_minutes)
        side = await _side(db, dispute.id, caller)
        if caller.role == Role.PARTY:
            return known, RoomSeat(identity, caller.name, "party", SEATS[side])
        return known, RoomSeat(identity, caller.name, "agent", SEATS[f"{side}_agent"])
    return known, RoomSeat(identity, caller.name, "observer", SEATS["observer"])


async def _side(db: AsyncSession, dispute_id: int, caller: Principal) -> str:
    party_side = await db.scalar(
        select(DisputeParty.side).where(
            DisputeParty.dispute_id == dispute_id, DisputeParty.user_id == caller.user_id
        )
    )
    if party_side is None:
        party_side = await db.scalar(
            select(DisputeParty.side)
            .join(DisputeAgent, DisputeAgent.party_id == DisputeParty.id)
            .where(DisputeAgent.dispute_id == dispute_id, DisputeAgent.user_id == caller.user_id)
        )
    if party_side is None:
        raise Forbidden(N_("You are not a party or agent of this dispute.")).audited(
            "access.denied", dispute_id=dispute_id
        )
    side = DisputeRole(party_side).value
    return side if side in ("applicant", "respondent") else "third_party"


# --- guests -------------------------------------------------------------------------


async def invite_guest(
    db: AsyncSession, principal: Principal, session_id: int, name: str, role: str
) -> SessionGuest:
    """A session's staff add a witness, interpreter or observer who has no account."""
    case_session = await db.get(CaseSession, session_id)
    if case_session is None:
        raise NotFound(N_("No such session, or it is not yours to join."))
    dispute = await access.dispute_for(
        db, principal, case_session.dispute_id, Permission.RUN_SESSION
    )
    name = name.strip()
    if not name or len(name) > MAX_GUEST_NAME:
        raise Invalid(N_("Enter the guest's name (at most %(n)s characters)."), n=MAX_GUEST_NAME)
    if role not in GUEST_ROLES:
        raise Invalid(N_("A guest is a witness, an interpreter or an observer."))
    if case_session.status not in OPEN_STATUSES:
        raise Gone(N_("This session has ended or was cancelled."))
    guest = SessionGuest(
        session_id=case_session.id,
        dispute_id=dispute.id,
        name=name,
        role=role,
        invited_by=principal.user_id,
    )
    db.add(guest)
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            action="session.guest_invited",
            actor=principal.actor(),
            object_type="session_guest",
            object_id=guest.id,
            dispute_id=dispute.id,
            details={"session_id": case_session.id, "role": role, "name": name},
        ),
    )
    return guest


async def guest_pass(db: AsyncSession, guest_id: int, session_id: int, ip: str) -> GuestPass:
    guest = await db.get(SessionGuest, guest_id)
    if guest is None or guest.session_id != session_id or guest.revoked_at is not None:
        raise Gone(N_("This invitation link is no longer valid. Ask the court for a new one."))
    return GuestPass(
        guest_id=guest.id,
        session_id=guest.session_id,
        dispute_id=guest.dispute_id,
        name=guest.name,
        role=guest.role,
        ip=ip,
    )


# --- the record: log and chat ----------------------------------------------------------


@dataclass(frozen=True)
class LogRow:
    kind: str
    at: datetime
    actor: str = ""
    actor_identity: str = ""
    subject: str = ""
    subject_identity: str = ""
    detail: dict[str, Any] | None = None


async def write_log(
    db: AsyncSession, session_id: int, dispute_id: int, rows: Iterable[LogRow]
) -> None:
    for row in rows:
        db.add(
            RoomLogEntry(
                session_id=session_id,
                dispute_id=dispute_id,
                kind=row.kind,
                actor=row.actor,
                actor_identity=row.actor_identity,
                subject=row.subject,
                subject_identity=row.subject_identity,
                detail=row.detail or {},
                at=row.at,
            )
        )


async def room_log(db: AsyncSession, session_id: int) -> Sequence[RoomLogEntry]:
    return (
        await db.scalars(
            select(RoomLogEntry)
            .where(RoomLogEntry.session_id == session_id)
            .order_by(RoomLogEntry.at, RoomLogEntry.id)
        )
    ).all()


async def last_hearing_state(db: AsyncSession, session_id: int) -> tuple[str, datetime] | None:
    """The hearing's state as the log last recorded it (a restart resumes from it)."""
    row = (
        await db.execute(
            select(RoomLogEntry.kind, RoomLogEntry.at)
            .where(
                RoomLogEntry.session_id == session_id,
                RoomLogEntry.kind.in_(
                    ["hearing_start", "hearing_pause", "hearing_resume", "hearing_close"]
                ),
            )
            .order_by(RoomLogEntry.at.desc(), RoomLogEntry.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    states = {
        "hearing_start": "in_session",
        "hearing_resume": "in_session",
        "hearing_pause": "paused",
        "hearing_close": "closed",
    }
    return states[row[0]], row[1]


async def save_chat(
    db: AsyncSession,
    facts_: SessionFacts,
    seat: RoomSeat,
    subroom: str,
    text: str,
) -> ChatLine:
    line = ChatLine(
        session_id=facts_.session_id,
        dispute_id=facts_.dispute_id,
        identity=seat.identity,
        name=seat.name,
        seat=seat.seat,
        subroom=subroom,
        text=text,
    )
    db.add(line)
    await db.flush()
    return line


async def chat_history(
    db: AsyncSession, session_id: int, subrooms: Sequence[str]
) -> list[ChatLine]:
    """The latest lines of the sub-rooms the member may read, oldest first."""
    rows = (
        await db.scalars(
            select(ChatLine)
            .where(
                ChatLine.session_id == session_id,
                ChatLine.subroom.in_(list(subrooms)),
            )
            .order_by(ChatLine.id.desc())
            .limit(CHAT_HISTORY)
        )
    ).all()
    return list(reversed(rows))
