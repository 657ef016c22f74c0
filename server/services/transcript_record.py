"""A session's transcript as a court record (笔录): the facts a DOCX or PDF shows.

The court, case number and cause; when the session ran (its room log) and where; who
presided, who kept the record and who took part; the lines (the frozen text once the
parties' review has frozen it, else the lines as they stand, marked as a draft); and
each party's signoff with its objections (补正).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Principal
from server.db.models import (
    CaseSession,
    Dispute,
    DisputeAgent,
    DisputeParty,
    DisputeStaff,
    RoomLogEntry,
    TranscriptLine,
)
from server.domain.disputes import type_label
from server.domain.errors import N_
from server.domain.roles import DisputeRole
from server.services import rooms as room_service
from server.services import transcript_review, transcripts
from server.services.users import user_names
from transcription.court_record import CourtRecord, Participant, RecordLine, Signoff

RECORD_TITLES = {"mediation": N_("Mediation record"), "hearing": N_("Hearing record")}
ONLINE = N_("Online, on the court's video platform")


async def _times(db: AsyncSession, case_session: CaseSession) -> tuple[datetime | None, ...]:
    """From the room's first log row to its last (else the session's own times)."""
    first, last = (
        await db.execute(
            select(func.min(RoomLogEntry.at), func.max(RoomLogEntry.at)).where(
                RoomLogEntry.session_id == case_session.id
            )
        )
    ).one()
    started = first or case_session.opened_at or case_session.scheduled_start
    ended = last if last and last != first else case_session.closed_at
    return _aware(started), _aware(ended)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def _participants(
    db: AsyncSession,
    dispute_id: int,
    rows: list[TranscriptLine],
    translate: Callable[[str], str],
) -> list[Participant]:
    """The parties and their agents (with or without accounts), then anyone else who spoke."""
    seats = room_service.SEATS
    people: list[Participant] = []
    seen: set[tuple[str, str]] = set()

    def add(seat_msgid: str, name: str) -> None:
        if (seat_msgid, name) not in seen:
            seen.add((seat_msgid, name))
            people.append(Participant(translate(seat_msgid) if seat_msgid else "", name))

    parties = (
        await db.scalars(
            select(DisputeParty)
            .where(DisputeParty.dispute_id == dispute_id)
            .order_by(DisputeParty.side, DisputeParty.id)
        )
    ).all()
    sides = {party.id: DisputeRole(party.side).value for party in parties}
    for party in parties:
        add(seats.get(sides[party.id], ""), party.name)
    agents = (
        await db.scalars(
            select(DisputeAgent)
            .where(DisputeAgent.dispute_id == dispute_id)
            .order_by(DisputeAgent.id)
        )
    ).all()
    for agent in agents:
        add(seats.get(f"{sides.get(agent.party_id, 'applicant')}_agent", ""), agent.name)
    staff_seats = {seats["mediator"], seats["judge"], seats["clerk"]}
    for line in rows:
        if line.seat not in staff_seats:
            add(line.seat, line.name)
    return people


async def _clerk(db: AsyncSession, dispute_id: int, frozen_by: str) -> str:
    if frozen_by:
        return frozen_by
    clerk_id = await db.scalar(
        select(DisputeStaff.user_id)
        .where(DisputeStaff.dispute_id == dispute_id, DisputeStaff.role == DisputeRole.CLERK)
        .order_by(DisputeStaff.id)
        .limit(1)
    )
    return (await user_names(db, [clerk_id])).get(clerk_id or 0, "")


def _offsets(rows: list[TranscriptLine]) -> dict[int, float]:
    """Each line's room clock against the session's first: seconds to add to its times."""
    if not rows:
        return {}
    zero = min(line.clock_start for line in rows)
    return {line.id: (line.clock_start - zero).total_seconds() for line in rows}


def _lines(
    rows: list[TranscriptLine],
    frozen: transcript_review.FrozenReview | None,
    translate: Callable[[str], str],
) -> list[RecordLine]:
    offsets = _offsets(rows)
    if frozen is None:
        items: list[dict[str, object]] = [
            {
                "id": line.id,
                "seat": line.seat,
                "name": line.name,
                "start": line.start,
                "text": line.text,
                "undisputed": line.undisputed,
            }
            for line in rows
        ]
    else:  # what the parties confirmed, whatever happened to the rows since
        items = list(transcript_review.frozen_lines(frozen))
    out = []
    for item in items:
        seat = str(item.get("seat") or "")
        start = float(item.get("start") or 0.0)  # type: ignore[arg-type]
        line_id = item.get("id")
        offset = offsets.get(line_id, 0.0) if isinstance(line_id, int) else 0.0
        out.append(
            RecordLine(
                start=start + offset,
                seat=translate(seat) if seat else "",
                name=str(item.get("name") or ""),
                text=str(item.get("text") or ""),
                undisputed=bool(item.get("undisputed")),
            )
        )
    return sorted(out, key=lambda line: line.start) if frozen is None else out


def _signoffs(
    frozen: transcript_review.FrozenReview | None, translate: Callable[[str], str]
) -> list[Signoff]:
    if frozen is None:
        return []
    signed = [
        Signoff(
            name=answer.name,
            seat=translate(answer.seat) if answer.seat else "",
            decision=answer.decision,
            at=answer.at,
            objection=answer.objection or answer.note,
        )
        for answer in frozen.signoffs
    ]
    current = {answer.id for answer in frozen.signoffs}
    earlier = [  # objections to earlier versions stay attached to the record
        Signoff(
            name=answer.name,
            seat=translate(answer.seat) if answer.seat else "",
            decision="objected",
            at=answer.at,
            objection=answer.objection,
        )
        for answer in frozen.objections
        if answer.id not in current
    ]
    return earlier + signed


async def court_record(
    db: AsyncSession,
    principal: Principal,
    session_id: int,
    translate: Callable[[str], str],
    *,
    timezone: str,
) -> CourtRecord:
    """The session's transcript as a court record; the caller must be able to read it."""
    rows = list(await transcripts.lines(db, principal, session_id))
    facts = await room_service.facts(db, session_id, joinable=False)
    case_session = await db.get(CaseSession, session_id)
    assert case_session is not None  # transcripts.lines found it
    dispute = await db.get(Dispute, facts.dispute_id)
    assert dispute is not None
    frozen = await transcript_review.frozen_review(db, session_id)
    started, ended = await _times(db, case_session)
    host_id = case_session.host_user_id or dispute.mediator_user_id
    host = (await user_names(db, [host_id])).get(host_id or 0, "")
    host_seat = room_service.SEATS["judge" if facts.kind == "hearing" else "mediator"]
    return CourtRecord(
        court=facts.court,
        title=translate(RECORD_TITLES[facts.kind]),
        case_number=facts.case_number,
        cause=translate(type_label(dispute.dispute_type)),
        started_at=started,
        ended_at=ended,
        place=translate(ONLINE),
        host=host,
        clerk=await _clerk(db, facts.dispute_id, frozen.frozen_by if frozen else ""),
        participants=await _participants(db, facts.dispute_id, rows, translate),
        lines=_lines(rows, frozen, translate),
        signoffs=_signoffs(frozen, translate),
        sha256=frozen.sha256 if frozen else "",
        frozen_at=frozen.frozen_at if frozen else None,
        generated_at=datetime.now(UTC),
        timezone=timezone,
        language="zh" if (facts.language or "zh") == "zh" else "en",
        host_seat=translate(host_seat),
        clerk_seat=translate(room_service.SEATS["clerk"]),
    )
