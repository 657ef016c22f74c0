"""The electronic transcript (电子笔录) of a session: lines as the live engine committed
them, the clerk's corrections (every one a new version, with who and when), merging and
splitting lines, and marking undisputed facts (无争议事实).

Reading needs the dispute (parties read their own disputes' transcripts); changing a
line needs ``Permission.EDIT_TRANSCRIPT`` on the dispute.  Once the parties' review has
frozen the transcript no line changes again; while the review is open, every change
gives the text a new hash (``canonical`` and ``digest``), so that answers given to the
earlier text no longer count.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.db.models import CaseSession, TranscriptEdit, TranscriptLine, TranscriptReview
from server.domain.errors import N_, Conflict, Invalid, NotFound
from server.domain.roles import Permission

MAX_LINE = 5000
REVIEW_OPEN, REVIEW_FROZEN = "open", "frozen"


@dataclass(frozen=True)
class Heard:
    """A final line from the live engine, with whose voice it was."""

    session_id: int
    dispute_id: int
    identity: str
    name: str
    seat: str
    clock_start: datetime
    start: float
    end: float
    text: str
    language: str


async def record(db: AsyncSession, heard: Heard) -> TranscriptLine:
    """Store a committed line as it was recognised (version 1)."""
    line = TranscriptLine(
        session_id=heard.session_id,
        dispute_id=heard.dispute_id,
        identity=heard.identity,
        name=heard.name,
        seat=heard.seat,
        clock_start=heard.clock_start,
        start=heard.start,
        end=heard.end,
        text=heard.text,
        language=heard.language,
    )
    db.add(line)
    await db.flush()
    db.add(TranscriptEdit(line_id=line.id, version=1, text=heard.text, action="recognised"))
    return line


async def _session(
    db: AsyncSession, principal: Principal, session_id: int, permission: Permission
) -> CaseSession:
    case_session = await db.get(CaseSession, session_id)
    if case_session is None:
        raise NotFound(N_("No such session, or it is not yours to join."))
    await access.dispute_for(db, principal, case_session.dispute_id, permission)
    return case_session


async def lines(
    db: AsyncSession, principal: Principal, session_id: int, *, hidden: bool = False
) -> Sequence[TranscriptLine]:
    await _session(db, principal, session_id, Permission.VIEW_DISPUTE)
    return await session_lines(db, session_id, hidden=hidden)


async def session_lines(
    db: AsyncSession, session_id: int, *, hidden: bool = False
) -> Sequence[TranscriptLine]:
    """A session's lines in the order the transcript shows them (callers check access)."""
    query = select(TranscriptLine).where(TranscriptLine.session_id == session_id)
    if not hidden:
        query = query.where(TranscriptLine.hidden.is_(False))
    return (
        await db.scalars(
            query.order_by(TranscriptLine.clock_start, TranscriptLine.start, TranscriptLine.id)
        )
    ).all()


def canonical(rows: Sequence[TranscriptLine]) -> str:
    """The visible lines as one canonical JSON text: what a review's hash is taken of.

    Each line gives its id, seat (the message id, not a translation), speaker's name,
    start and end (seconds, to the millisecond), text and whether it is an undisputed
    fact, in the order the transcript shows them; keys sorted, no spaces, UTF-8.
    """
    return json.dumps(
        [
            {
                "id": line.id,
                "seat": line.seat,
                "name": line.name,
                "start": round(line.start, 3),
                "end": round(line.end, 3),
                "text": line.text,
                "undisputed": line.undisputed,
            }
            for line in rows
        ],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )


def digest(text: str) -> str:
    """The SHA-256 (hex) of a canonical text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def current_hash(db: AsyncSession, session_id: int) -> tuple[str, str]:
    """The canonical text of a session's visible lines as they stand, and its hash."""
    text = canonical(await session_lines(db, session_id))
    return text, digest(text)


async def _review(db: AsyncSession, session_id: int) -> TranscriptReview | None:
    """The session's review, locked for this transaction; a frozen one refuses edits."""
    review = await db.scalar(
        select(TranscriptReview).where(TranscriptReview.session_id == session_id).with_for_update()
    )
    if review is not None and review.state == REVIEW_FROZEN:
        raise Conflict(
            N_("The parties' review has frozen this transcript: it can no longer be changed.")
        )
    return review


async def _rehash(db: AsyncSession, principal: Principal, session_id: int) -> None:
    """After an edit: an open review is now of a new text (earlier answers stop counting)."""
    review = await _review(db, session_id)
    if review is None:
        return
    await db.flush()
    _, sha256 = await current_hash(db, session_id)
    if sha256 == review.sha256:
        return
    before, review.sha256 = review.sha256, sha256
    await audit.append(
        db,
        AuditEntry(
            action="transcript.review_changed",
            actor=principal.actor(),
            object_type="transcript_review",
            object_id=review.id,
            dispute_id=review.dispute_id,
            details={"session_id": session_id, "before": before, "sha256": sha256},
        ),
    )


async def _line(db: AsyncSession, principal: Principal, line_id: int) -> TranscriptLine:
    line = await db.get(TranscriptLine, line_id)
    if line is None:
        raise NotFound(N_("No such transcript line."))
    await access.dispute_for(db, principal, line.dispute_id, Permission.EDIT_TRANSCRIPT)
    await _review(db, line.session_id)
    if line.hidden:
        raise Conflict(N_("This line was merged into another or removed."))
    return line


async def _version(
    db: AsyncSession, principal: Principal, line: TranscriptLine, action: str, expected: int | None
) -> None:
    if expected is not None and expected != line.version:
        raise Conflict(
            N_("Someone changed this line meanwhile (now version %(version)s): reload it."),
            version=line.version,
        )
    line.version += 1
    db.add(
        TranscriptEdit(
            line_id=line.id,
            version=line.version,
            text=line.text,
            action=action,
            by_user_id=principal.user_id,
            by_name=principal.name,
        )
    )
    await audit.append(
        db,
        AuditEntry(
            action=f"transcript.{action}",
            actor=principal.actor(),
            object_type="transcript_line",
            object_id=line.id,
            dispute_id=line.dispute_id,
            details={"version": line.version, "session_id": line.session_id},
        ),
    )


def _clean(text: str) -> str:
    text = text.strip()
    if not text:
        raise Invalid(N_("A line cannot be empty."), field="text")
    if len(text) > MAX_LINE:
        raise Invalid(N_("A line is at most %(n)s characters."), field="text", n=MAX_LINE)
    return text


async def correct(
    db: AsyncSession, principal: Principal, line_id: int, text: str, *, version: int | None = None
) -> TranscriptLine:
    line = await _line(db, principal, line_id)
    line.text = _clean(text)
    await _version(db, principal, line, "corrected", version)
    await _rehash(db, principal, line.session_id)
    return line


async def mark_undisputed(
    db: AsyncSession, principal: Principal, line_id: int, undisputed: bool
) -> TranscriptLine:
    line = await _line(db, principal, line_id)
    if line.undisputed != undisputed:
        line.undisputed = undisputed
        await _version(db, principal, line, "marked" if undisputed else "unmarked", None)
        await _rehash(db, principal, line.session_id)
    return line


async def merge(
    db: AsyncSession, principal: Principal, line_id: int, with_id: int
) -> TranscriptLine:
    """Join the next line of the same speaker onto this one (the other is hidden)."""
    line = await _line(db, principal, line_id)
    other = await _line(db, principal, with_id)
    if other.session_id != line.session_id or other.identity != line.identity:
        raise Invalid(N_("Only two lines of the same speaker in the same session can be merged."))
    first, second = (
        (line, other) if (line.start, line.id) <= (other.start, other.id) else (other, line)
    )
    joiner = "" if first.language == "zh" else " "
    first.text = _clean(first.text + joiner + second.text)
    first.end = max(first.end, second.end)
    second.hidden = True
    await _version(db, principal, first, "merged", None)
    await _version(db, principal, second, "merged", None)
    await _rehash(db, principal, first.session_id)
    return first


async def split(
    db: AsyncSession, principal: Principal, line_id: int, at: int
) -> tuple[TranscriptLine, TranscriptLine]:
    """Cut a line in two at character ``at``; times are shared out by length."""
    line = await _line(db, principal, line_id)
    if not 0 < at < len(line.text):
        raise Invalid(N_("Choose where to split the line, inside its text."), field="at")
    head, tail = line.text[:at].strip(), line.text[at:].strip()
    if not head or not tail:
        raise Invalid(N_("Choose where to split the line, inside its text."), field="at")
    middle = line.start + (line.end - line.start) * at / len(line.text)
    rest = TranscriptLine(
        session_id=line.session_id,
        dispute_id=line.dispute_id,
        identity=line.identity,
        name=line.name,
        seat=line.seat,
        clock_start=line.clock_start,
        start=middle,
        end=line.end,
        text=tail,
        language=line.language,
        undisputed=line.undisputed,
    )
    db.add(rest)
    await db.flush()
    line.text, line.end = head, middle
    await _version(db, principal, line, "split", None)
    db.add(
        TranscriptEdit(
            line_id=rest.id,
            version=1,
            text=tail,
            action="split",
            by_user_id=principal.user_id,
            by_name=principal.name,
        )
    )
    await _rehash(db, principal, line.session_id)
    return line, rest


async def history(db: AsyncSession, principal: Principal, line_id: int) -> Sequence[TranscriptEdit]:
    line = await db.get(TranscriptLine, line_id)
    if line is None:
        raise NotFound(N_("No such transcript line."))
    await access.dispute_for(db, principal, line.dispute_id, Permission.VIEW_DISPUTE)
    return (
        await db.scalars(
            select(TranscriptEdit)
            .where(TranscriptEdit.line_id == line_id)
            .order_by(TranscriptEdit.version)
        )
    ).all()
