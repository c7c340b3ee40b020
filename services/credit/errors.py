"""Domain errors of the credit service."""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, GuardFailed, InvalidTransition, NotFound, ValidationFailed


class CustomerNotFound(NotFound):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"Customer {customer_id} not found.")


class NotYourCustomer(Forbidden):
    def __init__(self, salesperson_id: str) -> None:
        super().__init__(f"Sales principals may only manage customers of salesperson "
                         f"{salesperson_id}.")


class HoldNotFound(NotFound):
    def __init__(self, hold_id: str) -> None:
        super().__init__(f"Credit hold {hold_id} not found.")


class GuaranteeNotFound(NotFound):
    def __init__(self, guarantee_id: str) -> None:
        super().__init__(f"Guarantee {guarantee_id} not found.")


class ReservationNotFound(NotFound):
    def __init__(self, reservation_id: str) -> None:
        super().__init__(f"Reservation {reservation_id} not found.")


class EvaluationNotFound(NotFound):
    def __init__(self, evaluation_id: str) -> None:
        super().__init__(f"Evaluation {evaluation_id} not found.")


class CurrencyMismatch(ValidationFailed):
    """A money amount in another currency than the customer's credit profile."""

    def __init__(self, given: str, profile: str, what: str = "the amount") -> None:
        message = (f"{what} is in {given} but the customer's credit is kept in {profile}; "
                   f"send {profile} or change the credit currency first")
        super().__init__(message[0].upper() + message[1:] + ".",
                         errors=[{"field": "currency", "message": message}])


class InvalidDate(ValidationFailed):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}.", errors=[{"field": field, "message": message}])


class CurrencyChangeRefused(Conflict):
    def __init__(self, old: str, new: str, what: list[str]) -> None:
        super().__init__(f"The credit currency cannot change from {old} to {new} while the "
                         f"customer has {', '.join(what)} in {old}; release or settle them first.",
                         blocking=what)


class ReservationAmountConflict(Conflict):
    def __init__(self, order_id: str, reservation_id: str, amount_minor: int, status: str) -> None:
        super().__init__(f"Order {order_id} already has a {status} reservation {reservation_id} of "
                         f"{amount_minor} minor units; change it with PATCH "
                         f"/v1/reservations/{reservation_id}.",
                         reservation_id=reservation_id, amount_minor=amount_minor)


class ReservationOtherCustomer(Conflict):
    def __init__(self, order_id: str, reservation_id: str, customer_id: str) -> None:
        super().__init__(f"Order {order_id} already has reservation {reservation_id} for "
                         f"customer {customer_id}.", reservation_id=reservation_id)


class ReservationTransitionRefused(InvalidTransition):
    ALLOWED = {"active": ["change", "release", "convert"], "released": ["release"],
               "converted": ["convert"], "declined": ["release"]}

    def __init__(self, reservation_id: str, state: str, trigger: str) -> None:
        super().__init__(f"Reservation {reservation_id} is {state}; it cannot {trigger}.",
                         state=state, allowed=self.ALLOWED.get(state, []))


class CreditIncreaseRefused(GuardFailed):
    """An increase of a reservation that the customer's credit does not allow."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("credit_reserved", "; ".join(reasons))


class ConvertAmountTooHigh(ValidationFailed):
    def __init__(self, amount_minor: int, reserved_minor: int) -> None:
        message = (f"the invoiced amount {amount_minor} exceeds the reserved {reserved_minor}; "
                   "increase the reservation with PATCH first")
        super().__init__(message[0].upper() + message[1:] + ".",
                         errors=[{"field": "amount_minor", "message": message}])


class EvaluationAlreadyApplied(Conflict):
    def __init__(self, evaluation_id: str, applied_at: str) -> None:
        super().__init__(f"Evaluation {evaluation_id} was already applied at {applied_at}; run a "
                         "new evaluation to change the profile again.")
