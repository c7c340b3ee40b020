"""The overdue scan's settings: thresholds from the environment, validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.ledger.config import LedgerSettings


def test_defaults():
    settings = LedgerSettings()
    assert settings.overdue_thresholds_days == [1, 15, 30, 60, 90]
    assert settings.overdue_scan_interval_seconds == 86400
    assert settings.overdue_scan_batch_size == 1000


@pytest.mark.parametrize("raw, expected", [("1,10,45", [1, 10, 45]), ("[3, 7]", [3, 7]),
                                           (" 5 , 20 ", [5, 20])])
def test_thresholds_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("O2C_OVERDUE_THRESHOLDS_DAYS", raw)
    assert LedgerSettings().overdue_thresholds_days == expected


@pytest.mark.parametrize("bad", ["15,1", "0,5", "-1", "5,5", "", "a,b"])
def test_bad_thresholds_are_refused(monkeypatch, bad):
    monkeypatch.setenv("O2C_OVERDUE_THRESHOLDS_DAYS", bad)
    with pytest.raises(ValidationError, match="overdue_thresholds_days"):
        LedgerSettings()


def test_batch_size_and_interval_must_be_positive():
    with pytest.raises(ValidationError):
        LedgerSettings(overdue_scan_batch_size=0)
    with pytest.raises(ValidationError):
        LedgerSettings(overdue_scan_interval_seconds=0)
