"""Reading a background job: its creator, and whoever may see its dispute, may read it;
anyone else is told it does not exist (and the attempt is audited)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import access
from server.auth.principal import Principal
from server.db.models import Dispute, Job
from server.domain.errors import N_, NotFound
from server.domain.roles import Permission, has_permission

NO_SUCH_JOB = N_("No such task, or it is not yours to see.")


async def readable(db: AsyncSession, principal: Principal, job_id: int) -> Job:
    job = await db.get(Job, job_id)
    if job is None:
        raise NotFound(NO_SUCH_JOB).audited("access.denied", job_id=job_id)
    if job.created_by_id is not None and job.created_by_id == principal.user_id:
        return job
    if job.dispute_id is not None and has_permission(principal.role, Permission.VIEW_DISPUTE):
        visible = await db.scalar(
            select(Dispute.id).where(
                Dispute.id == job.dispute_id, access.visible_disputes(principal)
            )
        )
        if visible is not None:
            return job
    raise NotFound(NO_SUCH_JOB).audited("access.denied", dispute_id=job.dispute_id, job_id=job_id)


def sees_details(principal: Principal) -> bool:
    """Whether the caller is shown why a job failed (the court's staff), not only that it did."""
    return principal.role.is_staff
