"""The court's clock: working days, statutory periods and countdowns.

Dates are court dates in Asia/Shanghai.  Inputs are aware datetimes (any zone,
normally UTC); a deadline is the end of its due day, 23:59:59 in Shanghai,
returned as an aware UTC datetime.

Working days are Monday to Friday, less the configured public holidays, plus the
configured make-up working days (调休: a Saturday or Sunday worked in exchange
for a longer holiday).  Both lists come from the court's configuration, since
the State Council publishes them a year at a time.

Counting follows the 民事诉讼法 rule on periods (期间): the day on which a period
starts is not counted, and a period whose last day is a holiday ends on the next
working day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

COURT_ZONE = ZoneInfo("Asia/Shanghai")
END_OF_DAY = time(23, 59, 59)

# 人民法院在线调解规则 Arts. 10, 12, 15 and the court's joint-choice window.
ASSIGNMENT_WORKING_DAYS = 3
ACCEPTANCE_WORKING_DAYS = 3
RESPONDENT_CONTACT_WORKING_DAYS = 3
JOINT_CHOICE_WORKING_DAYS = 2
# 人民法院在线调解规则 Art. 24: thirty days for mediation before filing.
MEDIATION_PERIOD_DAYS = 30


def require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime has no place on the court's clock")


def court_date(moment: datetime) -> date:
    """The date in Shanghai at this moment."""
    require_aware(moment)
    return moment.astimezone(COURT_ZONE).date()


def end_of_day(day: date) -> datetime:
    """23:59:59 in Shanghai on this day, as an aware UTC datetime."""
    return datetime.combine(day, END_OF_DAY, tzinfo=COURT_ZONE).astimezone(UTC)


@dataclass(frozen=True)
class WorkingCalendar:
    """Weekends off, less ``holidays``, plus ``extra_working_days`` (调休)."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    extra_working_days: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls, holidays: Iterable[date] = (), extra_working_days: Iterable[date] = ()
    ) -> WorkingCalendar:
        off, on = frozenset(holidays), frozenset(extra_working_days)
        both = off & on
        if both:
            raise ValueError(f"dates both off and worked: {sorted(both)}")
        return cls(off, on)

    def is_working_day(self, day: date) -> bool:
        if day in self.extra_working_days:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start`` (``start`` itself not counted).

        ``n == 0`` gives ``start``; a negative ``n`` counts backwards.
        """
        step = 1 if n >= 0 else -1
        day, left = start, abs(n)
        while left:
            day += timedelta(days=step)
            if self.is_working_day(day):
                left -= 1
        return day

    def working_days_between(self, a: date, b: date) -> int:
        """Working days in (a, b]; negative, counting (b, a], when b is before a."""
        if b < a:
            return -self.working_days_between(b, a)
        return sum(1 for k in range(1, (b - a).days + 1) if self.is_working_day(a + timedelta(k)))

    def next_working_day(self, day: date) -> date:
        """``day`` itself when it is a working day, else the first one after it."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    # deadlines -----------------------------------------------------------------

    def due_after_working_days(self, start: datetime, n: int) -> datetime:
        """End of the ``n``-th working day after the court date of ``start``."""
        return end_of_day(self.add_working_days(court_date(start), n))

    def period_end(self, start: datetime, days: int) -> datetime:
        """End of a period of ``days`` calendar days starting at ``start``.

        The start day is not counted; a last day that is not a working day moves to
        the next working day (民事诉讼法, 期间).
        """
        if days < 0:
            raise ValueError("a period cannot be negative")
        return end_of_day(self.next_working_day(court_date(start) + timedelta(days=days)))

    def assignment_due(self, submitted_at: datetime) -> datetime:
        """The court assigns a mediator within 3 working days (调解规则 Art. 10)."""
        return self.due_after_working_days(submitted_at, ASSIGNMENT_WORKING_DAYS)

    def acceptance_due(self, assigned_at: datetime) -> datetime:
        """The mediator accepts or declines within 3 working days (调解规则 Art. 12)."""
        return self.due_after_working_days(assigned_at, ACCEPTANCE_WORKING_DAYS)

    def respondent_contact_due(self, asked_at: datetime) -> datetime:
        """The respondent is asked for consent within 3 working days (调解规则 Art. 15)."""
        return self.due_after_working_days(asked_at, RESPONDENT_CONTACT_WORKING_DAYS)

    def joint_choice_due(self, opened_at: datetime) -> datetime:
        """The parties may choose a mediator together within 2 working days."""
        return self.due_after_working_days(opened_at, JOINT_CHOICE_WORKING_DAYS)

    def mediation_period_end(
        self, accepted_at: datetime, days: int = MEDIATION_PERIOD_DAYS
    ) -> datetime:
        """Thirty calendar days from the mediator's acceptance (调解规则 Art. 24)."""
        return self.period_end(accepted_at, days)

    # countdowns ----------------------------------------------------------------

    def countdown(self, due: datetime, now: datetime) -> Countdown:
        today, due_day = court_date(now), court_date(due)
        require_aware(due)
        return Countdown(
            due=due,
            remaining_working_days=self.working_days_between(today, due_day),
            remaining_days=(due_day - today).days,
            overdue=now > due,
        )


@dataclass(frozen=True)
class Countdown:
    """How long is left until ``due``, seen from one moment.

    ``remaining_working_days`` counts working days after today up to the due day
    (0: due today, or only non-working days are left; negative: that many working
    days late); ``remaining_days`` counts calendar days the same way.
    """

    due: datetime
    remaining_working_days: int
    remaining_days: int
    overdue: bool


WEEKENDS_ONLY = WorkingCalendar()
