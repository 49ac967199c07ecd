"""The demo tells one story: its history (readings and money) ends now, its KPI snapshot shows a
believable portfolio, and the live units resume where the history left them."""

from __future__ import annotations

import csv
import itertools
import math
from datetime import timedelta
from pathlib import Path

import psycopg

from backoffice import clock
from backoffice.agents import repository as agents_repository
from backoffice.config import Settings
from devtools import demo_data
from paygo import demo, simulation

UNITS = 50


def test_the_demo_history_ends_now_with_a_believable_portfolio(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"home": tmp_path})  # the scenarios' truth file goes there
    assert demo.prepare_database(settings, UNITS)
    result, truth, end = demo.write_history(settings, UNITS)
    assert demo.evaluate_history(settings, end) == demo.HISTORY_DAYS
    now = clock.utc_now()
    assert now - timedelta(minutes=25) < end <= now - timedelta(minutes=19)  # one reporting interval
    assert result.units == UNITS and result.earlier_payments > 0 and result.payments > 0
    kpis = demo.snapshot_kpis(settings)

    with psycopg.connect(settings.database_url) as conn:
        # Readings and payments up to now, on the same clock.
        newest_reading, first_reading = conn.execute("select max(ts), min(ts) from telemetry").fetchone()
        assert now - timedelta(days=1) < newest_reading <= now
        assert newest_reading - first_reading > timedelta(days=demo.HISTORY_DAYS - 1)
        last_paid = conn.execute(
            "select max(entry_date) from ledger_entries where status = 'completed' and type = 'payment'"
        ).fetchone()[0]
        assert last_paid >= now.date() - timedelta(days=1)
        assert conn.execute("select max(created_at) from tokens").fetchone()[0] > now - timedelta(days=1)
        assert conn.execute("select max(day) from telemetry_daily").fetchone()[0] >= now.date() - timedelta(days=1)
        # ... and the money goes back further than the readings: each contract's life since signing.
        first_paid = conn.execute(
            "select min(entry_date) from ledger_entries where status = 'completed' and type = 'payment'"
        ).fetchone()[0]
        assert first_paid < first_reading.date() - timedelta(days=90)
        # Nothing of the past waits to be sent now.
        assert conn.execute("select count(*) from outbox where state = 'pending'").fetchone()[0] == 0

        # Every installed unit has a contract with a customer.
        orphans = conn.execute(
            """select count(*) from units u where u.state = 'installed' and not exists
                 (select 1 from contracts c join customers cu on cu.id = c.customer_id where c.unit_id = u.id)"""
        ).fetchone()[0]
        installed = conn.execute("select count(*) from units where state = 'installed'").fetchone()[0]
        assert installed == UNITS and orphans == 0

        # A mix: some paid off, most active; some units locked for want of payment, most not.
        states = dict(conn.execute("select state, count(*) from contracts group by 1").fetchall())
        assert states.get("paid_off", 0) >= 2 and states["active"] > UNITS / 2
        locked = conn.execute("select count(*) filter (where locked), count(*) from unit_latest").fetchone()
        assert 0 < locked[0] < locked[1] / 3
        # The snapshot the KPI page opens with is today's: the company's day (21:00-24:00 UTC is
        # already tomorrow in Nairobi).
        assert conn.execute("select max(as_of) from kpi_snapshots").fetchone()[0] == clock.business_day(now)
        months = conn.execute("select count(distinct as_of) from kpi_snapshots").fetchone()[0]
        assert months >= 12  # a year of month ends for the page's series

    # Believable figures (docs/kpi_definitions.md): people pay, a minority is 30 days behind, few have churned.
    assert kpis["arpu"] > 0
    assert 0.05 <= kpis["par"]["30"] <= 0.25
    assert kpis["par"]["7"] >= kpis["par"]["30"]
    assert UNITS * 0.6 <= kpis["portfolio_size"] < UNITS
    assert kpis["churn"] is not None and kpis["churn"] < 0.15
    rate = demo.collection_rate(settings)
    assert rate is not None and 0.6 <= rate <= 1.1

    # The scenarios' truth: most units healthy, some customers gave up paying.
    rows = list(csv.DictReader(truth.open()))
    kinds = [row["scenario"] for row in rows]
    assert len(kinds) == UNITS and kinds.count("healthy") > UNITS / 2 and kinds.count("stops_paying") >= 3

    # Fleet health from minute one: the history's nights were evaluated, and the faults the truth
    # holds are on the fleet-health page and in the outreach queue.
    with psycopg.connect(settings.database_url) as conn:
        nights = conn.execute("select count(distinct day) from unit_health_daily").fetchone()[0]
        assert nights >= demo.HISTORY_DAYS - 1
        raised = {(serial, kind) for serial, kind in conn.execute(
            "select u.serial, a.kind from health_alerts a join units u on u.id = a.unit_id")}  # fmt: skip
        assert conn.execute("select count(*) from health_outreach").fetchone()[0] > 0
        locked_now = {s for (s,) in conn.execute(
            "select u.serial from unit_latest l join units u on u.id = l.unit_id where l.locked")}  # fmt: skip
    # Every customer who gave up more than 25 days ago and whose unit is locked: locked too long.
    gave_up = [r["serial"] for r in rows if r["scenario"] == "stops_paying" and r["serial"] in locked_now
               and r["onset"] < (end - timedelta(days=25)).isoformat()]  # fmt: skip
    assert gave_up and all((s, "locked_too_long") in raised for s in gave_up)

    # The live units resume from the history's end, with the credit and keypad count it left them.
    assert demo.live_start(settings) == newest_reading
    fleet = simulation.prepare(settings, units=UNITS, speed=1440, start_days_ago=0, device_login=False,
                               weights={"healthy": 1.0}, self_pay=False, connections=0, synthetic=False,
                               seed=0)  # fmt: skip
    assert fleet.config.credit_s is not None and fleet.config.token_counts is not None
    assert len(fleet.config.credit_s) == UNITS
    # ... except those whose customer moved away with them: they stay silent.
    gone = {row["serial"] for row in rows if row["scenario"] == "migrates"}
    assert {s.serial for s in fleet.specs} == {row["serial"] for row in rows} - gone
    assert sum(1 for c in fleet.config.credit_s.values() if c == float("inf")) == states["paid_off"]
    assert min(fleet.config.token_counts.values()) > 1
    # ... and each battery at the charge its newest reading showed: no jump at the seam (issue 26).
    with psycopg.connect(settings.database_url) as conn:
        newest_soc = dict(conn.execute("select u.serial, l.soc from unit_latest l join units u on u.id = l.unit_id"))
    assert fleet.config.soc == {serial: float(soc) for serial, soc in newest_soc.items()}
    _tickets_agree_with_the_story(settings, rows)
    _one_company(settings)


def _tickets_agree_with_the_story(settings: Settings, truth: list[dict[str, str]]) -> None:
    """Tickets, alerts and arrears tell the same story as the ground truth (issue 26)."""
    scenario = {row["serial"]: row["scenario"] for row in truth}
    with psycopg.connect(settings.database_url) as conn:
        tickets = conn.execute(
            """select t.kind, u.serial, u.state, u.installed_at, c.state,
                      case when isfinite(c.credit_end) then c.credit_end end
                 from tickets t join units u on u.id = t.unit_id
                 left join lateral (select * from contracts c where c.unit_id = u.id order by c.signed_on desc
                                     limit 1) c on true
                where t.state not in ('done', 'cancelled')"""
        ).fetchall()
    now = clock.utc_now()
    kinds = {kind for kind, *_ in tickets}
    assert {"repossession", "installation"} <= kinds  # the story has both: customers far behind, new sales
    for kind, serial, unit_state, installed_at, contract_state, credit_end in tickets:
        what = (kind, serial, scenario.get(serial), contract_state, credit_end)
        if kind == "repossession":  # never a customer in good standing: far behind on an active contract
            assert contract_state == "active" and credit_end is not None, what
            assert credit_end < now - timedelta(days=demo_data.REPOSSESS_AFTER_DAYS), what
        if kind == "battery_swap":  # a tampered unit's battery is not what is wrong with it
            assert scenario.get(serial) != "tampered", what
        if kind == "installation":  # only units still to install: in stock with an agent
            assert unit_state == "with_agent" and installed_at is None, what
        if kind == "customer_education":
            assert scenario.get(serial) in demo_data.EDUCATION_SCENARIOS, what


def _one_company(settings: Settings) -> None:
    """The customers, their numbers and languages, the agents and their towns fit one Kenyan company."""
    with psycopg.connect(settings.database_url) as conn:
        languages = {r[0] for r in conn.execute("select distinct language from customers")}
        countries = {r[0][:4] for r in conn.execute("select e164 from customer_phones")}
        villages = {r[0] for r in conn.execute("select distinct village from customers")}
        areas = [a.areas for a in agents_repository.agents(conn)]
    assert languages <= {"sw", "en"} and countries == {"+254"}
    towns = {name: (lat, lon) for name, _, lat, lon in demo_data.VILLAGES}
    assert villages <= set(towns) and sorted(t for a in areas for t in a) == sorted(towns)  # every town served
    for covered in areas:
        for a, b in itertools.combinations(covered, 2):
            assert _km(towns[a], towns[b]) <= demo_data.DEMO_AGENT_REACH_KM, (a, b)


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine, the Earth as a sphere of 6371 km)."""
    (la1, lo1), (la2, lo2) = (tuple(math.radians(x) for x in p) for p in (a, b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6371 * math.asin(math.sqrt(h))
