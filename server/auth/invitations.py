"""Signed invitation links: a party joins without a password, for one dispute."""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from server.domain.errors import N_, Gone, Invalid

SALT = "yizhan.invitation.v1"


@dataclass(frozen=True)
class Invitation:
    user_id: int
    dispute_id: int | None = None
    session_id: int | None = None


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT)


def sign(secret: str, invitation: Invitation) -> str:
    return _serializer(secret).dumps(
        {"u": invitation.user_id, "d": invitation.dispute_id, "s": invitation.session_id}
    )


def read(secret: str, token: str, *, max_age_days: int) -> Invitation:
    try:
        data = _serializer(secret).loads(token, max_age=max_age_days * 86400)
    except SignatureExpired:
        raise Gone(N_("This invitation link has expired. Ask the court for a new one.")).audited(
            "invitation.expired"
        ) from None
    except BadSignature:
        raise Invalid(N_("This invitation link is not valid: it may have been altered.")).audited(
            "invitation.tampered"
        ) from None
    try:
        return Invitation(
            user_id=int(data["u"]), dispute_id=data.get("d"), session_id=data.get("s")
        )
    except (KeyError, TypeError, ValueError):
        raise Invalid(N_("This invitation link is not valid: it may have been altered.")).audited(
            "invitation.tampered"
        ) from None
