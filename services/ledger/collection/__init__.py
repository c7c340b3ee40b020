"""Collection work on the ledger's invoices: the overdue scan, promises to pay, disputes, notes.

Kept import-free: `services/ledger/models.py` imports `collection.models` at its end so that
Alembic and the test templates see these tables.
"""
