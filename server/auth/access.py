"""The one access check used by pages, the API and socket events.

Two questions: may this role do this at all (permissions), and is this dispute
one the caller may see (court-wide roles see their court's disputes, everyone
else only the disputes they are a party, agent or staff member on).  A caller
who may not see a dispute is told it does not exist, and the attempt is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Principal
from server.db.models import Dispute, DisputeAgent, DisputeParty, DisputeStaff
from server.domain.disputes import FILING_TRACK
from server.domain.errors import N_, Forbidden, NotFound, ReverificationRequired
from server.domain.roles import COURT_WIDE_ROLES, Permission, Role, has_permission


def require(principal: Principal, permission: Permission) -> None:
    if not has_permission(principal.role, permission):
        raise Forbidden(N_("Your role may not do this.")).audited(
            "access.denied", permission=permission.value
        )


def visible_disputes(principal: Principal) -> ColumnElement[bool]:
    """A WHERE clause selecting the disputes the caller may see."""
    uid = principal.user_id
    # IN (subquery) rather than EXISTS: the planner can then start from the member's
    # own rows (indexed by user_id) instead of walking every dispute
    member = or_(
        Dispute.id.in_(select(DisputeParty.dispute_id).where(DisputeParty.user_id == uid)),
        Dispute.id.in_(select(DisputeAgent.dispute_id).where(DisputeAgent.user_id == uid)),
        Dispute.id.in_(select(DisputeStaff.dispute_id).where(DisputeStaff.user_id == uid)),
    )
    if principal.role in COURT_WIDE_ROLES and principal.court_id is not None:
        return or_(Dispute.court_id == principal.court_id, member)
    if principal.role is Role.CLERK and principal.court_id is not None:
        # clerks register and serve the court's cases: the filing track is theirs to see
        filing = and_(
            Dispute.court_id == principal.court_id,
            Dispute.status.in_([status.value for status in FILING_TRACK]),
        )
        return or_(filing, member)
    return member


async def dispute_for(
    db: AsyncSession,
    principal: Principal,
    dispute_id: int,
    permission: Permission = Permission.VIEW_DISPUTE,
) -> Dispute:
    """The dispute if the caller may act on it with ``permission``; else an audited error."""
    require(principal, permission)
    dispute = await db.scalar(
        select(Dispute).where(Dispute.id == dispute_id, visible_disputes(principal))
    )
    if dispute is None:
        raise NotFound(N_("No such dispute, or it is not yours to see.")).audited(
            "access.denied", dispute_id=dispute_id, permission=permission.value
        )
    return dispute


def require_reverified(principal: Principal, minutes: int) -> None:
    """Sensitive steps (signing, joining a hearing) need a fresh one-time code."""
    fresh_after = datetime.now(UTC) - timedelta(minutes=minutes)
    if principal.reverified_at is None or principal.reverified_at < fresh_after:
        raise ReverificationRequired(N_("Confirm your identity with a new one-time code first."))
