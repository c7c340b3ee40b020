from typing import ClassVar

from pydantic import Field

from shared.settings import BaseServiceSettings


class CreditSettings(BaseServiceSettings):
    service_name: ClassVar[str] = "credit"
    credit_database_url: str | None = None
    # Currency of a credit profile created with defaults (limit 0); `O2C_DEFAULT_CURRENCY`.
    default_currency: str = "CNY"
    # An `invoice.overdue` at this many days overdue or more puts the customer on an automatic
    # credit hold; `O2C_CREDIT_HOLD_DAYS_OVERDUE` (DESIGN.md §2).
    credit_hold_days_overdue: int = Field(default=30, ge=1)
    # How often the worker asks ledger whether the invoices behind automatic holds are still
    # outstanding, so a lost `invoice.paid` never leaves a customer held forever.
    hold_recheck_seconds: float = Field(default=3600.0, gt=0)
