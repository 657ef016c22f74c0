"""Login throttling: count failures per account and per IP; slow down, then lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import LoginThrottle

SLOW_DOWN_AFTER = 3
DELAY_STEP_SECONDS = 0.5
MAX_DELAY_SECONDS = 3.0


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int
    lock_minutes: int
    delay_step: float = DELAY_STEP_SECONDS


def _keys(account: str, ip: str) -> list[tuple[str, str]]:
    keys = [("ip", ip or "-")]
    if account:
        keys.append(("account", account.strip().lower()[:254]))
    return keys


async def locked_until(db: AsyncSession, account: str, ip: str) -> datetime | None:
    now = datetime.now(UTC)
    latest: datetime | None = None
    for scope, key in _keys(account, ip):
        row = await db.scalar(
            select(LoginThrottle).where(LoginThrottle.scope == scope, LoginThrottle.key == key)
        )
        if row and row.locked_until and row.locked_until > now:
            latest = max(latest or row.locked_until, row.locked_until)
    return latest


async def record_failure(
    db: AsyncSession, account: str, ip: str, policy: ThrottlePolicy
) -> tuple[float, bool]:
    """Count one failure; return (seconds to slow down, whether now locked)."""
    now = datetime.now(UTC)
    window = timedelta(minutes=policy.lock_minutes)
    worst = 0
    locked = False
    for scope, key in _keys(account, ip):
        row = await db.scalar(
            select(LoginThrottle).where(LoginThrottle.scope == scope, LoginThrottle.key == key)
        )
        if row is None:
            row = LoginThrottle(scope=scope, key=key, failures=0)
            db.add(row)
        elif row.last_failure_at and now - row.last_failure_at > window:
            row.failures = 0  # old failures no longer count
        row.failures += 1
        row.last_failure_at = now
        if row.failures >= policy.max_failures:
            row.locked_until = now + window
            row.failures = 0
            locked = True
        worst = max(worst, row.failures)
    await db.flush()
    delay = 0.0
    if worst > SLOW_DOWN_AFTER:
        delay = min(MAX_DELAY_SECONDS, policy.delay_step * (worst - SLOW_DOWN_AFTER))
    return delay, locked


async def record_success(db: AsyncSession, account: str) -> None:
    await db.execute(
        delete(LoginThrottle).where(
            LoginThrottle.scope == "account", LoginThrottle.key == account.strip().lower()[:254]
        )
    )
