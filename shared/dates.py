"""Dates and timestamps as requests carry them: ISO 8601 strings within a business range.

Every date and timestamp of a request body or query string is one of these types, so one
place decides what a date is:

- `BusinessDate`: `YYYY-MM-DD`, a string (not a number, not a unix timestamp, not a
  timestamp), from `MIN_DATE` to `MAX_DATE`.
- `AwareTimestamp`: an ISO 8601 date and time with its offset (`Z` or `±HH:MM`), e.g.
  `2026-01-08T10:30:00+08:00`; the instant, converted to UTC, is within the range.
- `Timestamp`: the same with the offset optional (a timestamp without one is read as UTC),
  for the fields that always took one without.

The range is 1900-01-01 to 2999-12-31 (UTC for timestamps): wide enough for any business
date (a company's founding, a guarantee running for decades), narrow enough that the
arithmetic o2c does on a date — days before or after it, up to `MAX_SPAN_DAYS` (a century),
the UTC instant of an offset, the end of a day — stays far inside what Python's `date` and
`datetime` hold (years 1 to 9999). A date outside it is a 422 naming the field, never an
`OverflowError` (a 500) somewhere later. JSON bodies and query strings are read alike: a
query value is always a string, and a body value must be one too.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError

MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2999, 12, 31)
# The longest span in days o2c adds to or subtracts from a date (settings included: aging
# buckets, overdue thresholds). MIN_DATE - MAX_SPAN_DAYS and MAX_DATE + MAX_SPAN_DAYS (plus a
# day for a timezone) are still years inside 1..9999.
MAX_SPAN_DAYS = 36_500

_MIN_INSTANT = datetime.combine(MIN_DATE, time.min, tzinfo=UTC)
_MAX_INSTANT = datetime.combine(MAX_DATE, time.max, tzinfo=UTC)
_DATE_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A date, `T` (or a space), hours and minutes; pydantic reads the rest (seconds, fraction,
# offset) and says what is wrong with it.
_TIMESTAMP_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")
_RANGE = {"min": MIN_DATE.isoformat(), "max": MAX_DATE.isoformat()}


def _date_shape(value: Any) -> Any:
    """Only `YYYY-MM-DD` (or a `date` built in Python): no numbers, no timestamps."""
    if isinstance(value, str) and _DATE_SHAPE.fullmatch(value):
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise PydanticCustomError("date_format", "Input should be a date as a YYYY-MM-DD string")


def _timestamp_shape(value: Any) -> Any:
    """Only an ISO 8601 date and time (or a `datetime` built in Python): no unix timestamps."""
    if isinstance(value, str) and _TIMESTAMP_SHAPE.match(value):
        return value
    if isinstance(value, datetime):
        return value
    raise PydanticCustomError(
        "datetime_format", "Input should be an ISO 8601 date and time string, e.g. "
                           "2026-01-05T09:00:00Z")


def _date_in_range(value: date) -> date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise PydanticCustomError("date_range", "Input should be a date from {min} to {max}",
                                  _RANGE)
    return value


def _instant_in_range(value: datetime) -> datetime:
    """The instant in UTC is within the range; the value keeps the offset it was given."""
    # The wall-clock date first: converting 9999-12-31T23:59:59-14:00 to UTC itself overflows.
    if MIN_DATE <= value.date() <= MAX_DATE:
        instant = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if _MIN_INSTANT <= instant <= _MAX_INSTANT:
            return value
    raise PydanticCustomError(
        "datetime_range", "Input should be a time from {min}T00:00:00Z to {max}T23:59:59Z "
                          "(in UTC)", _RANGE)


BusinessDate = Annotated[date, BeforeValidator(_date_shape), AfterValidator(_date_in_range)]
AwareTimestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp_shape),
                           AfterValidator(_instant_in_range)]
Timestamp = Annotated[datetime, BeforeValidator(_timestamp_shape),
                      AfterValidator(_instant_in_range)]
