"""Logging in: password (+TOTP) for staff, one-time code or invitation for parties.

Failures are returned as results, not raised, so that the failure count and the
audit row are committed with the response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.audit import Actor, AuditEntry
from server.auth import codes, invitations, sessions, throttle, totp
from server.auth.passwords import verify_password
from server.auth.principal import Principal
from server.config import Settings
from server.db.models import User
from server.domain.errors import N_
from server.notify import Channel, Message

TOTP_TICKET_SALT = "yizhan.totp-ticket.v1"
TOTP_TICKET_SECONDS = 300


@dataclass(frozen=True)
class Client:
    ip: str
    user_agent: str


@dataclass
class LoginResult:
    ok: bool
    user: User | None = None
    token: str | None = None  # the session cookie, when a session was opened
    totp_ticket: str | None = None  # password right, TOTP still needed
    message: str = ""
    status: int = 200
    delay: float = 0.0
    params: dict[str, object] = field(default_factory=dict)


def normalise_account(account: str) -> str:
    return account.strip().replace(" ", "").replace("-", "").lower()


async def find_account(db: AsyncSession, account: str) -> User | None:
    key = normalise_account(account)
    if not key:
        return None
    user: User | None = await db.scalar(
        select(User).where(or_(User.username == key, User.phone == key, User.email == key))
    )
    return user


def _policy(settings: Settings) -> throttle.ThrottlePolicy:
    return throttle.ThrottlePolicy(
        settings.login_max_failures, settings.login_lock_minutes, settings.login_slowdown_seconds
    )


def _actor(user: User | None, client: Client) -> Actor:
    if user is None:
        return Actor(role="anonymous", ip=client.ip)
    return Actor(id=user.id, role=user.role.value, name=user.name, ip=client.ip)


async def _locked(db: AsyncSession, account: str, client: Client) -> LoginResult | None:
    until = await throttle.locked_until(db, normalise_account(account), client.ip)
    if until is None:
        return None
    await audit.append(
        db,
        AuditEntry(
            "login.locked",
            _actor(None, client),
            "account",
            "",
            outcome="denied",
            details={"account": normalise_account(account)},
        ),
    )
    minutes = max(1, int((until - datetime.now(UTC)).total_seconds() // 60) + 1)
    return LoginResult(
        False,
        message=N_("Too many failed attempts. Try again in %(minutes)s minutes."),
        status=429,
        params={"minutes": minutes},
    )


async def _failed(
    db: AsyncSession,
    settings: Settings,
    account: str,
    client: Client,
    user: User | None,
    action: str,
    message: str,
) -> LoginResult:
    delay, locked = await throttle.record_failure(
        db, normalise_account(account), client.ip, _policy(settings)
    )
    await audit.append(
        db,
        AuditEntry(
            action,
            _actor(user, client),
            "user",
            user.id if user else "",
            outcome="failed",
            details={"account": normalise_account(account), "locked": locked},
        ),
    )
    return LoginResult(False, message=message, status=401, delay=delay)


async def _open(
    db: AsyncSession,
    settings: Settings,
    user: User,
    method: str,
    client: Client,
    account: str = "",
    dispute_id: int | None = None,
) -> LoginResult:
    if account:
        await throttle.record_success(db, normalise_account(account))
    token = await sessions.start(
        db,
        user,
        method=method,
        hours=settings.session_hours,
        ip=client.ip,
        user_agent=client.user_agent,
    )
    await audit.append(
        db,
        AuditEntry(
            "login.succeeded",
            _actor(user, client),
            "user",
            user.id,
            dispute_id=dispute_id,
            details={"method": method},
        ),
    )
    return LoginResult(True, user=user, token=token)


def _ticket_serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret(), salt=TOTP_TICKET_SALT)


async def with_password(
    db: AsyncSession, settings: Settings, account: str, password: str, client: Client
) -> LoginResult:
    if locked := await _locked(db, account, client):
        return locked
    user = await find_account(db, account)
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active or not user.role.uses_password:
        return await _failed(
            db,
            settings,
            account,
            client,
            user,
            "login.failed",
            N_("Wrong account or password."),
        )
    if user.totp_secret:
        ticket = _ticket_serializer(settings).dumps({"u": user.id, "a": normalise_account(account)})
        return LoginResult(False, user=user, totp_ticket=ticket, status=200)
    return await _open(db, settings, user, "password", client, account)


async def with_totp(
    db: AsyncSession, settings: Settings, ticket: str, code: str, client: Client
) -> LoginResult:
    try:
        data = _ticket_serializer(settings).loads(ticket, max_age=TOTP_TICKET_SECONDS)
    except BadSignature:
        return LoginResult(
            False, message=N_("The login step has expired. Log in again."), status=401
        )
    account = str(data.get("a", ""))
    if locked := await _locked(db, account, client):
        return locked
    user = await db.get(User, int(data["u"]))
    if (
        user is None
        or not user.active
        or not user.totp_secret
        or not totp.verify(user.totp_secret, code)
    ):
        result = await _failed(
            db,
            settings,
            account,
            client,
            user,
            "login.totp_failed",
            N_("The authenticator code is wrong."),
        )
        result.totp_ticket = ticket
        return result
    return await _open(db, settings, user, "password", client, account)


async def send_code(
    db: AsyncSession,
    settings: Settings,
    channel: Channel,
    account: str,
    client: Client,
    purpose: codes.CodePurpose = codes.CodePurpose.LOGIN,
    user: User | None = None,
) -> None:
    """Send a one-time code.  Unknown accounts get the same answer (no enumeration)."""
    user = user or await find_account(db, account)
    if (
        user is None
        or not user.active
        or (purpose is codes.CodePurpose.LOGIN and user.role.uses_password)
    ):
        await audit.append(
            db,
            AuditEntry(
                "code.unknown_account",
                _actor(None, client),
                outcome="failed",
                details={"account": normalise_account(account), "purpose": purpose.value},
            ),
        )
        return
    code = await codes.issue(
        db, user, purpose, key=settings.secret(), minutes=settings.code_minutes
    )
    destination = user.phone or user.email or ""
    await channel.send(
        db,
        Message(
            destination=destination,
            subject="一站 Yizhan verification code",
            body=f"【一站】验证码 {code}，{settings.code_minutes} 分钟内有效，请勿告诉他人。"
            f" Your Yizhan code is {code}, valid for {settings.code_minutes} minutes.",
            user_id=user.id,
        ),
    )
    await audit.append(
        db,
        AuditEntry(
            "code.sent",
            _actor(user, client),
            "user",
            user.id,
            details={"purpose": purpose.value, "channel": channel.name},
        ),
    )


async def with_code(
    db: AsyncSession, settings: Settings, account: str, code: str, client: Client
) -> LoginResult:
    if locked := await _locked(db, account, client):
        return locked
    user = await find_account(db, account)
    if user is None or not user.active or user.role.uses_password:
        return await _failed(
            db,
            settings,
            account,
            client,
            None,
            "login.code_failed",
            N_("The code is wrong or has expired."),
        )
    result = await codes.check(db, user, codes.CodePurpose.LOGIN, code, key=settings.secret())
    if result is not codes.CodeResult.OK:
        message = (
            N_("The code has expired. Ask for a new one.")
            if result is codes.CodeResult.EXPIRED
            else N_("The code is wrong or has expired.")
        )
        return await _failed(db, settings, account, client, user, "login.code_failed", message)
    return await _open(db, settings, user, "code", client, account)


async def with_invitation(
    db: AsyncSession, settings: Settings, token: str, client: Client
) -> tuple[LoginResult, invitations.Invitation]:
    """Raises an audited error for a tampered or expired link."""
    invitation = invitations.read(settings.secret(), token, max_age_days=settings.invitation_days)
    user = await db.get(User, invitation.user_id)
    if user is None or not user.active:
        return LoginResult(
            False, message=N_("This invitation is no longer valid."), status=410
        ), invitation
    result = await _open(db, settings, user, "invitation", client, dispute_id=invitation.dispute_id)
    return result, invitation


async def logout(db: AsyncSession, principal: Principal) -> None:
    await sessions.end(db, principal.session_id)
    await audit.append(db, AuditEntry("logout", principal.actor(), "user", principal.user_id))


async def reverify(
    db: AsyncSession, settings: Settings, principal: Principal, code: str
) -> LoginResult:
    """Check a fresh code for a sensitive step (signing, joining a hearing)."""
    user = await db.get(User, principal.user_id)
    assert user is not None
    client = Client(principal.ip, "")
    if locked := await _locked(db, user.phone or user.email or str(user.id), client):
        return locked
    result = await codes.check(db, user, codes.CodePurpose.REVERIFY, code, key=settings.secret())
    if result is not codes.CodeResult.OK:
        return await _failed(
            db,
            settings,
            user.phone or user.email or str(user.id),
            client,
            user,
            "reverify.failed",
            N_("The code is wrong or has expired."),
        )
    await sessions.mark_reverified(db, principal.session_id)
    await audit.append(db, AuditEntry("reverify.succeeded", principal.actor(), "user", user.id))
    return LoginResult(True, user=user)


async def send_reverification(
    db: AsyncSession, settings: Settings, channel: Channel, principal: Principal
) -> None:
    user = await db.get(User, principal.user_id)
    await send_code(
        db, settings, channel, "", Client(principal.ip, ""), codes.CodePurpose.REVERIFY, user=user
    )
