"""Domain errors of the notifier service."""

from shared.errors import GuardFailed, NotFound, ValidationFailed


class EventNotFound(NotFound):
    def __init__(self, event_id: str) -> None:
        super().__init__(f"Event {event_id} not found.")


class EndpointNotFound(NotFound):
    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"Webhook endpoint {endpoint_id} not found.")


class DeliveryNotFound(NotFound):
    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"Delivery {delivery_id} not found.")


class UrlRefused(ValidationFailed):
    def __init__(self, reason: str) -> None:
        super().__init__(f"The webhook URL is not allowed: {reason}.",
                         errors=[{"field": "url", "message": reason}])


class EndpointDisabled(GuardFailed):
    def __init__(self, endpoint_id: str) -> None:
        super().__init__("endpoint_enabled",
                         f"Webhook endpoint {endpoint_id} is disabled; enable it first.")
