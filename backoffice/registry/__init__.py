"""The registry: products, customers, units and contracts."""
