"""Collection work on the ledger's invoices: the overdue scan, promises to pay, disputes, notes.

Kept import-free: `services/ledger/__init__.py` imports `collection.models` so that Alembic
and the test templates see these tables.
"""
