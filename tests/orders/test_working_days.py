"""Review deadlines in working days: weekends and configured holidays do not count."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.orders.config import OrdersSettings
from services.orders.working_days import add_working_days, is_working_day

MONDAY = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 1, day, hour, 0, tzinfo=UTC)


@pytest.mark.parametrize(("start", "days", "due"), [
    (MONDAY, 0, MONDAY),
    (MONDAY, 1, at(6)),
    (MONDAY, 3, at(8)),               # Mon → Thu, same time of day
    (MONDAY, 5, at(12)),              # a full week: the weekend is skipped
    (at(9), 1, at(12)),               # Friday + 1 → Monday
    (at(9, 23), 3, at(14, 23)),       # late Friday → Wednesday, same hour
    (at(10), 1, at(12)),              # Saturday + 1 → Monday
    (at(11), 3, at(14)),              # Sunday + 3 → Wednesday
    (MONDAY, 10, at(19)),             # two weeks
])
def test_weekends_are_skipped(start, days, due):
    assert add_working_days(start, days) == due


def test_holidays_are_skipped():
    holidays = {date(2026, 1, 6), date(2026, 1, 7)}
    assert add_working_days(MONDAY, 3, holidays) == at(12)
    # a holiday on a weekend changes nothing
    assert add_working_days(at(9), 1, {date(2026, 1, 10)}) == at(12)


def test_a_run_of_holidays_spanning_a_weekend():
    holidays = {date(2026, 1, d) for d in (8, 9, 12, 13)}
    assert add_working_days(MONDAY, 3, holidays) == at(14)


def test_negative_days_are_refused():
    with pytest.raises(ValueError):
        add_working_days(MONDAY, -1)


def test_is_working_day():
    assert is_working_day(date(2026, 1, 5))
    assert not is_working_day(date(2026, 1, 10)) and not is_working_day(date(2026, 1, 11))
    assert not is_working_day(date(2026, 1, 5), {date(2026, 1, 5)})


class TestSettings:
    def test_defaults(self, monkeypatch):
        for name in ("O2C_HOLIDAYS", "O2C_REVIEW_SLA_WORKING_DAYS", "O2C_REVIEW_DEPARTMENTS"):
            monkeypatch.delenv(name, raising=False)
        settings = OrdersSettings()
        assert settings.review_sla_working_days == 3 and settings.holidays == []
        assert settings.review_departments == ["sales", "production", "technical", "quality", "finance"]

    @pytest.mark.parametrize("raw", ['["2026-01-01", "2026-02-17"]', "2026-01-01, 2026-02-17"])
    def test_holidays_from_the_environment(self, monkeypatch, raw):
        monkeypatch.setenv("O2C_HOLIDAYS", raw)
        monkeypatch.setenv("O2C_REVIEW_SLA_WORKING_DAYS", "5")
        settings = OrdersSettings()
        assert settings.holidays == [date(2026, 1, 1), date(2026, 2, 17)]
        assert settings.review_sla_working_days == 5

    def test_review_departments_from_the_environment(self, monkeypatch):
        monkeypatch.setenv("O2C_REVIEW_DEPARTMENTS", "sales,finance")
        assert OrdersSettings().review_departments == ["sales", "finance"]
        monkeypatch.setenv("O2C_REVIEW_DEPARTMENTS", '["quality"]')
        assert OrdersSettings().review_departments == ["quality"]

    @pytest.mark.parametrize("raw", ["sales,marketing", "[]", "2026-13-01"])
    def test_bad_values_are_refused(self, monkeypatch, raw):
        name = "O2C_HOLIDAYS" if raw.startswith("2026") else "O2C_REVIEW_DEPARTMENTS"
        monkeypatch.setenv(name, raw)
        with pytest.raises(ValueError):
            OrdersSettings()
