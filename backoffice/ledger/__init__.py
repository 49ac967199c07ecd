"""The ledger: expected and completed money rows in the KPI guide's Box 1 shape."""
