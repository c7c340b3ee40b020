"""fulfilment, settlement, exceptions, returns, inbox

Revision ID: aa22a30514dc
Revises: ad36bc4fac39
Create Date: 2026-11-23 20:38:48.437946
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db


revision = 'aa22a30514dc'
down_revision = 'ad36bc4fac39'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('received_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_inbox'))
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
    op.create_table('order_deliveries',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('order_id', sa.String(length=36), nullable=False),
    sa.Column('delivered_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('recorded_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_deliveries_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_deliveries'))
    )
    with op.batch_alter_table('order_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_deliveries_order_id'), ['order_id'], unique=False)

    op.create_table('order_delivery_lines',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('delivery_id', sa.String(length=36), nullable=False),
    sa.Column('line_id', sa.String(length=36), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=3).with_variant(sa.String(length=24), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['order_deliveries.id'], name=op.f('fk_order_delivery_lines_delivery_id_order_deliveries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['line_id'], ['order_lines.id'], name=op.f('fk_order_delivery_lines_line_id_order_lines')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_delivery_lines')),
    sa.UniqueConstraint('delivery_id', 'line_id', name=op.f('uq_order_delivery_lines_delivery_id_line_id'))
    )
    with op.batch_alter_table('order_delivery_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_delivery_lines_delivery_id'), ['delivery_id'], unique=False)

    op.create_table('order_exceptions',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('order_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('owner_department', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('due_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('opened_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('opened_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.Column('resolved_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('resolved_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('overdue_notified_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_exceptions_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_exceptions'))
    )
    with op.batch_alter_table('order_exceptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_exceptions_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_exceptions_status'), ['status'], unique=False)

    op.create_table('order_returns',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('order_id', sa.String(length=36), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('credit_note_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('recorded_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_returns_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_returns'))
    )
    with op.batch_alter_table('order_returns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_returns_order_id'), ['order_id'], unique=False)

    op.create_table('order_return_lines',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('return_id', sa.String(length=36), nullable=False),
    sa.Column('line_id', sa.String(length=36), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=3).with_variant(sa.String(length=24), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['line_id'], ['order_lines.id'], name=op.f('fk_order_return_lines_line_id_order_lines')),
    sa.ForeignKeyConstraint(['return_id'], ['order_returns.id'], name=op.f('fk_order_return_lines_return_id_order_returns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_return_lines')),
    sa.UniqueConstraint('return_id', 'line_id', name=op.f('uq_order_return_lines_return_id_line_id'))
    )
    with op.batch_alter_table('order_return_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_return_lines_return_id'), ['return_id'], unique=False)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invoice_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('order_return_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_return_lines_return_id'))

    op.drop_table('order_return_lines')
    with op.batch_alter_table('order_returns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_returns_order_id'))

    op.drop_table('order_returns')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('invoice_id')

    with op.batch_alter_table('order_delivery_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_delivery_lines_delivery_id'))

    op.drop_table('order_delivery_lines')
    with op.batch_alter_table('order_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_deliveries_order_id'))

    op.drop_table('order_deliveries')
    op.drop_table('subscriptions')
    op.drop_table('inbox')
    with op.batch_alter_table('order_exceptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_exceptions_status'))
        batch_op.drop_index(batch_op.f('ix_order_exceptions_order_id'))

    op.drop_table('order_exceptions')
