"""One simulated unit: its physics, its credit countdown and the readings its firmware reports."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from firmware_sim.physics import Battery, Household, clear_sky_ghi, solar_elevation_deg
from ingest.protocol import Reading

FIRMWARE_VERSION = "1.0.0"
STEP = timedelta(minutes=5)
PANEL_AREA_PER_WP = 1 / 1000 / 0.18  # m² per Wp at 18 % module efficiency under 1000 W/m²


@dataclass
class UnitSpec:
    serial: str
    latitude: float
    longitude: float
    panel_wp: int
    battery_ah: float
    battery_chemistry: str


@dataclass
class SimUnit:
    spec: UnitSpec
    now: datetime
    credit_s: float = 30 * 86400
    seed: int = 0
    seq: int = 0
    rng: random.Random = field(init=False)
    battery: Battery = field(init=False)
    household: Household = field(init=False)
    cloud: float = field(init=False)
    _cloud_day: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.spec.serial}:{self.seed}")
        self.battery = Battery(self.spec.battery_ah, self.spec.battery_chemistry, soc=0.5 + 0.4 * self.rng.random())
        scale = self.spec.panel_wp / 50
        self.household = Household(base_w=0.5 * scale, evening_w=(4 + 6 * self.rng.random()) * scale, rng=self.rng)
        self.cloud = 1.0

    @property
    def locked(self) -> bool:
        return self.credit_s <= 0

    def _local_hour(self, t: datetime) -> float:
        return (t.hour + t.minute / 60 + self.spec.longitude / 15) % 24

    def advance(self, until: datetime) -> tuple[float, float, float, float]:
        """Integrate physics up to ``until``; returns (pv Wh, load Wh, last pv W, last battery A)."""
        pv_wh = load_wh = pv_w = batt_a = 0.0
        while self.now < until:
            dt = min(STEP, until - self.now)
            mid = self.now + dt / 2
            day = mid.toordinal()
            if day != self._cloud_day:  # day-to-day cloudiness
                self._cloud_day = day
                self.cloud = 0.35 + 0.65 * self.rng.random() ** 0.5
            hours = dt.total_seconds() / 3600
            ghi = clear_sky_ghi(solar_elevation_deg(self.spec.latitude, self.spec.longitude, mid))
            pv_w = ghi * self.cloud * self.spec.panel_wp * PANEL_AREA_PER_WP * 0.18 * 0.85
            want_load = 0.0 if self.locked else self.household.load_w(self._local_hour(mid))
            # Low-voltage disconnect: no load below 10 % state of charge.
            if self.battery.soc < 0.1:
                want_load = 0.0
            net = (pv_w * 0.95 - want_load) * hours
            taken = self.battery.apply(net)
            # What the battery could not absorb is curtailed PV; what it could not give is unserved load.
            used_pv = pv_w * hours if net <= 0 else (taken / 0.95 + want_load * hours)
            served = want_load * hours if net >= 0 else (pv_w * 0.95 * hours - taken)
            pv_wh += max(0.0, used_pv)
            load_wh += max(0.0, served)
            batt_a = (taken / hours) / self.battery.nominal_v if hours else 0.0
            self.credit_s = max(0.0, self.credit_s - dt.total_seconds())
            self.now += dt
        return pv_wh, load_wh, pv_w, batt_a

    def report(self, until: datetime) -> Reading:
        pv_wh, load_wh, pv_w, batt_a = self.advance(until)
        self.seq += 1
        return Reading(
            seq=self.seq,
            ts=until,
            batt_v=round(self.battery.terminal_v(batt_a), 3),
            batt_a=round(batt_a, 3),
            soc=round(self.battery.soc, 4),
            batt_temp_c=round(27 + 6 * (pv_w / max(self.spec.panel_wp, 1)) + self.rng.gauss(0, 0.5), 2),
            pv_v=round(17.5 + self.rng.gauss(0, 0.2), 2) if pv_w > 0 else 0.0,
            pv_w=round(pv_w, 2),
            pv_wh=round(pv_wh, 3),
            load_wh=round(load_wh, 3),
            credit_s=int(self.credit_s),
            locked=self.locked,
            rssi=int(-65 - 20 * self.rng.random()),
            fw=FIRMWARE_VERSION,
        )
