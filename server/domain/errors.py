"""Domain errors.  Each carries an English message id that the adapters translate.

Transport adapters map the class to a status (HTTP) or an error event (socket.io);
``security`` marks errors that must leave an audit row even though the unit of
work that raised them is rolled back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


class DomainError(Exception):
    code = "error"
    security = False

    def __init__(self, message: str, /, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params
        self.audit_action: str | None = None
        self.audit_details: dict[str, Any] = {}
        self.dispute_id: int | None = None

    def localised_params(self, translate: Callable[[str], str]) -> dict[str, Any]:
        """The parameters for the message, translated where they are message ids."""
        return dict(self.params)

    def audited(self, action: str, *, dispute_id: int | None = None, **details: Any) -> DomainError:
        self.security = True
        self.audit_action = action
        self.dispute_id = dispute_id
        self.audit_details = details
        return self


class Invalid(DomainError):
    code = "invalid"

    def __init__(self, message: str, /, *, field: str | None = None, **params: Any) -> None:
        if field is not None:
            params.setdefault("field", field)
        super().__init__(message, **params)
        self.field = field


class Unauthenticated(DomainError):
    code = "unauthenticated"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Gone(DomainError):
    code = "gone"


class TooManyAttempts(DomainError):
    code = "too_many_attempts"


class ReverificationRequired(DomainError):
    code = "reverification_required"


class InternalError(DomainError):
    """Something failed that the caller could not have caused."""

    code = "internal"


class Unavailable(DomainError):
    """A service the request needs is down for now; trying again later may work."""

    code = "unavailable"
