"""ledger: document numbers from PostgreSQL sequences, so concurrent creates never queue on a counter row

Revision ID: e6f7a8b9c0d1
Revises: c2f2dcf1a2f5
Create Date: 2026-12-02 01:00:00
"""
from alembic import op

from shared.numbering import create_sequences, drop_sequences


revision = 'e6f7a8b9c0d1'
down_revision = 'c2f2dcf1a2f5'
branch_labels = None
depends_on = None

SERIES = ("journal_entry", "invoice", "payment", "credit_note", "debit_note", "write_off")


def upgrade() -> None:
    create_sequences(op, SERIES)


def downgrade() -> None:
    drop_sequences(op, SERIES)
