"""webhook endpoints: internal (the services' own inboxes)

Revision ID: 5e1d7a9c4b20
Revises: c32b2516e14b
Create Date: 2026-12-01 20:58:00.000000

An endpoint is internal when the `service` principal created it. Existing endpoints cannot
tell who created them, but `allow_private` is set exactly when the `service` principal gave
the URL, which the services' own subscriptions did: those become internal.
"""
from alembic import op
import sqlalchemy as sa


revision = '5e1d7a9c4b20'
down_revision = 'c32b2516e14b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('internal', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    endpoints = sa.table('webhook_endpoints', sa.column('internal', sa.Boolean()),
                         sa.column('allow_private', sa.Boolean()))
    op.execute(endpoints.update().where(endpoints.c.allow_private == sa.true())
               .values(internal=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_column('internal')
