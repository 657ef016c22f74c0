"""One-time codes for party login and identity re-verification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.tokens import keyed_digest, new_code, same
from server.db.models import OneTimeCode, User

MAX_ATTEMPTS = 5


class CodePurpose(StrEnum):
    LOGIN = "login"
    REVERIFY = "reverify"


class CodeResult(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"  # none outstanding, expired or used up


async def issue(
    db: AsyncSession, user: User, purpose: CodePurpose, *, key: str, minutes: int
) -> str:
    """Create a fresh code (earlier ones of the same purpose stop working)."""
    now = datetime.now(UTC)
    await db.execute(
        update(OneTimeCode)
        .where(
            OneTimeCode.user_id == user.id,
            OneTimeCode.purpose == purpose.value,
            OneTimeCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    code = new_code()
    db.add(
        OneTimeCode(
            user_id=user.id,
            purpose=purpose.value,
            code_hash=keyed_digest(key, f"{user.id}:{purpose.value}:{code}"),
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
    )
    await db.flush()
    return code


async def check(
    db: AsyncSession, user: User, purpose: CodePurpose, code: str, *, key: str
) -> CodeResult:
    """Check ``code``; a right code is used up, a wrong one counts an attempt."""
    now = datetime.now(UTC)
    row = await db.scalar(
        select(OneTimeCode)
        .where(
            OneTimeCode.user_id == user.id,
            OneTimeCode.purpose == purpose.value,
            OneTimeCode.used_at.is_(None),
        )
        .order_by(OneTimeCode.id.desc())
        .limit(1)
    )
    if row is None or row.expires_at <= now or row.attempts >= MAX_ATTEMPTS:
        return CodeResult.EXPIRED
    expected = keyed_digest(key, f"{user.id}:{purpose.value}:{code.strip()}")
    if not same(expected, row.code_hash):
        row.attempts += 1
        if row.attempts >= MAX_ATTEMPTS:
            row.used_at = now
        return CodeResult.WRONG
    row.used_at = now
    return CodeResult.OK
