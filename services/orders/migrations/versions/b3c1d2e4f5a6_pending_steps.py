"""orders: pending cross-service steps (crash-safe transitions)

Revision ID: b3c1d2e4f5a6
Revises: 9f8f7ad9ed10
Create Date: 2026-12-01 21:30:00
"""
from alembic import op
import sqlalchemy as sa
import shared.db


revision = 'b3c1d2e4f5a6'
down_revision = '9f8f7ad9ed10'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('pending_step', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('step_due_at', shared.db.UTCDateTime(timezone=True), nullable=True))
        batch.create_index(batch.f('ix_orders_step_due_at'), ['step_due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.drop_index(batch.f('ix_orders_step_due_at'))
        batch.drop_column('step_due_at')
        batch.drop_column('pending_step')
