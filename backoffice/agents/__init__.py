"""Sales and field agents: their areas, sales, customers, commissions and payouts."""
