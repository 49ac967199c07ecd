"""Reconciliation against a provider's statement (``paygo payments import-statement``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg

from backoffice.config import Settings
from tests.support import count
from tests.support.money import confirmation, make_accounts, make_products


def test_statement_reconciliation(
    money_settings: Settings, conn: psycopg.Connection, server: str, tmp_path: Path
) -> None:
    _, flexible = make_products(conn)
    a, b = make_accounts(conn, money_settings, flexible, 2, "REC")
    for txn, acct, amount in (("T1", a, "500"), ("T2", b, "500"), ("T3", a, "70")):
        httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, amount, txn=txn))
    statement = tmp_path / "mpesa.csv"
    statement.write_text(
        "Transaction_ID,Paid_At,Account,Amount,Currency\n"
        f"T1,2026-11-22T06:38:45,{a.number},500.00,KES\n"  # matches
        f"T2,2026-11-22T06:38:45,{b.number},550.00,KES\n"  # a different amount
        f"T4,2026-11-22T07:00:00,{b.number},105.00,KES\n"  # never arrived by callback
    )  # T3 is not on the statement
    env = {"PAYGO_DATABASE_URL": money_settings.database_url, "PAYGO_ENVIRONMENT": "test"}
    done = subprocess.run([sys.executable, "-m", "paygo.cli", "payments", "import-statement", str(statement),
                           "--provider", "mpesa", "--actor", "carol"], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1, done.stderr  # differences found
    out = done.stdout
    assert "3 statement rows: 1 matched, 1 created" in out
    assert "T4: credited" in out
    assert "T2: amount 550.00 KES on the statement, 500.00 KES received" in out
    assert "T3: 70.00 KES" in out and "not on the statement" in out
    assert count(conn, "select days_granted from contracts where id = %s", b.contract_id) == 7 + 3  # T4 credited
