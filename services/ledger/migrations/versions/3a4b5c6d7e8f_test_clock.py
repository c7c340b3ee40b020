"""ledger: the test clock's offset (DESIGN.md §10), read only with O2C_TEST_CLOCK

Revision ID: 3a4b5c6d7e8f
Revises: f3a4b5c6d7e8
Create Date: 2026-12-03 09:00:00
"""
from alembic import op

from shared.testclock import TABLE, create_table


revision = '3a4b5c6d7e8f'
down_revision = 'f3a4b5c6d7e8'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(op)


def downgrade() -> None:
    op.drop_table(TABLE)
