"""The files door, hostile: a bad statement given to ``paygo payments import-statement`` is refused
whole, with one line per bad line naming the file and line, exit status 1, no traceback, and
nothing in the database (no payment, ledger row or audit row, although the file also holds lines
that would have credited). (Issue 13: bad encodings, NUL, 1e30 or year 0001 ended in a traceback.)

Each case runs the real command against a real database; a hypothesis property feeds random and
hostile bytes to the reader itself, which may only answer with its own StatementError, and
reconciles (then rolls back) whatever it accepts, so that nothing it lets through can fail in the
database."""

from __future__ import annotations

import codecs
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice import clock
from backoffice.audit.schemas import Actor
from backoffice.config import Settings
from backoffice.payments.statement import StatementError, read_statement, reconcile
from tests.support import count, fuzz
from tests.support.money import MONEY_NOW, Account, make_accounts, make_products

pytestmark = pytest.mark.clock(MONEY_NOW)

HEADER = "transaction_id,paid_at,account,amount,currency\n"
HUGE = 20 << 20  # a 20 MB line
TABLES = ("payment_inbox", "ledger_entries", "audit_log", "unmatched_payments")


@pytest.fixture
def accounts(money_settings: Settings, conn: psycopg.Connection) -> list[Account]:
    _, flexible = make_products(conn)
    return make_accounts(conn, money_settings, flexible, 2, "HST")


def _statement(accounts: list[Account], bad: bytes | str, after: bytes | str = b"") -> bytes:
    """Two good lines (2 and 4, which would credit both accounts) around ``bad`` (line 3)."""
    a, b = accounts
    good1 = f"G1,2026-11-22T06:38:45,{a.number},500.00,KES\n".encode()
    good2 = f"G2,2026-11-22T07:00:00,{b.number},105.00,KES\n".encode()
    as_bytes = [x.encode() if isinstance(x, str) else x for x in (bad, after)]
    return HEADER.encode() + good1 + as_bytes[0] + good2 + as_bytes[1]


def _line(txn: str = "B1", paid_at: str = "2026-11-22T06:40:00", account: str = "{a}", amount: str = "100.00",
          currency: str = "KES") -> str:  # fmt: skip
    return f"{txn},{paid_at},{account},{amount},{currency}\n"


@dataclass
class Case:
    id: str
    content: Callable[[list[Account]], bytes] | Callable[[Path], Path]
    errors: list[tuple[int | None, str]]  # (line or None for the whole file, a part of the message)
    makes_path: bool = False


def _bad(text: str | bytes, after: str | bytes = b"") -> Callable[[list[Account]], bytes]:
    """A statement with ``text`` as line 3 between two good lines (and ``after`` as line 5)."""

    def make(accounts: list[Account]) -> bytes:
        fill = text.replace("{a}", accounts[0].number) if isinstance(text, str) else text
        return _statement(accounts, fill, after)

    return make


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _touch(path: Path) -> Path:
    path.write_text("")
    return path


NOT_UTF8 = "not UTF-8 text"
CASES = [
    # --- encodings -----------------------------------------------------------------------------------
    Case("latin1", _bad("B1,2026-11-22T06:40:00,Chébet,100.00,KES\n".encode("latin-1")),
         [(3, "not UTF-8 text (byte 0xe9 at column 26; Latin-1?); save the file as UTF-8")]),
    Case("cp1252", _bad("B1,2026-11-22T06:40:00,O’Brien,100.00,KES\n".encode("cp1252")), [(3, "byte 0x92")]),
    Case("utf16-bom", lambda acc: _statement(acc, b"").decode().encode("utf-16"),
         [(None, "UTF-16 text (it starts with a UTF-16 byte-order mark); save the file as UTF-8")]),
    Case("utf16le-no-bom", lambda acc: _statement(acc, b"").decode().encode("utf-16-le"),
         [(1, "holds NUL bytes; UTF-16 text? save the file as UTF-8")]),
    Case("utf16be-no-bom", lambda acc: _statement(acc, b"").decode().encode("utf-16-be"), [(1, "UTF-16 text?")]),
    Case("nul", _bad(b"B1,2026-11-22T06:40:00,123\x00,100.00,KES\n"), [(3, "holds NUL bytes")]),
    Case("escape-sequence", _bad(_line(account="\x1b[31m")), [(3, "account '\\x1b[31m' holds a control character")]),
    Case("non-ascii-transaction", _bad(_line(txn="T١")), [(3, "transaction_id 'T١' is not a plausible")]),
    # --- numbers -------------------------------------------------------------------------------------
    Case("1e30", _bad(_line(amount="1e30")), [(3, "amount '1e30' is not a plain decimal number")]),
    Case("20-digits", _bad(_line(amount="12345678901234567890")), [(3, "is not a plain decimal number")]),
    Case("nan", _bad(_line(amount="NaN")), [(3, "amount 'NaN' is not a plain decimal number")]),
    Case("inf", _bad(_line(amount="inf")), [(3, "amount 'inf' is not a plain decimal number")]),
    Case("digit-separator", _bad(_line(amount="1_000")), [(3, "amount '1_000' is not a plain decimal")]),
    Case("arabic-indic-digits", _bad(_line(amount="١٠٠")), [(3, "is not a plain decimal number")]),
    Case("negative", _bad(_line(amount="-100")), [(3, "amount -100 must be positive")]),
    Case("zero", _bad(_line(amount="0.00")), [(3, "amount 0.00 must be positive")]),
    Case("too-many-decimals", _bad(_line(amount="100.001")), [(3, "100.001 has more decimals than KES allows")]),
    Case("not-a-currency", _bad(_line(currency="XYZ")), [(3, "'XYZ' is not an ISO 4217 currency code")]),
    # --- dates ---------------------------------------------------------------------------------------
    Case("year-0001", _bad(_line(paid_at="0001-01-01T00:00:00")), [(3, "paid_at 0001-01-01T00:00:00 is out of range")]),
    Case("year-0001-with-offset", _bad(_line(paid_at="0001-01-01T00:00:00+03:00")), [(3, "is out of range")]),
    Case("year-9999", _bad(_line(paid_at="9999-12-31T23:59:59")), [(3, "paid_at 9999-12-31T23:59:59 is out of range")]),
    Case("next-year", _bad(_line(paid_at=f"{clock.utc_now().year + 1}-12-31T00:00:00")), [(3, "is out of range")]),
    Case("february-30", _bad(_line(paid_at="2026-02-30T10:00:00")), [(3, "is not an ISO 8601 time")]),
    Case("blank-date", _bad(_line(paid_at="")), [(3, "blank paid_at")]),
    # --- lines, sizes and shapes ---------------------------------------------------------------------
    Case("duplicate", _bad("G1,2026-11-22T06:38:45,{a},500.00,KES\n"), [(3, "transaction G1 is already on line 2")]),
    Case("blank-transaction", _bad(_line(txn="")), [(3, "blank transaction_id")]),
    Case("20MB-line", _bad(b"B1,2026-11-22T06:40:00," + b"1" * HUGE + b",100.00,KES\n"),
         [(3, "longer than 65,536 bytes")]),
    Case("two-bad-lines", _bad(_line(amount="1e30"), after=_line(txn="B2", paid_at="0001-01-01T00:00:00")),
         [(3, "not a plain decimal"), (5, "out of range")]),
    Case("missing-column", lambda acc: b"transaction_id,paid_at,account,amount\nT1,2026-11-22T06:40:00,1,1\n",
         [(1, "missing column(s) currency")]),
    Case("empty", lambda acc: b"", [(None, "the statement file is empty (a header row is needed)")]),
    Case("header-only", lambda acc: HEADER.encode() + b"\n,,,,\n", [(None, "no transactions after the header")]),
    # --- paths ---------------------------------------------------------------------------------------
    Case("directory", lambda tmp: _mkdir(tmp / "statement.csv"), [(None, "is a directory")], makes_path=True),
    Case("missing", lambda tmp: tmp / "nowhere.csv", [(None, "cannot read the statement (No such file or directory)")],
         makes_path=True),
    Case("path-through-a-file", lambda tmp: _touch(tmp / "file") / "statement.csv",
         [(None, "cannot read the statement (Not a directory)")], makes_path=True),
    Case("fifo", lambda tmp: _fifo(tmp / "statement.csv"), [(None, "is not a regular file")], makes_path=True),
]  # fmt: skip


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    return {t: count(conn, f"select count(*) from {t}") for t in TABLES}


def _import(statement: Path, settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAYGO_DATABASE_URL": settings.database_url, "PAYGO_ENVIRONMENT": "test"}
    return subprocess.run([sys.executable, "-m", "paygo.cli", "payments", "import-statement", str(statement),
                           "--provider", "mpesa", "--actor", "carol"], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_hostile_statement_is_refused_whole_by_line(
    case: Case, accounts: list[Account], money_settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    if case.makes_path:
        statement = case.content(tmp_path)  # type: ignore[arg-type]
    else:
        statement = tmp_path / "statement.csv"
        statement.write_bytes(case.content(accounts))  # type: ignore[arg-type]
    before = _counts(conn)
    done = _import(statement, money_settings)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    assert done.stdout == ""
    assert _counts(conn) == before  # nothing credited, stored or audited, good lines included
    lines = done.stderr.splitlines()
    assert lines[0] == f"statement refused ({len(case.errors)} problem(s)); nothing was imported:", done.stderr[:3000]
    problems = lines[1:]
    assert len(problems) == len(case.errors), done.stderr[:3000]  # exactly one line per problem
    for problem, (line, needle) in zip(problems, case.errors, strict=True):
        where = f"{statement} line {line}: " if line else f"{statement}: "
        assert problem.startswith(where), (problem[:300], where)
        assert needle in problem, (problem[:300], needle)
        assert len(problem) < 400


def test_the_same_statement_without_its_bad_line_is_imported(
    accounts: list[Account], money_settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """The good lines the hostile cases surround their bad line with do credit (so the refusals above
    are the bad line's doing); a UTF-8 byte-order mark, as Excel writes it, is harmless."""
    statement = tmp_path / "statement.csv"
    statement.write_bytes(codecs.BOM_UTF8 + _statement(accounts, b""))
    before = _counts(conn)
    done = _import(statement, money_settings)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 statement rows: 0 matched, 2 created" in done.stdout
    assert "G1: credited" in done.stdout and "G2: credited" in done.stdout
    after = _counts(conn)
    assert after["payment_inbox"] == before["payment_inbox"] + 2 and after["audit_log"] > before["audit_log"]


def test_markup_in_a_transaction_id_is_printed_as_it_is(
    accounts: list[Account], money_settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Square brackets are plausible in an id; the report prints them, it does not interpret them."""
    statement = tmp_path / "statement.csv"
    statement.write_text(HEADER + f"[/bold]x,2026-11-22T06:38:45,{accounts[0].number},500.00,KES\n")
    done = _import(statement, money_settings)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert "[/bold]x: credited" in done.stdout


def test_a_payment_above_the_ceiling_is_held_not_credited(
    accounts: list[Account], money_settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A statement line of 900,000,000 KES (plain and plausible in form) waits for finance."""
    statement = tmp_path / "statement.csv"
    statement.write_text(HEADER + f"BIG1,2026-11-22T06:38:45,{accounts[0].number},900000000.00,KES\n")
    done = _import(statement, money_settings)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BIG1: held" in done.stdout, done.stdout
    assert count(conn, "select count(*) from ledger_entries where status = 'completed'") == 0
    assert count(conn, "select count(*) from unmatched_payments where kind = 'held'") == 1


# --- hypothesis: the reader answers anything with StatementError or lines the database takes ----------

TOKENS = [
    "2026-11-22T06:38:45", "2026-11-22", "0001-01-01T00:00:00", "9999-12-31T23:59:59", "2026-02-30T00:00:00",
    "2026-11-22T06:38:45+25:00", "2026-11-22T06:38:45Z", "1e30", "NaN", "inf", "-1", "0", "100.00", "100.001",
    "12345678901234567890", "1_000", "١٢٣", "KES", "kes", "UGX", "XYZ", "", " ", '"', "\r", "\n", "\x00", "\x1b",
    "é", "💡", "\u2028", "[/]", "T1", "T1", "T2", ",", "\ufeff",
]  # fmt: skip
FIELD = st.one_of(st.sampled_from(TOKENS), st.text(max_size=12))
ROW = st.lists(FIELD, min_size=0, max_size=7).map(",".join)


def _mostly(good: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Usually a good value, 1 in 30 a hostile token (one bad line refuses the whole statement)."""
    return st.integers(0, 29).flatmap(lambda i: good if i else st.sampled_from(TOKENS))


PLAUSIBLE = st.tuples(
    _mostly(st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789[]/-_", min_size=1, max_size=20)),
    _mostly(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2026, 11, 1)).map(datetime.isoformat)),
    st.text(max_size=20),  # the account: anything a customer can type
    _mostly(st.decimals(min_value=Decimal("0.01"), max_value=10**9, places=2).map(str)),
    _mostly(st.sampled_from(("KES", "kes", "USD"))),
).map(lambda fields: ",".join(f'"{f}"' if any(c in f for c in ',"\r\n') else f for f in fields))


@st.composite
def statement_bytes(draw: st.DrawFn) -> bytes:
    """Random bytes, or a statement-shaped text with hostile fields, line ends and encodings, or one
    of plausible lines with something odd in them."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=2000))
    if kind in (1, 2):
        return "\n".join([HEADER.strip(), *draw(st.lists(PLAUSIBLE, min_size=1, max_size=3))]).encode()
    header = draw(st.sampled_from((HEADER.strip(), HEADER.strip().title(), "transaction_id,amount", "")))
    rows = draw(st.lists(ROW, max_size=10))
    end = draw(st.sampled_from(("\n", "\r\n", "\r")))
    encoding = draw(st.sampled_from(("utf-8", "utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252")))
    return end.join([header, *rows]).encode(encoding, errors="replace") + draw(st.binary(max_size=8))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=statement_bytes())
def test_any_bytes_as_a_statement_read_or_refuse(data: bytes, tmp_path: Path, conn: psycopg.Connection) -> None:
    fuzz.count("files: statement bytes (hypothesis)")
    path = tmp_path / "statement.csv"
    path.write_bytes(data)
    try:
        lines = read_statement(path, "mpesa")
    except StatementError as err:
        assert err.errors and all(e and "\n" not in e for e in err.errors)  # one line per problem
        return
    with conn.transaction(force_rollback=True):  # what the reader lets through, the database takes
        reconcile(conn, "mpesa", lines, Actor("hypothesis"), "x" * 32)
