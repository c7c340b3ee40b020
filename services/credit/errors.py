"""Domain errors of the credit service."""

from shared.errors import Forbidden, NotFound


class CustomerNotFound(NotFound):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"Customer {customer_id} not found.")


class NotYourCustomer(Forbidden):
    def __init__(self, salesperson_id: str) -> None:
        super().__init__(f"Sales principals may only manage customers of salesperson "
                         f"{salesperson_id}.")
