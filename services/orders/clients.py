"""Typed clients for the services orders calls, over the app's one `ServiceHttp`."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import DependencyUnavailable
from shared.http import ServiceHttp


class CreditCustomer(BaseModel):
    """The part of credit's customer that orders relies on."""

    model_config = ConfigDict(extra="ignore")

    id: str
    number: str
    name: str
    salesperson_id: str | None = None


class CreditClient:
    """Calls to the credit service; anything but a clear answer fails closed (503)."""

    def __init__(self, http: ServiceHttp) -> None:
        self.http = http

    async def get_customer(self, customer_id: str) -> CreditCustomer | None:
        """The customer, or None when credit does not know it."""
        response = await self.http.call("credit", "GET", f"/v1/customers/{quote(customer_id, safe='')}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DependencyUnavailable(
                f"The credit service answered {response.status_code} for customer {customer_id}.",
                dependency="credit")
        try:
            return CreditCustomer.model_validate_json(response.content)
        except ValidationError as exc:
            raise DependencyUnavailable("The credit service sent a customer orders cannot read.",
                                        dependency="credit") from exc
