"""ledger: refunds of unapplied cash, and what each drew on which payment (issue 15)

The payments table is rebuilt on SQLite for its new check (refunded within unapplied),
with foreign keys off and checked after (`sqlite_rebuild`).

Revision ID: 8d9e0f1a2b3c
Revises: 7c8d9e0f1a2b
Create Date: 2026-12-07 22:44:27.111178
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db
from shared.migrations import sqlite_rebuild
from shared.numbering import create_sequences, drop_sequences


revision = '8d9e0f1a2b3c'
down_revision = '7c8d9e0f1a2b'
branch_labels = None
depends_on = None

SERIES = ("refund",)


def upgrade() -> None:
    op.create_table('refunds',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('refunded_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('proposed_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('approved_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('rejected_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('rejection_reason', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('journal_entry_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('reversal_entry_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('reversed_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reversal_reason', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['journal_entries.id'], name=op.f('fk_refunds_journal_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['reversal_entry_id'], ['journal_entries.id'], name=op.f('fk_refunds_reversal_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('number', name=op.f('uq_refunds_number'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_status'), ['status'], unique=False)

    op.create_table('refund_draws',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('refund_id', sa.String(length=36), nullable=False),
    sa.Column('payment_id', sa.String(length=36), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_refund_draws_amount_positive')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_refund_draws_payment_id_payments')),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'], name=op.f('fk_refund_draws_refund_id_refunds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_draws'))
    )
    with op.batch_alter_table('refund_draws', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_draws_payment_id'), ['payment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refund_draws_refund_id'), ['refund_id'], unique=False)

    with sqlite_rebuild(op), op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refunded_minor', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.create_check_constraint(
            'refunded_range', 'refunded_minor >= 0 AND refunded_minor <= unapplied_minor')
    create_sequences(op, SERIES)


def downgrade() -> None:
    drop_sequences(op, SERIES)
    with sqlite_rebuild(op), op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payments_refunded_range'), type_='check')
        batch_op.drop_column('refunded_minor')

    with op.batch_alter_table('refund_draws', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refund_draws_refund_id'))
        batch_op.drop_index(batch_op.f('ix_refund_draws_payment_id'))

    op.drop_table('refund_draws')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_status'))
        batch_op.drop_index(batch_op.f('ix_refunds_customer_id'))
        batch_op.drop_index(batch_op.f('ix_refunds_created_at'))

    op.drop_table('refunds')
