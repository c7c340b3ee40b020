from typing import ClassVar

from shared.settings import BaseServiceSettings


class NotifierSettings(BaseServiceSettings):
    service_name: ClassVar[str] = "notifier"
    notifier_database_url: str | None = None
