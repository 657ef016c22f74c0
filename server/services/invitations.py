"""Issuing invitation links to a dispute's parties and agents."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access, invitations
from server.auth.invitations import Invitation
from server.auth.principal import Principal
from server.db.models import DisputeAgent, DisputeParty, User
from server.domain.errors import N_, Conflict, NotFound
from server.domain.roles import Permission
from server.notify import Channel, Message


@dataclass(frozen=True)
class IssuedInvitation:
    user_id: int
    url: str
    sent_to: str


async def invite(
    db: AsyncSession,
    principal: Principal,
    channel: Channel,
    *,
    dispute_id: int,
    user_id: int,
    secret: str,
    base_url: str,
    valid_days: int,
) -> IssuedInvitation:
    """Send a party or agent of the dispute a signed link that logs them into it."""
    dispute = await access.dispute_for(db, principal, dispute_id, Permission.INVITE)
    on_dispute = await db.scalar(
        select(User).where(
            User.id == user_id,
            or_(
                User.id.in_(
                    select(DisputeParty.user_id).where(DisputeParty.dispute_id == dispute.id)
                ),
                User.id.in_(
                    select(DisputeAgent.user_id).where(DisputeAgent.dispute_id == dispute.id)
                ),
            ),
        )
    )
    if on_dispute is None:
        raise NotFound(N_("This person is not a party or agent of the dispute."))
    destination = on_dispute.phone or on_dispute.email
    if not destination or not on_dispute.active:
        raise Conflict(N_("This person has no phone number or email to send the link to."))
    token = invitations.sign(secret, Invitation(user_id=on_dispute.id, dispute_id=dispute.id))
    url = f"{base_url.rstrip('/')}/invite/{token}"
    await channel.send(
        db,
        Message(
            destination=destination,
            subject="一站 Yizhan invitation",
            body=f"【一站】{on_dispute.name}，您好：请通过以下链接进入纠纷 {dispute.number}，"
            f"{valid_days} 天内有效。 {url}",
            user_id=on_dispute.id,
        ),
    )
    await audit.append(
        db,
        AuditEntry(
            "invitation.issued",
            principal.actor(),
            "user",
            on_dispute.id,
            dispute_id=dispute.id,
            details={"channel": channel.name, "valid_days": valid_days},
        ),
    )
    return IssuedInvitation(on_dispute.id, url, destination)
