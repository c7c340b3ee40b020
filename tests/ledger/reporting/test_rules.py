"""Focused unit tests of the report rules: bucket names, report dates, grades."""

from __future__ import annotations

from datetime import date

import pytest

from services.ledger.config import GradeRule, LedgerSettings
from services.ledger.reporting.service import Period, bucket_names, check_as_of, grade, period
from shared.errors import ValidationFailed

RULES = LedgerSettings().performance_grades
TODAY = date(2026, 3, 10)


def test_bucket_names_follow_the_bounds():
    assert bucket_names([30, 60, 90, 180]) == ["current", "1-30", "31-60", "61-90", "91-180", "180+"]
    assert bucket_names([7]) == ["current", "1-7", "7+"]


def test_bucket_bounds_must_increase():
    with pytest.raises(ValueError, match="strictly increasing"):
        LedgerSettings(aging_bucket_days=[30, 30])
    with pytest.raises(ValueError, match="strictly increasing"):
        LedgerSettings(aging_bucket_days=[0, 30])


def test_report_dates():
    assert check_as_of(TODAY, TODAY) == TODAY
    with pytest.raises(ValidationFailed) as refused:
        check_as_of(date(2026, 3, 11), TODAY)
    assert refused.value.errors == [{"field": "query.as_of", "message": "must not be after 2026-03-10"}]
    assert period(None, None, TODAY) == Period(date(2026, 2, 9), TODAY)  # the last 30 days
    with pytest.raises(ValidationFailed):
        period(date(2026, 3, 5), date(2026, 3, 4), TODAY)


def test_a_period_ending_after_today_runs_to_today_and_says_so():
    month = period(date(2026, 3, 1), date(2026, 3, 31), TODAY)
    assert month == Period(date(2026, 3, 1), TODAY, requested_to=date(2026, 3, 31))
    assert period(None, date(2026, 4, 30), TODAY) == Period(date(2026, 2, 9), TODAY,
                                                            requested_to=date(2026, 4, 30))
    assert period(date(2026, 3, 1), TODAY, TODAY).requested_to is None
    with pytest.raises(ValidationFailed) as refused:
        period(date(2026, 3, 11), date(2026, 3, 31), TODAY)
    assert refused.value.errors == [{"field": "query.from", "message": "must not be after 2026-03-10"}]


@pytest.mark.parametrize(("rate", "share", "expected"), [
    (1.0, 0.0, "A"), (0.95, 0.05, "A"), (0.96, 0.06, "B"), (0.85, 0.15, "B"),
    (0.80, 0.10, "C"), (0.70, 0.30, "C"), (0.69, 0.0, "D"), (0.99, 0.5, "D"), (None, 0.0, None)])
def test_default_grades(rate, share, expected):
    assert grade(RULES, rate, share) == expected


def test_no_rule_met_gives_the_last_grade():
    rules = [GradeRule(grade="X", min_collection_rate=0.9, max_overdue_share=0.1),
             GradeRule(grade="Y", min_collection_rate=0.5, max_overdue_share=0.2)]
    assert grade(rules, 0.1, 0.9) == "Y"
