"""The mediator roster (调解员名册): searchable by organisation, case type, speciality,
language and name, with each mediator's current load; and the mediators suggested for
one dispute, ranked by case-type and speciality match, then by the lightest load."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import workflow_codec
from server.db.models import Dispute, MediationOrganisation, Mediator, User
from server.domain.disputes import DisputeStatus, DisputeType
from server.domain.errors import N_
from server.pagination import Page, paginate

# the disputes that count against a mediator's capacity (max_active_cases)
CASELOAD_STATUSES = (
    DisputeStatus.MEDIATOR_ASSIGNED,
    DisputeStatus.MEDIATING,
    DisputeStatus.AGREEMENT_REACHED,
)

# words in a mediator's specialities that fit each dispute type
TYPE_SPECIALITIES: dict[DisputeType, tuple[str, ...]] = {
    DisputeType.LOAN: ("借贷", "借款", "债务"),
    DisputeType.SALE: ("买卖", "合同"),
    DisputeType.TRAFFIC: ("交通", "保险"),
    DisputeType.LABOUR: ("劳动", "工资", "工伤"),
    DisputeType.FAMILY: ("婚姻", "家庭", "继承", "赡养"),
    DisputeType.PROPERTY: ("物业", "房屋", "房产", "相邻"),
    DisputeType.CONSUMER: ("消费",),
    DisputeType.OTHER: (),
}

SUGGESTIONS_LIMIT = 10


@dataclass(frozen=True)
class RosterFilter:
    court_id: int | None = None
    case_type: str | None = None
    speciality: str | None = None
    language: str | None = None
    active_only: bool = True
    organisation_id: int | None = None
    name: str | None = None  # part of the mediator's name
    inactive_only: bool = False


@dataclass(frozen=True)
class RosterEntry:
    mediator: Mediator
    user: User
    organisation: MediationOrganisation
    load: int  # disputes now assigned to or with the mediator (CASELOAD_STATUSES)

    @property
    def capacity(self) -> int:
        return self.mediator.max_active_cases

    @property
    def full(self) -> bool:
        return self.load >= self.capacity

    @property
    def load_ratio(self) -> float:
        return self.load / self.capacity if self.capacity > 0 else float("inf")


def _holds(column: Any, value: str) -> Any:
    # JSON lists are stored as text on SQLite and as json on PostgreSQL; both render
    # an element the way json.dumps does, so a text match is portable
    return cast(column, String).contains(json.dumps(value), autoescape=True)


def _query(flt: RosterFilter) -> Any:
    query = (
        select(Mediator, User, MediationOrganisation)
        .join(User, User.id == Mediator.user_id)
        .join(MediationOrganisation, MediationOrganisation.id == Mediator.organisation_id)
        .order_by(MediationOrganisation.name, User.name, Mediator.id)
    )
    if flt.court_id is not None:
        query = query.where(MediationOrganisation.court_id == flt.court_id)
    if flt.active_only:
        query = query.where(
            Mediator.active.is_(True),
            MediationOrganisation.active.is_(True),
            User.active.is_(True),
        )
    elif flt.inactive_only:
        query = query.where(Mediator.active.is_(False))
    if flt.organisation_id is not None:
        query = query.where(Mediator.organisation_id == flt.organisation_id)
    if flt.case_type:
        query = query.where(_holds(Mediator.case_types, flt.case_type))
    if flt.speciality:
        query = query.where(_holds(Mediator.specialities, flt.speciality))
    if flt.language:
        query = query.where(_holds(Mediator.languages, flt.language))
    if flt.name:
        query = query.where(User.name.contains(flt.name.strip(), autoescape=True))
    return query


async def search(db: AsyncSession, flt: RosterFilter, page: int, per_page: int) -> Page[Any]:
    """One page of (Mediator, User, MediationOrganisation) rows."""
    return await paginate(db, _query(flt), page, per_page, rows=True)


async def loads(db: AsyncSession, user_ids: Iterable[int]) -> dict[int, int]:
    """Each mediator's current load, by user id, in one grouped query (mediators with
    nothing on their desk are 0)."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    rows = await db.execute(
        select(Dispute.mediator_user_id, func.count())
        .where(
            Dispute.mediator_user_id.in_(wanted),
            Dispute.status.in_([s.value for s in CASELOAD_STATUSES]),
        )
        .group_by(Dispute.mediator_user_id)
    )
    found = {int(user_id): int(count) for user_id, count in rows.tuples() if user_id is not None}
    return {user_id: found.get(user_id, 0) for user_id in wanted}


async def _with_loads(db: AsyncSession, rows: Sequence[Any]) -> list[RosterEntry]:
    counted = await loads(db, (mediator.user_id for mediator, _, _ in rows))
    return [
        RosterEntry(mediator, user, organisation, counted.get(mediator.user_id, 0))
        for mediator, user, organisation in rows
    ]


async def search_with_load(
    db: AsyncSession, flt: RosterFilter, page: int, per_page: int
) -> Page[RosterEntry]:
    """One page of the roster, each mediator with their current load."""
    found = await search(db, flt, page, per_page)
    return Page(await _with_loads(db, found.items), found.page, found.per_page, found.total)


async def organisations(db: AsyncSession, court_id: int | None) -> list[MediationOrganisation]:
    query = select(MediationOrganisation).order_by(MediationOrganisation.name)
    if court_id is not None:
        query = query.where(MediationOrganisation.court_id == court_id)
    return list((await db.scalars(query)).all())


def entry_json(row: Any) -> dict[str, Any]:
    mediator, user, organisation = row
    return {
        "id": mediator.id,
        "user_id": user.id,
        "name": user.name,
        "organisation": organisation.name,
        "specialities": mediator.specialities,
        "case_types": mediator.case_types,
        "languages": mediator.languages,
        "active": mediator.active,
    }


def loaded_json(entry: RosterEntry) -> dict[str, Any]:
    return {
        **entry_json((entry.mediator, entry.user, entry.organisation)),
        "load": entry.load,
        "max_active_cases": entry.capacity,
        "full": entry.full,
    }


# suggestions for one dispute -------------------------------------------------------------

HANDLES_TYPE = N_("Takes %(type)s disputes")
SPECIALITY = N_("Speciality: %(specialities)s")
LOAD = N_("Load %(load)s of %(max)s")


@dataclass(frozen=True)
class Suggestion:
    entry: RosterEntry
    case_type_match: bool
    matched_specialities: tuple[str, ...]

    def rank_key(self) -> tuple[int, int, float, int, int]:
        return (
            0 if self.case_type_match else 1,
            0 if self.matched_specialities else 1,
            self.entry.load_ratio,
            self.entry.load,
            self.entry.user.id,
        )

    def reasons(self, dispute_type_label: str) -> list[tuple[str, dict[str, Any]]]:
        """Why it ranks where it does: (message id, params) to translate."""
        found: list[tuple[str, dict[str, Any]]] = []
        if self.case_type_match:
            found.append((HANDLES_TYPE, {"type": dispute_type_label}))
        if self.matched_specialities:
            found.append((SPECIALITY, {"specialities": "、".join(self.matched_specialities)}))
        found.append((LOAD, {"load": self.entry.load, "max": self.entry.capacity}))
        return found


def matching_specialities(dispute: Dispute, specialities: Iterable[str]) -> tuple[str, ...]:
    """The mediator's specialities that fit the dispute: by its type's words, or named
    in its summary or requests."""
    try:
        words = TYPE_SPECIALITIES[DisputeType(dispute.dispute_type)]
    except ValueError:
        words = ()
    text = f"{dispute.summary or ''} {dispute.requests or ''}"
    return tuple(
        speciality
        for speciality in specialities
        if speciality and (any(word in speciality for word in words) or speciality in text)
    )


async def suggestions(
    db: AsyncSession, dispute: Dispute, limit: int = SUGGESTIONS_LIMIT
) -> list[Suggestion]:
    """Active mediators of the dispute's court who may take it, best first: those who
    take its case type, then those with a fitting speciality, then the lightest load
    relative to their capacity.  Mediators the workflow excludes (declined, conflicted,
    replaced), the one it is with now and those at capacity are left out."""
    state = workflow_codec.load(dispute.workflow)
    excluded = set(state.excluded_mediators)
    if dispute.mediator_user_id is not None:
        excluded.add(dispute.mediator_user_id)
    query = _query(RosterFilter(court_id=dispute.court_id))
    if excluded:
        query = query.where(Mediator.user_id.not_in(sorted(excluded)))
    rows = (await db.execute(query)).all()
    ranked = [
        Suggestion(
            entry,
            dispute.dispute_type in (entry.mediator.case_types or []),
            matching_specialities(dispute, entry.mediator.specialities or []),
        )
        for entry in await _with_loads(db, rows)
        if not entry.full
    ]
    ranked.sort(key=Suggestion.rank_key)
    return ranked[:limit]
