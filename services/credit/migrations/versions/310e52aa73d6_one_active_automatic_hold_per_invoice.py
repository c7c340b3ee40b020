"""one active automatic hold per invoice

Revision ID: 310e52aa73d6
Revises: 5a347a30181b
Create Date: 2026-11-23 21:34:27.598881
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db


revision = '310e52aa73d6'
down_revision = '5a347a30181b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('credit_holds', schema=None) as batch_op:
        batch_op.create_index('uq_credit_holds_active_automatic', ['customer_id', 'source_ref'], unique=True, sqlite_where=sa.text("status = 'active' AND kind = 'automatic'"), postgresql_where=sa.text("status = 'active' AND kind = 'automatic'"))


def downgrade() -> None:
    with op.batch_alter_table('credit_holds', schema=None) as batch_op:
        batch_op.drop_index('uq_credit_holds_active_automatic', sqlite_where=sa.text("status = 'active' AND kind = 'automatic'"), postgresql_where=sa.text("status = 'active' AND kind = 'automatic'"))
