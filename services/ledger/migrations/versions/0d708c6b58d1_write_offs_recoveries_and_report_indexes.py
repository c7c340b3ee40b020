"""write-offs, recoveries and report indexes

Revision ID: 0d708c6b58d1
Revises: 9bf1b412b6aa
Create Date: 2026-11-23 21:34:41.311430
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db


revision = '0d708c6b58d1'
down_revision = '9bf1b412b6aa'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('write_offs',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('invoice_id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('salesperson_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('responsible', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('proposed_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('proposed_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('approved_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('posted_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rejected_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('rejected_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rejection_reason', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('journal_entry_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('recovered_minor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_write_offs_amount_positive')),
    sa.CheckConstraint('recovered_minor >= 0 AND recovered_minor <= amount_minor', name=op.f('ck_write_offs_recovered_range')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_write_offs_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['journal_entries.id'], name=op.f('fk_write_offs_journal_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_write_offs')),
    sa.UniqueConstraint('number', name=op.f('uq_write_offs_number'))
    )
    with op.batch_alter_table('write_offs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_write_offs_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_write_offs_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_write_offs_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_write_offs_posted_at'), ['posted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_write_offs_salesperson_id'), ['salesperson_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_write_offs_status'), ['status'], unique=False)

    op.create_table('write_off_recoveries',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('write_off_id', sa.String(length=36), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('received_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('journal_entry_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_write_off_recoveries_amount_positive')),
    sa.ForeignKeyConstraint(['journal_entry_id'], ['journal_entries.id'], name=op.f('fk_write_off_recoveries_journal_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['write_off_id'], ['write_offs.id'], name=op.f('fk_write_off_recoveries_write_off_id_write_offs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_write_off_recoveries'))
    )
    with op.batch_alter_table('write_off_recoveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_write_off_recoveries_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_write_off_recoveries_write_off_id'), ['write_off_id'], unique=False)

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('ix_invoices_issued_at', ['issued_at'], unique=False)

    with op.batch_alter_table('payment_allocations', schema=None) as batch_op:
        batch_op.create_index('ix_payment_allocations_journal_entry_id', ['journal_entry_id'], unique=False)

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index('ix_payments_reversed_at', ['reversed_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_reversed_at')

    with op.batch_alter_table('payment_allocations', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_allocations_journal_entry_id')

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_invoices_issued_at')

    with op.batch_alter_table('write_off_recoveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_write_off_recoveries_write_off_id'))
        batch_op.drop_index(batch_op.f('ix_write_off_recoveries_received_at'))

    op.drop_table('write_off_recoveries')
    with op.batch_alter_table('write_offs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_write_offs_status'))
        batch_op.drop_index(batch_op.f('ix_write_offs_salesperson_id'))
        batch_op.drop_index(batch_op.f('ix_write_offs_posted_at'))
        batch_op.drop_index(batch_op.f('ix_write_offs_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_write_offs_customer_id'))
        batch_op.drop_index(batch_op.f('ix_write_offs_created_at'))

    op.drop_table('write_offs')
