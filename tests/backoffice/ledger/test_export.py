"""``paygo ledger export``: the ledger and products in the KPI engine's input format."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from backoffice.config import Settings
from backoffice.credit.service import apply_payment
from backoffice.ledger.export import export
from tests.support.money import MONEY_NOW, make_accounts, make_products

pytestmark = pytest.mark.clock(MONEY_NOW)


def test_ledger_export_as_of(money_settings: Settings, conn: psycopg.Connection, tmp_path: Path) -> None:
    asset, _ = make_products(conn)
    acct = make_accounts(conn, money_settings, asset, 1, "EXP")[0]
    apply_payment(conn, acct.contract_id, 200_000, date(2026, 11, 1), money_settings.secret_key)
    apply_payment(conn, acct.contract_id, 150_000, date(2026, 12, 1), money_settings.secret_key)
    conn.commit()
    ledger, products = export(conn, tmp_path, as_of=date(2026, 11, 15))
    rows = ledger.read_text().splitlines()
    assert rows[0] == "date,customer_id,receipt_id,amount,currency,status,type,product_type"
    completed = [r for r in rows if ",completed," in r]
    expected = [r for r in rows if ",expected," in r]
    # The deposit paid on 1 November; the instalment paid on 1 December is after the as-of date.
    assert completed == [f"2026-11-01,{acct.customer_id},{acct.number},2000.00,KES,completed,deposit,SHS-A"]
    assert len(expected) == 13  # the whole schedule: deposit + 12 instalments, whatever the as-of date
    # The schedule of the product the test made: 2,000 KES on signing, then 1,500 KES every 30 days.
    schedule = [(date(2026, 11, 1), "2000.00", "deposit")] + [
        (date(2026, 11, 1) + timedelta(days=30 * i), "1500.00", "payment") for i in range(1, 13)
    ]
    assert expected == [f"{d},{acct.customer_id},{acct.number},{a},KES,expected,{t},SHS-A" for d, a, t in schedule]
    assert len(rows) == 1 + 1 + 13  # the header, the deposit paid, the schedule
    assert "SHS-A,asset_finance,30000.00" in products.read_text()
