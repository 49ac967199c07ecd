"""The simulated fleet on one clock: physics, each unit's firmware credit and reports, scenarios and
the customers' payments, stepped together in numpy.

The live runner (``fleet.py``) publishes what a step reports over MQTT, one connection per unit;
the backfill (``backfill.py``) writes it straight into the database. Both run this same engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from firmware_sim import scenarios
from firmware_sim.physics import CHEMISTRIES, Fleet, Physics
from firmware_sim.unit import UnitSpec
from protocol import Reading

FIRMWARE_VERSION = "1.1.0"
STEP = timedelta(minutes=5)
INTERVAL = timedelta(minutes=20)


@dataclass
class Reports:
    """The readings of the units that report at the end of one step (one element per unit)."""

    ts: datetime
    idx: np.ndarray
    seq: np.ndarray
    batt_v: np.ndarray
    batt_a: np.ndarray
    soc: np.ndarray
    batt_temp_c: np.ndarray
    pv_v: np.ndarray
    pv_w: np.ndarray
    pv_wh: np.ndarray
    load_wh: np.ndarray
    credit_s: np.ndarray
    locked: np.ndarray
    rssi: np.ndarray

    def reading(self, j: int) -> Reading:
        """The j-th report as the protocol's Reading (for MQTT)."""
        return Reading(
            seq=int(self.seq[j]), ts=self.ts, batt_v=round(float(self.batt_v[j]), 3),
            batt_a=round(float(self.batt_a[j]), 3), soc=round(float(self.soc[j]), 4),
            batt_temp_c=round(float(self.batt_temp_c[j]), 2), pv_v=round(float(self.pv_v[j]), 2),
            pv_w=round(float(self.pv_w[j]), 2), pv_wh=round(float(self.pv_wh[j]), 3),
            load_wh=round(float(self.load_wh[j]), 3), credit_s=int(self.credit_s[j]), locked=bool(self.locked[j]),
            rssi=int(self.rssi[j]), fw=FIRMWARE_VERSION,
        )  # fmt: skip


@dataclass
class Event:
    idx: int
    ts: datetime
    kind: str  # boot, lvd, reconnect, tamper, token
    detail: dict[str, object] = field(default_factory=dict)


@dataclass
class Payment:
    idx: int
    ts: datetime
    days: int  # what the customer means to buy


def fleet_of(specs: list[UnitSpec]) -> Fleet:
    return Fleet(
        lat=np.array([s.latitude for s in specs], float),
        lon=np.array([s.longitude for s in specs], float),
        panel_wp=np.array([s.panel_wp for s in specs], float),
        capacity_ah=np.array([s.battery_ah for s in specs], float),
        chem=np.array([CHEMISTRIES.get(s.battery_chemistry, 1) for s in specs], int),
        has_tv=np.array([s.panel_wp >= 100 for s in specs], bool),
    )


class FleetSim:
    """Every unit of a fleet from ``start``, one ``step`` at a time.

    Each unit reports every ``interval`` at its own phase; its firmware counts credit down on a
    clock that drifts (a few tens of ppm, as cheap RTCs do) and cuts the load at zero. With
    ``payers`` the customers pay on their own rhythm (every 3-14 days, sometimes late) and the
    caller turns each ``Payment`` into credit with ``add_credit``.
    """

    def __init__(
        self,
        specs: list[UnitSpec],
        start: datetime,
        *,
        seed: int = 0,
        credit_days: np.ndarray | float = 7.0,
        interval: timedelta = INTERVAL,
        step: timedelta = STEP,
        assignment: scenarios.Assignment | None = None,
        payers: bool = True,
    ) -> None:
        n = len(specs)
        self.specs = specs
        self.serials = [s.serial for s in specs]
        self.rng = np.random.default_rng(seed)
        self.physics = Physics(fleet_of(specs), self.rng)
        self.now = start.astimezone(UTC)
        self.step_s = step.total_seconds()
        per = max(1, round(interval / step))
        self.period_steps = per
        self.phase = self.rng.integers(0, per, n)
        self._k = 0
        self.seq = np.zeros(n, np.int64)
        self.credit_s = np.broadcast_to(np.asarray(credit_days, float) * 86400.0, (n,)).copy()
        self.unlocked = np.zeros(n, bool)
        self.drift = self.rng.normal(0.0, 30e-6, n)  # RTC error, fraction
        self.rssi_base = self.rng.uniform(-95, -60, n)
        self.assignment = assignment or scenarios.Assignment.healthy(n)
        self.link_up = scenarios.link_up(self.assignment, self.now.timestamp())
        self.payers = payers
        self.pay_every = self.rng.integers(3, 15, n).astype(float)
        # The days of credit each payment is for (the customer's habit: usually what they wait).
        self.pay_days = self.pay_every.copy()
        self.next_pay = self.now.timestamp() + np.maximum(self.credit_s - 86400 * self.rng.uniform(0, 2, n), 0)
        self._acc_pv = np.zeros(n)
        self._acc_load = np.zeros(n)
        self._was_lvd = np.zeros(n, bool)
        self._tamper_told = np.zeros(n, bool)

    @property
    def n(self) -> int:
        return len(self.specs)

    @property
    def locked(self) -> np.ndarray:
        return (self.credit_s <= 0) & ~self.unlocked

    def carry_in(self, credit_s: np.ndarray, next_pay_s: np.ndarray, unlocked: np.ndarray) -> None:
        """Start from a known past instead of the defaults: each unit's credit (seconds), when its
        customer next pays (seconds since the epoch) and which units are unlocked for good."""
        self.credit_s = np.asarray(credit_s, float).copy()
        self.next_pay = np.asarray(next_pay_s, float).copy()
        self.unlocked = np.asarray(unlocked, bool).copy()

    def carry_in_charge(self, soc: np.ndarray) -> None:
        """Start each battery at a known state of charge (0..1; NaN: keep the default), as its newest
        reading left it: a unit resuming its past must not jump to another charge."""
        soc = np.asarray(soc, float)
        known = np.isfinite(soc)
        p = self.physics
        p.charge_ah = np.where(known, np.clip(np.nan_to_num(soc), 0.0, 1.0) * p.capacity_ah, p.charge_ah)

    def add_credit(self, idx: int, days: float) -> None:
        if not self.unlocked[idx]:
            self.credit_s[idx] = max(self.credit_s[idx], 0.0) + days * 86400.0

    def unlock_forever(self, idx: int) -> None:
        self.unlocked[idx] = True

    def boot_events(self) -> list[Event]:
        return [Event(i, self.now, "boot", {"fw": FIRMWARE_VERSION}) for i in range(self.n)]

    def step(self) -> tuple[Reports | None, list[Event], list[Payment]]:
        """Advance one step; the reports of the units whose turn it is, events, and payments made."""
        t = self.now + timedelta(seconds=self.step_s)
        t_s = t.timestamp()
        a = self.assignment
        scenarios.apply(a, self.physics, t_s)
        out = self.physics.step(t, self.step_s, ~self.locked)
        self.credit_s = np.where(self.unlocked, self.credit_s, self.credit_s - self.step_s * (1.0 + self.drift))
        self._acc_pv += out.pv_wh
        self._acc_load += out.load_wh
        self.now = t
        self._k += 1

        events: list[Event] = []
        lvd = self.physics.lvd
        for i in np.flatnonzero(lvd != self._was_lvd):
            soc = round(float(self.physics.soc[i]), 3)
            events.append(Event(int(i), t, "lvd" if lvd[i] else "reconnect", {"soc": soc}))
        self._was_lvd = lvd.copy()
        tamper = a.started("tampered", t_s) & ~self._tamper_told
        for i in np.flatnonzero(tamper):
            events.append(Event(int(i), t, "tamper", {"source": "enclosure switch"}))
        self._tamper_told |= tamper

        payments: list[Payment] = []
        if self.payers:
            due = (self.next_pay <= t_s) & ~self.unlocked & ~a.started("stops_paying", t_s)
            due &= ~a.started("migrates", t_s)
            for i in np.flatnonzero(due):
                payments.append(Payment(int(i), t, int(self.pay_days[i])))
            # Most pay on time; some days late (the light is off meanwhile).
            late = self.rng.exponential(1.0, len(due)) * (self.rng.random(len(due)) < 0.3) * 86400
            self.next_pay = np.where(due, t_s + self.pay_every * 86400 + late, self.next_pay)

        turn = np.flatnonzero(self.phase == self._k % self.period_steps)
        if not len(turn):
            return None, events, payments
        self.seq[turn] += 1
        p = self.physics
        amps = out.batt_a[turn]
        cell_c = p.temp_c[turn]
        pv_w = out.pv_w[turn]
        reports = Reports(
            ts=t,
            idx=turn,
            seq=self.seq[turn].copy(),
            batt_v=p.terminal_v(out.batt_a)[turn],
            batt_a=amps,
            soc=p.soc[turn],
            batt_temp_c=cell_c,
            pv_v=np.where(pv_w > 0.05, 17.8 - 0.08 * (cell_c - 25.0) + self.rng.normal(0, 0.1, len(turn)), 0.0),
            pv_w=pv_w,
            pv_wh=self._acc_pv[turn].copy(),
            load_wh=self._acc_load[turn].copy(),
            credit_s=np.where(self.unlocked[turn], 0, np.maximum(self.credit_s[turn], 0)).astype(np.int64),
            locked=self.locked[turn],
            rssi=np.clip(self.rssi_base[turn] + self.rng.normal(0, 3, len(turn)), -113, -51).astype(np.int64),
        )
        self._acc_pv[turn] = 0.0
        self._acc_load[turn] = 0.0
        return reports, events, payments

    def advance_to(self, until: datetime) -> list[tuple[Reports | None, list[Event], list[Payment]]]:
        out = []
        while self.now + timedelta(seconds=self.step_s) <= until:
            out.append(self.step())
        return out
