"""``paygo kpi ...``: portfolio KPIs from a ledger file (the command-line contract of docs/kpi_definitions.md)."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import psycopg
import typer
from rich.console import Console

from backoffice import clock

app = typer.Typer(
    help="Portfolio KPIs (PAR, ARPU, churn, …) exactly as docs/kpi_definitions.md defines them.", no_args_is_help=True
)
err_console = Console(stderr=True)


class Format(StrEnum):
    json = "json"
    csv = "csv"
    html = "html"


class Segment(StrEnum):
    product_type = "product_type"


def _flatten(result: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"as_of": result["as_of"], "segment": result["segment"], "currency": result["currency"]}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            row[prefix] = "" if value is None else value

    walk("", result["kpis"])
    if "portfolio_quality" in result:
        walk("portfolio_quality", result["portfolio_quality"])
    return row


def to_csv(results: list[dict[str, Any]]) -> str:
    rows = [_flatten(r) for r in results]
    columns: list[str] = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date (YYYY-MM-DD)") from None


@app.command("compute")
def compute_cmd(
    ledger: Annotated[Path, typer.Option(help="ledger CSV (docs/kpi_definitions.md §1.1)")],
    products: Annotated[Path, typer.Option(help="products CSV (docs/kpi_definitions.md §1.2)")],
    as_of: Annotated[list[str], typer.Option("--as-of", help="as-of date YYYY-MM-DD; repeat for a time series")],
    company: Annotated[
        Path | None, typer.Option(help="company JSON: ebitda, reporting currency, fx rates, balance sheet")
    ] = None,
    by: Annotated[Segment | None, typer.Option(help="also one result per product type")] = None,
    type_map: Annotated[
        Path | None, typer.Option(help="CSV of 'label,type' mapping the company's own row types to the ledger's types")
    ] = None,
    format: Annotated[Format, typer.Option(help="output format")] = Format.json,
    out: Annotated[Path | None, typer.Option(help="write here instead of standard output")] = None,
    tape: Annotated[
        Path | None,
        typer.Option(help="also write the loan tape (docs/kpi_definitions.md §Q4) as of the latest --as-of date"),
    ] = None,
) -> None:
    """Compute the KPIs for each as-of date (and segment) from a ledger file.

    Each result carries the 2018 guide's KPIs ("kpis", docs/kpi_definitions.md) and the funders' portfolio-quality
    measures ("portfolio_quality", docs/kpi_definitions.md §Q); ``--tape`` writes the loan tape, one row per unit.

    Bad input exits with status 1, lists every problem with its file and line (one line each), and
    writes nothing. Files are UTF-8 (a UTF-8 byte-order mark is fine); a ledger with no rows is refused.
    """
    from kpi import report  # numpy and Arrow load here, not with every paygo command
    from kpi.engine import compute_many, distributions, load_portfolio, loan_tape
    from kpi.inputs import InputError, read_products

    dates = sorted({_parse_date(d) for d in as_of})
    try:
        # A new company's database exports an empty products table for its snapshots; a file given
        # here must have products (the table is small: reading it twice costs nothing).
        if not read_products(products):
            raise InputError([f"{products}: no products after the header"])
        portfolio = load_portfolio(ledger, products, company, type_map)
        if not portfolio.size:
            raise InputError([f"{ledger}: no ledger rows after the header"])
        results = compute_many(portfolio, dates, by_product_type=by is Segment.product_type)
        if format is Format.json:
            text = json.dumps(results, indent=1) + "\n"
        elif format is Format.csv:
            text = to_csv(results)
        else:
            title = f"Portfolio KPIs — {ledger.name}"
            text = report.render(results, distributions(portfolio, dates[-1]), title=title)
        tape_text = loan_tape(portfolio, dates[-1]) if tape is not None else ""
    except InputError as err:
        _refuse(f"invalid input ({len(err.errors)} problem(s)); nothing was computed:\n{err}")
    except OverflowError as err:
        # The readers bound every number; only a combination (the finest decimals of one file with the
        # largest values of another) can still exceed 64-bit integers.
        _refuse(f"invalid input: amounts, prices and fx rates together need more than 64-bit precision ({err}); "
                f"round them to fewer decimals; nothing was computed")  # fmt: skip
    if tape is not None:
        _write(tape, tape_text, "loan tape")
        err_console.print(f"wrote the loan tape as of {dates[-1]} ({tape_text.count(chr(10)) - 1} units) to {tape}")
    if out is None:
        sys.stdout.write(text)
        return
    _write(out, text, "report")
    err_console.print(f"wrote {len(results)} result(s) to {out}")


def _write(path: Path, text: str, what: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # never a half-written file
    except OSError as err:
        tmp.unlink(missing_ok=True)
        _refuse(f"{path}: cannot write the {what} ({err.strerror or err}); nothing was written")


def _refuse(message: str) -> NoReturn:
    """Plain lines (no wrapping) so that they can be grepped and pasted into a ticket; status 1."""
    sys.stderr.write(message + "\n")
    raise typer.Exit(1)


def _yesterday() -> date:
    return clock.today() - timedelta(days=1)


@app.command("snapshot")
def snapshot_cmd(
    as_of: Annotated[
        list[str] | None, typer.Option("--as-of", help="as-of date YYYY-MM-DD (default: yesterday); repeatable")
    ] = None,
    company: Annotated[
        Path | None, typer.Option(help="company JSON: ebitda, reporting currency, fx rates, balance sheet")
    ] = None,
) -> None:
    """Compute the KPIs from the live database's ledger and store them (overall and per product type).

    Re-running an as-of date replaces its snapshot. The snapshot is written in one transaction:
    interrupted, it leaves the previous one whole.
    """
    from backoffice.config import load_settings
    from backoffice.db import connect
    from kpi.inputs import InputError
    from kpi.service import take_snapshots

    dates = sorted({_parse_date(d) for d in as_of}) if as_of else [_yesterday()]
    settings = load_settings()  # a bad setting exits 2 with its name (paygo.cli.main)
    try:
        with connect(settings, "kpi") as conn, conn.transaction():
            results = take_snapshots(conn, dates, company, settings.kpi_write_off_dpd)
    except InputError as err:
        sys.stderr.write(f"the ledger in the database failed validation; nothing was stored:\n{err}\n")
        raise typer.Exit(1) from None
    except psycopg.OperationalError as err:
        err_console.print(f"[red]cannot reach the database ({err}); is the stack up? try 'paygo stack up'[/]")
        raise typer.Exit(1) from None
    overall = [r for r in results if r["segment"] == "all"]
    for r in overall:
        k = r["kpis"]
        err_console.print(
            f"{r['as_of']}: portfolio {k['portfolio_size']:,} units, PAR30 {_pct(k['par']['30'])}, "
            f"churn {_pct(k['churn'])}, ARPU {k['arpu'] or 0:,.2f} {r['currency']}"
        )
        q = r.get("portfolio_quality")
        if q:
            err_console.print(
                f"  receivable {q['gross_receivable']:,.2f} {r['currency']}, collection 30d "
                f"{_pct(q['collection_rate']['30'])}, written off 12m {q['write_offs_12m']:,.2f}, "
                f"first-payment default {_pct(q['first_payment_default']['30'])} "
                f"of {q['first_payment_default_n']['30']}; loan tape stored"
            )
    err_console.print(f"stored {len(results)} snapshot(s)")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"
