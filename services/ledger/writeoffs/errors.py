"""Domain errors of write-offs."""

from __future__ import annotations

from shared.errors import NotFound


class WriteOffNotFound(NotFound):
    def __init__(self, write_off_id: str) -> None:
        super().__init__(f"Write-off {write_off_id} not found.")
