"""Password hashing with Argon2id."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.domain.errors import N_, Invalid

_hasher = PasswordHasher()
# verified against when the account does not exist, so both paths cost the same
_DUMMY_HASH = _hasher.hash("not-a-real-password")
MIN_LENGTH = 8


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise Invalid(
            N_("The password must have at least %(min)s characters."),
            field="password",
            min=MIN_LENGTH,
        )
    if password.isdigit() or password.isalpha():
        raise Invalid(N_("The password must mix letters with digits or symbols."), field="password")


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False
