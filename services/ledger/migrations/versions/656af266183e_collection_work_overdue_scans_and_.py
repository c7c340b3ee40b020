"""collection work: overdue scans and crossings, promises, disputes, notes

Revision ID: 656af266183e
Revises: 0d708c6b58d1
Create Date: 2026-11-23 21:37:26.013353
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db


revision = '656af266183e'
down_revision = '0d708c6b58d1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('overdue_scans',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('trigger', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('started_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('started_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('invoices_examined', sa.Integer(), nullable=False),
    sa.Column('crossings_emitted', sa.Integer(), nullable=False),
    sa.Column('promises_broken', sa.Integer(), nullable=False),
    sa.Column('promises_kept', sa.Integer(), nullable=False),
    sa.Column('batches', sa.Integer(), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_overdue_scans'))
    )
    with op.batch_alter_table('overdue_scans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_overdue_scans_as_of'), ['as_of'], unique=False)
        batch_op.create_index(batch_op.f('ix_overdue_scans_started_at'), ['started_at'], unique=False)

    op.create_table('collection_notes',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('invoice_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('salesperson_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('contact_role', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('next_action_on', sa.Date(), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_collection_notes_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collection_notes'))
    )
    with op.batch_alter_table('collection_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collection_notes_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_collection_notes_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_collection_notes_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_collection_notes_next_action_on'), ['next_action_on'], unique=False)

    op.create_table('invoice_disputes',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('invoice_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('salesperson_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('contact_role', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
    sa.Column('opened_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('opened_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('resolved_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('resolution', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_disputes_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_disputes'))
    )
    with op.batch_alter_table('invoice_disputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_disputes_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoice_disputes_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index('uq_invoice_disputes_open', ['invoice_id'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.create_table('overdue_crossings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('invoice_id', sa.String(length=36), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('scan_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_overdue_crossings_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_overdue_crossings'))
    )
    with op.batch_alter_table('overdue_crossings', schema=None) as batch_op:
        batch_op.create_index('uq_overdue_crossings_invoice_level', ['invoice_id', 'level'], unique=True)

    op.create_table('payment_promises',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('invoice_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('salesperson_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('promised_date', sa.Date(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('contact_role', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('paid_since_minor', sa.BigInteger(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_as_of', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_payment_promises_amount_positive')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_payment_promises_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_promises'))
    )
    with op.batch_alter_table('payment_promises', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_promises_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_promises_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_promises_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_promises_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('payment_promises', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_promises_status'))
        batch_op.drop_index(batch_op.f('ix_payment_promises_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_payment_promises_customer_id'))
        batch_op.drop_index(batch_op.f('ix_payment_promises_created_at'))

    op.drop_table('payment_promises')
    with op.batch_alter_table('overdue_crossings', schema=None) as batch_op:
        batch_op.drop_index('uq_overdue_crossings_invoice_level')

    op.drop_table('overdue_crossings')
    with op.batch_alter_table('invoice_disputes', schema=None) as batch_op:
        batch_op.drop_index('uq_invoice_disputes_open', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index(batch_op.f('ix_invoice_disputes_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_invoice_disputes_customer_id'))

    op.drop_table('invoice_disputes')
    with op.batch_alter_table('collection_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_collection_notes_next_action_on'))
        batch_op.drop_index(batch_op.f('ix_collection_notes_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_collection_notes_customer_id'))
        batch_op.drop_index(batch_op.f('ix_collection_notes_created_at'))

    op.drop_table('collection_notes')
    with op.batch_alter_table('overdue_scans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_overdue_scans_started_at'))
        batch_op.drop_index(batch_op.f('ix_overdue_scans_as_of'))

    op.drop_table('overdue_scans')
