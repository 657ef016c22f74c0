"""Mediation agreements (调解协议): templates, drafts kept as versions, and signatures.

A court's admin may override the platform's template for a dispute type
(:class:`AgreementTemplate`). The mediator drafts an :class:`Agreement` for a dispute;
each save is an :class:`AgreementVersion`. When a version is put up for signing it is
rendered to a PDF whose SHA-256 every signer sees and signs (:class:`AgreementSignature`).
Once everyone has signed, the final PDF (signature images, audit page, the platform's
PAdES signature) is a write-once ``agreement`` document.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UTCDateTime, utcnow


class AgreementTemplate(Base):
    """A court's own template for one dispute type (the platform's are files in web/)."""

    __tablename__ = "agreement_templates"
    __table_args__ = (UniqueConstraint("court_id", "dispute_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    court_id: Mapped[int] = mapped_column(ForeignKey("courts.id", ondelete="CASCADE"))
    dispute_type: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)  # Jinja2 (sandboxed)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Agreement(Base):
    __tablename__ = "agreements"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("disputes.id", ondelete="CASCADE"), unique=True
    )
    number: Mapped[str] = mapped_column(String(80), unique=True)  # the document number
    # drafting, signing (a version is out for signature), signed, refused
    state: Mapped[str] = mapped_column(String(16), default="drafting", index=True)
    current_version: Mapped[int] = mapped_column(Integer, default=0)
    signing_version: Mapped[int | None] = mapped_column(Integer)  # the version out for signing
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    final_document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL")
    )
    final_sha256: Mapped[str] = mapped_column(String(64), default="")


class AgreementVersion(Base):
    """One saved text of the agreement, with the structured terms it was filled from."""

    __tablename__ = "agreement_versions"
    __table_args__ = (UniqueConstraint("agreement_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(
        ForeignKey("agreements.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)  # what the parties agree to, as edited
    terms: Mapped[str] = mapped_column(Text, default="{}")  # JSON: amounts, instalments, ...
    sha256: Mapped[str] = mapped_column(String(64))  # of the canonical text and terms
    note: Mapped[str] = mapped_column(String(200), default="")  # what changed
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # the PDF put up for signing (kind "agreement_draft"), and the hash signers see
    pdf_object_id: Mapped[int | None] = mapped_column(ForeignKey("stored_objects.id"))
    pdf_sha256: Mapped[str] = mapped_column(String(64), default="")


class AgreementSignature(Base):
    """One signer's signature of (or refusal to sign) one version's PDF."""

    __tablename__ = "agreement_signatures"
    __table_args__ = (UniqueConstraint("agreement_id", "version", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(
        ForeignKey("agreements.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("dispute_parties.id"))  # signed for
    signer_role: Mapped[str] = mapped_column(String(16))  # party, agent, mediator
    name: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(16))  # signed, refused
    document_sha256: Mapped[str] = mapped_column(String(64))  # the PDF they were shown
    image_object_id: Mapped[int | None] = mapped_column(ForeignKey("stored_objects.id"))
    image_sha256: Mapped[str] = mapped_column(String(64), default="")
    method: Mapped[str] = mapped_column(String(32), default="sms_code")  # how identity was checked
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    reason: Mapped[str] = mapped_column(Text, default="")  # a refusal's
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Confirmation(Base):
    """The parties' joint application for judicial confirmation (司法确认) of a signed
    agreement, and the judge's handling of it."""

    __tablename__ = "confirmations"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("disputes.id", ondelete="CASCADE"), unique=True
    )
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"))
    # applying (some parties have applied), applied (all have: in the judge's queue),
    # evidence_requested, hearing (an online hearing is scheduled), confirmed, rejected
    state: Mapped[str] = mapped_column(String(24), default="applying", index=True)
    applicants: Mapped[str] = mapped_column(Text, default="[]")  # JSON: party, user, at
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    judge_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    mode: Mapped[str] = mapped_column(String(16), default="paper")  # paper, hearing
    hearing_session_id: Mapped[int | None] = mapped_column(ForeignKey("case_sessions.id"))
    evidence_request: Mapped[str] = mapped_column(Text, default="")  # Art. 23 checks
    evidence_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reasons: Mapped[str] = mapped_column(Text, default="")  # a rejection's
    ruling_document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL")
    )
    ruling_sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
