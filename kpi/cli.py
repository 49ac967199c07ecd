"""``paygo kpi ...``: portfolio KPIs from a ledger file (the command-line contract of kpi/SPEC.md)."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from kpi import report
from kpi.engine import compute_many, distributions, load_portfolio
from kpi.inputs import InputError

app = typer.Typer(
    help="Portfolio KPIs (PAR, ARPU, churn, …) exactly as kpi/SPEC.md defines them.", no_args_is_help=True
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
    ledger: Annotated[Path, typer.Option(help="ledger CSV (SPEC.md §1.1)", exists=True, dir_okay=False)],
    products: Annotated[Path, typer.Option(help="products CSV (SPEC.md §1.2)", exists=True, dir_okay=False)],
    as_of: Annotated[list[str], typer.Option("--as-of", help="as-of date YYYY-MM-DD; repeat for a time series")],
    company: Annotated[
        Path | None, typer.Option(help="company JSON: ebitda, reporting currency, fx rates, balance sheet")
    ] = None,
    by: Annotated[Segment | None, typer.Option(help="also one result per product type")] = None,
    type_map: Annotated[
        Path | None, typer.Option(help="CSV of 'label,type' mapping the company's own row types to SPEC types")
    ] = None,
    format: Annotated[Format, typer.Option(help="output format")] = Format.json,
    out: Annotated[Path | None, typer.Option(help="write here instead of standard output")] = None,
) -> None:
    """Compute the KPIs for each as-of date (and segment) from a ledger file.

    Bad input exits with status 1, lists every problem with its file and line, and writes nothing.
    """
    dates = sorted({_parse_date(d) for d in as_of})
    try:
        portfolio = load_portfolio(ledger, products, company, type_map)
    except InputError as err:
        # Plain lines (no wrapping) so that they can be grepped and pasted into a ticket.
        sys.stderr.write(f"invalid input ({len(err.errors)} problem(s)); nothing was computed:\n{err}\n")
        raise typer.Exit(1) from None
    results = compute_many(portfolio, dates, by_product_type=by is Segment.product_type)
    if format is Format.json:
        text = json.dumps(results, indent=1) + "\n"
    elif format is Format.csv:
        text = to_csv(results)
    else:
        text = report.render(results, distributions(portfolio, dates[-1]), title=f"Portfolio KPIs — {ledger.name}")
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".partial")
        tmp.write_text(text)
        tmp.replace(out)  # never a half-written report
        err_console.print(f"wrote {len(results)} result(s) to {out}")
