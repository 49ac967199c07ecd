"""The nightly health job and what staff do with its alerts.

``run_day(conn, day, settings)`` is the whole job for one day (the ``health.evaluate_daily`` task runs
it for yesterday; ``bench/fleet_health.py`` runs it for each day of a simulated history):

1. ``unit_health_daily`` of the day, from its readings received by then (capacity estimate, charge,
   heat, lock and cut-off hours, readings received);
2. every rule over the window of rollups ending that day (``rules.evaluate``, numpy);
3. the alerts' lifecycle: one open alert per (unit, kind), refreshed while the rule fires, resolved
   once its condition has been clear for ``clear_days``, re-opened (the same row and ticket) when it
   returns within ``reopen_days`` (``repository.reconcile``);
4. each out-of-credit unit's collections class, and the outreach queue rebuilt from both.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import numpy as np
import psycopg

from backoffice import clock
from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.health import derive, repository, rules
from backoffice.health.rules import KINDS, Thresholds
from backoffice.health.schemas import Alert, AlertList, Collections, SohPoint, UnitPanel
from backoffice.listing import Page
from backoffice.tickets import service as tickets

log = logging.getLogger(__name__)

# The seam for tickets: alerts a technician must see (the integrator opens a ticket for each new one);
# the others are coaching alerts for the call centre's outreach queue.
TECHNICIAN_KINDS = frozenset({"battery_degrading", "tamper", "over_temperature"})
# A confirmed fault that keeps the customer from using the unit (collections: "can't use").
FAULT_KINDS = frozenset({"battery_degrading", "pv_underperformance", "over_temperature", "chronic_deep_discharge"})


COACHING_KINDS = tuple(k for k in KINDS if k not in TECHNICIAN_KINDS)
# The call centre's playbook: reason → priority (higher first), suggested action, script hint.
PLAYBOOK: list[tuple[str, int, str, str]] = [
    ("using_without_paying", 90, "Collections call; flag for a field visit if it continues",
     "The unit is still powering something while out of credit: ask what is connected, remind the terms."),
    ("cant_use", 85, "Apologise, book the repair first; consider goodwill days",
     "We can see your system has a fault: we will fix it first, and you will not pay for the broken days."),
    ("locked_too_long_30", 80, "Recovery or restructuring conversation",
     "It has been a month without light: is there a problem we can help with, or should we collect the kit?"),
    ("offline", 70, "Call to check the unit is still there and working",
     "We have not heard from your system: is it switched on, and is it still at your home?"),
    ("locked_too_long_7", 65, "Collections call: agree a payment date",
     "Your light has been off for a week: can we help you get back on with a small payment?"),
    ("pv_underperformance", 60, "Ask the customer to clean or uncover the panel",
     "Your panel is making much less than your neighbours': is it dusty, shaded or covered?"),
    ("system_too_small", 55, "Offer an upgrade (bigger kit)",
     "Your system runs flat most nights with what you connect: would a bigger kit suit you?"),
    ("chronic_deep_discharge", 50, "Coach on usage: fewer or smaller appliances at night",
     "Your battery runs empty most nights: which appliances do you use after dark?"),
    ("usage_drop", 45, "Coaching call: is the household still using the light?",
     "We see you use your system much less: is everything working, do you need help?"),
    ("locked_too_long_3", 40, "Friendly payment reminder",
     "Your credit ran out three days ago: top up to get light back."),
    ("not_using", 35, "Coaching call: the unit works but is not used or paid",
     "Your system is healthy but switched off: is anything stopping you from using it?"),
]  # fmt: skip


def needs_technician(kind: str) -> bool:
    """Whether an alert of this kind goes to a technician (a ticket), rather than to the call centre."""
    return kind in TECHNICIAN_KINDS


def thresholds(settings: Any) -> Thresholds:
    return Thresholds.from_settings(settings)


# The nightly job walks the fleet in slices of this many unit ids (memory: a slice's window and the
# rules' temporaries, a few hundred MB at 20,000 units; the fleet-wide part is a week of three figures).
SLICE_UNITS = 20_000


def run_day(conn: psycopg.Connection, day: date, settings: Any, slice_units: int = SLICE_UNITS) -> dict[str, int]:
    """The health job for ``day`` (its readings are all in), in the caller's transaction.

    Streamed over slices of the fleet, so that its memory does not grow with the fleet: (1) each slice's
    day derived from its raw readings (``derive``, numpy); (2) the neighbours' references from the whole
    fleet's last 7 days (the one fleet-wide step: a week of three figures per unit); (3) each slice's
    36-day window with the day just derived, the rules against those references, the state of health,
    and the day's rows written by one COPY; then the alerts' lifecycle, tickets, collections and the
    outreach queue over the day's firing set."""
    t = thresholds(settings)
    started = clock.monotonic()
    lo, hi = repository.id_range(conn)
    spans = [(a, min(a + slice_units - 1, hi)) for a in range(lo, hi + 1, slice_units)] or [(lo, hi)]
    repository.delete_day(conn, day)
    derived: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    for a, b in spans:
        ids, figures = derive.derive(repository.day_readings(conn, day, a, b), repository.day_sites(conn, a, b),
                                     t.hot_c)  # fmt: skip
        # As the rules would read them back: unit_health_daily's columns are ``real``.
        derived.append((ids, {k: v.astype(np.float32).astype(np.float64) for k, v in figures.items()}))
    derived_at = clock.monotonic()
    # The neighbours' references over the fleet: the last 7 days of every installed unit, slice by slice.
    wp, cell, yields, full, clear = [], [], [], [], []
    sizes = [0]
    for (a, b), today in zip(spans, derived, strict=True):
        w = repository.load_window(conn, day, t, 7, lo=a, hi=b, today=today)
        wp.append(w.panel_wp)
        cell.append(w.cell)
        yields.append(rules.per_wp(w.received, w.energy_in, w.panel_wp))
        full.append(w.hours_full)
        clear.append(w.pv_clearness)
        sizes.append(w.n)
    refs = rules.references(np.concatenate(wp), np.concatenate(cell), np.concatenate(yields), np.concatenate(full),
                            np.concatenate(clear))  # fmt: skip
    offsets = np.cumsum(sizes)
    del wp, cell, yields, full, clear
    references_at = clock.monotonic()
    firing: list[repository.Firing] = []
    units = written = 0
    for k, ((a, b), (ids, figures)) in enumerate(zip(spans, derived, strict=True)):
        w = repository.load_window(conn, day, t, lo=a, hi=b, today=(ids, figures))
        hits = rules.evaluate(w, t, refs.take(slice(offsets[k], offsets[k + 1])))
        # The state of health of the window's units, stored with the day's row (units not installed: none).
        soh = np.full(len(ids), np.nan)
        at = np.searchsorted(w.unit_id, ids)
        mine = (at < w.n) & (w.unit_id[np.minimum(at, max(w.n - 1, 0))] == ids)
        soh[mine] = rules.smoothed_soh(w)[at[mine]]
        written += repository.write_day(conn, day, ids, figures, soh)
        for kind, h in hits.items():
            for j, i in enumerate(h.idx):
                level = int(h.level[j]) if h.level is not None else 1
                firing.append(repository.Firing(int(w.unit_id[i]), kind, level, h.evidence_of(j)))
        units += w.n
        derived[k] = (ids[:0], {})  # the slice is done: let its figures go
    judged_at = clock.monotonic()
    opened, resolved, reopened = repository.reconcile(conn, day, firing, t.clear_days_of(), t.reopen_days)
    reconciled_at = clock.monotonic()
    ticketed = open_technician_tickets(conn, settings)
    ticketed_at = clock.monotonic()
    classified = repository.classify_collections(conn, day, sorted(FAULT_KINDS), t, str(clock.company_zone()))
    queued = repository.rebuild_outreach(conn, day, PLAYBOOK, list(COACHING_KINDS))
    log.info("health job %s: %d units in %d slices; derived %.1f s, references %.1f s, windows and rules %.1f s, "
             "alerts %.1f s, tickets %.1f s, collections and outreach %.1f s", day, units, len(spans),
             derived_at - started, references_at - derived_at, judged_at - references_at, reconciled_at - judged_at,
             ticketed_at - reconciled_at, clock.monotonic() - ticketed_at)  # fmt: skip
    return {"units": units, "derived": written, "firing": len(firing), "opened": opened, "resolved": resolved,
            "reopened": reopened, "out_of_credit": classified, "outreach": queued, "tickets": ticketed}  # fmt: skip


# The ticket a technician alert opens, and who opens it (the job, in the audit trail).
TICKET_KIND = {"battery_degrading": "battery_swap", "tamper": "repair", "over_temperature": "repair"}
HEALTH_JOB = Actor("fleet-health")


def open_technician_tickets(conn: psycopg.Connection, settings: Any) -> int:
    """A ticket for every open technician alert without one (field ops take it from there), in the
    caller's transaction; returns how many alerts got one. An alert that flaps (clears, fires again) joins
    the unit's ticket still open for that fault rather than opening another (tickets.open_ticket)."""
    opened = 0
    for alert_id, unit_id, kind, evidence in repository.alerts_needing_tickets(conn, sorted(TECHNICIAN_KINDS)):
        note = f"{kind.replace('_', ' ')} alert #{alert_id}: " + ", ".join(f"{k} {v}" for k, v in evidence.items())
        ticket_id = tickets.open_ticket(conn, HEALTH_JOB, unit_id, TICKET_KIND[kind], "alert", note[:1000],
                                        sla_hours=getattr(settings, "ticket_sla_hours", None),
                                        working=getattr(settings, "working_hours", None))  # fmt: skip
        repository.set_alert_ticket(conn, alert_id, ticket_id)
        opened += 1
    return opened


class NotFound(LookupError):
    pass


def _alert(row: dict[str, Any]) -> Alert:
    return Alert(**row, technician=needs_technician(row["kind"]))


def alert(conn: psycopg.Connection, alert_id: int) -> Alert | None:
    row = repository.alert(conn, alert_id)
    return None if row is None else _alert(row)


def open_alerts(conn: psycopg.Connection, kind: str | None = None, unit_id: int | None = None) -> list[Alert]:
    return [_alert(r) for r in repository.open_alerts(conn, kind=kind, unit_id=unit_id)]


def open_alerts_page(conn: psycopg.Connection, query: AlertList) -> Page[Alert]:
    found = repository.open_alerts_page(conn, query)
    return Page([_alert(r) for r in found.rows], found.total, found.query)


def acknowledge(conn: psycopg.Connection, actor: Actor, alert_id: int) -> Alert:
    """A member of staff has seen the alert (audited); it stays open until its condition clears."""
    before = repository.alert(conn, alert_id, lock=True)
    if before is None:
        raise NotFound(f"no alert {alert_id}")
    if before["acknowledged_at"] is None:
        repository.acknowledge(conn, alert_id, actor.name)
        after = repository.alert(conn, alert_id)
        assert after is not None
        audit.record(conn, actor, "health.acknowledge", "health_alert", alert_id,
                     {"acknowledged_by": None}, {"acknowledged_by": actor.name, "kind": before["kind"],
                                                 "unit_id": before["unit_id"]})  # fmt: skip
        before = after
    return _alert(before)


def unit_panel(conn: psycopg.Connection, unit_id: int) -> UnitPanel:
    """The unit page's health panel (render it with templates/panels/health.html as ``panel``)."""
    c = repository.collections_of(conn, unit_id)
    return UnitPanel(
        unit_id=unit_id,
        open_alerts=open_alerts(conn, unit_id=unit_id),
        soh=[SohPoint(day=d, soh=s) for d, s in repository.soh_series(conn, unit_id)],
        collections=None
        if c is None
        else Collections(
            unit_id=unit_id, class_=c["class"], since=c["since"], as_of=c["as_of"], evidence=c["evidence"]
        ),  # fmt: skip
    )


def reset(conn: psycopg.Connection) -> None:
    """Forget every derived figure and alert (the scoring benchmark's re-run on a kept history)."""
    conn.execute("truncate health_outreach, unit_collections, health_alerts, unit_health_daily")
