"""notifier: a customer's reminders of one level go out as one letter (issue 15)

Revision ID: a1b2c3d4e5f7
Revises: 4a5b6c7d8e9f
Create Date: 2026-12-07 23:19:53.927913
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db


revision = 'a1b2c3d4e5f7'
down_revision = '4a5b6c7d8e9f'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('letter_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_notifications_letter_id'), ['letter_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_letter_id'))
        batch_op.drop_column('letter_id')

