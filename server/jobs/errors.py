"""What a job handler raises when it cannot finish.

Any other exception fails the job at once with a generic message for users and the
details for staff.  :class:`RetryableError` says that the trouble may pass (a store or
database that is down for a moment): the job waits, with back-off, and runs again until
its attempts are used up.  :class:`JobFailed` fails it for good with a message (a msgid)
that users may read.
"""

from __future__ import annotations

from server.domain.errors import N_

GENERIC_FAILURE = N_("This task failed. The court's staff can see why; try again later.")


class RetryableError(Exception):
    """A failure that may pass: run the job again later (``delay`` seconds, or back-off)."""

    def __init__(self, detail: str, *, delay: float | None = None) -> None:
        super().__init__(detail)
        self.delay = delay


class JobFailed(Exception):
    """A failure that will not pass by trying again, with a message users may read."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(detail or message)
        self.message = message  # a msgid
