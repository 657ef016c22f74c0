"""The mediator roster (调解员名册): searchable by case type, speciality and language."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import MediationOrganisation, Mediator, User
from server.pagination import Page, paginate


@dataclass(frozen=True)
class RosterFilter:
    court_id: int | None = None
    case_type: str | None = None
    speciality: str | None = None
    language: str | None = None
    active_only: bool = True


def _holds(column: Any, value: str) -> Any:
    # JSON lists are stored as text on SQLite and as json on PostgreSQL; both render
    # an element the way json.dumps does, so a text match is portable
    return cast(column, String).contains(json.dumps(value), autoescape=True)


async def search(db: AsyncSession, flt: RosterFilter, page: int, per_page: int) -> Page[Any]:
    query = (
        select(Mediator, User, MediationOrganisation)
        .join(User, User.id == Mediator.user_id)
        .join(MediationOrganisation, MediationOrganisation.id == Mediator.organisation_id)
        .order_by(MediationOrganisation.name, User.name, Mediator.id)
    )
    if flt.court_id is not None:
        query = query.where(MediationOrganisation.court_id == flt.court_id)
    if flt.active_only:
        query = query.where(Mediator.active.is_(True), MediationOrganisation.active.is_(True))
    if flt.case_type:
        query = query.where(_holds(Mediator.case_types, flt.case_type))
    if flt.speciality:
        query = query.where(_holds(Mediator.specialities, flt.speciality))
    if flt.language:
        query = query.where(_holds(Mediator.languages, flt.language))
    return await paginate(db, query, page, per_page, rows=True)


def entry_json(row: Any) -> dict[str, Any]:
    mediator, user, organisation = row
    return {
        "id": mediator.id,
        "name": user.name,
        "organisation": organisation.name,
        "specialities": mediator.specialities,
        "case_types": mediator.case_types,
        "languages": mediator.languages,
        "active": mediator.active,
    }
