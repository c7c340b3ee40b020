"""orders: the test clock's offset (DESIGN.md §10), read only with O2C_TEST_CLOCK

Revision ID: 1a2b3c4d5e6f
Revises: f1a2b3c4d5e6
Create Date: 2026-12-03 09:00:00
"""
from alembic import op

from shared.testclock import TABLE, create_table


revision = '1a2b3c4d5e6f'
down_revision = 'f1a2b3c4d5e6'
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(op)


def downgrade() -> None:
    op.drop_table(TABLE)
