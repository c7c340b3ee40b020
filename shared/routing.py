"""Which route a request would reach, for the layers that answer before routing runs."""

from __future__ import annotations

from typing import Any

from starlette.types import Scope


def name_route(scope: Scope) -> None:
    """Set `scope["route"]` to the route the request would have reached (routing did not run)."""
    if scope.get("route") is None:
        scope["route"] = _route_for(getattr(scope["app"], "routes", ()), scope["method"],
                                    scope["path"])


def _route_for(routes: Any, method: str, path: str) -> Any:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            found = _route_for(included.routes, method, path)
            if found is not None:
                return found
        elif getattr(route, "path_regex", None) is not None and route.path_regex.match(path) \
                and method in (getattr(route, "methods", None) or ()):
            return route
    return None


def allowed_methods(routes: Any, path: str) -> list[str]:
    """Every method some route serves at `path` (an `Allow` header's list), sorted."""
    methods: set[str] = set()
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            methods.update(allowed_methods(included.routes, path))
        elif getattr(route, "path_regex", None) is not None and route.path_regex.match(path):
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)
