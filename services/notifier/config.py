from typing import ClassVar

from pydantic import Field

from shared.settings import BaseServiceSettings


class NotifierSettings(BaseServiceSettings):
    service_name: ClassVar[str] = "notifier"
    notifier_database_url: str | None = None

    # Webhook destinations on private, loopback, link-local or reserved addresses are refused
    # (at creation and again at delivery) unless this is set; endpoints created by the
    # `service` principal (o2c's own subscribers on the private network) are always allowed.
    webhook_allow_private: bool = False
    # Delay before each retry after a failed attempt; when it runs out the delivery `failed`.
    webhook_retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000, 36000])
    # An endpoint whose deliveries fail without a success for longer than this is disabled.
    webhook_disable_after_days: float = 5.0
    # After rotating a secret, deliveries are signed with the old secret too for this long.
    webhook_previous_secret_hours: float = 24.0
    webhook_timeout_seconds: float = 10.0
    webhook_dns_timeout_seconds: float = 2.0

    delivery_batch_size: int = 50
    delivery_concurrency: int = 10
    delivery_lease_seconds: float = 60.0
    delivery_poll_seconds: float = 1.0
