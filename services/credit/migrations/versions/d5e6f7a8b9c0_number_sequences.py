"""credit: document numbers from PostgreSQL sequences, so concurrent creates never queue on a counter row

Revision ID: d5e6f7a8b9c0
Revises: 310e52aa73d6
Create Date: 2026-12-02 01:00:00
"""
from alembic import op

from shared.numbering import create_sequences, drop_sequences


revision = 'd5e6f7a8b9c0'
down_revision = '310e52aa73d6'
branch_labels = None
depends_on = None

SERIES = ("customer",)


def upgrade() -> None:
    create_sequences(op, SERIES)


def downgrade() -> None:
    drop_sequences(op, SERIES)
