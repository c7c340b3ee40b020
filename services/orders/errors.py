"""Domain errors of the orders service."""

from shared.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationFailed,
    VersionConflict,
)


class OrderNotFound(NotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"Order {order_id} not found.")


class UnknownCustomer(ValidationFailed):
    """The customer does not exist in credit, or belongs to another salesperson."""

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"Customer {customer_id} is not known.",
                         errors=[{"field": "customer_id", "message": "unknown customer"}])


class NotOwnSalesperson(Forbidden):
    """A sales principal bound to a salesperson named another one on a new order."""

    def __init__(self, own: str) -> None:
        super().__init__(f"A sales principal bound to salesperson {own} may only create orders "
                         f"with salesperson_id {own} (or none, for the customer's).")


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


class PreliminaryCheckFailed(ValidationFailed):
    """Submit's preliminary check: every missing or inconsistent field at once."""

    def __init__(self, detail: str, errors: list[dict[str, str]]) -> None:
        super().__init__(detail, errors=errors)


class UnknownDepartment(ValidationFailed):
    def __init__(self, department: str, departments: list[str]) -> None:
        super().__init__(
            f"{department!r} is not a review department of orders; choose one of "
            f"{', '.join(departments)}.",
            errors=[{"field": "department", "message": f"must be one of {', '.join(departments)}"}])


class NotTheDepartment(Forbidden):
    def __init__(self, department: str) -> None:
        super().__init__(f"Only a principal with role {department} may give the {department} "
                         "department's opinion.")


class ReasonRequired(ValidationFailed):
    def __init__(self, field: str, why: str) -> None:
        super().__init__(why, errors=[{"field": field, "message": "required"}])


class SignedInFuture(ValidationFailed):
    def __init__(self, now: str) -> None:
        super().__init__(f"A contract cannot be signed after now ({now}).",
                         errors=[{"field": "signed_at", "message": "must not be in the future"}])


class ChangeRequestNotFound(NotFound):
    def __init__(self, order_number: str, change_request_id: str) -> None:
        super().__init__(f"Order {order_number} has no change request {change_request_id}.")


class OrderNotChangeable(InvalidTransition):
    def __init__(self, number: str, state: str, changeable: tuple[str, ...], allowed: list[str]) -> None:
        super().__init__(f"Order {number} is {state}; change requests can be made only while an "
                         f"order is {', '.join(changeable)}.", state=state, allowed=allowed)


class ChangeRequestAlreadyOpen(Conflict):
    def __init__(self, number: str, open_numbers: list[str]) -> None:
        super().__init__(f"Order {number} already has an open change request "
                         f"({', '.join(open_numbers)}); apply, withdraw or reject it before "
                         "asking for another.")


class BadChange(ValidationFailed):
    """The change set does not fit the order: every problem at once, with its field path."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{len(errors)} problem(s) with the requested change.", errors=errors)


class AgreementSignedInFuture(ValidationFailed):
    def __init__(self, now: str) -> None:
        super().__init__(f"A change agreement cannot be signed after now ({now}).",
                         errors=[{"field": "signed_at", "message": "must not be in the future"}])


class StepInProgress(Conflict):
    """Another trigger's remote step (steps.py) is pending on the order: it must finish first."""

    def __init__(self, number: str, step: dict) -> None:
        kind = str(step.get("kind", "step")).replace("_", "-")
        waiting = f"; last attempt: {step['last_error']}" if step.get("last_error") else ""
        super().__init__(
            f"Order {number} has a {kind} in progress since {step.get('started_at')}; it finishes "
            f"on its own once {step.get('service') or 'the other service'} answers{waiting}. "
            "Retry after that.",
            step={"kind": kind, "started_at": step.get("started_at"),
                  "attempts": step.get("attempts", 0)},
            headers={"Retry-After": "5"})
