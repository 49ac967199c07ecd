"""KPI snapshots from the live database: export the ledger, compute with the one engine, store.

The caller owns the transaction (the CLI command or the Celery task): the snapshots of an as-of
date are replaced inside it, so a process killed half-way leaves the previous snapshot whole.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from backoffice.ledger import export
from backoffice.ledger import repository as ledger_repository
from kpi import repository
from kpi.engine import compute_many, distributions, load_portfolio
from kpi.report import binned

log = logging.getLogger(__name__)


def take_snapshots(
    conn: psycopg.Connection, dates: Sequence[date], company: Path | None = None, write_off_dpd: int | None = None
) -> list[dict[str, Any]]:
    """Compute and store the KPIs and portfolio-quality measures of each as-of date, overall and per
    product type, and the loan tape of each date. ``write_off_dpd`` (the PAYGO_KPI_WRITE_OFF_DPD
    setting) wins over the company file's."""
    dates = sorted(set(dates))
    with tempfile.TemporaryDirectory(prefix="paygo-kpi-") as tmp:
        ledger, products = export.export(conn, Path(tmp), as_of=dates[-1])
        portfolio = load_portfolio(ledger, products, company, customers=False)
    # The loan tape's customer ids from the contracts (the same the export writes on every row),
    # rather than a 40-million-row column of the CSV.
    owners = ledger_repository.contract_customers(conn)
    portfolio.customer_ids = [owners.get(rid, "") for rid in portfolio.receipt_ids]
    if write_off_dpd is not None:
        portfolio.company.write_off_dpd = write_off_dpd
    tapes: dict[date, str] = {}
    results = compute_many(portfolio, dates, by_product_type=True, tapes=tapes)
    repository.replace_tapes(conn, {
        d: (portfolio.currency, text.count("\n") - 1, gzip.compress(text.encode(), compresslevel=3))
        for d, text in tapes.items()
    })  # fmt: skip
    hists = {}
    for d in dates:
        dist = distributions(portfolio, d)
        hists[d.isoformat()] = {name: binned(values) for name, values in dist.items()}
    repository.replace_snapshots(conn, dates, results, hists, portfolio.size)
    log.info("kpi snapshots stored as_of=%s segments=%d units=%d", [d.isoformat() for d in dates],
             len(results), portfolio.size)  # fmt: skip
    return results
