"""receivables snapshot and inbox

Revision ID: 5a347a30181b
Revises: 4646e96b012b
Create Date: 2026-11-23 20:38:15.862983
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db


revision = '5a347a30181b'
down_revision = '4646e96b012b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('received_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_inbox'))
    )
    op.create_table('receivables_snapshots',
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('open_receivables_minor', sa.BigInteger(), nullable=False),
    sa.Column('overdue_minor', sa.BigInteger(), nullable=False),
    sa.Column('max_days_overdue', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('refreshed_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_event_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('last_event_type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.PrimaryKeyConstraint('customer_id', 'currency', name=op.f('pk_receivables_snapshots'))
    )
    op.create_table('subscriptions',
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('endpoint_id', sa.String(length=36), nullable=False),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('event_types', sa.JSON(), nullable=False),
    sa.Column('registered_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_subscriptions'))
    )
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('receivable_seen_at', shared.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_column('receivable_seen_at')

    op.drop_table('subscriptions')
    op.drop_table('receivables_snapshots')
    op.drop_table('inbox')
