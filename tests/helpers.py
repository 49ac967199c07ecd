"""Moved to ``tests.support``; this name stays only until tests/backoffice/devices/test_broker.py
imports ``wait_for`` from there. Import from ``tests.support``."""

from tests.support import wait_for

__all__ = ["wait_for"]
