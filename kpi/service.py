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

from backoffice import clock
from backoffice.ledger import export
from backoffice.ledger import repository as ledger_repository
from backoffice.money import exponent
from kpi import repository
from kpi.engine import Portfolio, compute_many, distributions, load_portfolio
from kpi.report import binned

log = logging.getLogger(__name__)


def take_snapshots(
    conn: psycopg.Connection, dates: Sequence[date], company: Path | None = None, write_off_dpd: int | None = None
) -> list[dict[str, Any]]:
    """Compute and store the KPIs and portfolio-quality measures of each as-of date, overall and per
    product type, and the loan tape of each date. ``write_off_dpd`` (the PAYGO_KPI_WRITE_OFF_DPD
    setting) wins over the company file's."""
    dates = sorted(set(dates))
    start = clock.monotonic()
    portfolio = read_portfolio(conn, dates[-1], company)
    if write_off_dpd is not None:
        portfolio.company.write_off_dpd = write_off_dpd
    read = clock.monotonic()
    tapes: dict[date, str] = {}
    results = compute_many(portfolio, dates, by_product_type=True, tapes=tapes)
    computed = clock.monotonic()
    repository.replace_tapes(conn, {
        d: (portfolio.currency, text.count("\n") - 1, gzip.compress(text.encode(), compresslevel=3))
        for d, text in tapes.items()
    })  # fmt: skip
    del tapes
    hists = {}
    for d in dates:
        dist = distributions(portfolio, d)
        hists[d.isoformat()] = {name: binned(values) for name, values in dist.items()}
    repository.replace_snapshots(conn, dates, results, hists, portfolio.size)
    log.info("kpi snapshots stored as_of=%s segments=%d units=%d: ledger read and indexed in %.1f s, "
             "KPIs, portfolio quality and tapes computed in %.1f s, stored in %.1f s",
             [d.isoformat() for d in dates], len(results), portfolio.size, read - start, computed - read,
             clock.monotonic() - computed)  # fmt: skip
    return results


_ID_CHUNK = 1 << 21  # ledger ids per query: arrays of a few tens of megabytes


def read_portfolio(conn: psycopg.Connection, as_of: date, company: Path | None = None) -> Portfolio:
    """The database's ledger (every expected row, completed rows dated up to ``as_of``) as the
    engine's portfolio, read straight into the engine's columns: per range of row ids, one result of
    four binary arrays (``array_send``) that numpy reads in place. (A binary COPY hands psycopg one
    message per row: measured three times slower, bench/kpi_snapshot_bench.py.) A ledger with something
    to report (a row in a currency without an fx rate, a product missing, a date out of range ...)
    is read again through the CSV export, whose careful reader names each problem."""
    from kpi.columns import columns_from_database, read_array_chunks
    from kpi.engine import _NeedsDetail, build_from_columns
    from kpi.inputs import TYPES, read_company, read_products

    comp = read_company(company)
    start = clock.monotonic()
    contracts = repository.contract_index(conn)
    currencies = repository.ledger_currencies(conn)
    bounds = repository.ledger_id_bounds(conn)
    chunks = (
        repository.ledger_arrays(conn, (lo, lo + _ID_CHUNK), as_of, currencies, TYPES)
        for lo in (range(bounds[0], bounds[1] + 1, _ID_CHUNK) if bounds else ())
    )
    rows = read_array_chunks(chunks, repository.ledger_rows_estimate(conn))
    log.info("kpi: %d contracts and %d ledger rows read as binary arrays in %.1f s", len(contracts.ids),
             len(rows["day"]) if rows else 0, clock.monotonic() - start)  # fmt: skip
    columns = None
    if rows is not None:
        columns = columns_from_database(rows, contracts.ids, contracts.account_numbers, contracts.customer_ids,
                                    contracts.product_codes, currencies, [exponent(c) for c in currencies])  # fmt: skip
    del rows
    if columns is not None:
        with tempfile.TemporaryDirectory(prefix="paygo-kpi-") as tmp:
            products = read_products(export.export_products(conn, Path(tmp)))
        try:
            return build_from_columns(columns, products, comp)
        except _NeedsDetail:
            pass
    del columns
    log.info("kpi: the ledger needs the careful reader; reading it through the CSV export")
    return read_portfolio_by_export(conn, as_of, company)


def read_portfolio_by_export(conn: psycopg.Connection, as_of: date, company: Path | None = None) -> Portfolio:
    """The portfolio through the ledger's CSV export and the file readers (the careful reader names
    every bad line); the customer ids from the contracts (as the export writes them on each row)."""
    with tempfile.TemporaryDirectory(prefix="paygo-kpi-") as tmp:
        ledger, products = export.export(conn, Path(tmp), as_of=as_of)
        portfolio = load_portfolio(ledger, products, company, customers=False)
    owners = ledger_repository.contract_customers(conn)
    portfolio.customer_ids = [owners.get(rid, "") for rid in portfolio.receipt_ids]
    return portfolio
