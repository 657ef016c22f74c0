"""Telling people what a workflow event asks of them, through the notification channel.

The respondent is asked for consent when the court opens the dispute for mediation
(调解规则 Art. 15); an assigned mediator is told to answer within the time limit;
the applicant is told when mediation failed that they may choose case filing.
Messages go out in the caller's unit of work, with the event itself.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Principal
from server.db.models import Dispute, DisputeParty, User
from server.domain import events as ev
from server.domain.errors import DomainError
from server.domain.roles import DisputeRole, Role
from server.notify import Channel, Message
from server.services import invitations
from server.services.sessions import Links
from server.services.users import NewUser, create_user
from server.services.workflow import Done

log = logging.getLogger(__name__)

OPENED_FOR_MEDIATION = (ev.TriageAccepted, ev.TriageOverridden)


async def after(
    db: AsyncSession, principal: Principal, channel: Channel, done: Done, links: Links
) -> None:
    for event in done.events:
        if isinstance(event, OPENED_FOR_MEDIATION) and event.to_status != event.from_status:
            await _ask_respondents(db, principal, channel, done.dispute, links)
        elif isinstance(event, ev.MediatorAssigned | ev.MediatorChosenJointly):
            await _tell_mediator(db, channel, done.dispute, event.mediator_id)
        elif isinstance(event, ev.MediationFailed):
            await _tell_side(db, channel, done.dispute, DisputeRole.APPLICANT, FAILED_TEXT)


FAILED_TEXT = (
    "【一站】纠纷 {number} 调解未能达成协议，已经终结。您可以登录平台选择是否申请立案。"
    " Mediation of dispute {number} ended without agreement; log in to choose whether to file a case."
)


async def _ask_respondents(
    db: AsyncSession, principal: Principal, channel: Channel, dispute: Dispute, links: Links
) -> None:
    respondents = await db.scalars(
        select(DisputeParty).where(
            DisputeParty.dispute_id == dispute.id, DisputeParty.side == DisputeRole.RESPONDENT
        )
    )
    for party in respondents:
        user_id = party.user_id or await _account_for(db, principal, party)
        if user_id is None:
            continue  # no phone or email: the court contacts them another way
        try:
            await invitations.invite(
                db, principal, channel, dispute_id=dispute.id, user_id=user_id,
                secret=links.secret, base_url=links.base_url, valid_days=links.valid_days,
            )  # fmt: skip
        except DomainError as exc:
            log.warning("could not invite respondent %s of %s: %s", party.id, dispute.number, exc)


async def _account_for(db: AsyncSession, principal: Principal, party: DisputeParty) -> int | None:
    """A party account for a respondent who has none, so they can answer online."""
    if not party.phone:
        return None
    existing = await db.scalar(select(User).where(User.phone == party.phone))
    if existing is not None:
        if existing.role is not Role.PARTY:
            return None  # the number belongs to a staff or agent account
        party.user_id = existing.id
        return existing.id
    async with db.begin_nested():
        user = await create_user(
            db, NewUser(role=Role.PARTY, name=party.name, phone=party.phone), principal.actor()
        )
    party.user_id = user.id
    await db.flush()
    return user.id


async def _tell_mediator(
    db: AsyncSession, channel: Channel, dispute: Dispute, user_id: int
) -> None:
    mediator = await db.get(User, user_id)
    if mediator is None or not (mediator.phone or mediator.email):
        return
    await channel.send(
        db,
        Message(
            destination=mediator.phone or mediator.email or "",
            subject="一站 Yizhan assignment",
            body=f"【一站】您被委派调解纠纷 {dispute.number}，请在 3 个工作日内登录平台答复是否接受。"
            f" You have been assigned dispute {dispute.number}; answer within 3 working days.",
            user_id=mediator.id,
        ),
    )


async def _tell_side(
    db: AsyncSession, channel: Channel, dispute: Dispute, side: DisputeRole, text: str
) -> None:
    parties = await db.scalars(
        select(DisputeParty).where(DisputeParty.dispute_id == dispute.id, DisputeParty.side == side)
    )
    for party in parties:
        destination = party.phone or party.email
        if destination:
            await channel.send(
                db,
                Message(
                    destination=destination,
                    subject="一站 Yizhan",
                    body=text.format(number=dispute.number),
                    user_id=party.user_id,
                ),
            )
