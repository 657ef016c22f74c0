"""Mediation sessions and hearings of a dispute (scheduled, open, held)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UTCDateTime, utcnow


class CaseSession(Base):
    __tablename__ = "case_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("disputes.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))  # mediation, hearing, confirmation_hearing
    status: Mapped[str] = mapped_column(
        String(16), default="scheduled"
    )  # scheduled, open, held, cancelled
    scheduled_start: Mapped[datetime] = mapped_column(UTCDateTime)
    scheduled_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    host_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requires_reverification: Mapped[bool] = mapped_column(Boolean, default=True)
    recorded: Mapped[bool] = mapped_column(Boolean, default=True)
    # the language the live transcription listens for (None: the court's YIZHAN_ASR_LANGUAGE)
    language: Mapped[str | None] = mapped_column(String(8))
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
