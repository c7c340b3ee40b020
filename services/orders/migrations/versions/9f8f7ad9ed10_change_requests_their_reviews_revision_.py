"""change requests, their reviews, revision snapshots

Revision ID: 9f8f7ad9ed10
Revises: aa22a30514dc
Create Date: 2026-11-23 21:35:20.552510
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db


revision = '9f8f7ad9ed10'
down_revision = 'aa22a30514dc'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('order_change_requests',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('order_id', sa.String(length=36), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('base_revision', sa.Integer(), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('differences', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('impact', sa.Text(), nullable=True),
    sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('requested_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rejection_reasons', sa.JSON(), nullable=False),
    sa.Column('withdrawn_reason', sa.Text(), nullable=True),
    sa.Column('agreement_number', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('signed_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('applied_revision', sa.Integer(), nullable=True),
    sa.Column('credit_adjustment', sa.JSON(), nullable=True),
    sa.Column('closed_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('closed_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_change_requests_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_change_requests')),
    sa.UniqueConstraint('number', name=op.f('uq_order_change_requests_number'))
    )
    with op.batch_alter_table('order_change_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_change_requests_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_change_requests_state'), ['state'], unique=False)

    op.create_table('order_revisions',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('order_id', sa.String(length=36), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('terms', sa.JSON(), nullable=False),
    sa.Column('replaced_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('replaced_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('replaced_by_trigger', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('replaced_by_change_request_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_revisions_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_revisions')),
    sa.UniqueConstraint('order_id', 'revision', name=op.f('uq_order_revisions_order_id_revision'))
    )
    with op.batch_alter_table('order_revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_revisions_order_id'), ['order_id'], unique=False)

    op.create_table('order_change_reviews',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('change_request_id', sa.String(length=36), nullable=False),
    sa.Column('department', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('comment', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['change_request_id'], ['order_change_requests.id'], name=op.f('fk_order_change_reviews_change_request_id_order_change_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_change_reviews')),
    sa.UniqueConstraint('change_request_id', 'department', name=op.f('uq_order_change_reviews_change_request_id_department'))
    )
    with op.batch_alter_table('order_change_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_change_reviews_change_request_id'), ['change_request_id'], unique=False)

    with op.batch_alter_table('order_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('change_request_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True))
        batch_op.add_column(sa.Column('change_request_from', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('change_request_to', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('order_history', schema=None) as batch_op:
        batch_op.drop_column('change_request_to')
        batch_op.drop_column('change_request_from')
        batch_op.drop_column('change_request_id')

    with op.batch_alter_table('order_change_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_change_reviews_change_request_id'))

    op.drop_table('order_change_reviews')
    with op.batch_alter_table('order_revisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_revisions_order_id'))

    op.drop_table('order_revisions')
    with op.batch_alter_table('order_change_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_change_requests_state'))
        batch_op.drop_index(batch_op.f('ix_order_change_requests_order_id'))

    op.drop_table('order_change_requests')
