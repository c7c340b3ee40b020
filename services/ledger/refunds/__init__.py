"""Refunds: a customer's unapplied cash paid back (four eyes above a set amount), reversible."""
