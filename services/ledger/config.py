from typing import ClassVar

from shared.settings import BaseServiceSettings


class LedgerSettings(BaseServiceSettings):
    service_name: ClassVar[str] = "ledger"
    ledger_database_url: str | None = None
