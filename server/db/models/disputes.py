"""Disputes (cases), their parties and agents, staff on them, and consents."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UTCDateTime, utcnow
from server.domain.roles import DisputeRole


def _values(enum: type[DisputeRole]) -> list[str]:
    return [member.value for member in enum]


class Dispute(Base):
    __tablename__ = "disputes"
    __table_args__ = (
        Index("ix_disputes_court_status_created", "court_id", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id"), index=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    dispute_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), index=True)
    claim_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    summary: Mapped[str] = mapped_column(Text, default="")
    requests: Mapped[str] = mapped_column(Text, default="")
    complexity: Mapped[str | None] = mapped_column(String(16))  # simple, complex
    # the workflow state (server.domain.disputes.DisputeState) is owned here, as JSON;
    # status, complexity, mediator_user_id and next_due_at are copies of it for queries,
    # written only by server.services.workflow
    workflow: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mediator_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DisputeParty(Base):
    __tablename__ = "dispute_parties"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("disputes.id", ondelete="CASCADE"), index=True
    )
    side: Mapped[DisputeRole] = mapped_column(
        SAEnum(DisputeRole, native_enum=False, length=32, values_callable=_values)
    )
    kind: Mapped[str] = mapped_column(String(16), default="natural")  # natural, legal
    name: Mapped[str] = mapped_column(String(200))
    id_number: Mapped[str] = mapped_column(String(32), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    service_address: Mapped[str] = mapped_column(String(400), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)


class DisputeAgent(Base):
    __tablename__ = "dispute_agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("disputes.id", ondelete="CASCADE"), index=True
    )
    party_id: Mapped[int] = mapped_column(ForeignKey("dispute_parties.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32), default="")
    authority: Mapped[str] = mapped_column(String(16), default="general")  # general, special
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)


class DisputeStaff(Base):
    """A court or mediation staff member working on one dispute."""

    __tablename__ = "dispute_staff"
    __table_args__ = (UniqueConstraint("dispute_id", "user_id", "role", name="member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("disputes.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[DisputeRole] = mapped_column(
        SAEnum(DisputeRole, native_enum=False, length=32, values_callable=_values)
    )
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Consent(Base):
    """A party's consent (or refusal) for one stage, e.g. online mediation, e-service."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("disputes.id", ondelete="CASCADE"), index=True
    )
    party_id: Mapped[int] = mapped_column(ForeignKey("dispute_parties.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(32))  # mediation, confirmation, hearing, service
    matter: Mapped[str] = mapped_column(
        String(32)
    )  # online_handling, electronic_service, recording
    granted: Mapped[bool] = mapped_column(Boolean)
    method: Mapped[str] = mapped_column(String(32), default="online")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
