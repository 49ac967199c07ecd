"""The nightly health job on hand-made readings in the database: the capacity estimate, offline versus
a unit cut off at night by its low-voltage disconnect, the alerts' lifecycle (one open per unit and
kind, resolved when the condition clears, acknowledged with an audit row), the collections class,
the unit panel and the alerts page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from backoffice import clock
from backoffice.audit.schemas import Actor
from backoffice.config import Settings
from backoffice.contracts.service import sign_contract
from backoffice.credit import service as credit
from backoffice.health import repository as repository_health
from backoffice.health import service
from backoffice.registry import repository
from backoffice.registry import service as registry
from backoffice.registry.schemas import NewContract
from backoffice.templating import templates
from firmware_sim.physics import clear_sky_ghi, solar_elevation_deg
from ingest import bulk
from ingest.writer import ensure_partitions
from paygo.web import create_app
from tests.support import count
from tests.support.contracts import kisumu_customer
from tests.support.money import MONEY_NOW
from tests.support.staff import api_token

pytestmark = pytest.mark.clock(MONEY_NOW)

DAY0 = date(2026, 3, 1)
STEP_H = 1 / 3  # a reading every 20 minutes


def _product(conn: psycopg.Connection) -> int:
    row = conn.execute("select id from products where code = 'H50'").fetchone()
    if row:
        return int(row[0])
    pid = repository.insert_product(conn, code="H50", name="h", business_model="flexible", currency="KES",
                                    price_per_day=3500)  # fmt: skip
    conn.execute("update products set panel_wp = 50, battery_ah = 20, battery_chemistry = 'lifepo4' where id = %s",
                 (pid,))  # fmt: skip
    return pid


def _unit(conn: psycopg.Connection, serial: str) -> int:
    installed = datetime.combine(DAY0 - timedelta(days=1), datetime.min.time(), UTC)
    return registry.register_unit(conn, "k", serial, _product(conn), 11.5, 104.9, installed_at=installed)


Columns = dict[str, np.ndarray]


def _day(unit: int, day: date, *, soc0: float, evening_w: float = 8.0, pv_peak_w: float = 40.0,
         cap_ah: float = 20.0, locked: bool = False, late_s: float = 2.0) -> tuple[Columns, float]:  # fmt: skip
    """One day of 72 readings from a coulomb-counted battery: sun from 06:00 to 18:00, lights from 18:00
    to 23:00 and a 1 W night light; the low-voltage disconnect cuts the load at 5 % charge."""
    t0 = datetime.combine(day, datetime.min.time(), UTC).timestamp()
    wh = cap_ah * 12.8
    soc, rows = soc0, []
    for k in range(72):
        h = (k + 0.5) * STEP_H
        pv = max(0.0, pv_peak_w * np.sin(np.pi * (h - 6) / 12)) if 6 < h < 18 else 0.0
        want = 0.0 if locked else (evening_w if 18 <= h < 23 else 1.0)
        load = want if soc > 0.05 else 0.0  # the disconnect: readings go on, the load is cut
        pv_in = min(pv * STEP_H, max(0.0, (1 - soc) * wh + load * STEP_H))  # a full battery curtails the harvest
        soc = min(1.0, max(0.0, soc + (pv_in - load * STEP_H) / wh))
        rows.append((t0 + h * 3600, soc, pv_in, load * STEP_H, pv))
    a = np.array(rows)
    n = len(a)
    cols = {
        "unit_id": np.full(n, unit, np.int64), "ts": a[:, 0], "received_at": a[:, 0] + late_s,
        "seq": np.arange(n, dtype=np.int64) + int(t0), "batt_v": 12.0 + 1.2 * a[:, 1], "batt_a": np.zeros(n),
        "soc": a[:, 1], "batt_temp_c": np.full(n, 30.0), "pv_v": np.where(a[:, 4] > 0, 17.5, 0.0),
        "pv_w": a[:, 4], "pv_wh": a[:, 2], "load_wh": a[:, 3], "credit_s": np.full(n, 0 if locked else 86400),
        "locked": np.full(n, locked), "rssi": np.full(n, -80),
    }  # fmt: skip
    return cols, float(a[-1, 1])


def _write(conn: psycopg.Connection, cols: dict[str, np.ndarray]) -> None:
    with conn.transaction():
        bulk.write_columns(conn, cols, "test")


@pytest.fixture
def fleet(conn: psycopg.Connection) -> dict[str, int]:
    with conn.transaction():
        ensure_partitions(conn, datetime(2026, 2, 20, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
        return {name: _unit(conn, name) for name in ("NORMAL", "CUTOFF", "SILENT", "LOCKED")}


def _run(conn: psycopg.Connection, settings: Settings, day: date) -> None:
    with conn.transaction():
        service.run_day(conn, day, settings)


def _open(conn: psycopg.Connection, kind: str) -> set[int]:
    return {r[0] for r in conn.execute("select unit_id from health_alerts where kind = %s and resolved_on is null",
                                       (kind,))}  # fmt: skip


def test_capacity_estimate_offline_and_the_night_cut_off(conn: psycopg.Connection, settings: Settings,
                                                         fleet: dict[str, int]) -> None:  # fmt: skip
    soc = dict.fromkeys(fleet.values(), 0.6)
    for d in range(4):
        day = DAY0 + timedelta(days=d)
        for name, unit in fleet.items():
            if name == "SILENT" and d >= 2:
                continue  # its link is gone: nothing arrives
            # The cut-off unit's lights outgrow its sun: the disconnect trips every night.
            cols, soc[unit] = _day(unit, day, soc0=soc[unit], evening_w=60.0 if name == "CUTOFF" else 8.0,
                                   locked=name == "LOCKED")  # fmt: skip
            _write(conn, cols)
        _run(conn, settings, day)
    # The night's discharge, coulomb-counted, gives the battery's capacity back (20 Ah).
    est = conn.execute("select capacity_ah from unit_health_daily where unit_id = %s and day = %s",
                       (fleet["NORMAL"], DAY0 + timedelta(days=3))).fetchone()  # fmt: skip
    assert est is not None and est[0] == pytest.approx(20.0, rel=0.02)
    cut = conn.execute("select min(min_soc) from unit_health_daily where unit_id = %s", (fleet["CUTOFF"],)).fetchone()
    assert cut is not None and cut[0] <= 0.06  # it really was cut off at night ...
    assert _open(conn, "offline") == {fleet["SILENT"]}  # ... and is not offline; the silent one is
    ev = conn.execute("select evidence from health_alerts where kind = 'offline'").fetchone()
    assert ev is not None and ev[0]["silent_days"] == 2

    # The link comes back: the alert resolves by itself once clear for two days, and stays one row.
    for d in range(4, 6):
        day = DAY0 + timedelta(days=d)
        for unit in fleet.values():
            _write(conn, _day(unit, day, soc0=0.6)[0])
        _run(conn, settings, day)
        assert _open(conn, "offline") == ({fleet["SILENT"]} if d < 5 else set())
    rows = conn.execute("select opened_on, resolved_on, evidence from health_alerts where kind = 'offline'").fetchall()
    assert [r[:2] for r in rows] == [(DAY0 + timedelta(days=2), DAY0 + timedelta(days=5))]
    assert rows[0][2]["episodes"] == [[str(DAY0 + timedelta(days=2)), str(DAY0 + timedelta(days=3))]]


def test_hours_are_measured_from_the_timestamps(conn: psycopg.Connection, settings: Settings,
                                               fleet: dict[str, int]) -> None:  # fmt: skip
    """A day locked throughout is 24 hours locked whether the unit reports every 5, 20 or 60 minutes; a
    unit silent half the day is not counted as locked through its silence."""
    day = DAY0
    for name, minutes in (("NORMAL", 5), ("CUTOFF", 20), ("LOCKED", 60)):
        cols = _sunny_day(fleet[name], day, clearness=0.8, soc=0.6, minutes=minutes)
        cols["locked"][:] = True
        cols["batt_temp_c"][:] = 45.0
        _write(conn, cols)
    half = _sunny_day(fleet["SILENT"], day, clearness=0.8, soc=0.6)
    keep = half["ts"] < half["ts"][0] + 6 * 3600  # readings from 00:10 to 06:00, then silence
    half["locked"][:] = True
    _write(conn, {k: v[keep] for k, v in half.items()})
    _run(conn, settings, day)
    got = {u: (locked, hot) for u, locked, hot in conn.execute(
        "select unit_id, hours_locked, hours_hot from unit_health_daily where day = %s", (day,))}  # fmt: skip
    for name in ("NORMAL", "CUTOFF", "LOCKED"):
        assert got[fleet[name]] == (pytest.approx(24.0, abs=0.01), pytest.approx(24.0, abs=0.01)), name
    assert got[fleet["SILENT"]][0] == pytest.approx(6.0, abs=0.01)


def test_an_alert_held_through_a_short_clear_spell_and_reopened_when_it_returns(
    conn: psycopg.Connection, settings: Settings, fleet: dict[str, int]
) -> None:
    """No flapping: a day or two clear does not close an alert; once closed, a condition that returns
    within reopen_days re-opens the same alert (one row, one ticket), its episodes in the evidence."""
    unit = fleet["NORMAL"]
    fires = [repository_health.Firing(unit, "tamper", 1, {"unmetered_wh_day": 20.0})]

    def night(d: int, firing: bool) -> tuple[int, int, int]:
        with conn.transaction():
            return repository_health.reconcile(conn, DAY0 + timedelta(days=d), fires if firing else [],
                                               {"tamper": 3}, 14)  # fmt: skip

    assert night(0, True) == (1, 0, 0)
    with conn.transaction():
        assert service.open_technician_tickets(conn, settings) == 1
    assert night(1, False) == (0, 0, 0)  # clear for a day or two: still open
    assert night(2, False) == (0, 0, 0)
    assert night(3, True) == (0, 0, 0)  # back: the same alert, a second episode
    for d in (4, 5):
        night(d, False)
    assert night(6, False) == (0, 1, 0)  # clear three days: closed
    assert night(10, True) == (0, 0, 1)  # back within 14 days: re-opened, not a new alert ...
    with conn.transaction():
        assert service.open_technician_tickets(conn, settings) == 0  # ... and not a new ticket
    assert conn.execute("select count(*) from tickets").fetchone() == (1,)
    rows = conn.execute("select id, opened_on, resolved_on, evidence from health_alerts").fetchall()
    assert len(rows) == 1 and rows[0][2] is None
    assert rows[0][3]["episodes"] == [[str(DAY0 + timedelta(days=d)) for d in ep] for ep in ((0, 0), (3, 3), (10, 10))]
    assert rows[0][3]["reopened"] == 1 and rows[0][3]["unmetered_wh_day"] == 20.0
    for d in range(11, 14):
        night(d, False)
    assert night(30, True) == (1, 0, 0)  # back long after: a new alert


def _sunny_day(unit: int, day: date, *, clearness: float, soc: float, minutes: int = 20) -> Columns:
    """A day of readings every ``minutes`` whose PV power is the clear-sky sun at the unit's place
    (11.5 N, 104.9 E) times ``clearness`` on a 50 Wp panel, the battery held at ``soc``."""
    t0 = datetime.combine(day, datetime.min.time(), UTC)
    per = 24 * 60 // minutes
    ts = [t0 + timedelta(minutes=(k + 0.5) * minutes) for k in range(per)]
    pv = np.array([50.0 * clearness * float(clear_sky_ghi(solar_elevation_deg(11.5, 104.9, t))) / 1000 for t in ts])
    n = len(ts)
    stamps = np.array([t.timestamp() for t in ts])
    return {
        "unit_id": np.full(n, unit, np.int64), "ts": stamps, "received_at": stamps + 2.0,
        "seq": np.arange(n, dtype=np.int64) + int(stamps[0]), "batt_v": np.full(n, 13.0), "batt_a": np.zeros(n),
        "soc": np.full(n, soc), "batt_temp_c": np.full(n, 30.0), "pv_v": np.where(pv > 0, 17.5, 0.0),
        "pv_w": pv, "pv_wh": pv * minutes / 60, "load_wh": np.full(n, 0.3), "credit_s": np.full(n, 86400),
        "locked": np.full(n, False), "rssi": np.full(n, -80),
    }  # fmt: skip


def test_pv_clearness_while_charging(conn: psycopg.Connection, settings: Settings, fleet: dict[str, int]) -> None:
    """The day's PV power per Wp while the battery takes charge, over the clear-sky sun: what reached the
    cells (a bag over the panel: about 0.25), and nothing to say on a day the battery stayed full."""
    day = DAY0
    _write(conn, _sunny_day(fleet["NORMAL"], day, clearness=0.8, soc=0.6))
    _write(conn, _sunny_day(fleet["CUTOFF"], day, clearness=0.25, soc=0.6))
    _write(conn, _sunny_day(fleet["LOCKED"], day, clearness=0.8, soc=1.0))  # full all day: curtailed, no evidence
    _run(conn, settings, day)
    got = dict(conn.execute("select unit_id, pv_clearness from unit_health_daily where day = %s", (day,)).fetchall())
    assert got[fleet["NORMAL"]] == pytest.approx(0.8, abs=0.02)
    assert got[fleet["CUTOFF"]] == pytest.approx(0.25, abs=0.01)
    assert got[fleet["LOCKED"]] is None


def test_one_open_alert_per_unit_and_kind(conn: psycopg.Connection, fleet: dict[str, int]) -> None:
    insert = """insert into health_alerts (unit_id, kind, opened_on, last_seen_on, evidence)
                values (%s, 'offline', %s, %s, '{}')"""
    conn.execute(insert, (fleet["NORMAL"], DAY0, DAY0))
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(insert, (fleet["NORMAL"], DAY0, DAY0))


def _credit_ended(conn: psycopg.Connection, unit: int, day: date) -> None:
    """A contract for the unit whose one token (a day's credit) ended its credit when ``day`` began."""
    contract = sign_contract(conn, NewContract(kisumu_customer(conn, "Out of credit"), unit, _product(conn),
                                               day - timedelta(days=1)))  # fmt: skip
    credit.apply_payment(conn, contract, 3_500, day - timedelta(days=1), "k",
                         history_at=clock.start_of_day(day) - timedelta(days=1))  # fmt: skip


def test_locked_unit_is_classified_acknowledged_and_shown(conn: psycopg.Connection, settings: Settings,
                                                          fleet: dict[str, int]) -> None:  # fmt: skip
    unit = fleet["LOCKED"]
    with conn.transaction():
        _credit_ended(conn, unit, DAY0)  # out of credit (contracts.credit_end) from DAY0 on
    soc = 0.9
    for d in range(8):
        day = DAY0 + timedelta(days=d)
        cols, soc = _day(unit, day, soc0=soc, locked=True)
        _write(conn, cols)
        _run(conn, settings, day)
    alert = conn.execute("select id, level from health_alerts where unit_id = %s and kind = 'locked_too_long'",
                         (unit,)).fetchone()  # fmt: skip
    assert alert is not None and alert[1] == 7
    # Healthy, full and quiet while out of credit: "not using", a coaching call, in the queue.
    c = conn.execute("select class, since, evidence from unit_collections where unit_id = %s", (unit,)).fetchone()
    assert c is not None and c[:2] == ("not_using", DAY0) and c[2]["days_out_of_credit"] == 7
    # The other units have no contract out of credit: whatever their telemetry says, no collections case.
    assert count(conn, "select count(*) from unit_collections") == 1
    queue = conn.execute("select reason from health_outreach where unit_id = %s", (unit,)).fetchone()
    assert queue == ("locked_too_long_7",)

    done = service.acknowledge(conn, Actor("alice"), alert[0])
    assert done.acknowledged_by == "alice" and done.technician is False
    audit = conn.execute("select actor, action, entity_id from audit_log where entity = 'health_alert'").fetchall()
    assert audit == [("alice", "health.acknowledge", str(alert[0]))]

    panel = service.unit_panel(conn, unit)
    assert [a.kind for a in panel.open_alerts] == ["locked_too_long"]
    assert panel.collections is not None and panel.collections.class_ == "not_using"
    html = templates.get_template("panels/health.html").render(panel=panel)
    assert "not using" in html and "locked too long" in html


def test_soh_series_is_drawn(conn: psycopg.Connection, settings: Settings, fleet: dict[str, int]) -> None:
    unit = fleet["NORMAL"]
    soc = 0.6
    for d in range(6):
        day = DAY0 + timedelta(days=d)
        cols, soc = _day(unit, day, soc0=soc, cap_ah=16.0)  # a 20 Ah battery that holds 16
        _write(conn, cols)
        _run(conn, settings, day)
    panel = service.unit_panel(conn, unit)
    assert panel.soh and panel.soh[-1].soh == pytest.approx(0.8, abs=0.02)
    assert "<svg" in templates.get_template("panels/health.html").render(panel=panel)


def test_api_and_page(settings: Settings, conn: psycopg.Connection, fleet: dict[str, int]) -> None:
    conn.execute(
        """insert into health_alerts (unit_id, kind, opened_on, last_seen_on, evidence)
           values (%s, 'tamper', %s, %s, '{"unmetered_wh_day": 120.5}')""",
        (fleet["NORMAL"], DAY0, DAY0),
    )
    conn.commit()
    app = create_app(settings)
    with TestClient(app, headers=api_token(settings.database_url, "call_centre")) as c:
        alerts = c.get("/api/v1/fleet-health/alerts").json()
        assert [(a["kind"], a["technician"], a["evidence"]) for a in alerts] == [
            ("tamper", True, {"unmetered_wh_day": 120.5})
        ]
        acked = c.post(f"/api/v1/fleet-health/alerts/{alerts[0]['id']}/acknowledge")
        assert acked.status_code == 200 and acked.json()["acknowledged_by"]
        assert c.post("/api/v1/fleet-health/alerts/999999/acknowledge").status_code == 404
        assert c.get("/api/v1/fleet-health/alerts", params={"kind": "nonsense"}).status_code == 422
        page = c.get("/fleet-health")
        assert page.status_code == 200 and "unmetered wh day 120.5" in page.text
        assert c.get(f"/api/v1/fleet-health/units/{fleet['NORMAL']}").json()["open_alerts"][0]["kind"] == "tamper"
    with TestClient(app, headers=api_token(settings.database_url, "viewer")) as c:
        assert c.post(f"/api/v1/fleet-health/alerts/{alerts[0]['id']}/acknowledge").status_code == 403
    with TestClient(app, headers=api_token(settings.database_url, "field_agent")) as c:  # tickets, not lists
        assert c.get("/api/v1/fleet-health/alerts").status_code == 403
        assert c.get("/api/v1/fleet-health/outreach").status_code == 403
    with TestClient(app) as outsider:
        assert outsider.get("/api/v1/fleet-health/alerts").status_code == 401


def test_a_technician_alert_opens_one_ticket_and_a_coaching_alert_none(
    settings: Settings, conn: psycopg.Connection, fleet: dict[str, int]
) -> None:
    with conn.transaction():
        for unit, kind in ((fleet["NORMAL"], "tamper"), (fleet["CUTOFF"], "battery_degrading"),
                           (fleet["LOCKED"], "usage_drop")):  # fmt: skip
            conn.execute("""insert into health_alerts (unit_id, kind, opened_on, last_seen_on, evidence)
                            values (%s, %s, %s, %s, '{"soh": 0.71}')""", (unit, kind, DAY0, DAY0))  # fmt: skip
        assert service.open_technician_tickets(conn, settings) == 2
        assert service.open_technician_tickets(conn, settings) == 0  # once per alert
    tickets = conn.execute(
        "select t.unit_id, t.kind, t.source, t.note from tickets t join health_alerts a on a.ticket_id = t.id "
        "order by t.unit_id"
    ).fetchall()
    assert [(u, k, s) for u, k, s, _ in tickets] == sorted(
        [(fleet["NORMAL"], "repair", "alert"), (fleet["CUTOFF"], "battery_swap", "alert")]
    )
    assert all("soh 0.71" in note for *_, note in tickets)
    assert conn.execute("select count(*) from tickets").fetchone() == (2,)
    actors = conn.execute("select distinct actor from audit_log where entity = 'ticket'").fetchall()
    assert actors == [("fleet-health",)]


def test_a_flapping_technician_alert_keeps_one_open_ticket(
    settings: Settings, conn: psycopg.Connection, fleet: dict[str, int]
) -> None:
    """Issue 21: a tamper alert that clears and fires again, three times, opens one ticket (one SLA), not
    three; the database holds at most one open ticket per unit and kind whoever opens it."""
    unit = fleet["NORMAL"]
    ticket_ids = set()
    with conn.transaction():
        for flap in range(3):
            day = DAY0 + timedelta(days=2 * flap)
            conn.execute("""insert into health_alerts (unit_id, kind, opened_on, last_seen_on, evidence)
                            values (%s, 'tamper', %s, %s, '{"share": 0.4}')""", (unit, day, day))  # fmt: skip
            assert service.open_technician_tickets(conn, settings) == 1
            linked = conn.execute("select ticket_id from health_alerts where unit_id = %s", (unit,)).fetchall()
            ticket_ids |= {r[0] for r in linked}
            conn.execute("update health_alerts set resolved_on = %s where unit_id = %s and resolved_on is null",
                         (day + timedelta(days=1), unit))  # fmt: skip
    assert len(ticket_ids) == 1
    assert conn.execute("select count(*) from tickets where unit_id = %s", (unit,)).fetchone() == (1,)
    # The call centre opening the same kind on the unit joins it too; another kind is another ticket.
    with conn.transaction():
        assert service.tickets.open_ticket(conn, Actor("cc"), unit, "repair", "call_centre", "customer called") in (
            ticket_ids
        )
        assert service.tickets.open_ticket(conn, Actor("cc"), unit, "battery_swap", "call_centre") not in ticket_ids
    note = conn.execute("select note from tickets where id = %s", (min(ticket_ids),)).fetchone()
    assert note is not None and "customer called" in note[0]
    # And the database itself refuses a second open ticket of a kind on a unit.
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
        conn.execute("""insert into tickets (unit_id, kind, source, opened_by, due_at)
                        values (%s, 'repair', 'call_centre', 'x', paygo_now())""", (unit,))  # fmt: skip
    # Once closed, a new fault is a new ticket.
    with conn.transaction():
        conn.execute("update tickets set state = 'done', closed_at = paygo_now() where id = %s", (min(ticket_ids),))
        assert service.tickets.open_ticket(conn, Actor("cc"), unit, "repair", "alert") not in ticket_ids


def test_the_job_in_slices_of_the_fleet_judges_as_over_the_whole_fleet(
    conn: psycopg.Connection, settings: Settings, fleet: dict[str, int]
) -> None:
    """The nightly job walks the fleet in slices of unit ids (bounded memory at a million units); the
    neighbours' references are the fleet's, so a slice of one unit judges it exactly as one slice of all:
    the same derived rows and the same alerts (a panel at a quarter of its neighbours' clearness)."""
    clearness = {"NORMAL": 0.8, "CUTOFF": 0.2, "SILENT": 0.75, "LOCKED": 0.85}
    for d in range(6):
        for name, unit in fleet.items():
            _write(conn, _sunny_day(unit, DAY0 + timedelta(days=d), clearness=clearness[name], soc=0.6))
    for d in range(5):
        _run(conn, settings, DAY0 + timedelta(days=d))
    day = DAY0 + timedelta(days=5)

    def run(slice_units: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        with conn.transaction(force_rollback=True):
            service.run_day(conn, day, settings, slice_units=slice_units)
            rows = conn.execute("select * from unit_health_daily where day = %s order by unit_id", (day,)).fetchall()
            alerts = conn.execute(
                "select unit_id, kind, level, evidence from health_alerts where resolved_on is null order by 1, 2"
            ).fetchall()
            return rows, alerts

    whole, sliced = run(1000), run(1)
    assert len(whole[0]) == 4 and whole == sliced
    assert (fleet["CUTOFF"], "pv_underperformance") in {(u, k) for u, k, *_ in whole[1]}


def test_the_job_on_a_fleet_without_units(conn: psycopg.Connection, settings: Settings) -> None:
    """A new installation's first night: no unit yet, nothing derived, nothing raised."""
    with conn.transaction():
        got = service.run_day(conn, DAY0, settings)
    assert (got["units"], got["derived"], got["firing"]) == (0, 0, 0)
