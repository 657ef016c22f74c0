"""Keeping the mediator roster (调解组织和调解员名册): the court admin adds and edits
mediation organisations and mediators.

A mediator is an account with the mediator role plus a roster row saying which
organisation they belong to, what they handle (specialities, case types, languages)
and how many active cases they may carry.  Deactivating a mediator keeps the
disputes already on their desk; it only takes them out of the roster search and of
the suggestions (which honour ``active``).  Every change leaves an audit row
"roster.*" with the fields before and after.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import Actor, AuditEntry
from server.db.models import MediationOrganisation, Mediator, User
from server.domain.disputes import DisputeType
from server.domain.errors import N_, Conflict, Invalid, NotFound
from server.domain.ids import MAX_ID, parse_id
from server.domain.roles import Role
from server.pagination import Page, paginate
from server.services import roster
from server.services.users import NewUser, create_user

ORGANISATION_KINDS: dict[str, str] = {
    "people": N_("People's mediation"),
    "industry": N_("Industry mediation"),
    "commercial": N_("Commercial mediation"),
    "lawyer": N_("Lawyer mediation"),
}
NAME_MAX = 200
MIN_CASES, MAX_CASES = 1, 200
DEFAULT_MAX_CASES = 20
SPECIALITY_MAX = 50
SPECIALITIES_MAX = 20
LANGUAGES_MAX = 10
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
CANDIDATES_LIMIT = 200

REQUIRED = N_("This field is required: %(field)s.")
TOO_LONG = N_("Enter at most %(max)s characters.")
BAD_KIND = N_("Choose a kind of organisation.")
BAD_CASE_TYPE = N_("Unknown case type: %(value)s.")
BAD_LANGUAGE = N_("Enter language codes such as zh, en or yue.")
BAD_SPECIALITIES = N_("Enter at most %(num)s specialities of at most %(max)s characters each.")
BAD_MAX_CASES = N_("Maximum active cases must be a whole number from %(min)s to %(max)s.")
BAD_ORGANISATION = N_("Choose an active mediation organisation of this court.")
BAD_ACCOUNT = N_("Choose an active mediator account of this court.")
ONE_ACCOUNT = N_("Choose an existing mediator account or enter a new one, not both.")
ON_ROSTER = N_("This account is already on the roster.")
NO_ORGANISATION = N_("No such mediation organisation.")
NO_MEDIATOR = N_("No such mediator on this court's roster.")


def kind_label(kind: str) -> str:
    """The message id naming an organisation's kind (the kind itself if unknown)."""
    return ORGANISATION_KINDS.get(kind, kind)


# cleaning input --------------------------------------------------------------------------


def clean_name(value: str | None, field: str = "name") -> str:
    name = (value or "").strip()
    if not name:
        raise Invalid(REQUIRED, field=field)
    if len(name) > NAME_MAX:
        raise Invalid(TOO_LONG, field=field, max=NAME_MAX)
    return name


def clean_kind(value: str | None) -> str:
    kind = (value or "").strip()
    if kind not in ORGANISATION_KINDS:
        raise Invalid(BAD_KIND, field="kind")
    return kind


def _unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(value, None)
    return list(seen)


def clean_specialities(values: Iterable[str]) -> list[str]:
    found = _unique(value.strip() for value in values if value and value.strip())
    if len(found) > SPECIALITIES_MAX or any(len(value) > SPECIALITY_MAX for value in found):
        raise Invalid(
            BAD_SPECIALITIES, field="specialities", num=SPECIALITIES_MAX, max=SPECIALITY_MAX
        )
    return found


def clean_case_types(values: Iterable[str]) -> list[str]:
    allowed = {kind.value for kind in DisputeType}
    found = _unique(value.strip() for value in values if value and value.strip())
    for value in found:
        if value not in allowed:
            raise Invalid(BAD_CASE_TYPE, field="case_types", value=value[:40])
    return found


def clean_languages(values: Iterable[str]) -> list[str]:
    found = _unique(value.strip().lower() for value in values if value and value.strip())
    if not found or len(found) > LANGUAGES_MAX or not all(LANGUAGE.match(v) for v in found):
        raise Invalid(BAD_LANGUAGE, field="languages")
    return found


def clean_max_cases(value: object) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 4:
        number = int(value.strip())
    if number is None or not MIN_CASES <= number <= MAX_CASES:
        raise Invalid(BAD_MAX_CASES, field="max_active_cases", min=MIN_CASES, max=MAX_CASES)
    return number


def split_list(text: str | None) -> list[str]:
    """A list typed into one form field: separated by commas (either width), 、 or lines."""
    return [part.strip() for part in re.split(r"[,，、;；\n]+", text or "") if part.strip()]


# organisations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationChange:
    """What to change on an organisation; None leaves a field as it is."""

    name: str | None = None
    kind: str | None = None
    active: bool | None = None


def organisation_json(
    organisation: MediationOrganisation, mediators: int | None = None
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": organisation.id,
        "name": organisation.name,
        "kind": organisation.kind,
        "active": organisation.active,
    }
    if mediators is not None:
        found["mediators"] = mediators
    return found


def _organisation_fields(organisation: MediationOrganisation) -> dict[str, Any]:
    return {"name": organisation.name, "kind": organisation.kind, "active": organisation.active}


def _changed(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def _activity_action(subject: str, after: dict[str, Any]) -> str:
    if "active" in after:
        return f"roster.{subject}_{'reactivated' if after['active'] else 'deactivated'}"
    return f"roster.{subject}_updated"


async def organisation_for(
    db: AsyncSession, court_id: int, organisation_id: int
) -> MediationOrganisation:
    found = await db.scalar(
        select(MediationOrganisation).where(
            MediationOrganisation.id == organisation_id,
            MediationOrganisation.court_id == court_id,
        )
    )
    if found is None:
        raise NotFound(NO_ORGANISATION)
    return found


async def list_organisations(
    db: AsyncSession, court_id: int, page: int, per_page: int, *, active: bool | None = None
) -> Page[Any]:
    """One page of (MediationOrganisation, number of mediators) rows, by name."""
    members = (
        select(func.count(Mediator.id))
        .where(Mediator.organisation_id == MediationOrganisation.id)
        .correlate(MediationOrganisation)
        .scalar_subquery()
    )
    query = (
        select(MediationOrganisation, members)
        .where(MediationOrganisation.court_id == court_id)
        .order_by(MediationOrganisation.name, MediationOrganisation.id)
    )
    if active is not None:
        query = query.where(MediationOrganisation.active.is_(active))
    return await paginate(db, query, page, per_page, rows=True)


async def create_organisation(
    db: AsyncSession, court_id: int, name: str, kind: str, actor: Actor
) -> MediationOrganisation:
    organisation = MediationOrganisation(
        court_id=court_id, name=clean_name(name), kind=clean_kind(kind), active=True
    )
    db.add(organisation)
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            "roster.organisation_created",
            actor,
            "mediation_organisation",
            organisation.id,
            details={"before": None, "after": _organisation_fields(organisation)},
        ),
    )
    return organisation


async def update_organisation(
    db: AsyncSession,
    court_id: int,
    organisation_id: int,
    change: OrganisationChange,
    actor: Actor,
) -> MediationOrganisation:
    organisation = await organisation_for(db, court_id, organisation_id)
    wanted: dict[str, Any] = {}
    if change.name is not None:
        wanted["name"] = clean_name(change.name)
    if change.kind is not None:
        wanted["kind"] = clean_kind(change.kind)
    if change.active is not None:
        wanted["active"] = bool(change.active)
    before, after = _changed(_organisation_fields(organisation), wanted)
    if not after:
        return organisation
    for key, value in after.items():
        setattr(organisation, key, value)
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            _activity_action("organisation", after),
            actor,
            "mediation_organisation",
            organisation.id,
            details={"before": before, "after": after},
        ),
    )
    return organisation


# mediators -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediatorProfile:
    """What the roster says of a mediator being added."""

    organisation_id: int
    specialities: Sequence[str] = ()
    case_types: Sequence[str] = ()
    languages: Sequence[str] = ("zh",)
    max_active_cases: int | str = DEFAULT_MAX_CASES


@dataclass(frozen=True)
class NewMediatorAccount:
    """A new account for a mediator who has none yet (the role is always mediator)."""

    name: str
    username: str | None = None
    phone: str | None = None
    email: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class MediatorChange:
    """What to change on a mediator; None leaves a field as it is."""

    organisation_id: int | None = None
    specialities: Sequence[str] | None = None
    case_types: Sequence[str] | None = None
    languages: Sequence[str] | None = None
    max_active_cases: int | str | None = None
    active: bool | None = None


def _mediator_fields(mediator: Mediator) -> dict[str, Any]:
    return {
        "organisation_id": mediator.organisation_id,
        "specialities": list(mediator.specialities or []),
        "case_types": list(mediator.case_types or []),
        "languages": list(mediator.languages or []),
        "max_active_cases": mediator.max_active_cases,
        "active": mediator.active,
    }


def mediator_json(entry: roster.RosterEntry) -> dict[str, Any]:
    mediator, user, organisation = entry.mediator, entry.user, entry.organisation
    return {
        "id": mediator.id,
        "user_id": user.id,
        "name": user.name,
        "username": user.username,
        "account_active": user.active,
        "organisation_id": organisation.id,
        "organisation": organisation.name,
        "specialities": list(mediator.specialities or []),
        "case_types": list(mediator.case_types or []),
        "languages": list(mediator.languages or []),
        "max_active_cases": mediator.max_active_cases,
        "active": mediator.active,
        "load": entry.load,
    }


async def _active_organisation(
    db: AsyncSession, court_id: int, organisation_id: int | None
) -> MediationOrganisation:
    found = None
    if organisation_id is not None and 1 <= organisation_id <= MAX_ID:
        found = await db.scalar(
            select(MediationOrganisation).where(
                MediationOrganisation.id == organisation_id,
                MediationOrganisation.court_id == court_id,
                MediationOrganisation.active.is_(True),
            )
        )
    if found is None:
        raise Invalid(BAD_ORGANISATION, field="organisation_id")
    return found


async def mediator_for(db: AsyncSession, court_id: int, mediator_id: int) -> roster.RosterEntry:
    """One mediator of the court's roster, with their account, organisation and load."""
    row = (
        await db.execute(
            select(Mediator, User, MediationOrganisation)
            .join(User, User.id == Mediator.user_id)
            .join(MediationOrganisation, MediationOrganisation.id == Mediator.organisation_id)
            .where(Mediator.id == mediator_id, MediationOrganisation.court_id == court_id)
        )
    ).first()
    if row is None:
        raise NotFound(NO_MEDIATOR)
    mediator, user, organisation = row
    counted = await roster.loads(db, [user.id])
    return roster.RosterEntry(mediator, user, organisation, counted.get(user.id, 0))


async def list_mediators(
    db: AsyncSession, flt: roster.RosterFilter, page: int, per_page: int
) -> Page[roster.RosterEntry]:
    """One page of the roster as the admin sees it: inactive mediators included unless
    the filter says otherwise, each with their load."""
    return await roster.search_with_load(db, flt, page, per_page)


async def candidates(db: AsyncSession, court_id: int) -> list[User]:
    """Active mediator accounts of the court that are not on the roster yet."""
    return list(
        (
            await db.scalars(
                select(User)
                .where(
                    User.role == Role.MEDIATOR,
                    User.court_id == court_id,
                    User.active.is_(True),
                    User.id.not_in(select(Mediator.user_id)),
                )
                .order_by(User.name, User.id)
                .limit(CANDIDATES_LIMIT)
            )
        ).all()
    )


async def _existing_account(db: AsyncSession, court_id: int, user_id: int) -> User:
    user = await db.scalar(
        select(User).where(
            User.id == parse_id(user_id, "user_id"),
            User.role == Role.MEDIATOR,
            User.court_id == court_id,
            User.active.is_(True),
        )
    )
    if user is None:
        raise Invalid(BAD_ACCOUNT, field="user_id")
    if await db.scalar(select(Mediator.id).where(Mediator.user_id == user.id)) is not None:
        raise Conflict(ON_ROSTER)
    return user


async def add_mediator(
    db: AsyncSession,
    court_id: int,
    profile: MediatorProfile,
    actor: Actor,
    *,
    user_id: int | None = None,
    account: NewMediatorAccount | None = None,
) -> roster.RosterEntry:
    """Put a mediator on the roster: an existing mediator account of the court
    (``user_id``), or a new one opened here (``account``)."""
    if (user_id is None) == (account is None):
        raise Invalid(ONE_ACCOUNT, field="user_id")
    values = {
        "specialities": clean_specialities(profile.specialities),
        "case_types": clean_case_types(profile.case_types),
        "languages": clean_languages(profile.languages),
        "max_active_cases": clean_max_cases(profile.max_active_cases),
    }
    organisation = await _active_organisation(db, court_id, profile.organisation_id)
    if user_id is not None:
        user = await _existing_account(db, court_id, user_id)
    else:
        assert account is not None
        user = await create_user(
            db,
            NewUser(
                role=Role.MEDIATOR,
                name=account.name,
                phone=account.phone or None,
                username=account.username or None,
                email=account.email or None,
                password=account.password or None,
                court_id=court_id,
            ),
            actor,
        )
    mediator = Mediator(user_id=user.id, organisation_id=organisation.id, active=True, **values)
    db.add(mediator)
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            "roster.mediator_added",
            actor,
            "mediator",
            mediator.id,
            details={
                "before": None,
                "after": {
                    "user_id": user.id,
                    "name": user.name,
                    "new_account": account is not None,
                    **_mediator_fields(mediator),
                },
            },
        ),
    )
    counted = await roster.loads(db, [user.id])
    return roster.RosterEntry(mediator, user, organisation, counted.get(user.id, 0))


async def update_mediator(
    db: AsyncSession,
    court_id: int,
    mediator_id: int,
    change: MediatorChange,
    actor: Actor,
) -> roster.RosterEntry:
    """Change what the roster says of a mediator.  Deactivating keeps the disputes
    already with them (the audit row says how many) and drops them from suggestions."""
    entry = await mediator_for(db, court_id, mediator_id)
    mediator, organisation = entry.mediator, entry.organisation
    wanted: dict[str, Any] = {}
    if change.specialities is not None:
        wanted["specialities"] = clean_specialities(change.specialities)
    if change.case_types is not None:
        wanted["case_types"] = clean_case_types(change.case_types)
    if change.languages is not None:
        wanted["languages"] = clean_languages(change.languages)
    if change.max_active_cases is not None:
        wanted["max_active_cases"] = clean_max_cases(change.max_active_cases)
    if change.active is not None:
        wanted["active"] = bool(change.active)
    if change.organisation_id is not None and change.organisation_id != mediator.organisation_id:
        organisation = await _active_organisation(db, court_id, change.organisation_id)
        wanted["organisation_id"] = organisation.id
    before, after = _changed(_mediator_fields(mediator), wanted)
    if not after:
        return entry
    for key, value in after.items():
        setattr(mediator, key, value)
    await db.flush()
    details: dict[str, Any] = {"before": before, "after": after}
    if after.get("active") is False:
        details["kept_disputes"] = entry.load
    await audit.append(
        db,
        AuditEntry(
            _activity_action("mediator", after),
            actor,
            "mediator",
            mediator.id,
            details=details,
        ),
    )
    return roster.RosterEntry(mediator, entry.user, organisation, entry.load)
