"""Bad input is refused with every problem named by line, and nothing is written."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from kpi.engine import compute, compute_many, load_portfolio
from kpi.inputs import InputError

HEADER = "date,customer_id,receipt_id,amount,currency,status,type,product_type\n"
PRODUCTS = (
    "product_type,business_model,hardware_cost,transport_cost,import_tax,insurance_cost,installation_cost,"
    "lighting_global_certified,price_per_day,price_to_own,contract_days,deposit_days\n"
    "shs,asset_finance,8000,,,,,true,,,,\n"
    "flex,flexible,5000,,,,,false,50,20000,730,7\n"
)


def _write(tmp: Path, ledger: str, products: str = PRODUCTS) -> tuple[Path, Path]:
    (tmp / "ledger.csv").write_text(HEADER + ledger)
    (tmp / "products.csv").write_text(products)
    return tmp / "ledger.csv", tmp / "products.csv"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "paygo.cli", "kpi", "compute", *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_every_bad_line_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    ledger, products = _write(
        tmp_path,
        "2024-01-01,C1,U1,2000,KES,completed,deposit,shs\n"  # line 2: fine
        "2024-13-01,C1,U1,100,KES,completed,payment,shs\n"  # line 3: bad date
        "2024-02-01,C1,U1,,KES,completed,payment,shs\n"  # line 4: blank amount
        "2024-02-01,C1,U1,12,KES,paid,payment,shs\n"  # line 5: bad status
        "2024-02-01,C1,U1,12,KES,completed,repair,shs\n"  # line 6: unknown type
        "2024-02-01,C2,U2,12,KES,completed,payment,shs\n"  # line 7 + 8: two product types for U2
        "2024-02-02,C2,U2,12,KES,completed,payment,flex\n"
        "2024-02-02,C3,U3,12,KES,completed,payment,nope\n",  # line 9: product type not in the table
    )
    out = tmp_path / "report.json"
    res = _cli("--ledger", str(ledger), "--products", str(products), "--as-of", "2024-06-30", "--out", str(out))
    assert res.returncode == 1
    assert not out.exists() and not list(tmp_path.glob("report*"))
    err = res.stderr
    for needle in ("line 3: date '2024-13-01'", "line 4: blank amount", "line 5: status 'paid'",
                   "line 6: unknown type 'repair'", "U2 names product types flex, shs (lines 7, 8)",
                   "'nope' of unit U3 (lines 9)"):  # fmt: skip
        assert needle in err, err
    assert "line 2" not in err


def test_type_map_turns_company_labels_into_spec_types(tmp_path: Path) -> None:
    ledger, products = _write(
        tmp_path,
        "2024-01-01,C1,U1,2000,KES,completed,Deposit,shs\n"
        "2024-02-01,C1,U1,1000,KES,expected,monthly payment,shs\n"
        "2024-02-01,C1,U1,1000,KES,completed,monthly payment,shs\n"
        "2024-02-03,C1,U1,300,KES,completed,repair,shs\n"
        "2024-03-01,C1,U1,1000,KES,expected,monthly payment,shs\n",
    )
    assert _cli("--ledger", str(ledger), "--products", str(products), "--as-of", "2024-02-10").returncode == 1
    type_map = tmp_path / "map.csv"
    type_map.write_text("label,type\nmonthly payment,payment\nrepair,maintenance_unscheduled\n")
    res = _cli("--ledger", str(ledger), "--products", str(products), "--as-of", "2024-02-10",
               "--type-map", str(type_map))  # fmt: skip
    assert res.returncode == 0, res.stderr
    kpis = json.loads(res.stdout)[0]["kpis"]
    assert kpis["portfolio_size"] == 1
    assert kpis["average_maintenance_cost"] == 300.0
    assert kpis["arpu"] == 1300.0  # (Jan 11, Feb 10]: the payment and the repair, not the deposit


def test_a_foreign_currency_without_a_rate_is_an_error(tmp_path: Path) -> None:
    ledger, products = _write(
        tmp_path,
        "2024-01-01,C1,U1,2000,KES,completed,deposit,shs\n2024-01-05,C1,U1,10,USD,completed,payment,shs\n"
        "2024-03-01,C1,U1,5000,KES,expected,payment,shs\n",
    )
    with pytest.raises(InputError, match="currency USD .*no fx rate to the reporting currency KES"):
        load_portfolio(ledger, products)
    company = tmp_path / "company.json"
    company.write_text(json.dumps({"fx_rates": {"USD": 130.5}}))
    p = load_portfolio(ledger, products, company)
    assert compute(p, date(2024, 1, 30))["kpis"]["arpu"] == 3305.0  # 2000 + 10 × 130.5, exactly
    assert compute(p, date(2024, 1, 31))["kpis"]["arpu"] == 1305.0  # the window (D-30, D] excludes Jan 1


def test_csv_output_and_segments(tmp_path: Path) -> None:
    ledger, products = _write(
        tmp_path,
        "2024-01-01,C1,U1,2000,KES,completed,deposit,shs\n"
        "2024-02-01,C1,U1,1000,KES,expected,payment,shs\n"
        "2024-01-01,C2,U2,500,KES,completed,deposit,flex\n"
        "2024-01-20,C2,U2,700,KES,completed,payment,flex\n",
    )
    res = _cli("--ledger", str(ledger), "--products", str(products), "--as-of", "2024-01-31", "--as-of",
               "2024-01-15", "--by", "product_type", "--format", "csv")  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(res.stdout.splitlines()))
    assert [(r["as_of"], r["segment"]) for r in rows] == [
        ("2024-01-15", "all"), ("2024-01-15", "flex"), ("2024-01-15", "shs"),
        ("2024-01-31", "all"), ("2024-01-31", "flex"), ("2024-01-31", "shs"),
    ]  # fmt: skip
    assert rows[3]["portfolio_size"] == "2" and rows[3]["par.7"] != ""
    results = compute_many(load_portfolio(ledger, products), [date(2024, 1, 31)], by_product_type=True)
    assert sum(r["kpis"]["portfolio_size"] for r in results[1:]) == results[0]["kpis"]["portfolio_size"]
