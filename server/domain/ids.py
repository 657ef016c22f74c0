"""Row identifiers as they arrive from outside (URLs, socket payloads)."""

from __future__ import annotations

from server.domain.errors import N_, Invalid

MAX_ID = 2**31 - 1  # the widest integer key column on every backend


def parse_id(value: object, field: str = "id") -> int:
    """A positive integer id within the columns' range; anything else is Invalid."""
    if isinstance(value, bool):
        raise Invalid(N_("This field is not valid: %(field)s."), field=field)
    if isinstance(value, str) and value.isdigit() and len(value) <= 10:
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise Invalid(N_("This field is not valid: %(field)s."), field=field)
    return value
