"""payments, credit and debit notes

Revision ID: 9bf1b412b6aa
Revises: 6aa7b3ef1997
Create Date: 2026-11-23 19:27:58.331099
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db


revision = '9bf1b412b6aa'
down_revision = '6aa7b3ef1997'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('customer_balances',
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('unapplied_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('unapplied_minor >= 0', name=op.f('ck_customer_balances_unapplied_non_negative')),
    sa.PrimaryKeyConstraint('customer_id', 'currency', name=op.f('pk_customer_balances'))
    )
    op.create_table('payments',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('received_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unapplied_minor', sa.BigInteger(), nullable=False),
    sa.Column('unapplied_remaining_minor', sa.BigInteger(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('journal_entry_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('reversal_entry_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('reversed_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reversal_reason', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_payments_amount_positive')),
    sa.CheckConstraint('unapplied_minor >= 0 AND unapplied_minor <= amount_minor', name=op.f('ck_payments_unapplied_range')),
    sa.CheckConstraint('unapplied_remaining_minor >= 0 AND unapplied_remaining_minor <= unapplied_minor', name=op.f('ck_payments_remaining_range')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['journal_entries.id'], name=op.f('fk_payments_journal_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['reversal_entry_id'], ['journal_entries.id'], name=op.f('fk_payments_reversal_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('number', name=op.f('uq_payments_number'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_status'), ['status'], unique=False)

    op.create_table('credit_notes',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('invoice_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('journal_entry_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_credit_notes_amount_positive')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_credit_notes_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['journal_entries.id'], name=op.f('fk_credit_notes_journal_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_notes')),
    sa.UniqueConstraint('number', name=op.f('uq_credit_notes_number'))
    )
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_notes_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_notes_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_notes_invoice_id'), ['invoice_id'], unique=False)

    op.create_table('debit_notes',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('invoice_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('journal_entry_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_debit_notes_amount_positive')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_debit_notes_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['journal_entries.id'], name=op.f('fk_debit_notes_journal_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_debit_notes')),
    sa.UniqueConstraint('number', name=op.f('uq_debit_notes_number'))
    )
    with op.batch_alter_table('debit_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_debit_notes_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_debit_notes_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_debit_notes_invoice_id'), ['invoice_id'], unique=False)

    op.create_table('payment_allocations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('payment_id', sa.String(length=36), nullable=False),
    sa.Column('invoice_id', sa.String(length=36), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('journal_entry_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_payment_allocations_amount_positive')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_payment_allocations_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['journal_entries.id'], name=op.f('fk_payment_allocations_journal_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_payment_allocations_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_allocations'))
    )
    with op.batch_alter_table('payment_allocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_allocations_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_allocations_payment_id'), ['payment_id'], unique=False)

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('debit_notes_minor', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('paid_minor', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('credited_minor', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('written_off_minor', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('paid_at', shared.db.UTCDateTime(timezone=True), nullable=True))
        # Debit notes raise what is owed; the money columns must always add up.
        batch_op.drop_constraint(op.f('ck_invoices_outstanding_range'), type_='check')
        batch_op.create_check_constraint(op.f('ck_invoices_outstanding_range'), 'outstanding_minor >= 0 AND outstanding_minor <= amount_minor + debit_notes_minor')
        batch_op.create_check_constraint(op.f('ck_invoices_outstanding_sum'), 'outstanding_minor = amount_minor + debit_notes_minor - paid_minor - credited_minor - written_off_minor')
        batch_op.create_check_constraint(op.f('ck_invoices_movements_non_negative'), 'paid_minor >= 0 AND credited_minor >= 0 AND debit_notes_minor >= 0 AND written_off_minor >= 0')



def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_invoices_movements_non_negative'), type_='check')
        batch_op.drop_constraint(op.f('ck_invoices_outstanding_sum'), type_='check')
        batch_op.drop_constraint(op.f('ck_invoices_outstanding_range'), type_='check')
        batch_op.create_check_constraint(op.f('ck_invoices_outstanding_range'), 'outstanding_minor >= 0 AND outstanding_minor <= amount_minor')
        batch_op.drop_column('paid_at')
        batch_op.drop_column('written_off_minor')
        batch_op.drop_column('credited_minor')
        batch_op.drop_column('paid_minor')
        batch_op.drop_column('debit_notes_minor')

    with op.batch_alter_table('payment_allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_allocations_payment_id'))
        batch_op.drop_index(batch_op.f('ix_payment_allocations_invoice_id'))

    op.drop_table('payment_allocations')
    with op.batch_alter_table('debit_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_debit_notes_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_debit_notes_customer_id'))
        batch_op.drop_index(batch_op.f('ix_debit_notes_created_at'))

    op.drop_table('debit_notes')
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_notes_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_credit_notes_customer_id'))
        batch_op.drop_index(batch_op.f('ix_credit_notes_created_at'))

    op.drop_table('credit_notes')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_status'))
        batch_op.drop_index(batch_op.f('ix_payments_customer_id'))
        batch_op.drop_index(batch_op.f('ix_payments_created_at'))

    op.drop_table('payments')
    op.drop_table('customer_balances')
