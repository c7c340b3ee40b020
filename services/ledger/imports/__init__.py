"""Open items brought from another system: invoices with their own numbers, dates and
outstanding amounts, imported in bulk as the customers' opening receivables."""
