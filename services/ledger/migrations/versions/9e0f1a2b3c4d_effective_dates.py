"""ledger: notes and write-offs count from an effective date; a credit note may give paid money
back to unapplied cash (issue 15)

Existing notes count from when they were booked, existing write-offs were approved when they
were posted. The allocations' check now lets a `returned` allocation be negative; that table
(which nothing points at) and the notes' are rebuilt on SQLite for it.

Revision ID: 9e0f1a2b3c4d
Revises: 8d9e0f1a2b3c
Create Date: 2026-12-07 22:51:57.234664
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db
from shared.migrations import sqlite_rebuild


revision = '9e0f1a2b3c4d'
down_revision = '8d9e0f1a2b3c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('credit_notes', 'debit_notes'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('effective_at', shared.db.UTCDateTime(timezone=True), nullable=True))
        op.execute(f"UPDATE {table} SET effective_at = created_at")
        with sqlite_rebuild(op), op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('effective_at', existing_type=shared.db.UTCDateTime(timezone=True),
                                  nullable=False)
            if table == 'credit_notes':
                batch_op.add_column(sa.Column('returned_to_unapplied_minor', sa.BigInteger(), server_default='0', nullable=False))
            batch_op.create_index(batch_op.f(f'ix_{table}_effective_at'), ['effective_at'], unique=False)

    with op.batch_alter_table('write_offs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approved_at', shared.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('effective_at', shared.db.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE write_offs SET approved_at = posted_at WHERE posted_at IS NOT NULL")

    with sqlite_rebuild(op), op.batch_alter_table('payment_allocations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payment_allocations_amount_positive'), type_='check')
        batch_op.create_check_constraint(
            'amount_signed', "amount_minor <> 0 AND (amount_minor < 0) = (kind = 'returned')")


def downgrade() -> None:
    """Refused while a returned allocation exists: the old check takes only positive amounts."""
    with sqlite_rebuild(op), op.batch_alter_table('payment_allocations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payment_allocations_amount_signed'), type_='check')
        batch_op.create_check_constraint('amount_positive', 'amount_minor > 0')

    with op.batch_alter_table('write_offs', schema=None) as batch_op:
        batch_op.drop_column('effective_at')
        batch_op.drop_column('approved_at')

    with sqlite_rebuild(op), op.batch_alter_table('debit_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_debit_notes_effective_at'))
        batch_op.drop_column('effective_at')

    with sqlite_rebuild(op), op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_notes_effective_at'))
        batch_op.drop_column('effective_at')
        batch_op.drop_column('returned_to_unapplied_minor')
