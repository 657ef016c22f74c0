"""Reading disputes the caller may see: the list and one dispute's file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import access
from server.auth.principal import Principal
from server.db.models import (
    CaseSession,
    Consent,
    Dispute,
    DisputeAgent,
    DisputeParty,
    DisputeStaff,
    Document,
    User,
)
from server.domain.documents import DocumentKind, may_read
from server.domain.roles import Permission
from server.pagination import Page, paginate


async def list_visible(
    db: AsyncSession, principal: Principal, page: int, per_page: int, status: str | None = None
) -> Page[Dispute]:
    access.require(principal, Permission.VIEW_DISPUTE)
    query = select(Dispute).where(access.visible_disputes(principal))
    if status:
        query = query.where(Dispute.status == status)
    return await paginate(
        db, query.order_by(Dispute.created_at.desc(), Dispute.id.desc()), page, per_page
    )


@dataclass(frozen=True)
class DisputeFile:
    dispute: Dispute
    parties: list[DisputeParty]
    agents: list[DisputeAgent]
    staff: list[tuple[DisputeStaff, User]]
    consents: list[Consent]
    sessions: list[CaseSession]
    documents: list[Document]


async def dispute_file(db: AsyncSession, principal: Principal, dispute_id: int) -> DisputeFile:
    dispute = await access.dispute_for(db, principal, dispute_id)

    async def rows(model: Any, order: Any) -> list[Any]:
        return list(
            (
                await db.scalars(
                    select(model).where(model.dispute_id == dispute.id).order_by(order)
                )
            ).all()
        )

    staff = (
        await db.execute(
            select(DisputeStaff, User)
            .join(User, User.id == DisputeStaff.user_id)
            .where(DisputeStaff.dispute_id == dispute.id)
            .order_by(DisputeStaff.id)
        )
    ).all()
    return DisputeFile(
        dispute=dispute,
        parties=await rows(DisputeParty, DisputeParty.id),
        agents=await rows(DisputeAgent, DisputeAgent.id),
        staff=[(s, u) for s, u in staff],
        consents=await rows(Consent, Consent.id),
        sessions=await rows(CaseSession, CaseSession.scheduled_start),
        documents=[
            d
            for d in await rows(Document, Document.id)
            if may_read(principal.role, DocumentKind(d.kind))
        ],
    )


def mask_id_number(value: str) -> str:
    """Show a resident ID number as 110105********1234."""
    if len(value) <= 10:
        return value
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def summary(dispute: Dispute) -> dict[str, Any]:
    return {
        "id": dispute.id,
        "number": dispute.number,
        "type": dispute.dispute_type,
        "status": dispute.status,
        "claim_amount": str(dispute.claim_amount) if dispute.claim_amount is not None else None,
        "complexity": dispute.complexity,
        "created_at": dispute.created_at.isoformat(),
    }


def file_json(file: DisputeFile) -> dict[str, Any]:
    return {
        **summary(file.dispute),
        "summary": file.dispute.summary,
        "requests": file.dispute.requests,
        "parties": [
            {
                "id": p.id,
                "side": p.side.value,
                "kind": p.kind,
                "name": p.name,
                "id_number": mask_id_number(p.id_number),
            }
            for p in file.parties
        ],
        "agents": [
            {"id": a.id, "party_id": a.party_id, "name": a.name, "authority": a.authority}
            for a in file.agents
        ],
        "staff": [{"role": s.role.value, "name": u.name} for s, u in file.staff],
        "sessions": [
            {
                "id": s.id,
                "kind": s.kind,
                "status": s.status,
                "scheduled_start": s.scheduled_start.isoformat(),
            }
            for s in file.sessions
        ],
        "documents": [
            {"id": d.id, "kind": d.kind, "title": d.title, "filename": d.filename}
            for d in file.documents
        ],
    }
