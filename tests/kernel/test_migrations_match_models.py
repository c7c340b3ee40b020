"""Each service's migrations build exactly the schema its models declare (alembic's own
autogenerate comparison finds nothing to add, drop or alter)."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared import migrations
from shared.db import Database
from shared.settings import SERVICES


@pytest.mark.parametrize("service", SERVICES)
async def test_migrated_schema_is_the_models(service, tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / service}.db")
    try:
        await migrations.upgrade(db.engine, service)
        metadata = importlib.import_module(f"services.{service}.models").metadata
        async with db.engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
    finally:
        await db.dispose()
    assert diff == []
