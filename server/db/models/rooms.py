"""What happens in a session's live room: its event log, its chat and its guests.

``RoomLogEntry`` is the record of the room (Art. 25 of the online litigation rules:
every start, pause, resume and close of a hearing and each participant's join, leave
and network drop, with times).  ``ChatLine`` is the room's text chat, part of the
record.  ``SessionGuest`` is someone without an account (a witness, an interpreter,
an observer) whom the session's staff invited with a signed link.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UTCDateTime, utcnow


class RoomLogEntry(Base):
    __tablename__ = "room_log"
    __table_args__ = (Index("room_log_session_at", "session_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("case_sessions.id", ondelete="CASCADE"))
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # join, leave, drop, rejoin, hearing_start...
    actor: Mapped[str] = mapped_column(String(200), default="")  # who did it (name)
    actor_identity: Mapped[str] = mapped_column(String(64), default="")  # user:12, guest:3
    subject: Mapped[str] = mapped_column(String(200), default="")  # to whom (name)
    subject_identity: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChatLine(Base):
    __tablename__ = "chat_lines"
    __table_args__ = (Index("chat_lines_session", "session_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("case_sessions.id", ondelete="CASCADE"))
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id", ondelete="CASCADE"))
    identity: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    seat: Mapped[str] = mapped_column(String(64), default="")
    subroom: Mapped[str] = mapped_column(String(32), default="main")
    text: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SessionGuest(Base):
    __tablename__ = "session_guests"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("case_sessions.id", ondelete="CASCADE"), index=True
    )
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # witness, interpreter, observer
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
