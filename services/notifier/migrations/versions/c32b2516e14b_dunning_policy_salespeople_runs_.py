"""dunning policy, salespeople, runs, notifications, charges

Revision ID: c32b2516e14b
Revises: c93f71b8caae
Create Date: 2026-11-23 21:35:02.914533
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db


revision = 'c32b2516e14b'
down_revision = 'c93f71b8caae'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dunning_charges',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('invoice_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('days_charged', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('debit_note_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('posted_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_charges')),
    sa.UniqueConstraint('invoice_id', 'level', 'kind', name=op.f('uq_dunning_charges_invoice_id_level_kind'))
    )
    with op.batch_alter_table('dunning_charges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dunning_charges_run_id'), ['run_id'], unique=False)

    op.create_table('dunning_policies',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('levels', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_policies'))
    )
    op.create_table('dunning_runs',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('invoice_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('threshold_days', sa.Integer(), nullable=False),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('policy_level', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('next_attempt_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_until', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_runs')),
    sa.UniqueConstraint('invoice_id', 'threshold_days', name=op.f('uq_dunning_runs_invoice_id_threshold_days'))
    )
    with op.batch_alter_table('dunning_runs', schema=None) as batch_op:
        batch_op.create_index('ix_dunning_runs_due', ['status', 'next_attempt_at'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('invoice_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('invoice_number', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('salesperson_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('threshold_days', sa.Integer(), nullable=False),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('recipient_role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('recipient_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('next_attempt_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_until', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('invoice_id', 'threshold_days', 'recipient_role', name=op.f('uq_notifications_invoice_id_threshold_days_recipient_role'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_notifications_due', ['status', 'channel', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_salesperson_id'), ['salesperson_id'], unique=False)

    op.create_table('salespeople',
    sa.Column('salesperson_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('salesperson_id', name=op.f('pk_salespeople'))
    )


def downgrade() -> None:
    op.drop_table('salespeople')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_salesperson_id'))
        batch_op.drop_index(batch_op.f('ix_notifications_invoice_id'))
        batch_op.drop_index('ix_notifications_due')
        batch_op.drop_index(batch_op.f('ix_notifications_customer_id'))
        batch_op.drop_index('ix_notifications_created_at_id')

    op.drop_table('notifications')
    with op.batch_alter_table('dunning_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_dunning_runs_due')

    op.drop_table('dunning_runs')
    op.drop_table('dunning_policies')
    with op.batch_alter_table('dunning_charges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dunning_charges_run_id'))

    op.drop_table('dunning_charges')
