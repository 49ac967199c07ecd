"""KPI snapshots from the live database: export the ledger, compute with the one engine, store.

The caller owns the transaction (the CLI command or the Celery task): the snapshots of an as-of
date are replaced inside it, so a process killed half-way leaves the previous snapshot whole.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from backoffice.ledger import export
from kpi import repository
from kpi.engine import compute_many, distributions, load_portfolio
from kpi.report import binned

log = logging.getLogger(__name__)


def take_snapshots(
    conn: psycopg.Connection, dates: Sequence[date], company: Path | None = None
) -> list[dict[str, Any]]:
    """Compute and store the KPIs of each as-of date, overall and per product type."""
    dates = sorted(set(dates))
    with tempfile.TemporaryDirectory(prefix="paygo-kpi-") as tmp:
        ledger, products = export.export(conn, Path(tmp), as_of=dates[-1])
        portfolio = load_portfolio(ledger, products, company)
    results = compute_many(portfolio, dates, by_product_type=True)
    hists = {}
    for d in dates:
        dist = distributions(portfolio, d)
        hists[d.isoformat()] = {name: binned(values) for name, values in dist.items()}
    repository.replace_snapshots(conn, dates, results, hists, portfolio.size)
    log.info("kpi snapshots stored as_of=%s segments=%d units=%d", [d.isoformat() for d in dates],
             len(results), portfolio.size)  # fmt: skip
    return results
