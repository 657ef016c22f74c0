"""The electronic transcript (电子笔录) of a session: lines as the live engine committed
them, the clerk's corrections (every one a new version, with who and when), merging and
splitting lines, and marking undisputed facts (无争议事实).

Reading needs the dispute (parties read their own disputes' transcripts); changing a
line needs ``Permission.EDIT_TRANSCRIPT`` on the dispute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.db.models import CaseSession, TranscriptEdit, TranscriptLine
from server.domain.errors import N_, Conflict, Invalid, NotFound
from server.domain.roles import Permission

MAX_LINE = 5000


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
    query = select(TranscriptLine).where(TranscriptLine.session_id == session_id)
    if not hidden:
        query = query.where(TranscriptLine.hidden.is_(False))
    return (
        await db.scalars(
            query.order_by(TranscriptLine.clock_start, TranscriptLine.start, TranscriptLine.id)
        )
    ).all()


async def _line(db: AsyncSession, principal: Principal, line_id: int) -> TranscriptLine:
    line = await db.get(TranscriptLine, line_id)
    if line is None:
        raise NotFound(N_("No such transcript line."))
    await access.dispute_for(db, principal, line.dispute_id, Permission.EDIT_TRANSCRIPT)
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
    return line


async def mark_undisputed(
    db: AsyncSession, principal: Principal, line_id: int, undisputed: bool
) -> TranscriptLine:
    line = await _line(db, principal, line_id)
    if line.undisputed != undisputed:
        line.undisputed = undisputed
        await _version(db, principal, line, "marked" if undisputed else "unmarked", None)
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
