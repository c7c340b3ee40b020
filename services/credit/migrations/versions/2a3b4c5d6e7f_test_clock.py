"""credit: the test clock's offset (DESIGN.md §10), read only with O2C_TEST_CLOCK

Revision ID: 2a3b4c5d6e7f
Revises: f2a3b4c5d6e7
Create Date: 2026-12-03 09:00:00
"""
from alembic import op

from shared.testclock import TABLE, create_table


revision = '2a3b4c5d6e7f'
down_revision = 'f2a3b4c5d6e7'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(op)


def downgrade() -> None:
    op.drop_table(TABLE)
