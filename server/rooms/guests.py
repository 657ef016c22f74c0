"""Signed links for a session's guests: witnesses, interpreters and observers without
an account.  The token names the guest row; revoking the row ends the link."""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from server.audit import Actor
from server.domain.errors import N_, Gone, Invalid

SALT = "yizhan.session-guest.v1"
GUEST_ROLES = ("witness", "interpreter", "observer")


@dataclass(frozen=True)
class GuestPass:
    """A connected guest: who they are, for which session only."""

    guest_id: int
    session_id: int
    dispute_id: int
    name: str
    role: str
    ip: str = ""

    @property
    def identity(self) -> str:
        return f"guest:{self.guest_id}"

    def actor(self) -> Actor:
        return Actor(id=None, role=f"guest:{self.role}", name=self.name, ip=self.ip)


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT)


def sign(secret: str, guest_id: int, session_id: int) -> str:
    return _serializer(secret).dumps({"g": guest_id, "s": session_id})


def read(secret: str, token: str, *, max_age_days: int) -> tuple[int, int]:
    """(guest id, session id) of a valid token; an audited error otherwise."""
    try:
        data = _serializer(secret).loads(token, max_age=max_age_days * 86400)
        return int(data["g"]), int(data["s"])
    except SignatureExpired:
        raise Gone(N_("This invitation link has expired. Ask the court for a new one.")).audited(
            "invitation.expired"
        ) from None
    except (BadSignature, KeyError, TypeError, ValueError):
        raise Invalid(N_("This invitation link is not valid: it may have been altered.")).audited(
            "invitation.tampered"
        ) from None
