"""Background jobs (transcribing an uploaded recording, rendering an export, assembling a
recording): durable, so that a restart resumes them, with progress people can watch.

One row per job.  ``state`` moves queued -> running -> done | failed (or cancelled);
a running job whose worker died (no heartbeat) goes back to queued when a worker starts.
A job that failed in a way that may pass waits in queued until ``not_before``.
``error`` keeps the details (for staff); ``error_message`` is a msgid shown to everyone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UTCDateTime, utcnow


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("jobs_state_created", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # transcribe_recording, transcript_export, ...
    state: Mapped[str] = mapped_column(String(16), default="queued")
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    result: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    stage: Mapped[str] = mapped_column(String(120), default="")  # a msgid, shown translated
    error: Mapped[str] = mapped_column(Text, default="")
    error_message: Mapped[str] = mapped_column(String(200), default="")  # a msgid
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    dispute_id: Mapped[int | None] = mapped_column(
        ForeignKey("disputes.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("case_sessions.id", ondelete="CASCADE"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    worker: Mapped[str] = mapped_column(String(64), default="")
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # retry back-off
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
