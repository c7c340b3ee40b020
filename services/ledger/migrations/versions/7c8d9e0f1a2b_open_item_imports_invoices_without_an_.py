"""ledger: open-item imports; an imported invoice has no order (issue 15)

On SQLite, making `invoices.order_id` nullable rebuilds the table (Alembic's batch mode),
which the allocations, notes, write-offs and disputes point at: `sqlite_rebuild` does it with
foreign keys off and checked after.

Revision ID: 7c8d9e0f1a2b
Revises: 3a4b5c6d7e8f
Create Date: 2026-12-07 22:29:56.131573
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import shared.db
from shared.migrations import sqlite_rebuild
from shared.numbering import create_sequences, drop_sequences


revision = '7c8d9e0f1a2b'
down_revision = '3a4b5c6d7e8f'
branch_labels = None
depends_on = None

SERIES = ("invoice_import",)


def upgrade() -> None:
    op.create_table('invoice_imports',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('format', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('totals', sa.JSON(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', shared.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_imports')),
    sa.UniqueConstraint('number', name=op.f('uq_invoice_imports_number'))
    )
    with op.batch_alter_table('invoice_imports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_imports_created_at'), ['created_at'], unique=False)

    with sqlite_rebuild(op):
        with op.batch_alter_table('invoices', schema=None) as batch_op:
            batch_op.add_column(sa.Column('import_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True))
            batch_op.alter_column('order_id',
                   existing_type=sa.VARCHAR(length=36),
                   nullable=True)
            batch_op.create_index(batch_op.f('ix_invoices_import_id'), ['import_id'], unique=False)
    create_sequences(op, SERIES)



def downgrade() -> None:
    """Refused while imported invoices exist: they have no order to put back."""
    drop_sequences(op, SERIES)
    with sqlite_rebuild(op):
        with op.batch_alter_table('invoices', schema=None) as batch_op:
            batch_op.drop_index(batch_op.f('ix_invoices_import_id'))
            batch_op.alter_column('order_id',
                   existing_type=sa.VARCHAR(length=36),
                   nullable=False)
            batch_op.drop_column('import_id')

    with op.batch_alter_table('invoice_imports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_imports_created_at'))

    op.drop_table('invoice_imports')
