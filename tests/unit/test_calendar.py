"""The working-day clock across the 2026 National Day holiday, in Shanghai time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.calendar import WEEKENDS_ONLY, WorkingCalendar, court_date, end_of_day

# The holiday list as a court would configure it for this test: 1-7 October off,
# Sunday 20 September and Saturday 10 October worked instead (调休).
NATIONAL_DAY = WorkingCalendar.of(
    holidays=[date(2026, 10, day) for day in range(1, 8)],
    extra_working_days=[date(2026, 9, 20), date(2026, 10, 10)],
)


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Shanghai wall-clock time, as the UTC instant a caller would pass in."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def day_end(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Shanghai


def test_holidays_are_off_and_make_up_days_are_worked() -> None:
    assert not NATIONAL_DAY.is_working_day(date(2026, 10, 1))  # Thursday, holiday
    assert not NATIONAL_DAY.is_working_day(date(2026, 10, 5))  # Monday, holiday
    assert NATIONAL_DAY.is_working_day(date(2026, 10, 8))  # Thursday
    assert NATIONAL_DAY.is_working_day(date(2026, 10, 10))  # Saturday, make-up day
    assert not NATIONAL_DAY.is_working_day(date(2026, 10, 11))  # Sunday
    assert NATIONAL_DAY.is_working_day(date(2026, 9, 20))  # Sunday, make-up day
    assert not WEEKENDS_ONLY.is_working_day(date(2026, 10, 10))


def test_adding_working_days_skips_the_holiday_and_counts_the_make_up_saturday() -> None:
    wednesday = date(2026, 9, 30)
    assert NATIONAL_DAY.add_working_days(wednesday, 0) == wednesday
    assert NATIONAL_DAY.add_working_days(wednesday, 1) == date(2026, 10, 8)
    assert NATIONAL_DAY.add_working_days(wednesday, 2) == date(2026, 10, 9)
    assert NATIONAL_DAY.add_working_days(wednesday, 3) == date(2026, 10, 10)
    assert NATIONAL_DAY.add_working_days(wednesday, 4) == date(2026, 10, 12)
    assert NATIONAL_DAY.add_working_days(date(2026, 10, 12), -4) == wednesday
    assert NATIONAL_DAY.add_working_days(date(2026, 9, 18), 1) == date(2026, 9, 20)


def test_counting_working_days_between_two_dates() -> None:
    assert NATIONAL_DAY.working_days_between(date(2026, 9, 30), date(2026, 10, 10)) == 3
    assert NATIONAL_DAY.working_days_between(date(2026, 10, 10), date(2026, 9, 30)) == -3
    assert NATIONAL_DAY.working_days_between(date(2026, 10, 1), date(2026, 10, 7)) == 0
    assert WEEKENDS_ONLY.working_days_between(date(2026, 9, 30), date(2026, 10, 10)) == 7


def test_the_court_date_is_the_date_in_shanghai() -> None:
    assert court_date(datetime(2026, 9, 29, 15, 30, tzinfo=UTC)) == date(2026, 9, 29)
    assert court_date(datetime(2026, 9, 29, 16, 30, tzinfo=UTC)) == date(2026, 9, 30)
    assert end_of_day(date(2026, 10, 10)) == day_end(2026, 10, 10)
    with pytest.raises(ValueError):
        court_date(datetime(2026, 9, 29, 12, 0))


def test_a_deadline_counts_from_the_shanghai_date_of_the_filing() -> None:
    # 23:30 on Tuesday 29 September: three working days are 30 Sept, 8 and 9 Oct.
    late_tuesday = shanghai(2026, 9, 29, 23, 30)
    assert NATIONAL_DAY.assignment_due(late_tuesday) == day_end(2026, 10, 9)
    # Half an hour later it is Wednesday in Shanghai (still Tuesday in UTC).
    early_wednesday = shanghai(2026, 9, 30, 0, 0) + timedelta(minutes=30)
    assert early_wednesday.date() == date(2026, 9, 29)
    assert NATIONAL_DAY.assignment_due(early_wednesday) == day_end(2026, 10, 10)


def test_each_time_limit_of_the_workflow() -> None:
    filed = shanghai(2026, 9, 30, 10)
    assert NATIONAL_DAY.assignment_due(filed) == day_end(2026, 10, 10)
    assert NATIONAL_DAY.acceptance_due(filed) == day_end(2026, 10, 10)
    assert NATIONAL_DAY.respondent_contact_due(filed) == day_end(2026, 10, 10)
    assert NATIONAL_DAY.joint_choice_due(filed) == day_end(2026, 10, 9)
    assert WEEKENDS_ONLY.joint_choice_due(filed) == day_end(2026, 10, 2)


def test_the_mediation_period_is_thirty_calendar_days_ending_on_a_working_day() -> None:
    assert NATIONAL_DAY.mediation_period_end(shanghai(2026, 3, 2, 10)) == day_end(2026, 4, 1)
    # 1 September + 30 days is 1 October, a holiday: the period ends on 8 October.
    accepted = shanghai(2026, 9, 1, 10)
    assert NATIONAL_DAY.mediation_period_end(accepted) == day_end(2026, 10, 8)
    assert WEEKENDS_ONLY.mediation_period_end(accepted) == day_end(2026, 10, 1)
    # Extended by consent to 45 days in all: 16 October, a Friday.
    assert NATIONAL_DAY.period_end(accepted, 45) == day_end(2026, 10, 16)


def test_a_countdown_shows_the_working_days_left_and_when_it_is_overdue() -> None:
    due = NATIONAL_DAY.assignment_due(shanghai(2026, 9, 30, 10))  # Saturday 10 October
    before = NATIONAL_DAY.countdown(due, shanghai(2026, 9, 30, 15))
    assert (before.remaining_working_days, before.remaining_days, before.overdue) == (3, 10, False)
    on_the_day = NATIONAL_DAY.countdown(due, shanghai(2026, 10, 10, 23, 59))
    assert (on_the_day.remaining_working_days, on_the_day.overdue) == (0, False)
    sunday = NATIONAL_DAY.countdown(due, shanghai(2026, 10, 11, 1))
    assert (sunday.remaining_working_days, sunday.remaining_days, sunday.overdue) == (0, -1, True)
    monday = NATIONAL_DAY.countdown(due, shanghai(2026, 10, 12, 9))
    assert (monday.remaining_working_days, monday.overdue) == (-1, True)


def test_a_date_cannot_be_both_a_holiday_and_a_working_day() -> None:
    with pytest.raises(ValueError):
        WorkingCalendar.of(holidays=[date(2026, 10, 10)], extra_working_days=[date(2026, 10, 10)])


days = st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31))


@given(days, st.integers(0, 40))
def test_adding_then_counting_working_days_round_trips(start: date, n: int) -> None:
    end = NATIONAL_DAY.add_working_days(start, n)
    assert NATIONAL_DAY.working_days_between(start, end) == n
    assert n == 0 or NATIONAL_DAY.is_working_day(end)
    assert NATIONAL_DAY.add_working_days(end, -n) <= start


@given(days, days)
def test_counting_is_antisymmetric(a: date, b: date) -> None:
    assert NATIONAL_DAY.working_days_between(a, b) == -NATIONAL_DAY.working_days_between(b, a)
