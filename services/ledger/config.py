import json
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from shared.dates import MAX_SPAN_DAYS
from shared.settings import BaseServiceSettings


def _positive_increasing(days: list[int]) -> bool:
    """At least one day count, all ≥ 1, each larger than the one before, the last at most
    MAX_SPAN_DAYS (a century: a report or scan date minus it stays a date)."""
    return (bool(days) and days[0] >= 1 and days[-1] <= MAX_SPAN_DAYS
            and all(a < b for a, b in zip(days, days[1:], strict=False)))


class GradeRule(BaseModel):
    """A salesperson earns `grade` with collection rate ≥ min and overdue share ≤ max."""

    grade: str
    min_collection_rate: float = Field(ge=0, le=1)
    max_overdue_share: float = Field(ge=0, le=1)


class LedgerSettings(BaseServiceSettings):
    service_name: ClassVar[str] = "ledger"
    ledger_database_url: str | None = None

    # Reports. Aging buckets: upper bounds in days overdue, strictly increasing; [30, 60, 90,
    # 180] gives current, 1-30, 31-60, 61-90, 91-180, 180+ (O2C_AGING_BUCKET_DAYS='[30,60]').
    aging_bucket_days: list[int] = Field(default_factory=lambda: [30, 60, 90, 180])
    # Salesperson grades: the first rule met wins; a salesperson meeting none gets the last
    # grade below (O2C_PERFORMANCE_GRADES='[{"grade": "A", "min_collection_rate": 0.9, ...}]').
    performance_grades: list[GradeRule] = Field(default_factory=lambda: [
        GradeRule(grade="A", min_collection_rate=0.95, max_overdue_share=0.05),
        GradeRule(grade="B", min_collection_rate=0.85, max_overdue_share=0.15),
        GradeRule(grade="C", min_collection_rate=0.70, max_overdue_share=0.30),
        GradeRule(grade="D", min_collection_rate=0.0, max_overdue_share=1.0)])

    @field_validator("aging_bucket_days")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if not _positive_increasing(value):
            raise ValueError("aging_bucket_days must be positive, strictly increasing and at most "
                             f"{MAX_SPAN_DAYS}")
        return value

    # Imports of open items (POST /v1/invoice-imports): at most this many rows, in a body of at
    # most this many bytes (that route alone; the others keep O2C_MAX_BODY_BYTES).
    import_max_rows: int = Field(default=50_000, ge=1, le=200_000)
    import_max_body_bytes: int = Field(default=16 * 1_048_576, ge=1024)

    # Refunds of unapplied cash above this amount (minor units, any currency) need a second
    # finance principal's approval; up to it they are posted at once.
    refund_approval_above_minor: int = Field(default=1_000_000, ge=0)

    # Overdue scan (collection work): `invoice.overdue` once per level crossed, in days past
    # due (O2C_OVERDUE_THRESHOLDS_DAYS='1,15,30,60,90' or a JSON list); run every interval
    # as of today, and in batches of this many invoices (each batch its own transaction).
    overdue_thresholds_days: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [1, 15, 30, 60, 90])
    overdue_scan_interval_seconds: float = Field(default=86400.0, gt=0)
    overdue_scan_batch_size: int = Field(default=1000, ge=1, le=10000)

    @field_validator("overdue_thresholds_days", mode="before")
    @classmethod
    def _thresholds_from_env(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("overdue_thresholds_days")
    @classmethod
    def _thresholds_increasing(cls, value: list[int]) -> list[int]:
        if not _positive_increasing(value):
            raise ValueError("overdue_thresholds_days must be positive days in strictly increasing "
                             f"order, at most {MAX_SPAN_DAYS}, e.g. 1,15,30,60,90")
        return value
