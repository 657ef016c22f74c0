"""Object keys: generated, unguessable, and checked before any backend sees them."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_KEY = 512


class UnsafeKey(ValueError):
    """A key that could escape the store or confuse a backend."""


def check_key(key: str) -> str:
    """Accept only relative keys of safe segments: no ``..``, no absolute paths, no NUL."""
    if not key or len(key) > MAX_KEY:
        raise UnsafeKey("the key is empty or too long")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise UnsafeKey("the key must be a relative path of plain segments")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not SEGMENT.match(segment):
            raise UnsafeKey(f"unsafe key segment {segment!r}")
    return key


def new_key(kind: str, dispute_id: int | None, extension: str = "") -> str:
    """``evidence/2026/11/d42/<128 random bits>.pdf``: nothing in it can be guessed."""
    now = datetime.now(UTC)
    owner = f"d{dispute_id}" if dispute_id is not None else "platform"
    suffix = f".{extension.lstrip('.')}" if extension else ""
    return check_key(f"{kind}/{now:%Y}/{now:%m}/{owner}/{secrets.token_hex(16)}{suffix}")
