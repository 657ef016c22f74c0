"""A registered case's fast-track hearing and judgment (速裁): a judge of the court
schedules the online hearing (a ``hearing`` session in the rooms) and issues the judgment
as a PDF, which records it in the dispute's workflow; the judgment is then served like
any ruling (server/services/e_service.py), and once served on every party the dispute
moves to served. The first judge to act joins the case as its judge."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import AuditEntry
from server.auth import access
from server.auth.principal import Principal
from server.db.models import CaseSession, Dispute, DisputeStaff, Document, StoredObject
from server.domain import commands as cmd
from server.domain.calendar import WorkingCalendar
from server.domain.disputes import DisputeStatus
from server.domain.documents import DocumentKind
from server.domain.errors import N_, Conflict, Forbidden, NotFound
from server.domain.roles import DisputeRole, Role
from server.notify import Channel
from server.services import court_hearings, documents, workflow
from server.services.sessions import Links
from storage.spool import Spool, Spooled

DEFAULT_TITLE = "民事判决书"
HEARING_KIND = "hearing"
NOT_A_JUDGE = N_("Only the judge of the case may issue its judgment.")
NOT_REGISTERED = N_("A judgment can be issued only once the case is registered.")
NOT_FILED = N_("A fast-track hearing can be scheduled only for a registered case.")
ALREADY_SCHEDULED = N_("A hearing of this case is already scheduled.")
HEARING_TEXT = (
    "【一站】{name}，您好：案件 {number} 的速裁在线庭审定于 {when}（北京时间）进行，"
    "请届时通过邀请链接进入。 The fast-track hearing of case {number} is online at {when}"
    " (Beijing time); join through the invitation link."
)


async def may_issue(db: AsyncSession, principal: Principal, dispute_id: int) -> Dispute:
    """Checked before a single byte of the upload is read: a judge of the court that
    registered the case, and its judge once it has one. Writes nothing."""
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
    return dispute


async def _join_as_judge(db: AsyncSession, principal: Principal, dispute_id: int) -> None:
    on_it = await db.scalar(
        select(DisputeStaff.id).where(
            DisputeStaff.dispute_id == dispute_id, DisputeStaff.role == DisputeRole.JUDGE
        )
    )
    if on_it is None:  # the judge of the fast-track hearing joins the case
        db.add(
            DisputeStaff(dispute_id=dispute_id, user_id=principal.user_id, role=DisputeRole.JUDGE)
        )
        await db.flush()


async def schedule_hearing(
    db: AsyncSession,
    principal: Principal,
    channel: Channel,
    dispute_id: int,
    starts_at: datetime,
    *,
    links: Links,
    now: datetime | None = None,
) -> court_hearings.Hearing:
    """The online fast-track hearing of a registered case, hosted by the judge; the
    parties and agents are sent links."""
    now = now or datetime.now(UTC)
    start = court_hearings.aware_start(starts_at, now)
    dispute = await may_issue(db, principal, dispute_id)
    if dispute.status != DisputeStatus.FILED.value:
        raise Conflict(NOT_FILED)
    pending = await db.scalar(
        select(CaseSession.id).where(
            CaseSession.dispute_id == dispute_id,
            CaseSession.kind == HEARING_KIND,
            CaseSession.status.in_(("scheduled", "open")),
        )
    )
    if pending is not None:
        raise Conflict(ALREADY_SCHEDULED)
    await _join_as_judge(db, principal, dispute_id)
    hearing = await court_hearings.convene(
        db, principal, channel, dispute, kind=HEARING_KIND, start=start, links=links,
        text=HEARING_TEXT, now=now,
    )  # fmt: skip
    await audit.append(
        db,
        AuditEntry(
            "judgment.hearing_scheduled",
            principal.actor(),
            "case_session",
            hearing.session.id,
            dispute_id=dispute_id,
            details={
                "starts_at": start.isoformat(),
                "invited": [r.name for r in hearing.participants if r.invited_at is not None],
            },
        ),
    )
    return hearing


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
    await _join_as_judge(db, principal, dispute_id)
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
