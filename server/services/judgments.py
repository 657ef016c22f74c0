"""The judgment of a fast-track hearing after case filing (速裁): the judge issues it as a
PDF on the registered case, which records the judgment in the dispute's workflow; it is
then served like any ruling (server/services/e_service.py), and once served on every
party the dispute moves to served."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.db.models import Dispute, DisputeStaff, Document, StoredObject
from server.domain import commands as cmd
from server.domain.calendar import WorkingCalendar
from server.domain.disputes import DisputeStatus
from server.domain.documents import DocumentKind
from server.domain.errors import N_, Conflict, Forbidden, NotFound
from server.domain.roles import DisputeRole, Role
from server.services import documents, workflow
from storage.spool import Spool, Spooled

DEFAULT_TITLE = "民事判决书"
NOT_A_JUDGE = N_("Only the judge of the case may issue its judgment.")
NOT_REGISTERED = N_("A judgment can be issued only once the case is registered.")


async def may_issue(db: AsyncSession, principal: Principal, dispute_id: int) -> Dispute:
    """Checked before a single byte of the upload is read: a judge of the court that
    registered the case (who becomes its judge, if no other is on it yet)."""
    if principal.role is not Role.JUDGE:
        await access.dispute_for(db, principal, dispute_id)  # strangers: not found
        raise Forbidden(NOT_A_JUDGE).audited(
            "access.denied", dispute_id=dispute_id, permission="judgment.issue"
        )
    dispute = await db.get(Dispute, dispute_id)
    if dispute is None or dispute.court_id != principal.court_id:
        raise NotFound(N_("No such dispute, or it is not yours to see.")).audited(
            "access.denied", dispute_id=dispute_id, permission="judgment.issue"
        )
    if dispute.status not in (DisputeStatus.FILED.value, DisputeStatus.JUDGED.value):
        raise Conflict(NOT_REGISTERED)
    judges = set(
        await db.scalars(
            select(DisputeStaff.user_id).where(
                DisputeStaff.dispute_id == dispute_id, DisputeStaff.role == DisputeRole.JUDGE
            )
        )
    )
    if judges and principal.user_id not in judges:
        raise Forbidden(NOT_A_JUDGE).audited(
            "access.denied", dispute_id=dispute_id, permission="judgment.issue"
        )
    if not judges:  # the judge of the fast-track hearing
        db.add(
            DisputeStaff(dispute_id=dispute_id, user_id=principal.user_id, role=DisputeRole.JUDGE)
        )
        await db.flush()
    return dispute


async def issue(
    db: AsyncSession,
    spool: Spool,
    principal: Principal,
    dispute_id: int,
    spooled: Spooled,
    *,
    filename: str,
    title: str,
    calendar: WorkingCalendar,
) -> tuple[Document, StoredObject]:
    """Keep the judgment (a PDF, write-once) and record it on the case."""
    dispute = await may_issue(db, principal, dispute_id)
    if dispute.status == DisputeStatus.FILED.value:
        await workflow.execute(db, principal, dispute_id, cmd.RecordJudgment(), calendar=calendar)
    document, stored = await documents.store_document(
        db,
        spool,
        spooled,
        principal=principal,
        dispute_id=dispute_id,
        kind=DocumentKind.JUDGMENT,
        filename=filename,
        title=title.strip() or DEFAULT_TITLE,
    )
    await audit.append(
        db,
        AuditEntry(
            "judgment.issued",
            principal.actor(),
            "document",
            document.id,
            dispute_id=dispute_id,
            details={"sha256": stored.sha256, "size": stored.size, "title": document.title},
        ),
    )
    return document, stored
