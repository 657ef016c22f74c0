"""The parties' review of a session's transcript (笔录核对): the clerk opens it, each party
confirms the exact text (by its hash, after a fresh one-time code) or objects (补正), and
the clerk freezes it; the frozen text and its hash never change again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UTCDateTime, utcnow


class TranscriptReview(Base):
    __tablename__ = "transcript_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("case_sessions.id", ondelete="CASCADE"), unique=True
    )
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default="open")  # open, frozen
    # the hash of the text as it stands; confirmations are of one hash
    sha256: Mapped[str] = mapped_column(String(64), default="")
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    frozen_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    frozen_text: Mapped[str] = mapped_column(Text, default="")  # canonical JSON that was hashed


class TranscriptSignoff(Base):
    """One party's answer to one version (hash) of the transcript."""

    __tablename__ = "transcript_signoffs"
    __table_args__ = (UniqueConstraint("review_id", "user_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(
        ForeignKey("transcript_reviews.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    seat: Mapped[str] = mapped_column(String(64), default="")  # msgid
    # confirmed, objected (the party's own answer); refused, absent (the clerk's record)
    decision: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))  # the text they answered
    objection: Mapped[str] = mapped_column(Text, default="")  # 补正: what they say is wrong
    line_id: Mapped[int | None] = mapped_column(ForeignKey("transcript_lines.id"))
    verified_by: Mapped[str] = mapped_column(String(32), default="")  # one_time_code
    # the clerk who recorded a refusal or an absence, and what they noted
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
