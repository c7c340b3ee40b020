"""overdue scan: partial index of collectable invoices

Revision ID: c2f2dcf1a2f5
Revises: 656af266183e
Create Date: 2026-11-23 21:46:25.038001
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db


revision = 'c2f2dcf1a2f5'
down_revision = '656af266183e'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('ix_invoices_collectable', ['id', 'due_date'], unique=False, sqlite_where=sa.text("outstanding_minor > 0 AND status <> 'written_off'"), postgresql_where=sa.text("outstanding_minor > 0 AND status <> 'written_off'"))



def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_invoices_collectable', sqlite_where=sa.text("outstanding_minor > 0 AND status <> 'written_off'"), postgresql_where=sa.text("outstanding_minor > 0 AND status <> 'written_off'"))

