"""Settings common to every service; each service subclasses `BaseServiceSettings`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("orders", "credit", "ledger", "notifier")
DEFAULT_PORT_BASE = 8000
PORT_OFFSETS = {"orders": 1, "credit": 2, "ledger": 3, "notifier": 4}


class BaseServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="O2C_", extra="ignore")

    service_name: ClassVar[str] = ""

    data_dir: Path = Path("./var")
    orders_url: str = "http://127.0.0.1:8001"
    credit_url: str = "http://127.0.0.1:8002"
    ledger_url: str = "http://127.0.0.1:8003"
    notifier_url: str = "http://127.0.0.1:8004"

    api_keys_file: Path | None = None
    service_key: SecretStr | None = None

    log_level: str = "INFO"
    log_json: bool = True

    # Background workers (outbox dispatch, deliveries, scans). Tests turn them off and
    # drive the workers step by step.
    workers_enabled: bool = True
    outbox_poll_seconds: float = 1.0
    outbox_batch_size: int = 100
    outbox_lease_seconds: float = 30.0
    outbox_max_backoff_seconds: float = 300.0

    http_timeout_seconds: float = 5.0
    http_retries: int = 3
    http_backoff_seconds: float = 0.2

    migrate_on_startup: bool = False

    idempotency_ttl_hours: int = 24

    # The largest request body taken (webhook inboxes too); larger is 413 payload_too_large,
    # refused while it streams (shared.gate).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    # DESIGN.md §10, integration testing only: /v1/test-clock moves this service's business
    # time forward (shared.testclock). Off by default; a service with it on warns at start.
    test_clock: bool = False
    test_clock_sync_seconds: float = Field(default=1.0, gt=0)  # replicas pick a jump up this soon

    db_pool_size: int = 20  # at most this many connections per process, kept once opened
    db_pool_pre_ping: bool = False  # PostgreSQL: ping each connection on checkout (3 round trips)
    sqlite_busy_timeout_ms: int = 5000
    sqlite_write_wait_seconds: float = 30.0  # a write transaction's wait for the writer's turn

    def database_url(self) -> str:
        """`O2C_<SERVICE>_DATABASE_URL`, or a SQLite file under the data directory."""
        url = getattr(self, f"{self.service_name}_database_url", None)
        if url:
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{self.service_name}.db').as_posix()}"

    def service_url(self, service: str) -> str:
        return getattr(self, f"{service}_url").rstrip("/")
