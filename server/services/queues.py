"""The work queue of each staff role, the court's overview and a party's own list.

Every list is one page of ``access.visible_disputes``, narrowed on indexed columns only
(court_id, status, mediator_user_id, next_due_at) and ordered by the next deadline
(none last), then by age.  What needs the workflow state (running deadlines and their
countdowns, a party's next steps) is worked out for the rows of the page shown only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import access
from server.auth.principal import Principal
from server.db.models import Dispute
from server.domain import commands as cmd
from server.domain.calendar import Countdown, WorkingCalendar
from server.domain.disputes import (
    DEADLINE_LABELS,
    DeadlineKind,
    DisputeStatus,
    running_deadlines,
)
from server.domain.errors import N_, Invalid
from server.domain.roles import Permission, Role
from server.pagination import Page
from server.services import disputes, guidance, roster, workflow

S = DisputeStatus

# what each staff role works on
QUEUE_STATUSES: dict[Role, tuple[DisputeStatus, ...]] = {
    Role.MEDIATOR: roster.CASELOAD_STATUSES,
    Role.TRIAGE_OFFICER: (S.SUBMITTED, S.TRIAGED, S.AWAITING_MEDIATOR),
    # cases to register, failed mediations awaiting the filing choice, walk-in drafts
    Role.CLERK: (S.FILING_PENDING, S.FAILED, S.DRAFT),
    # applications for judicial confirmation, and fast-track cases
    Role.JUDGE: (S.CONFIRMATION, S.FILED),
    # the court admin's overview counts every status
    Role.COURT_ADMIN: tuple(DisputeStatus),
}
PARTY_SIDE = frozenset({Role.PARTY, Role.AGENT})


@dataclass(frozen=True)
class Due:
    """A running time limit and how long is left."""

    kind: DeadlineKind
    countdown: Countdown

    @property
    def label(self) -> str:
        return DEADLINE_LABELS[self.kind]


@dataclass(frozen=True)
class QueueItem:
    dispute: Dispute
    overdue: bool
    deadlines: tuple[Due, ...] = ()
    steps: tuple[type[cmd.Command], ...] = ()  # a party's next steps
    hint: guidance.Hint | None = None  # what a party is told to do or wait for

    @property
    def next_due(self) -> Due | None:
        return self.deadlines[0] if self.deadlines else None

    def step_labels(self, caller: Principal) -> list[str]:
        return [guidance.label_for(step, caller) for step in self.steps]


@dataclass(frozen=True)
class Queue:
    """One role's queue: the page shown and the counts of the whole queue.

    For the court admin the page is the court's overdue list and the counts cover
    every status of the court.
    """

    role: Role
    statuses: tuple[DisputeStatus, ...]
    status: DisputeStatus | None  # the one status the page is narrowed to, if any
    counts: dict[str, int]
    overdue: int
    page: Page[QueueItem]
    now: datetime
    overdue_only: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def next_item(self) -> QueueItem | None:
        return self.page.items[0] if self.page.items else None


def _statuses(values: Sequence[DisputeStatus]) -> list[str]:
    return [value.value for value in values]


def _scope(principal: Principal) -> list[ColumnElement[bool]]:
    """The role's share of the disputes it may see, on indexed columns."""
    role = principal.role
    statuses = QUEUE_STATUSES[role]
    where: list[ColumnElement[bool]] = [access.visible_disputes(principal)]
    if principal.court_id is not None and role is not Role.MEDIATOR:
        where.append(Dispute.court_id == principal.court_id)
    if role is Role.MEDIATOR:
        where.append(Dispute.mediator_user_id == principal.user_id)
    if role is Role.COURT_ADMIN:
        return where
    where.append(Dispute.status.in_(_statuses(statuses)))
    if role is Role.CLERK:
        # drafts only where the clerk is filing for a walk-in party
        where.append(
            or_(Dispute.status != S.DRAFT.value, Dispute.created_by_id == principal.user_id)
        )
    return where


def _ordered(query: Select[tuple[Dispute]], *, all_due: bool = False) -> Select[tuple[Dispute]]:
    """The next deadline first, those without one last, then the oldest first.
    ``all_due``: every row has a deadline, so the next_due_at index gives the order."""
    due = Dispute.next_due_at.asc() if all_due else Dispute.next_due_at.asc().nulls_last()
    return query.order_by(due, Dispute.created_at.asc(), Dispute.id.asc())


def _item(dispute: Dispute, now: datetime, calendar: WorkingCalendar) -> QueueItem:
    state = workflow.state_of(dispute)
    deadlines = tuple(
        Due(deadline.kind, calendar.countdown(deadline.due, now))
        for deadline in running_deadlines(state)
    )
    overdue = dispute.next_due_at is not None and dispute.next_due_at < now
    return QueueItem(dispute, overdue, deadlines)


def _narrow(statuses: tuple[DisputeStatus, ...], status: str | None) -> DisputeStatus | None:
    if not status:
        return None
    try:
        wanted = DisputeStatus(status)
    except ValueError:
        wanted = None
    if wanted is None or wanted not in statuses:
        raise Invalid(N_("This field is not valid: %(field)s."), field="status")
    return wanted


async def _page(
    db: AsyncSession,
    where: Sequence[ColumnElement[bool]],
    page: int,
    per_page: int,
    total: int,
    now: datetime,
    calendar: WorkingCalendar,
    *,
    all_due: bool = False,
) -> Page[QueueItem]:
    query = _ordered(select(Dispute).where(*where), all_due=all_due)
    query = query.limit(per_page).offset((page - 1) * per_page)
    rows = (await db.scalars(query)).all() if total else []
    return Page([_item(d, now, calendar) for d in rows], page, per_page, total)


async def role_queue(
    db: AsyncSession,
    principal: Principal,
    page: int,
    per_page: int,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    status: str | None = None,
) -> Queue:
    """The caller's work queue (the court admin: the overview).  Parties have none."""
    access.require(principal, Permission.WORK_QUEUE)
    if principal.role is Role.COURT_ADMIN:
        return await overview(db, principal, page, per_page, now=now, calendar=calendar)
    statuses = QUEUE_STATUSES[principal.role]
    narrowed = _narrow(statuses, status)
    where = _scope(principal)
    late = Dispute.next_due_at < now
    rows = await db.execute(
        select(Dispute.status, func.count(), func.sum(case((late, 1), else_=0)))
        .where(*where)
        .group_by(Dispute.status)
    )
    counts = {s.value: 0 for s in statuses}
    overdue = 0
    for value, count, late_count in rows.tuples():
        counts[value] = int(count)
        overdue += int(late_count or 0)
    if narrowed is not None:
        where = [*where, Dispute.status == narrowed.value]
        total = counts[narrowed.value]
    else:
        total = sum(counts.values())
    return Queue(
        role=principal.role,
        statuses=statuses,
        status=narrowed,
        counts=counts,
        overdue=overdue,
        page=await _page(db, where, page, per_page, total, now, calendar),
        now=now,
    )


async def overview(
    db: AsyncSession,
    principal: Principal,
    page: int,
    per_page: int,
    *,
    now: datetime,
    calendar: WorkingCalendar,
) -> Queue:
    """The court admin's overview: disputes by status (one GROUP BY) and, paged, the
    overdue ones, the longest overdue first."""
    access.require(principal, Permission.LIST_ALL_DISPUTES)
    where = _scope(principal)
    rows = await db.execute(
        select(Dispute.status, func.count()).where(*where).group_by(Dispute.status)
    )
    counts = {value: int(count) for value, count in rows.tuples()}
    # the overdue list is driven by the next_due_at index: the court is not restated here
    # (court_id = ? would lead the planner to walk every dispute of the court)
    late = [access.visible_disputes(principal), Dispute.next_due_at < now]
    overdue = int(await db.scalar(select(func.count()).select_from(Dispute).where(*late)) or 0)
    return Queue(
        role=principal.role,
        statuses=tuple(s for s in DisputeStatus if counts.get(s.value)),
        status=None,
        counts=counts,
        overdue=overdue,
        page=await _page(db, late, page, per_page, overdue, now, calendar, all_due=True),
        now=now,
        overdue_only=True,
    )


async def party_disputes(
    db: AsyncSession,
    principal: Principal,
    page: int,
    per_page: int,
    *,
    now: datetime,
    calendar: WorkingCalendar,
) -> Page[QueueItem]:
    """A party's (or agent's) own disputes, newest first, each with its status, the
    running deadline and what the caller may do next."""
    found = await disputes.list_visible(db, principal, page, per_page)
    items = []
    for dispute in found.items:
        base = _item(dispute, now, calendar)
        state = workflow.state_of(dispute)
        allowed = await workflow.next_steps(db, principal, dispute)
        steps = tuple(
            c for c in allowed if guidance.offered(c, state, now) and c is not cmd.SaveDraft
        )
        hint = guidance.party_hint(state, list(steps), now=now)
        items.append(QueueItem(dispute, base.overdue, base.deadlines, steps, hint))
    return Page(items, found.page, found.per_page, found.total)
