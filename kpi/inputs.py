"""Reading and validating KPI inputs (kpi/SPEC.md §1): the ledger, the products table, company data.

Money is parsed as exact decimals, converted to the reporting currency exactly, and then held as
integers scaled by a common power of ten, so every sum and comparison is exact and fast.
"""

from __future__ import annotations

import csv
import decimal
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

TYPES = ("deposit", "payment", "maintenance_scheduled", "maintenance_unscheduled", "late_fee", "return")
STATUSES = ("expected", "completed")
LEDGER_COLUMNS = ("date", "customer_id", "receipt_id", "amount", "currency", "status", "type", "product_type")
PRODUCT_COLUMNS = (
    "product_type", "business_model", "hardware_cost", "transport_cost", "import_tax", "insurance_cost",
    "installation_cost", "lighting_global_certified", "price_per_day", "price_to_own", "contract_days", "deposit_days",
)  # fmt: skip
MAX_ERRORS_SHOWN = 30


class InputError(Exception):
    """Input that failed validation; ``errors`` lists every problem, each naming its file and line."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f"\n… and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        super().__init__("\n".join(shown) + more)


@dataclass(frozen=True)
class LedgerRow:
    line: int
    day: date
    customer_id: str
    receipt_id: str
    amount: Decimal
    currency: str
    status: str
    type: str
    product_type: str


@dataclass(frozen=True)
class Product:
    product_type: str
    business_model: str  # "asset_finance" | "flexible"
    unit_cost: Decimal
    certified: bool
    price_per_day: Decimal | None
    price_to_own: Decimal | None
    contract_days: int | None
    deposit_days: int


@dataclass
class Company:
    ebitda: Decimal | None = None
    reporting_currency: str | None = None
    fx_rates: dict[str, Decimal] = field(default_factory=dict)
    balance_sheet: list[dict[str, Any]] | None = None


def _dec(text: str) -> Decimal | None:
    try:
        d = Decimal(text.strip())
    except (decimal.InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _reader(path: Path, what: str) -> tuple[list[str], Iterable[list[str]]]:
    f = path.open(newline="", encoding="utf-8-sig")
    rows = csv.reader(f)
    try:
        header = [h.strip().lower() for h in next(rows)]
    except StopIteration:
        raise InputError([f"{path}: the {what} file is empty (a header row is needed)"]) from None
    return header, rows


def read_type_map(path: Path | None) -> dict[str, str]:
    """A company's own type labels -> the standard types; a CSV of ``label,type`` rows."""
    if path is None:
        return {}
    mapping: dict[str, str] = {}
    errors = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                errors.append(f"{path} line {line}: expected 'label,type'")
                continue
            label, target = row[0].strip().lower(), row[1].strip().lower()
            if line == 1 and target not in TYPES and label in ("label", "from", "source"):
                continue  # a header
            if target not in TYPES:
                errors.append(f"{path} line {line}: '{row[1].strip()}' is not one of {', '.join(TYPES)}")
                continue
            mapping[label] = target
    if errors:
        raise InputError(errors)
    return mapping


def read_ledger(path: Path, type_map: dict[str, str] | None = None, errors: list[str] | None = None) -> list[LedgerRow]:
    """The ledger's valid rows. Problems go to ``errors`` when given (so that later checks can add
    theirs), else they raise InputError."""
    type_map = type_map or {}
    collect = errors is not None
    header, rows = _reader(path, "ledger")
    missing = [c for c in LEDGER_COLUMNS if c not in header]
    if missing:
        raise InputError([f"{path} line 1: missing column(s) {', '.join(missing)}"])
    idx = {c: header.index(c) for c in LEDGER_COLUMNS}
    out: list[LedgerRow] = []
    errors = errors if errors is not None else []
    for line, raw in enumerate(rows, start=2):
        if not raw or not "".join(raw).strip():
            continue
        if len(raw) < len(header):
            raw = raw + [""] * (len(header) - len(raw))
        v = {c: raw[i].strip() for c, i in idx.items()}
        problems = []
        try:
            day = date.fromisoformat(v["date"])
        except ValueError:
            problems.append(f"date {v['date']!r} is not YYYY-MM-DD" if v["date"] else "blank date")
            day = date.min
        amount = _dec(v["amount"])
        if amount is None:
            problems.append(f"amount {v['amount']!r} is not a number" if v["amount"] else "blank amount")
        status = v["status"].lower()
        if status not in STATUSES:
            problems.append(f"status {v['status']!r} is neither 'expected' nor 'completed'")
        typ = v["type"].lower()
        typ = type_map.get(typ, typ)
        if typ not in TYPES:
            problems.append(f"unknown type {v['type']!r} (use one of {', '.join(TYPES)} or map it with --type-map)")
        if not v["receipt_id"]:
            problems.append("blank receipt_id")
        if not v["currency"]:
            problems.append("blank currency")
        if problems:
            errors.append(f"{path} line {line}: " + "; ".join(problems))
            continue
        assert amount is not None
        out.append(
            LedgerRow(line, day, v["customer_id"], v["receipt_id"], amount, v["currency"].upper(), status, typ,
                      v["product_type"])
        )  # fmt: skip
    if errors and not collect:
        raise InputError(errors)
    return out


def _bool(text: str) -> bool | None:
    t = text.strip().lower()
    if t in ("true", "yes", "y", "1", "t"):
        return True
    if t in ("false", "no", "n", "0", "f", ""):
        return False
    return None


def read_products(path: Path) -> dict[str, Product]:
    header, rows = _reader(path, "products")
    for required in ("product_type", "business_model"):
        if required not in header:
            raise InputError([f"{path} line 1: missing column {required}"])
    products: dict[str, Product] = {}
    errors: list[str] = []
    for line, raw in enumerate(rows, start=2):
        if not raw or not "".join(raw).strip():
            continue
        v = {c: (raw[header.index(c)].strip() if c in header and header.index(c) < len(raw) else "")
             for c in PRODUCT_COLUMNS}  # fmt: skip
        problems = []
        model = v["business_model"].lower()
        if model not in ("asset_finance", "flexible"):
            problems.append(f"business_model {v['business_model']!r} is neither asset_finance nor flexible")
        money: dict[str, Decimal | None] = {}
        for c in ("hardware_cost", "transport_cost", "import_tax", "insurance_cost", "installation_cost",
                  "price_per_day", "price_to_own"):  # fmt: skip
            money[c] = _dec(v[c]) if v[c] else None
            if v[c] and money[c] is None:
                problems.append(f"{c} {v[c]!r} is not a number")
        ints: dict[str, int | None] = {}
        for c in ("contract_days", "deposit_days"):
            d = _dec(v[c]) if v[c] else None
            if v[c] and (d is None or d != d.to_integral_value()):
                problems.append(f"{c} {v[c]!r} is not a whole number of days")
            ints[c] = int(d) if d is not None and d == d.to_integral_value() else None
        certified = _bool(v["lighting_global_certified"])
        if certified is None:
            problems.append(f"lighting_global_certified {v['lighting_global_certified']!r} is not true/false")
        ppd = money["price_per_day"]
        if model == "flexible" and (ppd is None or ppd <= 0):
            problems.append("a flexible product needs a positive price_per_day")
        if v["product_type"] in products:
            problems.append(f"product_type {v['product_type']!r} appears twice")
        if problems:
            errors.append(f"{path} line {line}: " + "; ".join(problems))
            continue
        cost = sum((money[c] or Decimal(0) for c in ("hardware_cost", "transport_cost", "import_tax",
                                                     "insurance_cost", "installation_cost")), Decimal(0))  # fmt: skip
        products[v["product_type"]] = Product(
            v["product_type"],
            model,
            cost,
            bool(certified),
            ppd,
            money["price_to_own"],
            ints["contract_days"],
            ints["deposit_days"] or 0,
        )
    if errors:
        raise InputError(errors)
    return products


def read_company(path: Path | None) -> Company:
    if path is None:
        return Company()
    try:
        data = json.loads(path.read_text(), parse_float=Decimal, parse_int=Decimal)
    except (OSError, json.JSONDecodeError) as err:
        raise InputError([f"{path}: not valid JSON ({err})"]) from None
    if not isinstance(data, dict):
        raise InputError([f"{path}: expected a JSON object"])
    rates = data.get("fx_rates") or {}
    if not isinstance(rates, dict) or not all(isinstance(r, Decimal) and r > 0 for r in rates.values()):
        raise InputError([f"{path}: fx_rates must map currency codes to positive numbers"])
    sheet = data.get("balance_sheet")
    if sheet is not None:
        ok = isinstance(sheet, list) and all(
            isinstance(e, dict) and isinstance(e.get("currency"), str)
            and all(isinstance(e.get(k), Decimal) for k in ("assets", "liabilities", "equity"))
            for e in sheet
        )  # fmt: skip
        if not ok:
            raise InputError([f"{path}: balance_sheet entries need currency, assets, liabilities and equity"])
    ebitda = data.get("ebitda")
    if ebitda is not None and not isinstance(ebitda, Decimal):
        raise InputError([f"{path}: ebitda must be a number"])
    currency = data.get("reporting_currency")
    return Company(
        ebitda=ebitda,
        reporting_currency=currency.upper() if isinstance(currency, str) else None,
        fx_rates={k.upper(): v for k, v in rates.items()},
        balance_sheet=sheet,
    )
