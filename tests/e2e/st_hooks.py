"""schemathesis hooks for tests/e2e/test_schemathesis.py (loaded by file path, not by pytest).

An `Idempotency-Key` a client sends again with the same body gets the first answer back: that
is the contract (DESIGN.md §3, Stripe's design), even when the resource it created has been
deleted since. Hypothesis draws short strings again and again, so the stateful phase would
re-send a key from an earlier scenario and read the replayed 201 of a deleted endpoint as
"created resource not found" (ST302). Real clients make one key per operation: a key already
sent is swapped for a fresh one. Only keys the API accepts (1-255 characters after trimming)
in cases meant to be valid are swapped, so every negative case is sent as drawn; replays themselves are
tested per service (e.g. tests/kernel/test_conventions.py, tests/ledger/test_payments.py).
"""

from __future__ import annotations

import uuid

import schemathesis

_HEADER = "Idempotency-Key"
_sent: set[str] = set()


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    if not headers or (case.meta is not None and case.meta.generation.mode.is_negative):
        return  # editing a negative case makes schemathesis re-read it as positive
    name = next((h for h in headers if h.lower() == _HEADER.lower()), None)
    if name is None or not isinstance(headers[name], str):
        return
    key = headers[name].strip()
    if not 1 <= len(key) <= 255:
        return
    if key in _sent:
        headers[name] = key = f"st-{uuid.uuid4().hex}"
    _sent.add(key)
