"""The data a court transcript document (笔录) is made from.

:class:`CourtRecord` holds everything :mod:`transcription.documents` puts on the page:
the court and case, the session's time and place, who presided, who kept the record, the
participants with their seats, the transcript lines in order, the parties' sign-offs and,
once the transcript is frozen, its hash. Seats, names and texts arrive already in the
reader's language; the documents translate only their own labels. Times are aware
datetimes (shown in ``timezone``); a line's ``start`` is seconds on the session clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

Decision = Literal["confirmed", "objected", "refused", "absent"]
DECISIONS: tuple[Decision, ...] = ("confirmed", "objected", "refused", "absent")


@dataclass(frozen=True)
class Participant:
    """Someone who took part: their seat (e.g. 申请人, 调解员) and name, and a note
    (e.g. 委托诉讼代理人) shown after the name."""

    seat: str
    name: str
    note: str = ""


@dataclass(frozen=True)
class RecordLine:
    """One transcript line: who said what, ``start`` seconds into the session."""

    start: float
    seat: str
    name: str
    text: str
    undisputed: bool = False  # marked by the clerk as an undisputed fact (无争议事实)


@dataclass(frozen=True)
class Signoff:
    """A party's answer to the transcript: ``decision`` is one of :data:`DECISIONS`;
    ``objection`` is the correction (补正) they attached, quoted in full."""

    name: str
    seat: str
    decision: str
    at: datetime | None
    objection: str = ""


@dataclass(frozen=True)
class CourtRecord:
    """A session's transcript with everything its court document shows."""

    court: str
    title: str  # e.g. 调解笔录, 庭审笔录
    case_number: str
    cause: str  # 案由; may be empty
    started_at: datetime | None
    ended_at: datetime | None
    place: str
    host: str  # the mediator or judge who presided
    clerk: str
    participants: Sequence[Participant]
    lines: Sequence[RecordLine]
    signoffs: Sequence[Signoff] = ()
    sha256: str = ""  # hash of the frozen transcript; empty while it is a draft
    frozen_at: datetime | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    timezone: str = "Asia/Shanghai"
    language: str = "zh"
    host_seat: str = ""  # the presiding seat's label (e.g. 调解员, 审判员); a generic one if empty
    clerk_seat: str = ""  # the clerk's seat label; a generic one if empty

    @property
    def frozen(self) -> bool:
        """Whether the parties' confirmed transcript has been frozen and hashed."""
        return bool(self.sha256)
