"""Receivables reports as of a date: aging, DSO, collection effectiveness, salesperson performance."""
