"""Reading and validating KPI inputs (docs/kpi_definitions.md §1): the ledger, the products table, company data.

Money is parsed as exact decimals, converted to the reporting currency exactly, and then held as
integers scaled by a common power of ten, so every sum and comparison is exact and fast.

Files are read as UTF-8 (a leading UTF-8 byte-order mark, as Excel's "CSV UTF-8" writes, is
harmless and skipped). Anything else is refused with its file and line: UTF-16 or UTF-32 text, bytes
that are not UTF-8 (Latin-1, Windows-1252), NUL bytes, a line longer than ``MAX_LINE_BYTES``, a
number that is not a plain decimal or is absurdly large or precise, a date outside
``FIRST_DAY``…``LAST_DAY``, a path that is not a regular file.
"""

from __future__ import annotations

import csv
import json
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from backoffice.textfiles import FileProblems, TextFileError, line_problem, skip_bom, text_lines

TYPES = ("deposit", "payment", "maintenance_scheduled", "maintenance_unscheduled", "late_fee", "return")
STATUSES = ("expected", "completed")
LEDGER_COLUMNS = ("date", "customer_id", "receipt_id", "amount", "currency", "status", "type", "product_type")
PRODUCT_COLUMNS = (
    "product_type", "business_model", "hardware_cost", "transport_cost", "import_tax", "insurance_cost",
    "installation_cost", "lighting_global_certified", "price_per_day", "price_to_own", "contract_days", "deposit_days",
)  # fmt: skip

# What a plausible input holds. A ledger line is ~100 bytes; no PAYGO amount, price or cost comes
# near a trillion in any currency; 12 decimals is the engine's finest scale; a ledger row (due or
# paid) before 1990 or after 2099 is a typo or garbage, not a contract.
MAX_LINE_BYTES = 1 << 20
MAX_JSON_BYTES = 1 << 20
MAX_MONEY = Decimal(10) ** 12
MAX_DECIMALS = 12
MAX_DAYS = 36_500
MAX_FX_RATE = Decimal(10) ** 6
MAX_BALANCE = Decimal(10) ** 18
FIRST_DAY, LAST_DAY = date(1990, 1, 1), date(2099, 12, 31)
DEFAULT_WRITE_OFF_DPD = 180

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")  # an ISO 4217 code


class InputError(FileProblems):
    """Input that failed validation; ``errors`` lists every problem, each naming its file and line."""


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
    # docs/kpi_definitions.md §Q2: a unit more than this many days past due is written off (and stays so).
    write_off_dpd: int = DEFAULT_WRITE_OFF_DPD


# --- numbers and dates ---------------------------------------------------------------------------


def decimals(value: Decimal) -> int:
    """Decimal places that matter: 1.500 has 1, 1E+3 has 0 (without rounding in any context)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: NaN and infinities never get here
    if not any(digits):
        return 0
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + zeros))


def _dec(text: str) -> Decimal | None:
    """A plain decimal ("12", "-0.5", "1e3"), or None: no NaN, infinity, digit separators ("1_000")
    or non-ASCII digits, all of which Python's Decimal would accept."""
    t = text.strip()
    return Decimal(t) if _DECIMAL.fullmatch(t) else None


def _money(name: str, text: str, negative: bool = True) -> tuple[Decimal | None, str | None]:
    """(value, None), or (None, why not) for a value that is not a plain, plausible amount of money."""
    value = _dec(text)
    if value is None:
        return None, f"{name} {_shown(text)} is not a number"
    if abs(value) >= MAX_MONEY:
        return None, f"{name} {_shown(text)} is out of range (at most {MAX_MONEY:,} in absolute value)"
    if decimals(value) > MAX_DECIMALS:
        return None, f"{name} {_shown(text)} has more than {MAX_DECIMALS} decimals"
    if value < 0 and not negative:
        return None, f"{name} {_shown(text)} is negative"
    return value, None


def _shown(text: str, limit: int = 40) -> str:
    """A value quoted for an error line: short, one line."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _day(text: str) -> tuple[date | None, str | None]:
    if not text:
        return None, "blank date"
    if not _ISO_DATE.fullmatch(text):
        return None, f"date {_shown(text)} is not YYYY-MM-DD"
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None, f"date {_shown(text)} is not a calendar date"
    if not FIRST_DAY <= day <= LAST_DAY:
        return None, f"date {text} is out of range ({FIRST_DAY} to {LAST_DAY})"
    return day, None


# --- files -----------------------------------------------------------------------------------------


def check_file(path: Path, what: str) -> None:
    """A regular file, else InputError naming it: a directory, a missing path, a pipe or a device
    (the ledger may be read twice: by the fast reader, then by the careful one)."""
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise InputError([f"{path}: cannot read the {what} file ({err.strerror or err})"]) from None
    if stat.S_ISDIR(mode):
        raise InputError([f"{path}: is a directory, not a {what} file"])
    if not stat.S_ISREG(mode):
        raise InputError([f"{path}: is not a regular file (a {what} file must be a file on disk)"])


def _open(path: Path, what: str) -> IO[bytes]:
    """The file opened for reading past a UTF-8 byte-order mark; UTF-16 and UTF-32 refused whole."""
    check_file(path, what)
    try:
        f = path.open("rb")
    except OSError as err:
        raise InputError([f"{path}: cannot read the {what} file ({err.strerror or err})"]) from None
    try:
        skip_bom(f, path)
    except TextFileError as err:
        f.close()
        raise InputError(err.problems) from None
    return f


def _records(path: Path, what: str, errors: list[str]) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each CSV record, blank ones included; problems go to ``errors``."""
    # csv's own field limit (128 kB) is below our line limit: a long field is one of our lines.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    with _open(path, what) as f:
        reader = csv.reader(text_lines(f, path, errors, MAX_LINE_BYTES))
        start = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except TextFileError as err:
                raise InputError(err.problems) from None
            except csv.Error as err:
                errors.append(f"{path} line {start}: {err}")
                start = reader.line_num + 1
                continue
            yield start, row
            start = reader.line_num + 1


def _reader(path: Path, what: str, errors: list[str]) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header (names stripped, lower case) and the records after it. A file without a readable
    header is refused at once: nothing after it can be interpreted."""
    found = len(errors)
    records = _records(path, what, errors)
    first = next(records, None)
    if len(errors) > found:
        raise InputError(errors[found:])
    if first is None:
        raise InputError([f"{path}: the {what} file is empty (a header row is needed)"])
    return [h.strip().lower() for h in first[1]], records


def _blank(row: list[str]) -> bool:
    return not row or not "".join(row).strip()


# --- the files of docs/kpi_definitions.md §1 -----------------------------------------------------------------------


def read_type_map(path: Path | None) -> dict[str, str]:
    """A company's own type labels -> the standard types; a CSV of ``label,type`` rows."""
    if path is None:
        return {}
    mapping: dict[str, str] = {}
    errors: list[str] = []
    for line, row in _records(path, "type map", errors):
        if _blank(row):
            continue
        if len(row) < 2:
            errors.append(f"{path} line {line}: expected 'label,type'")
            continue
        label, target = row[0].strip().lower(), row[1].strip().lower()
        if line == 1 and target not in TYPES and label in ("label", "from", "source"):
            continue  # a header
        if target not in TYPES:
            errors.append(f"{path} line {line}: {_shown(row[1].strip())} is not one of {', '.join(TYPES)}")
            continue
        mapping[label] = target
    if errors:
        raise InputError(errors)
    if not mapping:
        raise InputError([f"{path}: the type map has no 'label,type' rows"])
    return mapping


def read_ledger(path: Path, type_map: dict[str, str] | None = None, errors: list[str] | None = None) -> list[LedgerRow]:
    """The ledger's valid rows. Problems go to ``errors`` when given (so that later checks can add
    theirs), else they raise InputError."""
    type_map = type_map or {}
    collect = errors is not None
    errors = errors if errors is not None else []
    header, rows = _reader(path, "ledger", errors)
    missing = [c for c in LEDGER_COLUMNS if c not in header]
    if missing:
        raise InputError([f"{path} line 1: missing column(s) {', '.join(missing)}"])
    idx = {c: header.index(c) for c in LEDGER_COLUMNS}
    out: list[LedgerRow] = []
    for line, raw in rows:
        if _blank(raw):
            continue
        if len(raw) < len(header):
            raw = raw + [""] * (len(header) - len(raw))
        v = {c: raw[i].strip() for c, i in idx.items()}
        problems = []
        day, why = _day(v["date"])
        if why:
            problems.append(why)
        amount, why = _money("amount", v["amount"]) if v["amount"] else (None, "blank amount")
        if why:
            problems.append(why)
        status = v["status"].lower()
        if status not in STATUSES:
            problems.append(f"status {_shown(v['status'])} is neither 'expected' nor 'completed'")
        typ = v["type"].lower()
        typ = type_map.get(typ, typ)
        if typ not in TYPES:
            known = ", ".join(TYPES)
            problems.append(f"unknown type {_shown(v['type'])} (use one of {known} or map it with --type-map)")
        if not v["receipt_id"]:
            problems.append("blank receipt_id")
        if not v["currency"]:
            problems.append("blank currency")
        if problems:
            errors.append(f"{path} line {line}: " + "; ".join(problems))
            continue
        assert amount is not None and day is not None
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


PRODUCT_MONEY = ("hardware_cost", "transport_cost", "import_tax", "insurance_cost", "installation_cost",
                 "price_per_day", "price_to_own")  # fmt: skip


def read_products(path: Path) -> dict[str, Product]:
    errors: list[str] = []
    header, rows = _reader(path, "products", errors)
    for required in ("product_type", "business_model"):
        if required not in header:
            raise InputError([f"{path} line 1: missing column {required}"])
    products: dict[str, Product] = {}
    for line, raw in rows:
        if _blank(raw):
            continue
        v = {c: (raw[header.index(c)].strip() if c in header and header.index(c) < len(raw) else "")
             for c in PRODUCT_COLUMNS}  # fmt: skip
        problems = []
        model = v["business_model"].lower()
        if model not in ("asset_finance", "flexible"):
            problems.append(f"business_model {_shown(v['business_model'])} is neither asset_finance nor flexible")
        money: dict[str, Decimal | None] = {}
        for c in PRODUCT_MONEY:
            money[c], why = _money(c, v[c], negative=False) if v[c] else (None, None)
            if why:
                problems.append(why)
        ints: dict[str, int | None] = {}
        for c in ("contract_days", "deposit_days"):
            d = _dec(v[c]) if v[c] else None
            whole = d is not None and 0 <= d <= MAX_DAYS and d == d.to_integral_value()
            if v[c] and not whole:
                problems.append(f"{c} {_shown(v[c])} is not a whole number of days from 0 to {MAX_DAYS:,}")
            ints[c] = int(d) if whole and d is not None else None
        certified = _bool(v["lighting_global_certified"])
        if certified is None:
            problems.append(f"lighting_global_certified {_shown(v['lighting_global_certified'])} is not true/false")
        ppd = money["price_per_day"]
        if model == "flexible" and (ppd is None or ppd <= 0):
            problems.append("a flexible product needs a positive price_per_day")
        if v["product_type"] in products:
            problems.append(f"product_type {_shown(v['product_type'])} appears twice")
        if problems:
            errors.append(f"{path} line {line}: " + "; ".join(problems))
            continue
        cost = sum((money[c] or Decimal(0) for c in PRODUCT_MONEY[:5]), Decimal(0))
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


class _NotANumber:
    """What JSON's NaN, Infinity and -Infinity become: refused wherever a number is expected."""

    def __init__(self, text: str) -> None:
        self.text = text


def _json_text(path: Path, what: str) -> str:
    """A small JSON file's text: UTF-8 (BOM skipped), no NUL, at most MAX_JSON_BYTES."""
    with _open(path, what) as f:
        try:
            raw = f.read(MAX_JSON_BYTES + 1)
        except OSError as err:
            raise InputError([f"{path}: cannot read the {what} file ({err.strerror or err})"]) from None
    if len(raw) > MAX_JSON_BYTES:
        raise InputError([f"{path}: larger than {MAX_JSON_BYTES:,} bytes; a {what} file is a few lines"])
    for number, line in enumerate(raw.split(b"\n"), start=1):
        problem = line_problem(line)
        if problem:
            raise InputError([f"{path} line {number}: {problem}"])
    return raw.decode("utf-8")


def _json_number(value: Any, low: Decimal, high: Decimal) -> bool:
    return isinstance(value, Decimal) and low < value < high and decimals(value) <= MAX_DECIMALS


def read_company(path: Path | None) -> Company:
    if path is None:
        return Company()
    text = _json_text(path, "company")
    if not text.strip():
        raise InputError([f"{path}: the company file is empty (a JSON object is needed)"])
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_NotANumber)
    except json.JSONDecodeError as err:
        raise InputError([f"{path} line {err.lineno}: not valid JSON ({err.msg}, column {err.colno})"]) from None
    except RecursionError:
        raise InputError([f"{path}: not valid JSON (nested too deeply)"]) from None
    if not isinstance(data, dict):
        raise InputError([f"{path}: expected a JSON object"])
    rates = data.get("fx_rates") or {}
    if not isinstance(rates, dict) or not all(
        _CURRENCY.fullmatch(k) and _json_number(r, Decimal(0), MAX_FX_RATE) for k, r in rates.items()
    ):
        raise InputError([f"{path}: fx_rates must map ISO 4217 codes to positive numbers below {MAX_FX_RATE:,} "
                          f"with at most {MAX_DECIMALS} decimals"])  # fmt: skip
    sheet = data.get("balance_sheet")
    if sheet is not None:
        ok = isinstance(sheet, list) and all(
            isinstance(e, dict) and isinstance(e.get("currency"), str) and _CURRENCY.fullmatch(e["currency"])
            and all(_json_number(e.get(k), -MAX_BALANCE, MAX_BALANCE) for k in ("assets", "liabilities", "equity"))
            for e in sheet
        )  # fmt: skip
        if not ok:
            raise InputError([f"{path}: balance_sheet entries need currency, assets, liabilities and equity "
                              f"(numbers below {MAX_BALANCE:,} in absolute value)"])  # fmt: skip
    ebitda = data.get("ebitda")
    if ebitda is not None and not _json_number(ebitda, -MAX_BALANCE, MAX_BALANCE):
        raise InputError([f"{path}: ebitda must be a number below {MAX_BALANCE:,} in absolute value"])
    currency = data.get("reporting_currency")
    if currency is not None and not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
        raise InputError([f"{path}: reporting_currency must be an ISO 4217 code such as KES"])
    write_off = data.get("write_off_dpd")
    if write_off is None:
        write_off = Decimal(DEFAULT_WRITE_OFF_DPD)
    whole = isinstance(write_off, Decimal) and write_off == write_off.to_integral_value()
    if not (whole and 0 <= write_off <= MAX_DAYS):
        raise InputError([f"{path}: write_off_dpd must be a whole number of days from 0 to {MAX_DAYS:,}"])
    return Company(
        ebitda=ebitda,
        write_off_dpd=int(write_off),
        reporting_currency=currency.upper() if currency is not None else None,
        fx_rates={k.upper(): v for k, v in rates.items()},
        balance_sheet=sheet,
    )
