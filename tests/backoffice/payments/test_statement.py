"""Reconciliation against a provider's statement (``paygo payments import-statement``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from tests.support import count
from tests.support.money import MONEY_NOW, confirmation, make_accounts, make_products

pytestmark = pytest.mark.clock(MONEY_NOW)


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


def test_a_statement_line_whose_payment_bought_no_light_is_a_difference_and_momo_is_refused(
    money_settings: Settings, conn: psycopg.Connection, server: str, tmp_path: Path
) -> None:
    _, flexible = make_products(conn)
    (a,) = make_accounts(conn, money_settings, flexible, 1, "RCU")
    typo = a.number[:-1] + str((int(a.number[-1]) + 3) % 10)
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(typo, "70", txn="U1"))  # unmatched
    statement = tmp_path / "mpesa.csv"
    statement.write_text(f"Transaction_ID,Paid_At,Account,Amount,Currency\nU1,2026-11-22T06:38:45,{typo},70.00,KES\n")
    env = {**os.environ, "PAYGO_DATABASE_URL": money_settings.database_url, "PAYGO_ENVIRONMENT": "test"}

    def run(provider: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "paygo.cli", "payments", "import-statement", str(statement),
                               "--provider", provider, "--actor", "carol"], env=env, capture_output=True, text=True,
                              timeout=60)  # fmt: skip

    done = run("mpesa")
    assert done.returncode == 1 and "U1: the payment is unmatched here" in done.stdout, done.stdout
    momo = run("momo")
    assert momo.returncode == 1 and "MoMo statements cannot be reconciled" in momo.stdout + momo.stderr
    assert count(conn, "select count(*) from payment_inbox") == 1
