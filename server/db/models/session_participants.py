"""Who takes part in a session, in which part, and from when (separate times)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Enum as SAEnum
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UTCDateTime, utcnow
from server.domain.roles import DisputeRole


def _values(enum: type[DisputeRole]) -> list[str]:
    return [member.value for member in enum]


class CaseSessionParticipant(Base):
    """One participant of a ``CaseSession``.

    ``starts_at`` is this participant's own start time when the parties agreed to
    separate times (None: the session's ``scheduled_start``).  A party without an
    account (``user_id`` None) is listed but cannot be sent a link.
    """

    __tablename__ = "case_session_participants"
    __table_args__ = (
        UniqueConstraint("session_id", "user_id", "role", name="session_participant"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("case_sessions.id", ondelete="CASCADE"), index=True
    )
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("disputes.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    party_id: Mapped[int | None] = mapped_column(
        ForeignKey("dispute_parties.id", ondelete="CASCADE")
    )
    role: Mapped[DisputeRole] = mapped_column(
        SAEnum(DisputeRole, native_enum=False, length=32, values_callable=_values)
    )
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    invited_to: Mapped[str] = mapped_column(String(254), default="")  # where the notice went
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
