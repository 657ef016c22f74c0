"""The parties' review of a session's transcript (笔录核对, 在线调解规则 Art. 22,
在线诉讼规则 Arts. 33–34).

Once the session is over the clerk opens the review.  Each party and agent of the
dispute reads the transcript and either confirms it, after a fresh one-time code (the
signature step), or objects to it (补正); every answer is of one exact text, named by
the SHA-256 of its canonical JSON (``transcripts.canonical``).  A correction made while
the review is open gives the text a new hash, so answers to the earlier text stop
counting, while objections stay on the record.  The clerk freezes the transcript when
every party has answered the current text, or records for each missing one that they
refused to sign (拒绝签名) or were absent; the frozen text and its hash never change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.login import Client
from server.auth.principal import Principal
from server.db.models import (
    CaseSession,
    DisputeAgent,
    DisputeParty,
    RoomLogEntry,
    TranscriptLine,
    TranscriptReview,
    TranscriptSignoff,
)
from server.domain.errors import N_, Conflict, Forbidden, Invalid, NotFound
from server.domain.roles import DisputeRole, Permission, Role, has_permission
from server.services.rooms import SEATS
from server.services.transcripts import (
    REVIEW_FROZEN,
    REVIEW_OPEN,
    canonical,
    current_hash,
    digest,
    session_lines,
)
from server.services.users import user_names

NOT_OPENED = "none"
CONFIRMED, OBJECTED, REFUSED, ABSENT = "confirmed", "objected", "refused", "absent"
MISSING_REASONS = (REFUSED, ABSENT)
DECISIONS = {
    CONFIRMED: N_("Confirmed and signed"),
    OBJECTED: N_("Objected (correction asked)"),
    REFUSED: N_("Refused to sign"),
    ABSENT: N_("Absent"),
}
ONE_TIME_CODE = "one_time_code"  # confirmed after a fresh one-time code
LOGIN_SESSION = "login_session"  # answered within a login, without a fresh code
MAX_OBJECTION = 2000
MAX_NOTE = 500
# room log rows that say whether the room is live (the last one wins)
ROOM_LIFE = ("join", "rejoin", "hearing_start", "hearing_resume", "end", "hearing_close")
ROOM_OVER = ("end", "hearing_close")
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Signer:
    """A party or agent of the dispute, who answers for themselves."""

    user_id: int
    name: str
    seat: str  # a msgid from rooms.SEATS


@dataclass(frozen=True)
class Answer:
    """One signoff row as it is shown: a party's answer or the clerk's record of one."""

    id: int
    user_id: int
    name: str
    seat: str  # msgid
    decision: str  # confirmed, objected, refused, absent
    sha256: str
    current: bool  # of the text as it stands (or as it was frozen)
    objection: str
    line_id: int | None
    verified_by: str
    note: str
    recorded_by: str  # the clerk's name for a refusal or an absence; "" otherwise
    at: datetime

    @property
    def decision_label(self) -> str:
        return DECISIONS.get(self.decision, self.decision)


@dataclass(frozen=True)
class SignerStatus:
    signer: Signer
    answer: Answer | None  # their answer to the current text, if any


@dataclass(frozen=True)
class Verification:
    """Whether a frozen transcript is still what was frozen."""

    sha256: str  # as stored when it was frozen
    recomputed: str  # the hash of the stored frozen text, taken again now
    text_matches: bool  # the stored text still has the stored hash
    lines_match: bool  # the lines as they stand now give the same text

    @property
    def ok(self) -> bool:
        return self.text_matches and self.lines_match


@dataclass(frozen=True)
class ReviewState:
    """The review of one session as the caller may see it."""

    session_id: int
    dispute_id: int
    state: str  # none, open, frozen
    over: bool  # the session has ended (a review can be opened)
    sha256: str  # the text's hash now (open, none) or as frozen
    lines: int
    opened_at: datetime | None
    opened_by: str
    frozen_at: datetime | None
    frozen_by: str
    is_clerk: bool  # may open and freeze
    is_signer: bool  # a party or agent who answers
    parties: tuple[SignerStatus, ...]  # everyone (staff), or only the caller (a party)
    objections: tuple[Answer, ...]  # every objection, to any version (own only, for a party)
    mine: tuple[Answer, ...]  # the caller's own answers, newest first
    verification: Verification | None  # once frozen

    @property
    def may_open(self) -> bool:
        return self.is_clerk and self.state == NOT_OPENED and self.over and self.lines > 0

    @property
    def may_freeze(self) -> bool:
        return self.is_clerk and self.state == REVIEW_OPEN

    @property
    def answered(self) -> bool:
        """The caller has answered the current text."""
        return any(answer.current for answer in self.mine)

    @property
    def may_answer(self) -> bool:
        return self.is_signer and self.state == REVIEW_OPEN and not self.answered

    @property
    def changed_since_answer(self) -> bool:
        """The caller answered an earlier text, and the text has changed since."""
        return self.state == REVIEW_OPEN and bool(self.mine) and not self.mine[0].current

    @property
    def missing(self) -> tuple[Signer, ...]:
        return tuple(status.signer for status in self.parties if status.answer is None)


@dataclass(frozen=True)
class FrozenReview:
    """A frozen transcript with its hash and the parties' signoffs, for documents."""

    session_id: int
    dispute_id: int
    sha256: str
    frozen_text: str  # the canonical JSON that was hashed
    frozen_at: datetime
    frozen_by: str  # the clerk's name
    opened_at: datetime
    signoffs: tuple[Answer, ...]  # each party's answer to the frozen text
    objections: tuple[Answer, ...]  # every objection (补正), to whichever version


class AlreadyAnswered(Conflict):
    """A second answer to the same version; the message names the first one."""

    def __init__(self, decision: str) -> None:
        super().__init__(
            N_("You have already answered this version of the transcript: %(decision)s."),
            decision=DECISIONS.get(decision, decision),
        )

    def localised_params(self, translate: Callable[[str], str]) -> dict[str, Any]:
        return {**self.params, "decision": translate(str(self.params["decision"]))}


# --- who answers ----------------------------------------------------------------------


def _side(value: str) -> str:
    side = DisputeRole(value).value
    return side if side in ("applicant", "respondent") else "third_party"


async def signers(db: AsyncSession, dispute_id: int) -> list[Signer]:
    """The dispute's parties and agents who have an account, each once, parties first."""
    found: dict[int, Signer] = {}
    parties = (
        await db.scalars(
            select(DisputeParty)
            .where(DisputeParty.dispute_id == dispute_id, DisputeParty.user_id.is_not(None))
            .order_by(DisputeParty.id)
        )
    ).all()
    for party in parties:
        assert party.user_id is not None
        found.setdefault(party.user_id, Signer(party.user_id, party.name, SEATS[_side(party.side)]))
    agents = (
        await db.execute(
            select(DisputeAgent, DisputeParty.side)
            .join(DisputeParty, DisputeParty.id == DisputeAgent.party_id)
            .where(DisputeAgent.dispute_id == dispute_id, DisputeAgent.user_id.is_not(None))
            .order_by(DisputeAgent.id)
        )
    ).all()
    for agent, side in agents:
        assert agent.user_id is not None
        seat = SEATS[f"{_side(side)}_agent"]
        found.setdefault(agent.user_id, Signer(agent.user_id, agent.name, seat))
    return list(found.values())


# --- reading --------------------------------------------------------------------------


async def _session(db: AsyncSession, session_id: int) -> CaseSession:
    case_session = await db.get(CaseSession, session_id)
    if case_session is None:
        raise NotFound(N_("No such session, or it is not yours to join."))
    return case_session


async def session_over(db: AsyncSession, case_session: CaseSession) -> bool:
    """Held, or its room was ended (or its hearing closed) and nobody came back since."""
    if case_session.status == "held":
        return True
    if case_session.status not in ("scheduled", "open"):
        return False
    last = await db.scalar(
        select(RoomLogEntry.kind)
        .where(RoomLogEntry.session_id == case_session.id, RoomLogEntry.kind.in_(ROOM_LIFE))
        .order_by(RoomLogEntry.at.desc(), RoomLogEntry.id.desc())
        .limit(1)
    )
    return last in ROOM_OVER


async def _find(
    db: AsyncSession, session_id: int, *, lock: bool = False
) -> TranscriptReview | None:
    query = select(TranscriptReview).where(TranscriptReview.session_id == session_id)
    if lock:
        query = query.with_for_update()
    found: TranscriptReview | None = await db.scalar(query)
    return found


async def _answers(db: AsyncSession, review: TranscriptReview, current: str) -> list[Answer]:
    """Every signoff of the review, newest first."""
    rows = (
        await db.scalars(
            select(TranscriptSignoff)
            .where(TranscriptSignoff.review_id == review.id)
            .order_by(TranscriptSignoff.at.desc(), TranscriptSignoff.id.desc())
        )
    ).all()
    clerks = await user_names(db, {row.recorded_by_id for row in rows if row.recorded_by_id})
    return [
        Answer(
            id=row.id,
            user_id=row.user_id,
            name=row.name,
            seat=row.seat,
            decision=row.decision,
            sha256=row.sha256,
            current=row.sha256 == current,
            objection=row.objection,
            line_id=row.line_id,
            verified_by=row.verified_by,
            note=row.note,
            recorded_by=clerks.get(row.recorded_by_id, "") if row.recorded_by_id else "",
            at=row.at,
        )
        for row in rows
    ]


def verify_text(review: TranscriptReview, lines_text: str) -> Verification:
    recomputed = digest(review.frozen_text)
    return Verification(
        sha256=review.sha256,
        recomputed=recomputed,
        text_matches=recomputed == review.sha256,
        lines_match=lines_text == review.frozen_text,
    )


async def state(db: AsyncSession, principal: Principal, session_id: int) -> ReviewState:
    """The review as the caller may see it: staff see every party, a party only themselves."""
    case_session = await _session(db, session_id)
    await access.dispute_for(db, principal, case_session.dispute_id)
    review = await _find(db, session_id)
    rows = await session_lines(db, session_id)
    lines_text = canonical(rows)
    sha256, line_count = digest(lines_text), len(rows)
    people = await signers(db, case_session.dispute_id)
    is_signer = principal.role in (Role.PARTY, Role.AGENT) and any(
        signer.user_id == principal.user_id for signer in people
    )
    staff = principal.role.is_staff
    answers: list[Answer] = []
    verification = None
    names: dict[int, str] = {}
    if review is not None:
        if review.state == REVIEW_FROZEN:
            sha256 = review.sha256
            verification = verify_text(review, lines_text)
        answers = await _answers(db, review, sha256)
        names = await user_names(
            db, {uid for uid in (review.opened_by_id, review.frozen_by_id) if uid is not None}
        )
    shown = [signer for signer in people if staff or signer.user_id == principal.user_id]
    parties = tuple(
        SignerStatus(
            signer,
            next((a for a in answers if a.user_id == signer.user_id and a.current), None),
        )
        for signer in shown
    )
    objections = tuple(
        answer
        for answer in answers
        if answer.decision == OBJECTED and (staff or answer.user_id == principal.user_id)
    )
    return ReviewState(
        session_id=case_session.id,
        dispute_id=case_session.dispute_id,
        state=review.state if review is not None else NOT_OPENED,
        over=await session_over(db, case_session),
        sha256=sha256,
        lines=line_count,
        opened_at=review.opened_at if review is not None else None,
        opened_by=names.get(review.opened_by_id or 0, "") if review is not None else "",
        frozen_at=review.frozen_at if review is not None else None,
        frozen_by=names.get(review.frozen_by_id or 0, "") if review is not None else "",
        is_clerk=has_permission(principal.role, Permission.EDIT_TRANSCRIPT),
        is_signer=is_signer,
        parties=parties,
        objections=objections,
        mine=tuple(answer for answer in answers if answer.user_id == principal.user_id),
        verification=verification,
    )


# --- the clerk opens ------------------------------------------------------------------


async def open_review(db: AsyncSession, principal: Principal, session_id: int) -> TranscriptReview:
    """Start the parties' review of a session that is over; audited."""
    case_session = await _session(db, session_id)
    dispute = await access.dispute_for(
        db, principal, case_session.dispute_id, Permission.EDIT_TRANSCRIPT
    )
    # one opening at a time: the session row is the lock
    await db.scalar(select(CaseSession.id).where(CaseSession.id == session_id).with_for_update())
    existing = await _find(db, session_id)
    if existing is not None:
        if existing.state == REVIEW_FROZEN:
            raise Conflict(N_("This transcript has already been confirmed and frozen."))
        raise Conflict(N_("The parties' review of this transcript is already open."))
    if case_session.status == "cancelled":
        raise Conflict(N_("This session was cancelled: there is no transcript to review."))
    if not await session_over(db, case_session):
        raise Conflict(N_("The session is still going on: open the review once it has ended."))
    rows = await session_lines(db, session_id)
    if not rows:
        raise Conflict(N_("This transcript has no lines to review."))
    sha256 = digest(canonical(rows))
    review = TranscriptReview(
        session_id=session_id,
        dispute_id=dispute.id,
        state=REVIEW_OPEN,
        sha256=sha256,
        opened_by_id=principal.user_id,
        opened_at=datetime.now(UTC),
    )
    db.add(review)
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            action="transcript.review_opened",
            actor=principal.actor(),
            object_type="transcript_review",
            object_id=review.id,
            dispute_id=dispute.id,
            details={"session_id": session_id, "sha256": sha256, "lines": len(rows)},
        ),
    )
    return review


# --- the parties answer ---------------------------------------------------------------


def _check_hash(value: str) -> str:
    value = value.strip().lower()
    if not SHA256.fullmatch(value):
        raise Invalid(
            N_("Name the version you read by its SHA-256 (64 hex digits)."), field="sha256"
        )
    return value


async def _answering(
    db: AsyncSession, principal: Principal, session_id: int, sha256: str, what: str
) -> tuple[TranscriptReview, Signer]:
    """The open review and the caller as a party of it, for an answer to ``sha256``."""
    case_session = await _session(db, session_id)
    dispute = await access.dispute_for(db, principal, case_session.dispute_id)
    me = None
    if principal.role in (Role.PARTY, Role.AGENT):
        me = next(
            (s for s in await signers(db, dispute.id) if s.user_id == principal.user_id), None
        )
    if me is None:
        raise Forbidden(
            N_("Only the parties and their agents confirm or object to the transcript.")
        ).audited("access.denied", dispute_id=dispute.id, session_id=session_id, attempt=what)
    sha256 = _check_hash(sha256)
    review = await _find(db, session_id, lock=True)
    if review is None:
        raise Conflict(N_("The clerk has not opened this transcript for review yet."))
    if review.state == REVIEW_FROZEN:
        raise Conflict(N_("This transcript has been frozen: answers to it are closed."))
    _, current = await current_hash(db, session_id)
    if sha256 != current:
        raise Conflict(
            N_("The transcript has changed since you loaded it: reload the page and read it again.")
        )
    review.sha256 = current  # a late line from the room may have changed it unnoticed
    done = await db.scalar(
        select(TranscriptSignoff.decision).where(
            TranscriptSignoff.review_id == review.id,
            TranscriptSignoff.user_id == principal.user_id,
            TranscriptSignoff.sha256 == current,
        )
    )
    if done is not None:
        raise AlreadyAnswered(done)
    return review, me


def _verified_by(principal: Principal, minutes: int) -> str:
    fresh_after = datetime.now(UTC) - timedelta(minutes=minutes)
    fresh = principal.reverified_at is not None and principal.reverified_at >= fresh_after
    return ONE_TIME_CODE if fresh else LOGIN_SESSION


async def _store(
    db: AsyncSession,
    principal: Principal,
    review: TranscriptReview,
    signoff: TranscriptSignoff,
    **details: Any,
) -> None:
    """Keep one answer (or the clerk's record of a missing one) and audit it."""
    db.add(signoff)
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            action=f"transcript.{signoff.decision}",
            actor=principal.actor(),
            object_type="transcript_review",
            object_id=review.id,
            dispute_id=review.dispute_id,
            details={
                "session_id": review.session_id,
                "sha256": review.sha256,
                "signoff_id": signoff.id,
                **details,
            },
        ),
    )


async def _answer(
    db: AsyncSession,
    principal: Principal,
    review: TranscriptReview,
    me: Signer,
    decision: str,
    client: Client,
    verified_by: str,
    objection: str = "",
    line_id: int | None = None,
) -> TranscriptSignoff:
    signoff = TranscriptSignoff(
        review_id=review.id,
        user_id=principal.user_id,
        name=me.name,
        seat=me.seat,
        decision=decision,
        sha256=review.sha256,
        objection=objection,
        line_id=line_id,
        verified_by=verified_by,
        ip=client.ip[:64],
        user_agent=client.user_agent[:400],
        at=datetime.now(UTC),
    )
    await _store(
        db,
        principal,
        review,
        signoff,
        seat=me.seat,
        verified_by=verified_by,
        line_id=line_id,
        user_agent=client.user_agent[:200],
    )
    return signoff


async def confirm(
    db: AsyncSession,
    principal: Principal,
    session_id: int,
    sha256: str,
    client: Client,
    *,
    reverify_minutes: int,
) -> TranscriptSignoff:
    """A party confirms the text they read (by its hash) after a fresh one-time code."""
    review, me = await _answering(db, principal, session_id, sha256, CONFIRMED)
    access.require_reverified(principal, reverify_minutes)
    return await _answer(db, principal, review, me, CONFIRMED, client, ONE_TIME_CODE)


async def object_to(
    db: AsyncSession,
    principal: Principal,
    session_id: int,
    sha256: str,
    text: str,
    client: Client,
    *,
    line_id: int | None = None,
    reverify_minutes: int,
) -> TranscriptSignoff:
    """A party records an objection (补正) to the text they read, optionally to one line."""
    review, me = await _answering(db, principal, session_id, sha256, OBJECTED)
    text = text.strip()
    if not text or len(text) > MAX_OBJECTION:
        raise Invalid(
            N_("Write what is wrong in the transcript (at most %(n)s characters)."),
            field="text",
            n=MAX_OBJECTION,
        )
    if line_id is not None:
        line = await db.get(TranscriptLine, line_id)
        if line is None or line.session_id != session_id or line.hidden:
            raise Invalid(N_("Choose a line of this transcript, or none."), field="line_id")
    verified_by = _verified_by(principal, reverify_minutes)
    return await _answer(db, principal, review, me, OBJECTED, client, verified_by, text, line_id)


# --- the clerk freezes ----------------------------------------------------------------


@dataclass(frozen=True)
class Missing:
    """The clerk's record for a party who has not answered the current text."""

    reason: str  # refused, absent
    note: str = ""


async def freeze(
    db: AsyncSession,
    principal: Principal,
    session_id: int,
    sha256: str,
    missing: Mapping[int, Missing],
) -> TranscriptReview:
    """Freeze the transcript: every party has answered the current text, or the clerk
    records for each one who has not that they refused to sign or were absent."""
    case_session = await _session(db, session_id)
    dispute = await access.dispute_for(
        db, principal, case_session.dispute_id, Permission.EDIT_TRANSCRIPT
    )
    sha256 = _check_hash(sha256)
    review = await _find(db, session_id, lock=True)
    if review is None:
        raise Conflict(N_("Open the parties' review before freezing the transcript."))
    if review.state == REVIEW_FROZEN:
        raise Conflict(N_("This transcript has already been confirmed and frozen."))
    text, current = await current_hash(db, session_id)
    if sha256 != current:
        raise Conflict(
            N_("The transcript has changed since you loaded it: reload the page and read it again.")
        )
    answered = set(
        (
            await db.scalars(
                select(TranscriptSignoff.user_id).where(
                    TranscriptSignoff.review_id == review.id, TranscriptSignoff.sha256 == current
                )
            )
        ).all()
    )
    waiting = [s for s in await signers(db, dispute.id) if s.user_id not in answered]
    stray = set(missing) - {s.user_id for s in waiting}
    if stray:
        raise Invalid(
            N_("A reason can only be given for a party who has not answered this version."),
            field="missing",
        )
    unexplained = [
        s.name
        for s in waiting
        if s.user_id not in missing or missing[s.user_id].reason not in MISSING_REASONS
    ]
    if unexplained:
        raise Invalid(
            N_(
                "Not every party has answered this version. For each of them record whether "
                "they refused to sign or were absent: %(names)s."
            ),
            field="missing",
            names="、".join(unexplained),
        )
    for signer in waiting:
        record = missing[signer.user_id]
        note = record.note.strip()
        if len(note) > MAX_NOTE:
            raise Invalid(N_("A note is at most %(n)s characters."), field="missing", n=MAX_NOTE)
        await _record_missing(db, principal, review, signer, record.reason, note)
    now = datetime.now(UTC)
    review.state, review.sha256, review.frozen_text = REVIEW_FROZEN, current, text
    review.frozen_at, review.frozen_by_id = now, principal.user_id
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            action="transcript.frozen",
            actor=principal.actor(),
            object_type="transcript_review",
            object_id=review.id,
            dispute_id=review.dispute_id,
            details={
                "session_id": session_id,
                "sha256": current,
                "answered": len(answered),
                "recorded": {str(s.user_id): missing[s.user_id].reason for s in waiting},
            },
        ),
    )
    return review


async def _record_missing(
    db: AsyncSession,
    principal: Principal,
    review: TranscriptReview,
    signer: Signer,
    reason: str,
    note: str,
) -> None:
    signoff = TranscriptSignoff(
        review_id=review.id,
        user_id=signer.user_id,
        name=signer.name,
        seat=signer.seat,
        decision=reason,
        sha256=review.sha256,
        recorded_by_id=principal.user_id,
        note=note,
        at=datetime.now(UTC),
    )
    await _store(
        db,
        principal,
        review,
        signoff,
        party_user_id=signer.user_id,
        name=signer.name,
        seat=signer.seat,
        note=note,
    )


# --- the frozen record ----------------------------------------------------------------


async def verify(db: AsyncSession, principal: Principal, session_id: int) -> Verification:
    """Recompute a frozen transcript's hash and compare it, and the lines, to the record."""
    case_session = await _session(db, session_id)
    await access.dispute_for(db, principal, case_session.dispute_id)
    review = await _find(db, session_id)
    if review is None or review.state != REVIEW_FROZEN:
        raise Conflict(N_("This transcript has not been frozen yet."))
    text, _ = await current_hash(db, session_id)
    return verify_text(review, text)


async def frozen_review(db: AsyncSession, session_id: int) -> FrozenReview | None:
    """The frozen transcript of a session with its signoffs, or None while it is not
    frozen.  It checks no access: callers have checked that the caller may see it."""
    review = await _find(db, session_id)
    if review is None or review.state != REVIEW_FROZEN or review.frozen_at is None:
        return None
    answers = await _answers(db, review, review.sha256)
    names = await user_names(db, {review.frozen_by_id} if review.frozen_by_id else set())
    return FrozenReview(
        session_id=review.session_id,
        dispute_id=review.dispute_id,
        sha256=review.sha256,
        frozen_text=review.frozen_text,
        frozen_at=review.frozen_at,
        frozen_by=names.get(review.frozen_by_id or 0, ""),
        opened_at=review.opened_at,
        signoffs=tuple(reversed([a for a in answers if a.current])),
        objections=tuple(reversed([a for a in answers if a.decision == OBJECTED])),
    )


async def frozen_for(
    db: AsyncSession, principal: Principal, session_id: int
) -> FrozenReview | None:
    """``frozen_review`` for a caller who may see the session's dispute."""
    case_session = await _session(db, session_id)
    await access.dispute_for(db, principal, case_session.dispute_id)
    return await frozen_review(db, session_id)


def frozen_lines(review: FrozenReview) -> Sequence[dict[str, object]]:
    """The lines of a frozen transcript, parsed back from its canonical text."""
    parsed = json.loads(review.frozen_text)
    assert isinstance(parsed, list)
    return parsed
