"""Login sessions: created at login, looked up per request, deleted at logout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Principal
from server.auth.tokens import digest, new_token
from server.db.models import LoginSession, User


async def start(
    db: AsyncSession, user: User, *, method: str, hours: int, ip: str, user_agent: str
) -> str:
    """Open a session for ``user``; return the cookie token (only its digest is stored)."""
    token = new_token()
    now = datetime.now(UTC)
    db.add(
        LoginSession(
            token_hash=digest(token),
            user_id=user.id,
            method=method,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
            # a code or invitation login has just proven control of the phone/email
            reverified_at=now if method == "code" else None,
            ip=ip,
            user_agent=user_agent[:400],
        )
    )
    await db.flush()
    return token


async def resolve(db: AsyncSession, token: str | None, *, ip: str) -> Principal | None:
    if not token:
        return None
    row = (
        await db.execute(
            select(LoginSession, User)
            .join(User, User.id == LoginSession.user_id)
            .where(LoginSession.token_hash == digest(token))
        )
    ).first()
    if row is None:
        return None
    login, user = row
    if login.expires_at <= datetime.now(UTC) or not user.active:
        return None
    return Principal(
        user_id=user.id,
        role=user.role,
        name=user.name,
        court_id=user.court_id,
        session_id=login.id,
        method=login.method,
        reverified_at=login.reverified_at,
        ip=ip,
    )


async def end(db: AsyncSession, session_id: int) -> None:
    await db.execute(delete(LoginSession).where(LoginSession.id == session_id))


async def end_all_for(db: AsyncSession, user_id: int) -> None:
    await db.execute(delete(LoginSession).where(LoginSession.user_id == user_id))


async def mark_reverified(db: AsyncSession, session_id: int) -> datetime:
    login = await db.get(LoginSession, session_id)
    now = datetime.now(UTC)
    if login is not None:
        login.reverified_at = now
    return now


async def purge_expired(db: AsyncSession) -> int:
    result = await db.execute(
        delete(LoginSession).where(LoginSession.expires_at <= datetime.now(UTC))
    )
    return int(getattr(result, "rowcount", 0) or 0)
