"""Every stored object: its key, size, SHA-256 and upload state (the upload outbox)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UTCDateTime, utcnow


class StoredObject(Base):
    __tablename__ = "stored_objects"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    dispute_id: Mapped[int | None] = mapped_column(
        ForeignKey("disputes.id", ondelete="RESTRICT"), index=True
    )
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(120))
    write_once: Mapped[bool] = mapped_column(Boolean, default=False)
    # pending: kept in the local spool, not yet in the store; stored: in the store
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
