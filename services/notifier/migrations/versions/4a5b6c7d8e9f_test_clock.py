"""notifier: the test clock's offset (DESIGN.md §10), read only with O2C_TEST_CLOCK

Revision ID: 4a5b6c7d8e9f
Revises: 5e1d7a9c4b20
Create Date: 2026-12-03 09:00:00
"""
from alembic import op

from shared.testclock import TABLE, create_table


revision = '4a5b6c7d8e9f'
down_revision = '5e1d7a9c4b20'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(op)


def downgrade() -> None:
    op.drop_table(TABLE)
