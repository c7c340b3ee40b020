from typing import ClassVar

from shared.settings import BaseServiceSettings


class CreditSettings(BaseServiceSettings):
    service_name: ClassVar[str] = "credit"
    credit_database_url: str | None = None
    # Currency of a credit profile created with defaults (limit 0); `O2C_DEFAULT_CURRENCY`.
    default_currency: str = "CNY"
