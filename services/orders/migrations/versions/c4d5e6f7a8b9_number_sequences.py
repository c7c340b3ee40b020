"""orders: document numbers from PostgreSQL sequences, so concurrent creates never queue on a counter row

Revision ID: c4d5e6f7a8b9
Revises: b3c1d2e4f5a6
Create Date: 2026-12-02 01:00:00
"""
from alembic import op

from shared.numbering import create_sequences, drop_sequences


revision = 'c4d5e6f7a8b9'
down_revision = 'b3c1d2e4f5a6'
branch_labels = None
depends_on = None

SERIES = ("order", "change_request")


def upgrade() -> None:
    create_sequences(op, SERIES)


def downgrade() -> None:
    drop_sequences(op, SERIES)
