"""The electronic transcript (电子笔录) of a session: one row per line, as the live
engine committed it and as the clerk corrected it, with every version kept.

``start``/``end`` are seconds on the session clock (from the moment the room first
opened; ``clock_start`` of the line's room), so that a line links to the moment in
the recording.  A line is never deleted: a merge or a removal marks it ``hidden``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UTCDateTime, utcnow


class TranscriptLine(Base):
    __tablename__ = "transcript_lines"
    __table_args__ = (Index("transcript_lines_session", "session_id", "clock_start", "start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("case_sessions.id", ondelete="CASCADE"))
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id", ondelete="CASCADE"))
    identity: Mapped[str] = mapped_column(String(64))  # user:12, guest:3
    name: Mapped[str] = mapped_column(String(200))
    seat: Mapped[str] = mapped_column(String(64), default="")  # msgid, e.g. Applicant
    clock_start: Mapped[datetime] = mapped_column(UTCDateTime)  # when the room's clock began
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="zh")
    version: Mapped[int] = mapped_column(Integer, default=1)
    undisputed: Mapped[bool] = mapped_column(Boolean, default=False)  # 无争议事实
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TranscriptEdit(Base):
    """One version of a line: what it said, who made it so, when."""

    __tablename__ = "transcript_edits"

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(
        ForeignKey("transcript_lines.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(16))  # recognised, corrected, merged, split, marked
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    by_name: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
