"""Time-based one-time passwords (RFC 6238) for judges and court admins."""

from __future__ import annotations

import pyotp

ISSUER = "Yizhan"


def new_secret() -> str:
    return str(pyotp.random_base32())


def provisioning_uri(secret: str, account: str) -> str:
    return str(pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER))


def verify(secret: str, code: str) -> bool:
    code = code.strip().replace(" ", "")
    return bool(code.isdigit() and pyotp.TOTP(secret).verify(code, valid_window=1))
