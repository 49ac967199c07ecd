"""Contracts over their life: signed (with the expected schedule and the deposit's credit) and ended."""
