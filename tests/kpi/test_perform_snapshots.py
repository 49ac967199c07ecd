"""Portfolio quality and the loan tape from the live database: the portfolio-quality examples through the
snapshot path, write_off_dpd from the setting, and the two /api/v1/kpi doors (finance and viewers
read, outsiders are refused, a bad date is a clear error)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
from datetime import date
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from backoffice.config import Settings
from kpi import repository
from kpi.service import take_snapshots
from paygo.web import create_app
from tests.support.staff import api_token

from .test_examples import EXAMPLES, assert_close
from .test_snapshots import PAYGO, _env, load_example

CASES = sorted(EXAMPLES.glob("*/perform-expected-*.json"))
HANDMADE = EXAMPLES / "perform-handmade"


def _without_customer(text: str) -> list[dict[str, str]]:
    """The tape's rows without customer_id (the database numbers its customers itself)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    for r in rows:
        r.pop("customer_id")
    return rows


def _tape(conn: psycopg.Connection, as_of: date) -> str:
    found = repository.tape(conn, as_of)
    assert found is not None and found[0] == as_of
    return gzip.decompress(found[1]).decode()


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_database_path_reproduces_perform_example(case: Path, conn: psycopg.Connection) -> None:
    load_example(conn, case.parent)
    want = json.loads(case.read_text())
    company = case.parent / "company.json"
    as_of = date.fromisoformat(want["as_of"])
    with conn.transaction():
        take_snapshots(conn, [as_of], company if company.exists() else None)
    stored = {s.segment: s for s in repository.for_date(conn, as_of)}
    assert_close(stored["all"].result["portfolio_quality"], want["portfolio_quality"], "portfolio_quality")
    tape = _tape(conn, as_of)
    expected = case.with_name(case.name.replace("perform-expected-", "perform-tape-").replace(".json", ".csv"))
    assert tape.splitlines()[0] == expected.read_text().splitlines()[0]
    assert _without_customer(tape) == _without_customer(expected.read_text())
    owners = dict(conn.execute("select account_number, customer_id::text from contracts").fetchall())
    assert all(r["customer_id"] == owners[r["receipt_id"]] for r in csv.DictReader(io.StringIO(tape)))


def test_write_off_dpd_setting_wins_over_the_company_file(conn: psycopg.Connection) -> None:
    load_example(conn, HANDMADE)
    as_of = date(2024, 6, 30)
    with conn.transaction():
        default = take_snapshots(conn, [as_of], HANDMADE / "company.json")[0]["portfolio_quality"]
    with conn.transaction():
        strict = take_snapshots(conn, [as_of], HANDMADE / "company.json", write_off_dpd=45)[0]["portfolio_quality"]
    assert default["aging_count"]["31_60"] == 2  # U2 (60 days) and U3 (51 days) are late, not written off
    assert strict["aging_count"]["31_60"] == 0  # past 45 days: written off, out of the book
    assert strict["write_offs_12m"] > default["write_offs_12m"]
    status = {r["receipt_id"]: r["status"] for r in csv.DictReader(io.StringIO(_tape(conn, as_of)))}
    assert status["U2"] == status["U3"] == "written_off"


def test_portfolio_quality_and_loan_tape_doors(settings: Settings, conn: psycopg.Connection) -> None:
    load_example(conn, HANDMADE)
    with conn.transaction():
        take_snapshots(conn, [date(2024, 5, 31), date(2024, 6, 30)], HANDMADE / "company.json")
    want = json.loads((HANDMADE / "perform-expected-2024-06-30.json").read_text())
    app = create_app(settings)
    for role in ("finance", "viewer"):
        with TestClient(app, headers=api_token(settings.database_url, role)) as client:
            latest = client.get("/api/v1/kpi/portfolio-quality")
            assert latest.status_code == 200, latest.text
            body = latest.json()
            assert body[0]["segment"] == "all" and body[0]["as_of"] == "2024-06-30"
            assert {r["segment"] for r in body} == {"all", "shs", "flex"}
            assert_close(body[0]["portfolio_quality"], want["portfolio_quality"], "portfolio_quality")
            may = client.get("/api/v1/kpi/portfolio-quality", params={"as_of": "2024-05-31"}).json()
            assert may[0]["as_of"] == "2024-05-31"

            tape = client.get("/api/v1/kpi/loan-tape", params={"as_of": "2024-06-30"})
            assert tape.status_code == 200 and tape.headers["content-type"].startswith("text/csv")
            assert "loan-tape-2024-06-30.csv" in tape.headers["content-disposition"]
            rows = list(csv.DictReader(io.StringIO(tape.text)))
            assert [r["receipt_id"] for r in rows] == ["U1", "U2", "U3", "U4", "U5"]
            assert not {"name", "phone", "customer_name", "msisdn"} & set(rows[0])
            plain = client.get("/api/v1/kpi/loan-tape", headers={"Accept-Encoding": "identity"})
            assert plain.headers.get("content-encoding") is None and plain.text == tape.text  # latest = 06-30

            missing = client.get("/api/v1/kpi/portfolio-quality", params={"as_of": "2020-01-01"})
            assert missing.status_code == 404 and "paygo kpi snapshot --as-of 2020-01-01" in missing.json()["detail"]
            assert client.get("/api/v1/kpi/loan-tape", params={"as_of": "2020-01-01"}).status_code == 404
            for bad in ("yesterday", "2024-02-30", "2024-13-01", "30/06/2024"):
                reply = client.get("/api/v1/kpi/loan-tape", params={"as_of": bad})
                assert reply.status_code == 422, (bad, reply.status_code)
    with TestClient(app) as client:
        for path in ("/api/v1/kpi/portfolio-quality", "/api/v1/kpi/loan-tape"):
            for headers in ({}, {"Authorization": "Bearer pgt_forged"}):
                assert client.get(path, headers=headers).status_code == 401
    for role in ("call_centre", "field_agent"):
        with TestClient(app, headers=api_token(settings.database_url, role)) as client:
            assert client.get("/api/v1/kpi/loan-tape").status_code == 403
            assert client.get("/api/v1/kpi/portfolio-quality").status_code == 403


def test_no_snapshot_yet_is_a_clear_404(settings: Settings) -> None:
    with TestClient(create_app(settings), headers=api_token(settings.database_url, "finance")) as client:
        for path in ("/api/v1/kpi/portfolio-quality", "/api/v1/kpi/loan-tape"):
            reply = client.get(path)
            assert reply.status_code == 404 and "paygo kpi snapshot" in reply.json()["detail"]


def test_snapshot_command_reads_write_off_dpd_from_the_setting(settings: Settings, conn: psycopg.Connection) -> None:
    load_example(conn, HANDMADE)
    args = [*PAYGO, "kpi", "snapshot", "--as-of", "2024-06-30", "--company", str(HANDMADE / "company.json")]
    done = subprocess.run(args, env=_env(settings, PAYGO_KPI_WRITE_OFF_DPD="45"), capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "loan tape stored" in done.stderr and "first-payment default 50.0% of 2" in done.stderr
    (stored,) = [s for s in repository.for_date(conn, date(2024, 6, 30)) if s.segment == "all"]
    assert stored.result["portfolio_quality"]["aging_count"]["31_60"] == 0  # U2 and U3: written off after 45 days
    bad = subprocess.run(args, env=_env(settings, PAYGO_KPI_WRITE_OFF_DPD="-3"), capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert bad.returncode != 0 and "kpi_write_off_dpd" in bad.stderr.lower()
