"""Documents the platform issues as final (rulings, service certificates): certified
with the platform's key, so that any later change shows (PAdES, DocMDP no changes)."""

from __future__ import annotations

from server.config import Settings
from server.signing import keys, pades

PLATFORM_FIELD = "yizhan-platform"
PLATFORM_REASON = "一站平台签发 / issued by Yizhan"


def certify(
    settings: Settings,
    data: bytes,
    *,
    field: str = PLATFORM_FIELD,
    reason: str = PLATFORM_REASON,
    location: str = "Yizhan",
) -> bytes:
    """``data`` with the platform's certification signature (CPU work: call it in a thread)."""
    return pades.sign_pdf(
        data,
        field=field,
        reason=reason,
        location=location,
        signer=pades.signer_for(keys.platform_key(settings)),
        certify=True,
    )
