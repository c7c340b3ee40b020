from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator

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
    # Deliveries to o2c's own inboxes (internal endpoints) retry after these delays instead,
    # the last one repeating until accepted: they never fail and the endpoint is never disabled.
    internal_retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [1, 2, 5, 10, 30, 60], min_length=1)
    # An endpoint whose deliveries fail without a success for longer than this is disabled.
    webhook_disable_after_days: float = 5.0
    # After rotating a secret, deliveries are signed with the old secret too for this long.
    webhook_previous_secret_hours: float = 24.0
    webhook_timeout_seconds: float = 10.0
    webhook_dns_timeout_seconds: float = 2.0

    # The delivery worker claims up to `delivery_batch_size` due deliveries at a time and keeps
    # at most `delivery_concurrency` sends in flight, `delivery_endpoint_concurrency` of them to
    # one endpoint (so a slow endpoint holds only its own). A claimed delivery is leased for
    # `delivery_lease_seconds`: if the process dies, it is due again once the lease ends. The
    # worker is woken by ingest and also polls (retries coming due) every
    # `delivery_poll_seconds`; once a sender frees up it waits `delivery_gather_seconds` for
    # others before claiming again. On stop, sends in flight get `delivery_stop_grace_seconds`.
    delivery_batch_size: int = Field(default=100, ge=1)
    delivery_concurrency: int = Field(default=100, ge=1)
    delivery_endpoint_concurrency: int = Field(default=16, ge=1)
    delivery_lease_seconds: float = 60.0
    delivery_poll_seconds: float = 1.0
    delivery_gather_seconds: float = 0.005
    delivery_stop_grace_seconds: float = 5.0

    # Dunning (DESIGN.md §7). The worker turns each queued `invoice.overdue` threshold into
    # notifications; while credit or ledger do not answer it tries again after a delay that
    # doubles from `dunning_retry_min_seconds` up to `dunning_retry_max_seconds`, for ever.
    dunning_batch_size: int = 50
    dunning_lease_seconds: float = 120.0
    dunning_poll_seconds: float = 5.0
    dunning_retry_min_seconds: float = 30.0
    dunning_retry_max_seconds: float = 3600.0
    # Who the `legal` recipient of a policy level is.
    # A customer reminded by email at a level is not written to again at that level (or a
    # lower one) for this many days; the next letter lists the invoices that fell due meanwhile.
    # 0: every due reminder goes out (those due together still share one letter).
    dunning_letter_interval_days: int = Field(default=7, ge=0, le=365)
    dunning_legal_name: str = "Legal department"
    dunning_legal_email: str | None = None

    # Email through SMTP. Without `smtp_host` email is not configured: email notifications
    # stay pending (last_error says why) and go out once a host is set and the service restarts.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_tls: bool = False  # implicit TLS from the first byte (usually port 465)
    smtp_starttls: bool | None = None  # None: upgrade when the server offers STARTTLS
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str = "o2c-collections@localhost"
    smtp_timeout_seconds: float = 15.0
    smtp_validate_certs: bool = True
    # Delay before each retry after a failed send; when it runs out the notification `failed`.
    email_retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000, 36000])
    email_batch_size: int = 50
    email_lease_seconds: float = 120.0
    email_poll_seconds: float = 5.0

    @field_validator("smtp_host", "smtp_username", "smtp_password", "dunning_legal_email",
                     mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """An empty variable (docker compose's `${O2C_SMTP_HOST:-}`) means not set."""
        return None if isinstance(value, str) and not value.strip() else value
