"""Ordered SQL migrations from ``backoffice/migrations/NNNN_name.sql``, recorded in ``schema_migrations``.

Each file runs in its own transaction; re-running applies only what is new. An advisory lock
serialises concurrent runs (two workers starting at once).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

_LOCK_ID = 727_001  # advisory lock key for migrations
# The platform's database roles, created by a superuser before the first migration (`paygo db roles`).
ROLES_SQL = Path(__file__).parent / "database_roles.sql"


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    out = []
    for f in sorted((Path(__file__).parent / "migrations").iterdir(), key=lambda p: p.name):
        if f.name.endswith(".sql"):
            version, _, rest = f.name.partition("_")
            out.append(Migration(version, rest.removesuffix(".sql"), f.read_text()))
    return out


def migrate(conn: psycopg.Connection, until: str | None = None) -> list[str]:
    """Apply pending migrations (up to version ``until`` included, if given); returns the versions applied
    now. The connection must be autocommit, and log in as the owner role (paygo_owner, deploy/database.md):
    what a migration creates is then the owner's, and the services get their grants on it."""
    if not conn.autocommit:
        raise MigrationError("migrate() needs an autocommit connection: each file is its own transaction")
    conn.execute("select pg_advisory_lock(%s)", (_LOCK_ID,))
    try:
        conn.execute(
            """create table if not exists schema_migrations (
                   version text primary key, name text not null, checksum text not null,
                   applied_at timestamptz not null default now())"""
        )
        done: dict[str, str] = dict(conn.execute("select version, checksum from schema_migrations").fetchall())
        applied = []
        for m in available():
            if until is not None and m.version > until:
                break
            if m.version in done:
                if done[m.version] != m.checksum:
                    log.warning("migration %s_%s changed after it was applied", m.version, m.name)
                continue
            with conn.transaction():
                conn.execute(m.sql.encode())  # a script of many statements: no parameters, simple protocol
                conn.execute(
                    "insert into schema_migrations (version, name, checksum) values (%s, %s, %s)",
                    (m.version, m.name, m.checksum),
                )
            log.info("applied migration %s_%s", m.version, m.name)
            applied.append(m.version)
        return applied
    finally:
        conn.execute("select pg_advisory_unlock(%s)", (_LOCK_ID,))
