"""``paygo ledger export``: the ledger and products table as the KPI engine's input files (docs/kpi_definitions.md
§1)."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import psycopg

from backoffice.ledger import repository
from backoffice.money import to_decimal

PRODUCT_MONEY = ("hardware_cost", "transport_cost", "import_tax", "insurance_cost", "installation_cost",
                 "price_per_day", "price_to_own")  # fmt: skip
PRODUCT_HEADER = ("product_type", "business_model", *PRODUCT_MONEY[:5], "lighting_global_certified", *PRODUCT_MONEY[5:],
                  "contract_days", "deposit_days")  # fmt: skip


def export(conn: psycopg.Connection, out: Path, as_of: date | None = None) -> tuple[Path, Path]:
    """Write ``ledger.csv`` and ``products.csv`` into ``out``; each file appears whole or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    ledger, products = out / "ledger.csv", out / "products.csv"
    partial = ledger.with_name("ledger.csv.partial")
    with partial.open("wb") as f:
        repository.copy_ledger_csv(conn, f, as_of)
    partial.replace(ledger)
    export_products(conn, out)
    return ledger, products


def export_products(conn: psycopg.Connection, out: Path) -> Path:
    """Write ``products.csv`` into ``out`` (whole or not at all)."""
    products = out / "products.csv"
    partial = products.with_name("products.csv.partial")
    with partial.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PRODUCT_HEADER)
        for p in repository.product_rows(conn):
            money = {k: "" if p[k] is None else to_decimal(int(p[k]), str(p["currency"])) for k in PRODUCT_MONEY}
            writer.writerow([
                p["code"], p["business_model"], *(money[k] for k in PRODUCT_MONEY[:5]),
                str(p["lighting_global_certified"]).lower(), *(money[k] for k in PRODUCT_MONEY[5:]),
                "" if p["contract_days"] is None else p["contract_days"],
                "" if p["deposit_days"] is None else p["deposit_days"],
            ])  # fmt: skip
    partial.replace(products)
    return products
