from typing import ClassVar

from shared.settings import BaseServiceSettings


class CreditSettings(BaseServiceSettings):
    service_name: ClassVar[str] = "credit"
    credit_database_url: str | None = None
