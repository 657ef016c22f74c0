"""A session's recording (庭审录音录像): its segments, its timeline and what was made of it.

One :class:`Recording` per session. The room's recorder writes each participant's
tracks into WebM segments; each closed segment is a :class:`RecordingSegment` whose bytes
are a write-once ``StoredObject`` (uploaded by the outbox). Every start, pause, resume,
stop and interruption is a :class:`RecordingEvent` on the recording's timeline, in
seconds from ``Recording.started_at``. The composite and the per-participant files made
after the session are :class:`RecordingFile` rows pointing at dispute documents.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UTCDateTime, utcnow


class Recording(Base):
    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("case_sessions.id", ondelete="CASCADE"), unique=True
    )
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("disputes.id", ondelete="CASCADE"), index=True
    )
    # recording, paused, stopped (nothing is being written), purged (media removed)
    state: Mapped[str] = mapped_column(String(16), default="recording", index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the recorder's heartbeat: a restart that finds it stale logs an interruption
    alive_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    runs: Mapped[int] = mapped_column(Integer, default=0)  # recorder starts (1 + restarts)
    segment_seconds: Mapped[float] = mapped_column(Float, default=20.0)
    manifest_object_id: Mapped[int | None] = mapped_column(ForeignKey("stored_objects.id"))
    manifest_sha256: Mapped[str] = mapped_column(String(64), default="")
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_reason: Mapped[str] = mapped_column(Text, default="")
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecordingSegment(Base):
    """One closed WebM segment of one participant's track."""

    __tablename__ = "recording_segments"
    __table_args__ = (UniqueConstraint("recording_id", "run", "track", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), index=True
    )
    run: Mapped[int] = mapped_column(Integer)  # which recorder start wrote it
    track: Mapped[str] = mapped_column(String(64))  # e.g. user-12.camera
    identity: Mapped[str] = mapped_column(String(64))  # user:12, guest:3
    name: Mapped[str] = mapped_column(String(200))
    seat: Mapped[str] = mapped_column(String(64), default="")  # msgid
    source: Mapped[str] = mapped_column(String(16))  # mic, camera, screen
    kind: Mapped[str] = mapped_column(String(8))  # audio, video
    index: Mapped[int] = mapped_column(Integer)
    start: Mapped[float] = mapped_column(Float)  # seconds from Recording.started_at
    end: Mapped[float] = mapped_column(Float)
    packets: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[int | None] = mapped_column(ForeignKey("stored_objects.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecordingEvent(Base):
    """One entry of the recording's timeline."""

    __tablename__ = "recording_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    offset: Mapped[float] = mapped_column(Float)  # seconds from Recording.started_at
    # started, paused, resumed, stopped, interrupted, joined, left, dropped,
    # reconnected, recorder_error, held, released, purged
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64), default="")
    actor: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON


class RecordingFile(Base):
    """A playable file made from the segments: the composite or one participant's tracks."""

    __tablename__ = "recording_files"
    __table_args__ = (UniqueConstraint("recording_id", "role", "identity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))  # composite, participant
    identity: Mapped[str] = mapped_column(String(64), default="")  # the participant's
    name: Mapped[str] = mapped_column(String(200), default="")
    seat: Mapped[str] = mapped_column(String(64), default="")
    document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL"), unique=True
    )
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    has_video: Mapped[bool] = mapped_column(Boolean, default=True)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
