"""Connections to PostgreSQL: every process names itself with its ``application_name``."""

from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool

from backoffice.config import Settings


def connect(settings: Settings, application_name: str, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(
        settings.database_url, application_name=application_name, autocommit=autocommit, connect_timeout=10
    )


def make_pool(settings: Settings, application_name: str, min_size: int = 1, max_size: int = 10) -> ConnectionPool:
    return ConnectionPool(
        settings.database_url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"application_name": application_name},
        open=True,
    )
