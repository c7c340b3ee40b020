"""Hostile input to every service, table-driven from the four OpenAPI documents
(tests/hostile.py): edge dates on every date and timestamp, loose integers in every body,
digits-only integer query parameters, null in every field of a body. A new parameter or
field is covered as soon as it is documented. Rules particular to one service's bodies are
in tests/<service>/test_hostile_input.py."""

from __future__ import annotations

import pytest

from shared.settings import SERVICES
from tests import hostile

# Every check is refused before anything is read or written, or (in-range values) answered
# whatever earlier checks left: one system serves the module.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture
def system(shared_system):
    return shared_system


DATES = hostile.targets(("date", "date-time"))
INTEGERS = hostile.targets(("integer",), where=("body",))
BODIES = hostile.operations_with_body()


@pytest.mark.parametrize("target", DATES, ids=lambda t: t.id)
async def test_edge_dates_are_refused_naming_the_field(system, target):
    await hostile.check_edge_dates(system, target)


@pytest.mark.parametrize("target", INTEGERS, ids=lambda t: t.id)
async def test_body_integers_are_strict(system, target):
    await hostile.check_loose_integers(system, target)


@pytest.mark.parametrize("service", SERVICES)
async def test_integer_query_parameters_take_digits_only(system, service):
    await hostile.check_query_integers(system, service)


@pytest.mark.parametrize(("service", "method", "path"), BODIES, ids=lambda v: str(v))
async def test_null_in_any_body_field_is_never_a_5xx(system, service, method, path):
    await hostile.check_nulls(system, service, method, path)
