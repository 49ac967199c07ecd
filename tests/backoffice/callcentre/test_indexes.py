"""Every query of the search box and of the unit page can be answered through an index: replayed under
EXPLAIN with sequential scans discouraged (as the planner behaves once tables hold a million rows),
none scans a whole table. The timings themselves are measured by the benchmark, not here."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from backoffice import clock
from backoffice.callcentre.service import load_unit_page
from backoffice.config import Settings
from backoffice.customers.search import search
from devtools import demo_data
from tests.support.readings import report_every_20_minutes

BIG = {"customers", "customer_phones", "customer_name_words", "units", "contracts", "tokens", "outbox",
       "payment_inbox", "unit_events", "call_notes", "goodwill_grants", "ledger_entries", "telemetry_daily",
       "unit_latest", "unit_presence"}  # fmt: skip


class Recording(psycopg.Cursor[Any]):
    """A cursor that keeps every query it runs, with its parameters."""

    seen: list[tuple[Any, Any]] = []

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        Recording.seen.append((query, params))
        return super().execute(query, params, **kwargs)


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(plan["Node Type"], plan.get("Relation Name", ""))]
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


def _whole_table_scans(conn: psycopg.Connection, queries: list[tuple[Any, Any]]) -> list[str]:
    bad = []
    conn.execute("set enable_seqscan = off")
    for query, params in queries:
        text = query if isinstance(query, sql.Composable) else sql.SQL(query)  # type: ignore[arg-type]
        if "set_config" in str(query):
            continue
        row = conn.execute(sql.SQL("explain (format json) ") + text, params).fetchone()
        assert row is not None
        for node, table in _scans(row[0][0]["Plan"]):
            if node == "Seq Scan" and (table in BIG or table.startswith("telemetry")):
                bad.append(f"{table}: {json.dumps(str(query))[:160]}")
    conn.execute("reset enable_seqscan")
    return bad


def test_search_and_unit_page_queries_use_indexes(settings: Settings) -> None:
    with psycopg.connect(settings.database_url, cursor_factory=Recording) as conn:
        demo_data.seed(conn, settings.secret_key, customers=4)
        serial, unit_id, phone, account, nid = conn.execute(
            """select u.serial, u.id, ph.e164, c.account_number, cu.national_id from contracts c
                 join units u on u.id = c.unit_id join customers cu on cu.id = c.customer_id
                 join customer_phones ph on ph.customer_id = cu.id order by c.id limit 1"""
        ).fetchone()  # type: ignore[misc]
        report_every_20_minutes(conn, unit_id, clock.utc_now() - timedelta(hours=1), 10)
        conn.commit()
        for q in ("0" + phone[4:], phone, "Amina Odhiambo", "Amena", serial, serial[:-2], account, nid or "12345678"):
            Recording.seen.clear()
            search(conn, q, region="KE")
            assert Recording.seen, q
            assert _whole_table_scans(conn, list(Recording.seen)) == [], q
        Recording.seen.clear()
        page = load_unit_page(conn, serial)
        assert page is not None and len(Recording.seen) >= 10
        assert _whole_table_scans(conn, list(Recording.seen)) == []
