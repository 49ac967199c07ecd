"""Least privilege in the database (issue 22 finding 2), on the real PostgreSQL: every service logs in as
its own role, which is no superuser and owns nothing, so it can neither disable a trigger, change
session_replication_role nor rewrite, delete or truncate the append-only tables (audit_log, stock_moves,
ledger_entries); those refuse the owner too, by trigger. Tables of later migrations get the services'
grants by the owner's default privileges."""

from __future__ import annotations

import psycopg
import pytest

from backoffice.config import DATABASE_ROLES, Settings
from backoffice.db import SERVICE_OF, connect
from backoffice.migrate import available
from tests.support.contracts import lamp_contract

SERVICES = ("web", "ingest", "worker", "delivery")
APPEND_ONLY = ("audit_log", "stock_moves", "ledger_entries")
REFUSED = (psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException)


@pytest.fixture
def rows(settings: Settings, conn: psycopg.Connection) -> dict[str, int]:
    """A row or more in each append-only table (written as the owner, as a test's own data): their counts."""
    contract, _, _ = lamp_contract(conn, settings.secret_key, "R1", "Amina", installed_days_ago=10)
    unit = conn.execute("select unit_id from contracts where id = %s", (contract,)).fetchone()[0]  # type: ignore[index]
    conn.execute("insert into audit_log (actor, action, entity) values ('t', 'seen', 'unit')")
    conn.execute("insert into ledger_entries (contract_id, entry_date, status, type, amount, currency) "
                 "values (%s, '2026-01-01', 'completed', 'payment', 100, 'KES')", (contract,))  # fmt: skip
    conn.execute(
        "insert into stock_moves (actor, unit_id, to_place, reason) values ('t', %s, 'customer', 't')", (unit,)
    )
    conn.commit()
    return {t: _count(conn, t) for t in APPEND_ONLY}


def _count(conn: psycopg.Connection, table: str) -> int:
    return int(conn.execute(f"select count(*) from {table}").fetchone()[0])  # type: ignore[index]


@pytest.mark.parametrize("application", ["api", "device-api", "ingest", "worker", "beat", "kpi", "delivery"])
def test_each_process_logs_in_as_its_services_role(settings: Settings, application: str) -> None:
    with connect(settings, application) as c:
        user = c.execute("select current_user").fetchone()[0]  # type: ignore[index]
    assert user == DATABASE_ROLES[SERVICE_OF[application]]


def test_no_service_role_is_a_superuser_an_owner_or_a_member_of_the_owner(conn: psycopg.Connection) -> None:
    roles = [DATABASE_ROLES[s] for s in SERVICES]
    found = conn.execute(
        """select rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,
                  pg_has_role(rolname, 'paygo_owner', 'member') from pg_roles where rolname = any(%s) order by 1""",
        (roles,),
    ).fetchall()
    assert [r[0] for r in found] == sorted(roles)
    assert all(r[1:] == (False,) * 6 for r in found), found
    owned = conn.execute(
        """select c.relname, r.rolname from pg_class c join pg_roles r on r.oid = c.relowner
             join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and r.rolname <> 'paygo_owner'"""
    ).fetchall()
    assert owned == []  # every table, index, sequence and view is the owner's
    assert conn.execute("select current_user").fetchone() == ("paygo_owner",)


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_can_rewrite_the_append_only_tables_or_lift_their_triggers(
    settings: Settings, rows: dict[str, int], service: str
) -> None:
    """Issue 22 finding 2: the app connected as the superuser that owned audit_log, so ``alter table
    audit_log disable trigger ...; update audit_log ...`` committed, and ``truncate stock_moves`` worked."""
    attempts = [f"update {t} set id = id" for t in APPEND_ONLY]
    attempts += [f"delete from {t}" for t in APPEND_ONLY]
    attempts += [f"truncate {t}" for t in APPEND_ONLY]
    attempts += [f"alter table {t} disable trigger all" for t in APPEND_ONLY]
    attempts += [f"alter table {t} disable trigger user" for t in APPEND_ONLY]
    attempts += [f"drop trigger audit_log_no_update_or_delete on {APPEND_ONLY[0]}"]
    attempts += ["set session_replication_role = replica", "set role paygo_owner", "create role intruder",
                 "alter table audit_log owner to paygo_web", "create table mine (x int)"]  # fmt: skip
    with psycopg.connect(settings.database_url_for(service), autocommit=True) as c:
        assert c.execute("select current_user").fetchone() == (DATABASE_ROLES[service],)
        for sql in attempts:
            with pytest.raises(REFUSED):
                c.execute(sql)
            assert {t: _count(c, t) for t in APPEND_ONLY} == rows, sql
        # What a service does all day is still allowed: adding rows.
        c.execute("insert into audit_log (actor, action, entity) values ('t', 'added', 'unit')")


def test_the_append_only_triggers_refuse_the_owner_too(conn: psycopg.Connection, rows: dict[str, int]) -> None:
    for table in APPEND_ONLY:
        for sql in (f"update {table} set id = id", f"delete from {table}", f"truncate {table}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(sql)
            conn.rollback()


def test_only_the_web_app_reads_the_staff_logins_secrets(settings: Settings, conn: psycopg.Connection) -> None:
    conn.execute("insert into staff_users (username, roles, password_hash) values ('amina', '{admin}', 'h')")
    conn.commit()
    for service in ("ingest", "worker", "delivery"):
        with psycopg.connect(settings.database_url_for(service), autocommit=True) as c:
            assert c.execute("select username, roles from staff_users").fetchall() == [("amina", ["admin"])]
            refused = [
                "select password_hash from staff_users",
                "select * from staff_sessions",
                "select * from login_failures",
                "update staff_users set roles = '{viewer}'",
                "update api_tokens set roles = '{admin}'",
                "insert into api_tokens (name) values ('x')",
            ]
            if service != "ingest":  # the device API takes API tokens (their digests: a copy opens nothing)
                refused.append("select * from api_tokens")
            for sql in refused:  # fmt: skip
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    c.execute(sql)
    with psycopg.connect(settings.database_url_for("web"), autocommit=True) as c:
        assert c.execute("select password_hash from staff_users").fetchall() == [("h",)]


def test_a_table_of_a_later_migration_gets_the_services_grants(settings: Settings, conn: psycopg.Connection) -> None:
    """The owner's default privileges: a migration after 0044 creates a table, and the services may use it."""
    assert available()[-1].version >= "0044"
    conn.execute("create table later_table (id bigserial primary key, note text)")
    conn.commit()
    for service in SERVICES:
        with psycopg.connect(settings.database_url_for(service), autocommit=True) as c:
            c.execute("insert into later_table (note) values (%s)", (service,))
            c.execute("update later_table set note = note")
    assert conn.execute("select count(*) from later_table").fetchone() == (4,)
