"""credit profiles, holds, guarantees, inquiries, assets, reservations, evaluations

Revision ID: 4646e96b012b
Revises: c893b8779e8c
Create Date: 2026-11-23 19:29:23.498639
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db


revision = '4646e96b012b'
down_revision = 'c893b8779e8c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credit_evaluations',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('inputs', sa.JSON(), nullable=False),
    sa.Column('factors', sa.JSON(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('grade', sqlmodel.sql.sqltypes.AutoString(length=1), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('recommended_limit_minor', sa.BigInteger(), nullable=False),
    sa.Column('recommended_terms_days', sa.Integer(), nullable=False),
    sa.Column('recommended_policy', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('applied_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('applied_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_credit_evaluations_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_evaluations'))
    )
    with op.batch_alter_table('credit_evaluations', schema=None) as batch_op:
        batch_op.create_index('ix_credit_evaluations_customer_created', ['customer_id', 'created_at'], unique=False)

    op.create_table('credit_holds',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('source_ref', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('placed_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('placed_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('released_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('released_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_credit_holds_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_holds'))
    )
    with op.batch_alter_table('credit_holds', schema=None) as batch_op:
        batch_op.create_index('ix_credit_holds_customer_status', ['customer_id', 'status'], unique=False)

    op.create_table('credit_inquiries',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('inquired_on', sa.Date(), nullable=False),
    sa.Column('rating', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('defaults_count', sa.Integer(), nullable=False),
    sa.Column('lawsuits_count', sa.Integer(), nullable=False),
    sa.Column('summary', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_credit_inquiries_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_inquiries'))
    )
    with op.batch_alter_table('credit_inquiries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_inquiries_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_inquiries_customer_id'), ['customer_id'], unique=False)

    op.create_table('credit_profiles',
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('limit_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('terms_days', sa.Integer(), nullable=False),
    sa.Column('grade', sqlmodel.sql.sqltypes.AutoString(length=1), nullable=True),
    sa.Column('policy', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('evaluation_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('limit_minor >= 0', name=op.f('ck_credit_profiles_limit_non_negative')),
    sa.CheckConstraint('terms_days >= 0', name=op.f('ck_credit_profiles_terms_non_negative')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_credit_profiles_customer_id_customers')),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_credit_profiles'))
    )
    op.create_table('customer_assets',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('value_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('encumbered', sa.Boolean(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('value_minor >= 0', name=op.f('ck_customer_assets_value_non_negative')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_assets_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_assets'))
    )
    with op.batch_alter_table('customer_assets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_assets_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_assets_customer_id'), ['customer_id'], unique=False)

    op.create_table('guarantees',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('released_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('released_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_guarantees_amount_positive')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_guarantees_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guarantees'))
    )
    with op.batch_alter_table('guarantees', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guarantees_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_guarantees_customer_id'), ['customer_id'], unique=False)

    op.create_table('reservations',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('order_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('decided_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('invoice_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('released_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('converted_at', shared.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_reservations_amount_positive')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_reservations_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservations'))
    )
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.create_index('ix_reservations_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_reservations_customer_status', ['customer_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_reservations_order_id'), ['order_id'], unique=False)
        batch_op.create_index('uq_reservations_live_order', ['order_id'], unique=True, sqlite_where=sa.text("status IN ('active', 'converted')"), postgresql_where=sa.text("status IN ('active', 'converted')"))



def downgrade() -> None:
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_index('uq_reservations_live_order', sqlite_where=sa.text("status IN ('active', 'converted')"), postgresql_where=sa.text("status IN ('active', 'converted')"))
        batch_op.drop_index(batch_op.f('ix_reservations_order_id'))
        batch_op.drop_index('ix_reservations_customer_status')
        batch_op.drop_index('ix_reservations_created_at_id')

    op.drop_table('reservations')
    with op.batch_alter_table('guarantees', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guarantees_customer_id'))
        batch_op.drop_index(batch_op.f('ix_guarantees_created_at'))

    op.drop_table('guarantees')
    with op.batch_alter_table('customer_assets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_assets_customer_id'))
        batch_op.drop_index(batch_op.f('ix_customer_assets_created_at'))

    op.drop_table('customer_assets')
    op.drop_table('credit_profiles')
    with op.batch_alter_table('credit_inquiries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_inquiries_customer_id'))
        batch_op.drop_index(batch_op.f('ix_credit_inquiries_created_at'))

    op.drop_table('credit_inquiries')
    with op.batch_alter_table('credit_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_holds_customer_status')

    op.drop_table('credit_holds')
    with op.batch_alter_table('credit_evaluations', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_evaluations_customer_created')

    op.drop_table('credit_evaluations')
