"""Electronic service (电子送达, 诉讼规则 Arts. 29–32): one :class:`Service` of a document
to a recipient, delivered through one or more channels (:class:`ServiceDelivery`: the
platform inbox always, email, SMS), each with its own trace. Service is complete at the
earliest delivery that reached the recipient's system (Art. 31).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UTCDateTime, utcnow


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("disputes.id", ondelete="CASCADE"), index=True
    )
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    recipient_party_id: Mapped[int | None] = mapped_column(ForeignKey("dispute_parties.id"))
    recipient_name: Mapped[str] = mapped_column(String(200))
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("consents.id"))
    # pending (nothing reached yet), complete (Art. 31), failed (every channel gave up)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    effective_channel: Mapped[str] = mapped_column(String(16), default="")
    effective_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    certificate_document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL")
    )


class ServiceDelivery(Base):
    """One channel of one service, with every step of its trace."""

    __tablename__ = "service_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))  # inbox, email, sms
    address: Mapped[str] = mapped_column(String(254), default="")  # email, phone; "" for inbox
    # queued, sent (handed to the channel), reached (in the recipient's system),
    # failed (will retry), gave_up
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
