"""Reconciliation against a provider's statement (CSV): payments that never arrived by callback are
created, and every difference between the statement and the platform is reported.

Columns (names matched case-insensitively; extra columns ignored):
``transaction_id, paid_at, account, amount, currency``. ``paid_at`` is ISO 8601; without an
offset it is read in the provider's zone (East Africa Time for M-Pesa, UTC otherwise).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import psycopg

from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.money import MoneyError, to_decimal, to_minor
from backoffice.payments import repository, service
from backoffice.payments.providers import EAT, PaymentEvent

COLUMNS = ("transaction_id", "paid_at", "account", "amount", "currency")


@dataclass
class StatementReport:
    rows: int = 0
    created: list[str] = field(default_factory=list)  # "TXN: credited" / "TXN: unmatched (why)"
    matched: int = 0
    mismatches: list[str] = field(default_factory=list)
    missing_from_statement: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "line N: why"


def import_statement(
    conn: psycopg.Connection, provider: str, path: Path, actor: Actor, secret_key: str
) -> StatementReport:
    """Reconcile in the caller's transaction. Bad lines are reported by number and skipped."""
    report = StatementReport()
    zone = EAT if provider == "mpesa" else UTC
    text = path.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    reader = csv.DictReader(io.StringIO(text))
    header = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        report.errors.append(f"line 1: missing column(s) {', '.join(missing)}")
        return report
    seen: set[str] = set()
    times: list[datetime] = []
    for number, raw in enumerate(reader, start=2):
        v = {c: (raw.get(header[c]) or "").strip() for c in COLUMNS}
        if not any(v.values()):
            continue
        report.rows += 1
        try:
            paid_at = datetime.fromisoformat(v["paid_at"])
            paid_at = (paid_at if paid_at.tzinfo else paid_at.replace(tzinfo=zone)).astimezone(UTC)
            amount = to_minor(Decimal(v["amount"]), v["currency"])
        except (ValueError, InvalidOperation, MoneyError) as err:
            report.errors.append(f"line {number}: {err}")
            continue
        if not v["transaction_id"] or amount <= 0:
            report.errors.append(f"line {number}: a transaction id and a positive amount are needed")
            continue
        txn, currency = v["transaction_id"], v["currency"].upper()
        seen.add(txn)
        times.append(paid_at)
        existing = repository.get_inbox(conn, provider, txn)
        if existing is None:
            event = PaymentEvent(provider, txn, v["account"], amount, currency, paid_at)
            raw_line = lines[reader.line_num - 1] if reader.line_num - 1 < len(lines) else ""
            outcome = service.intake(conn, provider, raw_line.encode(), event, service.plain_answer, secret_key)
            report.created.append(f"{txn}: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else ""))
            audit.record(conn, actor, "statement-created", "payment", outcome.inbox_id, after={"line": number})
            continue
        differences = []
        if existing.amount != amount or existing.currency != currency:
            differences.append(
                f"amount {to_decimal(amount, currency)} {currency} on the statement, "
                f"{to_decimal(existing.amount or 0, existing.currency or currency)} {existing.currency} received"
            )
        if (existing.account or "") != v["account"]:
            differences.append(f"account {v['account']!r} on the statement, {existing.account!r} received")
        if existing.status == "rejected":
            differences.append(f"the callback was rejected ({existing.reason})")
        if differences:
            report.mismatches.append(f"line {number}, {txn}: " + "; ".join(differences))
        else:
            report.matched += 1
    if times:
        for row in repository.inbox_between(conn, provider, min(times), max(times)):
            if row.provider_txn_id not in seen and row.status != "pending":
                report.missing_from_statement.append(
                    f"{row.provider_txn_id}: {to_decimal(row.amount or 0, row.currency or 'KES')} {row.currency} "
                    f"to {row.account!r} ({row.status}) is not on the statement"
                )
    return report
