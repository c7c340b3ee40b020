"""Deterministic failure points for the fault-injection suite (`make test-faults`).

A failpoint is a named place in a code path where a crash matters: between "the remote side
committed" and "the local side committed", between "the effect committed" and "the response
left". `failpoint("orders.settle.after_invoice")` does nothing unless the process was started
with `O2C_FAILPOINTS` naming it, so production pays one dictionary lookup on an empty dict.

    O2C_FAILPOINTS="orders.settle.after_invoice=kill,ledger.idempotency.after_commit=kill@3"

Actions:
- `kill`     SIGKILL this process the first time the point is reached (no cleanup, no flush:
             what a power cut or an OOM kill does);
- `kill@N`   SIGKILL on the N-th time the point is reached (1-based);
- `error`    raise `FailpointError` (the request answers 500, the transaction rolls back);
- `error@N`  raise on the N-th time only;
- `delay:MS` sleep MS milliseconds (blocking: it holds whatever the caller holds).

The suite restarts a killed service without the variable, so recovery runs on clean code.
Names are `<service>.<path>.<moment>`.
"""

from __future__ import annotations

import logging
import os
import signal
import time

log = logging.getLogger("o2c.failpoints")
ENV = "O2C_FAILPOINTS"


class FailpointError(RuntimeError):
    """Raised by a failpoint whose action is `error`."""


def _parse(spec: str) -> dict[str, tuple[str, int | None, float]]:
    points: dict[str, tuple[str, int | None, float]] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item or "=" not in item:
            continue
        name, action = (part.strip() for part in item.split("=", 1))
        nth: int | None = None
        delay = 0.0
        if action.startswith("delay:"):
            delay, action = float(action[6:]) / 1000, "delay"
        elif "@" in action:
            action, count = action.split("@", 1)
            nth = int(count)
        if action not in ("kill", "error", "delay"):
            raise ValueError(f"{ENV}: unknown action {action!r} for {name!r}")
        points[name] = (action, nth, delay)
    return points


_ACTIVE = _parse(os.environ.get(ENV, ""))
_hits: dict[str, int] = {}


def configure(spec: str) -> None:
    """Replace the active failpoints (tests of this module; processes read the environment)."""
    global _ACTIVE
    _ACTIVE = _parse(spec)
    _hits.clear()


def failpoint(name: str) -> None:
    """Crash, fail or stall here if `O2C_FAILPOINTS` names this point; otherwise nothing."""
    if not _ACTIVE:
        return
    point = _ACTIVE.get(name)
    if point is None:
        return
    action, nth, delay = point
    _hits[name] = hit = _hits.get(name, 0) + 1
    if nth is not None and hit != nth:
        return
    if action == "kill":
        log.warning("failpoint %s: SIGKILL (hit %d)", name, hit)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "error":
        raise FailpointError(f"failpoint {name}")
    elif action == "delay":
        time.sleep(delay)


def hits(name: str) -> int:
    """How often the point was reached while active (tests of this module)."""
    return _hits.get(name, 0)
