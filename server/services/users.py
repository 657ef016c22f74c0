"""Creating and listing accounts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import Actor, AuditEntry
from server.auth.login import normalise_account
from server.auth.passwords import hash_password
from server.db.models import User
from server.domain.errors import N_, Conflict, Invalid
from server.domain.roles import Role
from server.pagination import Page, paginate

PHONE = re.compile(r"^1[3-9]\d{9}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
USERNAME = re.compile(r"^[a-z][a-z0-9_.]{2,63}$")


@dataclass(frozen=True)
class NewUser:
    role: Role
    name: str
    phone: str | None = None
    username: str | None = None
    email: str | None = None
    password: str | None = None
    court_id: int | None = None


def _clean(new: NewUser) -> NewUser:
    name = new.name.strip()
    if not name or len(name) > 100:
        raise Invalid(N_("Enter a name of at most 100 characters."), field="name")
    phone = normalise_account(new.phone) if new.phone else None
    if phone and not PHONE.match(phone):
        raise Invalid(N_("Enter a mainland mobile number of 11 digits."), field="phone")
    username = normalise_account(new.username) if new.username else None
    if username and not USERNAME.match(username):
        raise Invalid(
            N_(
                "A username starts with a letter and holds 3–64 letters, digits, dots or underscores."
            ),
            field="username",
        )
    email = new.email.strip().lower() if new.email else None
    if email and not EMAIL.match(email):
        raise Invalid(N_("Enter a valid email address."), field="email")
    if new.role.uses_password:
        if not (username or phone):
            raise Invalid(N_("Staff accounts need a username or a phone number."), field="username")
        if not new.password:
            raise Invalid(N_("Staff accounts need a password."), field="password")
    elif not (phone or email):
        raise Invalid(N_("A party needs a phone number or email for login codes."), field="phone")
    return NewUser(new.role, name, phone, username, email, new.password, new.court_id)


async def create_user(db: AsyncSession, new: NewUser, actor: Actor) -> User:
    new = _clean(new)
    same_identity = [
        column == value
        for column, value in (
            (User.username, new.username),
            (User.phone, new.phone),
            (User.email, new.email),
        )
        if value
    ]
    clash = await db.scalar(select(User).where(or_(*same_identity)).limit(1))
    if clash is not None:
        raise Conflict(N_("An account with this username, phone or email already exists."))
    user = User(
        role=new.role,
        name=new.name,
        phone=new.phone,
        username=new.username,
        email=new.email,
        password_hash=hash_password(new.password)
        if new.password and new.role.uses_password
        else None,
        court_id=new.court_id,
    )
    db.add(user)
    await db.flush()
    await audit.append(
        db,
        AuditEntry(
            "user.created",
            actor,
            "user",
            user.id,
            details={
                "after": {
                    "role": user.role.value,
                    "name": user.name,
                    "username": user.username,
                    "phone": user.phone,
                }
            },
        ),
    )
    return user


async def list_for_admin(
    db: AsyncSession, court_id: int | None, page: int, per_page: int
) -> Page[User]:
    """The accounts a court admin manages: their court's, and those of no court (parties)."""
    query = select(User).order_by(User.id)
    if court_id is not None:
        query = query.where(or_(User.court_id == court_id, User.court_id.is_(None)))
    return await paginate(db, query, page, per_page)


def user_json(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role.value,
        "username": user.username,
        "phone": user.phone,
        "court_id": user.court_id,
        "active": user.active,
        "totp": bool(user.totp_secret),
    }


async def user_names(db: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    """The names of these users (ids that are None, 0 or unknown are left out)."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    rows = await db.execute(select(User.id, User.name).where(User.id.in_(wanted)))
    return {uid: name for uid, name in rows.tuples()}
