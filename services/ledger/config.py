from typing import ClassVar

from pydantic import BaseModel, Field, field_validator

from shared.settings import BaseServiceSettings


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
        if not value or value[0] < 1 or any(b <= a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError("aging_bucket_days must be positive and strictly increasing")
        return value
