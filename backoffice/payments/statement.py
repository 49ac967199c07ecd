"""Reconciliation against a provider's statement (CSV): payments that never arrived by callback are
created, and every difference between the statement and the platform is reported.

Columns (names matched case-insensitively; extra columns ignored):
``transaction_id, paid_at, account, amount, currency``. ``paid_at`` is ISO 8601; without an
offset it is read in the provider's zone (East Africa Time for M-Pesa, UTC otherwise).

The whole file is checked before anything is written (``read_statement``): a statement with any
bad line is refused whole, each bad line named with its file and number, so a reconciliation is
never half done. The file is UTF-8 (a UTF-8 byte-order mark is fine); UTF-16, other encodings, NUL
bytes, control characters in a field, lines over ``MAX_LINE_BYTES``, amounts that are not plain
positive decimals or are absurd, and dates before 2000 or in the future are refused.
"""

from __future__ import annotations

import csv
import io
import re
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import IO

import psycopg

from backoffice import clock
from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.config import Settings
from backoffice.money import MoneyError, to_decimal, to_minor
from backoffice.payments import repository, service
from backoffice.payments.providers import AMOUNT, EAT, OLDEST, PaymentEvent
from backoffice.textfiles import FileProblems, TextFileError, skip_bom, text_lines

COLUMNS = ("transaction_id", "paid_at", "account", "amount", "currency")
MAX_LINE_BYTES = 64 * 1024  # a statement line is ~100 bytes
FUTURE_SLACK = timedelta(days=1)  # a statement lists what was paid: nothing later than tomorrow
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # nothing a provider puts in an id or account


class StatementError(FileProblems):
    """A statement that cannot be reconciled; ``errors`` names the file and line of each problem."""


@dataclass(frozen=True)
class StatementLine:
    line: int
    raw: bytes  # the line as it is in the file, kept as the payment's raw record
    transaction_id: str
    paid_at: datetime  # UTC
    account: str
    amount: int  # minor units
    currency: str


@dataclass
class StatementReport:
    rows: int = 0
    created: list[str] = field(default_factory=list)  # "TXN: credited" / "TXN: unmatched (why)"
    created_by_status: dict[str, int] = field(default_factory=dict)  # credited / unmatched / held / rejected: n
    matched: int = 0
    mismatches: list[str] = field(default_factory=list)
    missing_from_statement: list[str] = field(default_factory=list)


# --- reading: pure, no database ---------------------------------------------------------------------


def _open(path: Path) -> IO[bytes]:
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise StatementError([f"{path}: is a directory, not a statement file"])
        if not stat.S_ISREG(mode):
            raise StatementError([f"{path}: is not a regular file (a statement must be a file on disk)"])
        f = path.open("rb")
    except OSError as err:
        raise StatementError([f"{path}: cannot read the statement ({err.strerror or err})"]) from None
    try:
        skip_bom(f, path)
    except TextFileError as err:
        f.close()
        raise StatementError(err.problems) from None
    return f


def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _parse(v: dict[str, str], zone: tzinfo, now: datetime) -> tuple[datetime, int] | str:
    """(paid at in UTC, amount in minor units), or why the line is bad."""
    problems = []
    for name in ("transaction_id", "account", "currency"):
        if _CONTROL.search(v[name]):
            problems.append(f"{name} {_shown(v[name])} holds a control character")
    txn = v["transaction_id"]
    if not txn:
        problems.append("blank transaction_id")
    elif len(txn) > 100 or not txn.isascii():
        problems.append(f"transaction_id {_shown(txn)} is not a plausible transaction id")
    paid_at = None
    try:
        when = datetime.fromisoformat(v["paid_at"]) if v["paid_at"].isascii() else None
    except ValueError:
        when = None
    if when is None:
        problems.append(f"paid_at {_shown(v['paid_at'])} is not an ISO 8601 time" if v["paid_at"] else "blank paid_at")
    elif not OLDEST.year <= when.year <= now.year + 1:
        problems.append(f"paid_at {v['paid_at']} is out of range ({OLDEST:%Y-%m-%d} to {now + FUTURE_SLACK:%Y-%m-%d})")
    else:
        when = when if when.tzinfo else when.replace(tzinfo=zone)
        paid_at = when.astimezone(UTC)
        if not OLDEST <= paid_at <= now + FUTURE_SLACK:
            problems.append(f"paid_at {v['paid_at']} is out of range ({OLDEST:%Y-%m-%d} to "
                            f"{now + FUTURE_SLACK:%Y-%m-%d})")  # fmt: skip
    amount = None
    if not AMOUNT.fullmatch(v["amount"]):
        problems.append(f"amount {_shown(v['amount'])} is not a plain decimal number")
    else:
        try:
            amount = to_minor(Decimal(v["amount"]), v["currency"])
        except MoneyError as err:
            problems.append(str(err))
        else:
            if amount <= 0:
                problems.append(f"amount {v['amount']} must be positive")
    if problems:
        return "; ".join(problems)
    assert paid_at is not None and amount is not None
    return paid_at, amount


def read_statement(path: Path, provider: str, now: datetime | None = None) -> list[StatementLine]:
    """Every line of the statement, checked; StatementError names each bad line (or the whole file)."""
    with _open(path) as f:
        return _read(f, path, provider, now)


def read_uploaded(data: bytes, name: str, provider: str, now: datetime | None = None) -> list[StatementLine]:
    """A statement sent through the page (``name``: the file's name, which the problems quote), checked
    exactly as a file on disk."""
    path = Path(Path(name).name or "statement.csv")
    f = io.BytesIO(data)
    try:
        skip_bom(f, path)
    except TextFileError as err:
        raise StatementError(err.problems) from None
    return _read(f, path, provider, now)


def limits_of(settings: Settings) -> service.Limits:
    """What holds a statement's new payments for finance: the payment doors' ceilings, not their time
    window (a statement is history)."""
    return service.Limits(service.Limits.from_settings(settings).ceilings, window=timedelta.max)


def _read(f: IO[bytes], path: Path, provider: str, now: datetime | None) -> list[StatementLine]:
    now = now or clock.utc_now()
    zone = EAT if provider == "mpesa" else UTC
    errors: list[str] = []
    taken: list[str] = []
    reader = csv.reader(text_lines(f, path, errors, MAX_LINE_BYTES, taken))
    records: list[tuple[int, list[str], str]] = []
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except TextFileError as err:
            raise StatementError(err.problems) from None
        except csv.Error as err:
            errors.append(f"{path} line {start}: {err}")
        else:
            records.append((start, row, "".join(taken)))
        taken.clear()
        start = reader.line_num + 1
        if errors and len(records) <= 1 and reader.line_num == 1:
            raise StatementError(errors)  # no readable header: nothing after it means anything
    if not records:
        raise StatementError([f"{path}: the statement file is empty (a header row is needed)"])
    header = {h.strip().lower(): i for i, h in enumerate(records[0][1])}
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise StatementError([f"{path} line 1: missing column(s) {', '.join(missing)}"])
    out: list[StatementLine] = []
    first_seen: dict[str, int] = {}
    for number, row, raw in records[1:]:
        v = {c: (row[i].strip() if i < len(row) else "") for c, i in ((c, header[c]) for c in COLUMNS)}
        if not any(v.values()):
            continue
        parsed = _parse(v, zone, now)
        txn = v["transaction_id"]
        if isinstance(parsed, tuple) and txn in first_seen:
            parsed = f"transaction {txn} is already on line {first_seen[txn]}"
        if isinstance(parsed, str):
            errors.append(f"{path} line {number}: {parsed}")
            continue
        first_seen[txn] = number
        out.append(StatementLine(number, raw.encode(), txn, parsed[0], v["account"], parsed[1],
                                 v["currency"].upper()))  # fmt: skip
    if errors:
        raise StatementError(sorted(errors, key=_line_number))
    if not out:
        raise StatementError([f"{path}: no transactions after the header"])
    return out


def _line_number(error: str) -> int:
    found = re.search(r" line (\d+): ", error)
    return int(found.group(1)) if found else 0


# --- reconciling: in the caller's transaction --------------------------------------------------------


def import_statement(
    conn: psycopg.Connection, provider: str, path: Path, actor: Actor, secret_key: str,
    limits: service.Limits | None = None,
) -> StatementReport:  # fmt: skip
    """Read the whole statement (StatementError, before any write, if a line is bad), then reconcile."""
    return reconcile(conn, provider, read_statement(path, provider), actor, secret_key, limits)


def reconcile(
    conn: psycopg.Connection, provider: str, lines: list[StatementLine], actor: Actor, secret_key: str,
    limits: service.Limits | None = None,
) -> StatementReport:  # fmt: skip
    """Reconcile checked lines in the caller's transaction. A payment created from the statement is
    held for finance like a callback when ``limits`` say so (above its currency's ceiling)."""
    if provider == "momo":
        # MTN's statement names its own transaction ids; our MoMo payments are kept under our request
        # references, so every line would look new and be credited a second time, unchecked.
        raise StatementError(["MoMo statements cannot be reconciled line by line: MoMo payments are kept under "
                              "our request references, which MTN's statement does not carry; the poll of "
                              "pending requests (paygo worker run) settles them with MTN's status API"])  # fmt: skip
    report = StatementReport(rows=len(lines))
    for s in lines:
        existing = repository.get_inbox(conn, provider, s.transaction_id)
        if existing is None:
            event = PaymentEvent(provider, s.transaction_id, s.account, s.amount, s.currency, s.paid_at)
            outcome = service.intake(conn, provider, s.raw, event, service.plain_answer, secret_key, limits)
            report.created_by_status[outcome.status] = report.created_by_status.get(outcome.status, 0) + 1
            report.created.append(
                f"{s.transaction_id}: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else "")
            )
            audit.record(conn, actor, "statement-created", "payment", outcome.inbox_id, after={"line": s.line})
            continue
        differences = []
        if existing.amount != s.amount or existing.currency != s.currency:
            differences.append(
                f"amount {to_decimal(s.amount, s.currency)} {s.currency} on the statement, "
                f"{to_decimal(existing.amount or 0, existing.currency or s.currency)} {existing.currency} received"
            )
        if (existing.account or "") != s.account:
            differences.append(f"account {s.account!r} on the statement, {existing.account!r} received")
        if existing.status not in ("credited", "reversed", "reversal"):
            # Money the provider took that bought no light here (refused, failed, held, unmatched).
            why = f": {existing.reason}" if existing.reason else ""
            differences.append(f"the payment is {existing.status} here{why}")
        if differences:
            report.mismatches.append(f"line {s.line}, {s.transaction_id}: " + "; ".join(differences))
        else:
            report.matched += 1
    if lines:
        seen = {s.transaction_id for s in lines}
        times = [s.paid_at for s in lines]
        for row in repository.inbox_between(conn, provider, min(times), max(times)):
            if row.provider_txn_id not in seen and row.status != "pending":
                report.missing_from_statement.append(
                    f"{row.provider_txn_id}: {to_decimal(row.amount or 0, row.currency or 'KES')} {row.currency} "
                    f"to {row.account!r} ({row.status}) is not on the statement"
                )
    return report
