"""The files door, hostile: every bad ledger, products, company or type-map file given to
``paygo kpi compute`` ends in one line per problem naming the file and line, exit status 1, no
traceback and no output. (Issue 13: latin-1 and UTF-16 input ended in a traceback.)

Each case runs the real command; a hypothesis property feeds random and hostile bytes to the
readers themselves, which may only answer with their own InputError."""

from __future__ import annotations

import codecs
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice.config import Settings
from kpi.columns import read_csv_columns
from kpi.engine import compute_many, load_portfolio
from kpi.inputs import InputError, read_company, read_ledger, read_products, read_type_map
from tests.support import fuzz

HEADER = "date,customer_id,receipt_id,amount,currency,status,type,product_type\n"
ROWS = [
    "2024-01-01,C1,U1,2000,KES,completed,deposit,shs\n",  # line 2
    "2024-02-01,C1,U1,1000,KES,expected,monthly,shs\n",  # line 3
    "2024-02-03,C1,U1,1000,KES,completed,monthly,shs\n",  # line 4
    "2024-03-01,C1,U1,1000,KES,expected,monthly,shs\n",  # line 5
]
PRODUCTS_HEADER = (
    "product_type,business_model,hardware_cost,transport_cost,import_tax,insurance_cost,installation_cost,"
    "lighting_global_certified,price_per_day,price_to_own,contract_days,deposit_days\n"
)
PRODUCT_ROWS = ["shs,asset_finance,8000,,,,,true,,,,\n", "flex,flexible,5000,,,,,false,50,20000,730,7\n"]
COMPANY = '{"reporting_currency": "KES",\n "fx_rates": {"USD": 129.5},\n "ebitda": 1000}\n'
TYPE_MAP = "label,type\nmonthly,payment\n"
GOOD = {
    "ledger": (HEADER + "".join(ROWS)).encode(),
    "products": (PRODUCTS_HEADER + "".join(PRODUCT_ROWS)).encode(),
    "company": COMPANY.encode(),
    "type_map": TYPE_MAP.encode(),
}
NAMES = {"ledger": "ledger.csv", "products": "products.csv", "company": "company.json", "type_map": "map.csv"}
SUMMARY = re.compile(r"invalid input \((\d+) problem\(s\)\); nothing was computed:")


def _ledger(line: int, text: str | bytes) -> bytes:
    """The good ledger with line ``line`` (2..5) replaced."""
    rows: list[bytes] = [r.encode() for r in ROWS]
    rows[line - 2] = text if isinstance(text, bytes) else text.encode()
    return HEADER.encode() + b"".join(rows)


def _amount(value: str) -> bytes:
    return _ledger(3, f"2024-02-01,C1,U1,{value},KES,expected,monthly,shs\n")


def _dated(value: str) -> bytes:
    return _ledger(3, f"{value},C1,U1,1000,KES,expected,monthly,shs\n")


def _product(row: str) -> bytes:
    return (PRODUCTS_HEADER + PRODUCT_ROWS[0] + row).encode()


HUGE = 20 << 20  # a 20 MB line
NOT_UTF8 = "not UTF-8 text"


def _big(what: str, make: Callable[[], bytes]) -> Callable[[Path], Path]:
    """A file too big to keep in memory for every case: written when its test runs."""

    def write(tmp: Path) -> Path:
        path = tmp / NAMES[what]
        path.write_bytes(make())
        return path

    return write


@dataclass
class Case:
    id: str
    file: str  # which input is hostile
    content: bytes | Callable[[Path], Path]  # the bytes, or what makes the bad path
    errors: list[tuple[int | None, str]]  # (line or None for the whole file, a part of the message)


CASES = [
    # --- encodings -----------------------------------------------------------------------------
    Case("ledger-latin1", "ledger", _ledger(3, "2024-02-01,Chébet,U1,1000,KES,expected,monthly,shs\n".encode("latin-1"))
         + "2024-04-01,Wambüi,U1,1000,KES,expected,monthly,shs\n".encode("latin-1"),
         [(3, "not UTF-8 text (byte 0xe9 at column 14; Latin-1?)"), (6, "byte 0xfc at column 16")]),
    Case("ledger-latin1-in-the-receipt-id", "ledger", _ledger(4, "2024-02-03,C1,Ü1,1000,KES,completed,monthly,shs\n"
                                                                  .encode("latin-1")), [(4, NOT_UTF8)]),
    Case("ledger-cp1252", "ledger",
         _ledger(3, "2024-02-01,O’Brien,U1,1000,KES,expected,monthly,shs\n".encode("cp1252")), [(3, "byte 0x92")]),
    Case("ledger-utf16-bom", "ledger", GOOD["ledger"].decode().encode("utf-16"),
         [(None, "UTF-16 text (it starts with a UTF-16 byte-order mark); save the file as UTF-8")]),
    Case("ledger-utf16le-no-bom", "ledger", GOOD["ledger"].decode().encode("utf-16-le"),
         [(1, "holds NUL bytes; UTF-16 text? save the file as UTF-8")]),
    Case("ledger-utf16be-no-bom", "ledger", GOOD["ledger"].decode().encode("utf-16-be"), [(1, "UTF-16 text?")]),
    Case("ledger-utf32-bom", "ledger", GOOD["ledger"].decode().encode("utf-32"), [(None, "UTF-32 text")]),
    Case("ledger-nul", "ledger", _ledger(3, b"2024-02-01,C1,U\x001,1000,KES,expected,monthly,shs\n"),
         [(3, "holds NUL bytes")]),
    Case("ledger-nul-in-an-unused-column", "ledger",
         _ledger(2, b"2024-01-01,C\x00,U1,2000,KES,completed,deposit,shs\n"), [(2, "holds NUL bytes")]),
    # --- numbers -------------------------------------------------------------------------------
    Case("ledger-1e30", "ledger", _amount("1e30"), [(3, "amount '1e30' is out of range")]),
    Case("ledger-20-digits", "ledger", _amount("12345678901234567890"), [(3, "is out of range")]),
    Case("ledger-1e-30", "ledger", _amount("1e-30"), [(3, "amount '1e-30' has more than 12 decimals")]),
    Case("ledger-exponent-overflow", "ledger", _amount("1e999999999999"), [(3, "is not a number")]),
    Case("ledger-nan", "ledger", _amount("NaN"), [(3, "amount 'NaN' is not a number")]),
    Case("ledger-inf", "ledger", _amount("inf"), [(3, "amount 'inf' is not a number")]),
    Case("ledger-minus-infinity", "ledger", _amount("-Infinity"), [(3, "is not a number")]),
    Case("ledger-digit-separator", "ledger", _amount("1_000"), [(3, "amount '1_000' is not a number")]),
    Case("ledger-arabic-indic-digits", "ledger", _amount("١٠٠٠"), [(3, "is not a number")]),
    # --- dates ---------------------------------------------------------------------------------
    Case("ledger-year-0001", "ledger", _dated("0001-01-01"),
         [(3, "date 0001-01-01 is out of range (1990-01-01 to 2099-12-31)")]),
    Case("ledger-year-9999", "ledger", _dated("9999-12-31"), [(3, "date 9999-12-31 is out of range")]),
    Case("ledger-february-30", "ledger", _dated("2024-02-30"), [(3, "date '2024-02-30' is not a calendar date")]),
    Case("ledger-basic-format-date", "ledger", _dated("20240201"), [(3, "date '20240201' is not YYYY-MM-DD")]),
    # --- sizes and shapes ----------------------------------------------------------------------
    Case("ledger-20MB-line", "ledger", _big("ledger", lambda: _ledger(3, b"2024-02-01," + b"C" * HUGE
                                                                        + b",U1,1000,KES,expected,monthly,shs\n")),
         [(3, "longer than 1,048,576 bytes")]),
    Case("ledger-20MB-last-line", "ledger", _big("ledger", lambda: GOOD["ledger"] + b"x" * HUGE),
         [(6, "longer than 1,048,576 bytes")]),
    Case("ledger-empty", "ledger", b"", [(None, "the ledger file is empty (a header row is needed)")]),
    Case("ledger-header-only", "ledger", HEADER.encode() + b"\n\n", [(None, "no ledger rows after the header")]),
    Case("ledger-two-bad-lines", "ledger", _ledger(2, "1e30,C1,U1,2000,KES,completed,deposit,shs\n")
         .replace(b"2024-03-01,C1,U1,1000", b"2024-03-01,C1,U1,NaN"),
         [(2, "date '1e30' is not YYYY-MM-DD"), (5, "amount 'NaN' is not a number")]),
    # --- paths ---------------------------------------------------------------------------------
    Case("ledger-directory", "ledger", lambda tmp: _mkdir(tmp / "ledger.csv"), [(None, "is a directory")]),
    Case("ledger-missing", "ledger", lambda tmp: tmp / "nowhere.csv",
         [(None, "cannot read the ledger file (No such file or directory)")]),
    Case("ledger-path-through-a-file", "ledger", lambda tmp: _touch(tmp / "file") / "ledger.csv",
         [(None, "cannot read the ledger file (Not a directory)")]),
    Case("ledger-fifo", "ledger", lambda tmp: _fifo(tmp / "ledger.csv"), [(None, "is not a regular file")]),
    # --- the products table ----------------------------------------------------------------------
    Case("products-latin1", "products", _product("lámpara,flexible,5000,,,,,false,50,,,\n").replace(
        "á".encode(), "á".encode("latin-1")), [(3, NOT_UTF8)]),
    Case("products-utf16-bom", "products", GOOD["products"].decode().encode("utf-16"), [(None, "UTF-16 text")]),
    Case("products-nul", "products", _product("flex,flexible,5000,,,,,false,50\x00,,,\n"), [(3, "holds NUL bytes")]),
    Case("products-1e30-cost", "products", _product("flex,flexible,1e30,,,,,false,50,,,\n"),
         [(3, "hardware_cost '1e30' is out of range")]),
    Case("products-nan-price", "products", _product("flex,flexible,5000,,,,,false,NaN,,,\n"),
         [(3, "price_per_day 'NaN' is not a number; a flexible product needs a positive price_per_day")]),
    Case("products-inf-price-to-own", "products", _product("flex,flexible,5000,,,,,false,50,inf,,\n"),
         [(3, "price_to_own 'inf' is not a number")]),
    Case("products-20-digit-price", "products", _product("flex,flexible,5000,,,,,false,50,12345678901234567890,,\n"),
         [(3, "price_to_own '12345678901234567890' is out of range")]),
    Case("products-negative-cost", "products", _product("flex,flexible,-5000,,,,,false,50,,,\n"),
         [(3, "hardware_cost '-5000' is negative")]),
    Case("products-negative-price", "products", _product("flex,flexible,5000,,,,,false,-50,,,\n"),
         [(3, "price_per_day '-50' is negative; a flexible product needs a positive price_per_day")]),
    Case("products-1e30-days", "products", _product("flex,flexible,5000,,,,,false,50,,1e30,\n"),
         [(3, "contract_days '1e30' is not a whole number of days from 0 to 36,500")]),
    Case("products-negative-days", "products", _product("flex,flexible,5000,,,,,false,50,,,-7\n"),
         [(3, "deposit_days '-7' is not a whole number of days")]),
    Case("products-20MB-line", "products",
         _big("products", lambda: _product("flex,flexible,5000,,,,,false,50,,,7," + "x" * HUGE + "\n")),
         [(3, "longer than 1,048,576 bytes")]),
    Case("products-empty", "products", b"", [(None, "the products file is empty (a header row is needed)")]),
    Case("products-header-only", "products", PRODUCTS_HEADER.encode(), [(None, "no products after the header")]),
    Case("products-directory", "products", lambda tmp: _mkdir(tmp / "products.csv"), [(None, "is a directory")]),
    # --- company data (JSON) ---------------------------------------------------------------------
    Case("company-latin1", "company", '{"reporting_currency": "KES",\n "note": "Chébet"}'.encode("latin-1"),
         [(2, NOT_UTF8)]),
    Case("company-utf16-bom", "company", COMPANY.encode("utf-16"), [(None, "UTF-16 text")]),
    Case("company-utf16-no-bom", "company", COMPANY.encode("utf-16-le"), [(1, "holds NUL bytes; UTF-16 text?")]),
    Case("company-nul", "company", b'{"reporting_currency": "KES",\n "ebitda": 1\x00}', [(2, "holds NUL bytes")]),
    Case("company-nan-rate", "company", b'{"fx_rates": {"USD": NaN}}', [(None, "fx_rates must map ISO 4217 codes")]),
    Case("company-1e30-rate", "company", b'{"fx_rates": {"USD": 1e30}}', [(None, "positive numbers below 1,000,000")]),
    Case("company-negative-rate", "company", b'{"fx_rates": {"USD": -129.5}}', [(None, "fx_rates must map")]),
    Case("company-infinite-ebitda", "company", b'{"ebitda": Infinity}', [(None, "ebitda must be a number")]),
    Case("company-1e400-balance", "company",
         b'{"fx_rates": {"USD": 100}, "balance_sheet": [{"currency": "USD", "assets": 1e400, "liabilities": 1, '
         b'"equity": 1}]}', [(None, "balance_sheet entries need")]),
    Case("company-escaped-surrogate", "company", b'{"reporting_currency": "\\ud800AB"}',
         [(None, "reporting_currency must be an ISO 4217 code")]),
    Case("company-bad-json", "company", b'{"ebitda": 1,\n "fx_rates": }', [(2, "not valid JSON (Expecting value")]),
    Case("company-nested", "company", b"[" * 200_000 + b"]" * 200_000, [(None, "not valid JSON (nested too deeply)")]),
    Case("company-20MB", "company", _big("company", lambda: b'{"note": "' + b"x" * HUGE + b'"}'),
         [(None, "larger than 1,048,576 bytes")]),
    Case("company-empty", "company", b"", [(None, "the company file is empty")]),
    Case("company-directory", "company", lambda tmp: _mkdir(tmp / "company.json"), [(None, "is a directory")]),
    # --- the type map ------------------------------------------------------------------------------
    Case("type-map-latin1", "type_map", "label,type\nrépar,maintenance_unscheduled\n".encode("latin-1"),
         [(2, NOT_UTF8)]),
    Case("type-map-utf16-bom", "type_map", TYPE_MAP.encode("utf-16"), [(None, "UTF-16 text")]),
    Case("type-map-nul", "type_map", b"label,type\nmonthly\x00,payment\n", [(2, "holds NUL bytes")]),
    Case("type-map-20MB-line", "type_map", _big("type_map", lambda: b"label,type\n" + b"m" * HUGE + b",payment\n"),
         [(2, "longer than 1,048,576 bytes")]),
    Case("type-map-empty", "type_map", b"", [(None, "the type map has no 'label,type' rows")]),
    Case("type-map-header-only", "type_map", b"label,type\n", [(None, "the type map has no 'label,type' rows")]),
    Case("type-map-directory", "type_map", lambda tmp: _mkdir(tmp / "map.csv"), [(None, "is a directory")]),
]  # fmt: skip


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _touch(path: Path) -> Path:
    path.write_text("")
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)  # opening it would block: the command must refuse it without opening it
    return path


def _files(tmp: Path, hostile: str | None = None, content: bytes | Callable[[Path], Path] = b"") -> dict[str, Path]:
    paths = {}
    for what, good in GOOD.items():
        bad = content if what == hostile else good
        if callable(bad):
            paths[what] = bad(tmp)
        else:
            paths[what] = tmp / NAMES[what]
            paths[what].write_bytes(bad)
    return paths


def _compute(paths: dict[str, Path], out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paygo.cli", "kpi", "compute", "--ledger", str(paths["ledger"]),
         "--products", str(paths["products"]), "--company", str(paths["company"]),
         "--type-map", str(paths["type_map"]), "--as-of", "2024-03-15", "--out", str(out)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def env(base_settings: Settings) -> dict[str, str]:
    return {**os.environ, "PAYGO_ENVIRONMENT": "test", "PAYGO_DATABASE_URL": base_settings.database_url}


def test_the_good_files_compute(tmp_path: Path, env: dict[str, str]) -> None:
    """The baseline every hostile case departs from (so a refusal below is the hostile part's doing)."""
    out = tmp_path / "out" / "kpis.json"
    done = _compute(_files(tmp_path), out, env)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())[0]["kpis"]["portfolio_size"] == 1


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_hostile_file_is_refused_by_line(case: Case, tmp_path: Path, env: dict[str, str]) -> None:
    paths = _files(tmp_path, case.file, case.content)
    out = tmp_path / "out" / "kpis.json"
    done = _compute(paths, out, env)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stdout == ""
    assert not (tmp_path / "out").exists()  # nothing written, not even the folder or a .partial
    lines = done.stderr.splitlines()
    summary = SUMMARY.fullmatch(lines[0])
    assert summary and int(summary.group(1)) == len(case.errors), done.stderr[:3000]
    problems = lines[1:]
    assert len(problems) == len(case.errors), done.stderr[:3000]  # exactly one line per problem
    for problem, (line, needle) in zip(problems, case.errors, strict=True):
        where = f"{paths[case.file]} line {line}: " if line else f"{paths[case.file]}: "
        assert problem.startswith(where), (problem[:300], where)
        assert needle in problem, (problem[:300], needle)
        assert len(problem) < 400  # a line to read, not the 20 MB one echoed back


def test_a_utf8_byte_order_mark_is_harmless(tmp_path: Path, env: dict[str, str]) -> None:
    """Excel's "CSV UTF-8" starts with a byte-order mark: accepted in every file, same numbers."""
    plain = _compute(_files(tmp_path), tmp_path / "plain.json", env)
    assert plain.returncode == 0, plain.stderr
    bom = tmp_path / "bom"
    bom.mkdir()
    paths = _files(bom)
    for path in paths.values():
        path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    with_bom = _compute(paths, tmp_path / "bom.json", env)
    assert with_bom.returncode == 0, with_bom.stderr
    assert (tmp_path / "bom.json").read_text() == (tmp_path / "plain.json").read_text()


def test_windows_and_old_mac_line_ends_are_read_alike(tmp_path: Path) -> None:
    """CRLF and lone CR (which Arrow's fast reader splits on) give the numbers LF gives."""
    products = tmp_path / "products.csv"
    products.write_bytes(GOOD["products"])
    results = []
    for end in (b"\n", b"\r\n", b"\r"):
        ledger = tmp_path / "ledger.csv"
        ledger.write_bytes(GOOD["ledger"].replace(b"monthly", b"payment").replace(b"\n", end))
        assert read_csv_columns(ledger, {}) is not None  # the fast reader takes them all
        results.append(compute_many(load_portfolio(ledger, products), [date(2024, 3, 15)]))
        assert [r.line for r in read_ledger(ledger)] == [2, 3, 4, 5]  # and the careful one counts lines alike
    assert results[0] == results[1] == results[2]


def test_precision_beyond_64_bits_is_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    """Each file is fine alone: 12-decimal amounts, a 12-decimal fx rate, a price per day; together
    they need 10**24 units of money, which no 64-bit integer holds (it was an OverflowError)."""
    paths = _files(tmp_path)
    paths["ledger"].write_text(HEADER + "2024-01-01,C1,U1,0.000000000001,USD,completed,deposit,flex\n"
                               "2024-01-02,C1,U1,0.000000000002,KES,completed,payment,flex\n")  # fmt: skip
    paths["company"].write_text('{"reporting_currency": "KES", "fx_rates": {"USD": 129.123456789012}}')
    done = _compute(paths, tmp_path / "out" / "kpis.json", env)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.splitlines() == [
        "invalid input: amounts, prices and fx rates together need more than 64-bit precision (Python int too "
        "large to convert to C long); round them to fewer decimals; nothing was computed"
    ]
    assert not (tmp_path / "out").exists()


def test_an_unwritable_output_is_one_line_and_leaves_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "report.json").mkdir()  # the output path is a folder
    done = _compute(_files(tmp_path), tmp_path / "report.json", env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [f"{tmp_path / 'report.json'}: cannot write the report (Is a directory); "
                                        "nothing was written"]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".partial") == []


# --- hypothesis: the readers answer anything with InputError or a portfolio ------------------------

LEDGER_TOKENS = [
    "2024-01-01", "2024-02-29", "2024-02-30", "0001-01-01", "9999-12-31", "20240101", "1e30", "-1e30", "1e-30", "NaN",
    "inf", "-Infinity", "12345678901234567890", "0", "-0.00", "1_000", "١٢٣", "1000", "0.000000001", "1e999999999",
    "KES", "usd", "", " ", "completed", "expected", "Completed ", "deposit", "payment", "return", "late_fee", "shs",
    "flex", "U1", "U2", " U1", "C1", '"', '""', "\r", "\n", "\x00", "é", "\ud7ff", "💡", ",", "\ufeff",
]  # fmt: skip
FIELD = st.one_of(st.sampled_from(LEDGER_TOKENS), st.text(max_size=12))
ROW = st.lists(FIELD, min_size=0, max_size=10).map(",".join)
ENCODING = st.sampled_from(("utf-8", "utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16", "utf-16-le", "cp1252"))


def _mostly(good: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Usually a good value, 1 in 30 a hostile token (one bad row refuses the whole ledger)."""
    return st.integers(0, 29).flatmap(lambda i: good if i else st.sampled_from(LEDGER_TOKENS))


PLAUSIBLE = (
    st.tuples(
        _mostly(st.dates(min_value=date(1990, 1, 1), max_value=date(2099, 12, 31)).map(date.isoformat)),
        st.text(max_size=10),  # customer_id: never read by the engine, anything goes
        st.sampled_from((("U1", "shs"), ("U2", "flex"), ("U3", "shs"))),  # a unit has one product type
        _mostly(st.decimals(min_value=-(10**6), max_value=10**9, places=3).map(str)),
        _mostly(st.sampled_from(("KES", "kes"))),
        _mostly(st.sampled_from(("completed", "expected", "Completed"))),
        _mostly(st.sampled_from(("deposit", "payment", "return", "late_fee", "maintenance_unscheduled"))),
    )
    .map(lambda f: (f[0], f[1], f[2][0], f[3], f[4], f[5], f[6], f[2][1]))
    .map(lambda fields: ",".join(f'"{f}"' if any(c in f for c in ',"\r\n') else f for f in fields))
)


@st.composite
def ledger_bytes(draw: st.DrawFn) -> bytes:
    """Random bytes, or a ledger-shaped text with hostile fields, line ends and encodings, or one of
    plausible rows with something odd in them."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=2000))
    if kind == 1:
        rows = draw(st.lists(PLAUSIBLE, min_size=1, max_size=6))
        return "\n".join([HEADER.strip(), *rows]).encode()
    header = draw(st.sampled_from((HEADER.strip(), HEADER.strip().upper(), "date,amount", "")))
    rows = draw(st.lists(ROW, max_size=12))
    end = draw(st.sampled_from(("\n", "\r\n", "\r")))
    text = end.join([header, *rows, *(ROWS if draw(st.booleans()) else [])])
    return text.encode(draw(ENCODING), errors="replace") + draw(st.binary(max_size=8))


def _assert_reads_or_refuses(read: Callable[[], object]) -> None:
    try:
        read()
    except InputError as err:
        assert err.errors and all(e and "\n" not in e for e in err.errors)  # one line per problem


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=ledger_bytes())
def test_any_bytes_as_a_ledger_read_or_refuse(tmp_path: Path, data: bytes) -> None:
    fuzz.count("files: kpi ledger bytes (hypothesis)")
    ledger, products = tmp_path / "ledger.csv", tmp_path / "products.csv"
    ledger.write_bytes(data)
    products.write_bytes(GOOD["products"])

    def read() -> None:
        portfolio = load_portfolio(ledger, products)
        compute_many(portfolio, [date(2024, 3, 15)], by_product_type=True)

    _assert_reads_or_refuses(read)
    if read_csv_columns(ledger, {}) is not None:  # what the fast reader takes, the careful one takes too
        read_ledger(ledger)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=1000), st.lists(ROW, max_size=6).map(
    lambda rows: "\n".join([PRODUCTS_HEADER.strip(), *rows]).encode("utf-8", errors="replace"))),
    other=st.sampled_from(("products", "type_map", "company")))  # fmt: skip
def test_any_bytes_as_products_type_map_or_company_read_or_refuse(tmp_path: Path, data: bytes, other: str) -> None:
    fuzz.count("files: kpi products, type map and company bytes (hypothesis)")
    path = tmp_path / NAMES[other]
    path.write_bytes(data)
    reader: Callable[[Path], object] = {"products": read_products, "type_map": read_type_map,
                                        "company": read_company}[other]  # fmt: skip
    _assert_reads_or_refuses(lambda: reader(path))
