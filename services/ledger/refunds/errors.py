"""Domain errors of refunds."""

from __future__ import annotations

from shared.errors import NotFound


class RefundNotFound(NotFound):
    def __init__(self, refund_id: str) -> None:
        super().__init__(f"Refund {refund_id} not found.")
