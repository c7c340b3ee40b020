from typing import ClassVar

from shared.settings import BaseServiceSettings


class OrdersSettings(BaseServiceSettings):
    service_name: ClassVar[str] = "orders"
    orders_database_url: str | None = None
