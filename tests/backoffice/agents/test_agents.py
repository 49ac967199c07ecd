"""Agents: their PAR 30 agrees with the KPI engine's on the same contracts; commissions are a share of
the deposit and of the payments of the first months, clawed back when a contract ends in default
early; payouts pay what is due once; the payroll CSV; and the doors refuse outsiders."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from backoffice import clock
from backoffice.agents import repository, service
from backoffice.config import Settings
from backoffice.contracts import service as contracts
from backoffice.ledger import export
from devtools import demo_data
from kpi.engine import compute, load_portfolio
from paygo.web import create_app
from tests.support.field import agent, sold_lamp
from tests.support.staff import TEST_ACTOR, api_token, csrf_of, login, user


def test_par30_of_an_agents_customers_is_the_kpi_engines(settings: Settings, conn: psycopg.Connection) -> None:
    """Every demo contract credited to one agent: the agent page's PAR 30 is the portfolio's."""
    demo_data.seed(conn, settings.secret_key, customers=30)
    a = agent(conn, settings.database_url, "anna", "A1")
    for (account,) in conn.execute("select account_number from contracts").fetchall():
        service.record_sale(conn, TEST_ACTOR, a.id, account)
    # Some payments, so that not every contract is at risk.
    for (cid,) in conn.execute("select id from contracts where id % 3 = 0").fetchall():
        conn.execute(
            """insert into ledger_entries (contract_id, entry_date, status, type, amount, currency)
                        select %s, current_date - 10, 'completed', 'payment', 1000000, 'KES'""",
            (cid,),
        )
    today = clock.today()
    page = service.page(conn, a, today)
    with tempfile.TemporaryDirectory() as tmp:
        ledger, products = export.export(conn, Path(tmp), as_of=today)
        kpis = compute(load_portfolio(ledger, products), today)["kpis"]
    assert page.par30_active == kpis["portfolio_size"] > 0
    assert page.par30 == pytest.approx(kpis["par"]["30"], rel=1e-9)
    assert page.par30_at_risk / page.par30_active == pytest.approx(kpis["par_count"]["30"], rel=1e-9)
    assert 0 < page.par30_at_risk < page.par30_active  # both kinds are there: the comparison means something


def test_commissions_claw_back_and_payouts(settings: Settings, conn: psycopg.Connection) -> None:
    a = agent(conn, settings.database_url, "anna", "A1")
    first, _, _ = sold_lamp(conn, settings.secret_key, a, "LMP000001", "Amina")
    second, account2, _ = sold_lamp(conn, settings.secret_key, a, "LMP000002", "Baraka")
    signed = clock.today()
    rows = [
        (first, signed, "deposit", 50_000),
        (first, signed + timedelta(days=30), "payment", 100_000),
        (first, signed + timedelta(days=200), "payment", 100_000),  # after the 6 months of the rule
        (second, signed, "deposit", 50_000),
        (second, signed + timedelta(days=10), "payment", 10_000),
    ]
    for cid, d, kind, amount in rows:
        conn.execute(
            "insert into ledger_entries (contract_id, entry_date, status, type, amount, currency) "
            "values (%s, %s, 'completed', %s, %s, 'KES')",
            (cid, d, kind, amount),
        )
    # 10 % of each deposit and 3 % of the payments in the first 6 months
    (c,) = repository.commissions(conn, a.id)
    assert (c.earned, c.clawed_back, c.paid, c.due) == (5_000 + 3_000 + 5_000 + 300, 0, 0, 13_300)
    contracts.end_contract(conn, account2, "written_off", TEST_ACTOR, "defaulted in the first month")
    (c,) = repository.commissions(conn, a.id)
    assert (c.clawed_back, c.due) == (5_300, 8_000)
    payout = service.pay_out(conn, TEST_ACTOR, a.id, "KES", "November payroll")
    assert payout.amount == 8_000
    with pytest.raises(service.AgentError, match="nothing is due"):
        service.pay_out(conn, TEST_ACTOR, a.id, "KES", None)
    csv = service.payroll_csv(conn).splitlines()
    assert csv == ["agent_code,agent_name,currency,earned,clawed_back,paid,due", "A1,Anna,KES,13300,5300,8000,0"]
    assert conn.execute("select count(*) from audit_log where action = 'commission-paid'").fetchone() == (1,)
    # Anna was paid for LMP000001's sale: moving it to Ben now would pay it twice, so it is refused.
    b = agent(conn, settings.database_url, "ben", "B1")
    account1 = conn.execute("select account_number from contracts where id = %s", (first,)).fetchone()[0]  # type: ignore[index]
    with pytest.raises(service.AgentError, match="has been paid commissions since"):
        service.record_sale(conn, TEST_ACTOR, b.id, account1)
    service.record_sale(conn, TEST_ACTOR, a.id, account1)  # recording the same agent again is harmless


def test_agent_doors_refuse_outsiders_and_other_roles(settings: Settings, conn: psycopg.Connection) -> None:
    a = agent(conn, settings.database_url, "anna", "A1")
    agent(conn, settings.database_url, "ben", "B1")
    conn.commit()
    with TestClient(create_app(settings), follow_redirects=False) as app:
        for path in (
            "/api/v1/agents",
            f"/api/v1/agents/{a.id}",
            "/api/v1/commissions",
            "/api/v1/commissions/export.csv",
            "/api/v1/agents/me",
            "/api/v1/inventory/units",
        ):
            assert app.get(path).status_code == 401, path
        assert app.get("/agents").status_code == 303 and app.get("/inventory").status_code == 303
        viewer = api_token(settings.database_url, "viewer")
        assert app.get("/api/v1/commissions", headers=viewer).status_code == 403
        assert app.post(f"/api/v1/agents/{a.id}/payouts", json={"currency": "KES"}, headers=viewer).status_code == 403
        assert app.post("/api/v1/agents", json={"code": "X", "name": "x"}, headers=viewer).status_code == 403
        call_centre = api_token(settings.database_url, "call_centre")
        assert (
            app.post("/api/v1/inventory/units/NOPE/moves", json={"action": "write_off"}, headers=viewer).status_code
            == 403
        )
        assert (
            app.post(
                "/api/v1/inventory/units/NOPE/moves", json={"action": "write_off"}, headers=call_centre
            ).status_code
            == 404
        )
        # Ben, a field agent, sees his own page, not Anna's, and none of the desk's pages.
        assert login(app, "ben").status_code == 303
        assert app.get("/api/v1/agents/me").json()["agent"]["code"] == "B1"
        assert app.get(f"/api/v1/agents/{a.id}").status_code == 403
        assert app.get(f"/agents/{a.id}").status_code == 403
        assert app.get("/inventory").status_code == 403
        csrf = csrf_of(app.get("/tickets").text)
        assert (
            app.post("/inventory/moves", data={"serial": "X", "action": "write_off", "csrf_token": csrf}).status_code
            == 403
        )
        assert app.post("/api/v1/commissions", headers={"X-CSRF-Token": csrf}).status_code in (403, 405)


def test_finance_pays_an_agent_from_the_agent_page(settings: Settings, conn: psycopg.Connection) -> None:
    a = agent(conn, settings.database_url, "anna", "A1")
    contract, _, _ = sold_lamp(conn, settings.secret_key, a, "LMP000001", "Amina")
    conn.execute(
        "insert into ledger_entries (contract_id, entry_date, status, type, amount, currency) "
        "values (%s, current_date, 'completed', 'deposit', 50000, 'KES')",
        (contract,),
    )
    conn.commit()
    user(settings.database_url, "fred", "finance")
    user(settings.database_url, "vera", "viewer")
    with TestClient(create_app(settings), follow_redirects=False) as app:
        assert login(app, "vera").status_code == 303
        page = app.get(f"/agents/{a.id}").text
        assert "Pay 50.00 KES due" not in page and "Pay " not in page
        assert (
            app.post(
                f"/agents/{a.id}/payouts", data={"currency": "KES", "csrf_token": csrf_of(app.get("/tickets").text)}
            ).status_code
            == 403
        )
        app.cookies.clear()
        assert login(app, "fred").status_code == 303
        page = app.get(f"/agents/{a.id}").text
        assert "Pay 50.00 KES due" in page
        paid = app.post(f"/agents/{a.id}/payouts", data={"currency": "KES", "note": "Nov", "csrf_token": csrf_of(page)})
        assert paid.status_code == 303
        assert "Paid 50.00 KES." in app.get(paid.headers["location"]).text
        again = app.post(f"/agents/{a.id}/payouts", data={"currency": "KES", "csrf_token": csrf_of(page)})
        assert again.status_code == 409 and "nothing is due" in again.text
        assert app.get(f"/agents/{a.id}?paid=5&currency=ZZZ").status_code == 200
    assert conn.execute("select amount, paid_by from commission_payouts").fetchall() == [(5000, "fred")]


def test_the_demo_has_agents_stock_and_tickets_for_its_field_agent(
    settings: Settings, conn: psycopg.Connection
) -> None:
    demo_data.seed(conn, settings.secret_key, customers=12)
    conn.commit()
    user(settings.database_url, demo_data.DEMO_FIELD_AGENT, "field_agent")
    assert demo_data.link_demo_agent(conn) and not demo_data.link_demo_agent(conn)  # once
    mine = repository.agent_of_user(conn, conn.execute("select id from staff_users").fetchone()[0])  # type: ignore[index]
    assert mine is not None and mine.code == "KE-A1"
    assert sorted(a.code for a in repository.agents(conn)) == ["KE-A1", "KE-A2", "KE-A3"]
    assert conn.execute("select count(*) from tickets").fetchone()[0] > 0  # type: ignore[index]
    assert conn.execute("select count(*) from units where state = 'with_agent'").fetchone() == (2,)
    assert conn.execute("select count(*) from agent_sales").fetchone()[0] > 0  # type: ignore[index]
