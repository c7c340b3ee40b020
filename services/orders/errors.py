"""Domain errors of the orders service."""

from shared.errors import InvalidTransition, NotFound, ValidationFailed, VersionConflict


class OrderNotFound(NotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"Order {order_id} not found.")


class UnknownCustomer(ValidationFailed):
    """The customer does not exist in credit, or belongs to another salesperson."""

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"Customer {customer_id} is not known.",
                         errors=[{"field": "customer_id", "message": "unknown customer"}])


class DeliveryDateInPast(ValidationFailed):
    def __init__(self, today: str) -> None:
        super().__init__(f"The delivery date may not be before today ({today}).",
                         errors=[{"field": "delivery_date",
                                  "message": f"must be {today} or later"}])


class AmountTooLarge(ValidationFailed):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("An amount exceeds the largest order value accepted.", errors=errors)


class NotADraft(InvalidTransition):
    def __init__(self, order_id: str, state: str, allowed: list[str]) -> None:
        super().__init__(f"Order {order_id} is {state}; only draft orders can be updated.",
                         state=state, allowed=allowed)


class OrderChanged(VersionConflict):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"Order {order_id} was changed by another request; fetch it again "
                         "and re-apply your change.")
