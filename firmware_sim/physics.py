"""Physics of a fleet of solar home systems, one numpy element per unit, stepped together.

Per unit: the sun's position for its latitude/longitude and the instant (NOAA's formulas), clear-sky
irradiance (Haurwitz) times a day-to-day clearness, dust (soiling) and anything covering the
panel; a battery (lead-acid or LiFePO4) with charge counted in Ah, terminal voltage from the
open-circuit curve of its chemistry plus current × internal resistance, a temperature that follows
ambient, the sun on its enclosure and its own I²R heat, capacity fading with throughput, depth of
discharge, heat and age; a charge controller with its own loss and a low-voltage disconnect with
hysteresis; and a household load (evening lights, radio, phone charging, a TV on the big kits) with
each household's habits and each day's randomness.

Energy is accounted exactly: over any period, PV energy harvested − load energy served − losses
(controller, I²R, coulombic, capacity lost to fade, unmetered load of a tampered unit) equals the
change in stored energy (charge × nominal voltage). ``tests/firmware_sim`` checks it.

Everything is vectorised so that the live fleet (a few thousand units) and the history backfill
(tens of thousands of units over months) run the same model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

LEAD_ACID, LIFEPO4 = 0, 1
CHEMISTRIES = {"lead_acid": LEAD_ACID, "lifepo4": LIFEPO4}

CONTROLLER_EFFICIENCY = 0.95  # PV to the 12 V bus
NOMINAL_V = np.array([12.0, 12.8])  # by chemistry
COULOMBIC = np.array([0.90, 0.99])  # charge kept per charge put in
R_INTERNAL_OHM_AH = np.array([0.9, 0.6])  # internal resistance × capacity (Ah): 0.045 Ω for 20 Ah LA
# Low-voltage disconnect on terminal voltage, reconnect on open-circuit voltage (hysteresis).
LVD_V = np.array([11.9, 12.0])  # about 20 % (lead-acid) and 5 % (LiFePO4) charge under a light load
RECONNECT_V = np.array([12.3, 12.35])  # about 60 % and 30 %
# Capacity fade at 25 °C: per equivalent full cycle at the reference depth, and per year of age.
CYCLE_FADE = np.array([0.2 / 500, 0.2 / 2500])
REFERENCE_DOD = np.array([0.5, 0.8])
CALENDAR_FADE_PER_YEAR = np.array([0.05, 0.02])
THERMAL_TAU_H = 3.0
HEAT_CAPACITY_WH_PER_C_AH = 0.35  # thermal mass of battery and enclosure, per Ah of capacity


def solar_elevation_deg(lat: np.ndarray | float, lon: np.ndarray | float, when: datetime) -> np.ndarray:
    """Elevation of the sun above the horizon in degrees (NOAA's low-precision formulas, ~0.5°)."""
    doy = when.timetuple().tm_yday
    hour = when.hour + when.minute / 60 + when.second / 3600
    gamma = 2 * math.pi / 365 * (doy - 1 + (hour - 12) / 24)
    decl = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    ha = np.radians((hour * 60 + eqtime + 4 * np.asarray(lon)) / 4 - 180)
    phi = np.radians(lat)
    cos_zen = np.sin(phi) * math.sin(decl) + np.cos(phi) * math.cos(decl) * np.cos(ha)
    return np.asarray(90 - np.degrees(np.arccos(np.clip(cos_zen, -1.0, 1.0))))


def clear_sky_ghi(elevation_deg: np.ndarray) -> np.ndarray:
    """Global horizontal irradiance under a clear sky, W/m² (Haurwitz), zero below the horizon."""
    cz = np.sin(np.radians(np.maximum(elevation_deg, 0.0)))
    with np.errstate(divide="ignore", over="ignore"):
        ghi = 1098 * cz * np.exp(-0.057 / np.where(cz > 0, cz, 1.0))
    return np.where(cz > 0.01, ghi, 0.0)


def ocv(chem: np.ndarray, soc: np.ndarray) -> np.ndarray:
    """Open-circuit voltage of a 12 V battery: lead-acid is near linear, LiFePO4 flat with knees."""
    lead = 11.7 + 1.0 * soc
    lfp = 12.0 + 1.2 * soc + 0.6 * (soc - 0.5) ** 3 - 0.4 * np.exp(-30 * soc)
    return np.where(chem == LIFEPO4, lfp, lead)


@dataclass
class Fleet:
    """Static description of the units, one element each."""

    lat: np.ndarray
    lon: np.ndarray
    panel_wp: np.ndarray
    capacity_ah: np.ndarray  # nameplate
    chem: np.ndarray  # LEAD_ACID / LIFEPO4
    has_tv: np.ndarray  # bool

    @property
    def n(self) -> int:
        return len(self.lat)


@dataclass
class StepResult:
    pv_w: np.ndarray  # harvested PV power at the end of the step
    batt_a: np.ndarray  # battery current, + charging
    pv_wh: np.ndarray  # energies during the step
    load_wh: np.ndarray


class Physics:
    """The state of every unit's panel, battery and household, advanced one step at a time."""

    def __init__(self, fleet: Fleet, rng: np.random.Generator, soc0: np.ndarray | None = None) -> None:
        n = fleet.n
        self.fleet = fleet
        self.rng = rng
        self.v_nom = NOMINAL_V[fleet.chem]
        self.capacity_ah = fleet.capacity_ah.astype(float).copy()
        soc0 = soc0 if soc0 is not None else rng.uniform(0.5, 0.9, n)
        self.charge_ah = soc0 * self.capacity_ah
        self.temp_c = 25.0 + rng.normal(0, 1, n)
        self.lvd = np.zeros(n, bool)
        # Site climate and household habits.
        self.site_mean_c = 27.0 - 0.25 * np.abs(fleet.lat) + rng.normal(0, 1.5, n)
        scale = fleet.panel_wp / 50.0
        self.lights_w = rng.uniform(3.0, 7.0, n) * np.sqrt(scale)
        small = fleet.panel_wp < 30  # a lantern kit: a light and a phone
        self.radio_w = np.where(~small & (rng.random(n) < 0.7), rng.uniform(2.0, 4.0, n), 0.0)
        self.phone_w = np.where(small, 1, rng.integers(1, 4, n)) * 2.5  # phones at 2.5 W
        self.tv_w = np.where(fleet.has_tv, rng.uniform(15.0, 25.0, n), 0.0)
        self.evening_on_h = rng.normal(18.6, 0.4, n)
        self.bedtime_h = rng.normal(22.2, 0.6, n)
        self.early_riser = rng.random(n) < 0.4
        # Per-day state, drawn when a new local day starts.
        self._day = -1
        self.clearness = np.clip(rng.normal(0.8, 0.15, n), 0.2, 1.0)
        self.day_usage = np.ones(n)
        self.soiling = rng.uniform(0.9, 1.0, n)
        # Modifiers that scenarios set (see scenarios.py).
        self.cover = np.ones(n)  # fraction of light reaching the cells
        self.fade_mult = np.ones(n)
        self.load_mult = np.ones(n)
        self.enclosure_gain_c = np.zeros(n)  # extra heating of the enclosure in full sun
        self.unmetered_w = np.zeros(n)  # a bypass wired around the meter (tamper)
        self.powered = np.ones(n, bool)  # False: the unit is switched off/removed (no PV, no load)
        # What the household would use on an ordinary day, and what the panel yields on one.
        hours = np.arange(0.0, 24.0, 0.25)
        self.typical_load_wh = sum(self.demand_w(np.full(n, h)) for h in hours) * 0.25
        self.typical_pv_wh = fleet.panel_wp * 4.5 * CONTROLLER_EFFICIENCY
        # Accounting since the start, Wh.
        self.losses_wh = np.zeros(n)
        self.unmetered_wh = np.zeros(n)
        self.efc = np.zeros(n)  # equivalent full cycles so far

    # ------------------------------------------------------------------ derived quantities
    @property
    def soc(self) -> np.ndarray:
        return self.charge_ah / self.capacity_ah

    @property
    def stored_wh(self) -> np.ndarray:
        return self.charge_ah * self.v_nom

    def r_internal(self) -> np.ndarray:
        faded = 1.0 - self.capacity_ah / self.fleet.capacity_ah
        return R_INTERNAL_OHM_AH[self.fleet.chem] / self.fleet.capacity_ah * (1.0 + 3.0 * faded)

    def terminal_v(self, batt_a: np.ndarray) -> np.ndarray:
        return ocv(self.fleet.chem, self.soc) + batt_a * self.r_internal()

    def local_hour(self, t: datetime) -> np.ndarray:
        return (t.hour + t.minute / 60 + t.second / 3600 + self.fleet.lon / 15.0) % 24.0

    # ------------------------------------------------------------------ one step
    def _new_day(self, day: int) -> None:
        n, rng = self.fleet.n, self.rng
        self._day = day
        # Clearness: persistent weather (AR(1)) around a site mean.
        self.clearness = np.clip(0.8 + 0.6 * (self.clearness - 0.8) + rng.normal(0, 0.12, n), 0.15, 1.0)
        # Dust builds up ~0.3 %/day; a rainy (cloudy) day or the owner washes the panel.
        washed = (self.clearness < 0.45) | (rng.random(n) < 0.03)
        self.soiling = np.where(washed, 1.0, np.maximum(0.7, self.soiling - 0.003))
        away = rng.random(n) < 0.03
        self.day_usage = np.where(away, 0.1, rng.lognormal(0.0, 0.2, n))

    def demand_w(self, hour: np.ndarray) -> np.ndarray:
        """What the household switches on at this local hour, W."""
        evening = (hour >= self.evening_on_h) & (hour < self.bedtime_h)
        morning = self.early_riser & (hour >= 5.5) & (hour < 6.75)
        night_light = (hour >= self.bedtime_h) | (hour < 5.5)
        w = np.where(evening, self.lights_w, 0.0) + np.where(morning, 0.6 * self.lights_w, 0.0)
        w = w + np.where(night_light, 0.15 * self.lights_w, 0.0)  # a security light
        news = ((hour >= 6) & (hour < 8)) | ((hour >= 18) & (hour < 22))
        w = w + np.where(news, self.radio_w, 0.0)
        w = w + np.where((hour >= 17) & (hour < 20), self.phone_w, 0.0)
        w = w + np.where((hour >= 19) & (hour < 22), self.tv_w, 0.0)
        return w * self.day_usage * self.load_mult

    def step(self, t: datetime, dt_s: float, load_allowed: np.ndarray) -> StepResult:
        """Advance every unit by ``dt_s`` seconds ending at ``t``; ``load_allowed`` is the firmware's
        credit state (the low-voltage disconnect is applied here, in the controller)."""
        fl = self.fleet
        hours = dt_s / 3600.0
        hour = self.local_hour(t)
        day = t.toordinal()
        if day != self._day:
            self._new_day(day)

        # Sun and panel.
        ghi = clear_sky_ghi(solar_elevation_deg(fl.lat, fl.lon, t)) * self.clearness
        ambient = self.site_mean_c + 5.0 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
        cell_c = ambient + 25.0 * ghi / 800.0
        pv_avail = ghi / 1000.0 * fl.panel_wp * self.soiling * self.cover * (1 - 0.004 * (cell_c - 25.0))
        pv_avail = np.where(self.powered, np.maximum(pv_avail, 0.0), 0.0)

        # Controller: the low-voltage disconnect cuts the load until the battery recovers.
        o = ocv(fl.chem, self.soc)
        self.lvd = np.where(self.lvd, o < RECONNECT_V[fl.chem], False)
        on = load_allowed & ~self.lvd & self.powered
        load_w = np.where(on, self.demand_w(hour), 0.0)
        bypass_w = np.where(self.powered, self.unmetered_w, 0.0)

        # Power balance on the 12 V bus; the battery takes or gives the difference.
        bus_w = pv_avail * CONTROLLER_EFFICIENCY
        demand = load_w + bypass_w
        net_w = bus_w - demand
        r = self.r_internal()
        coul = COULOMBIC[fl.chem]
        charging = net_w > 0
        resist_wh = (net_w / self.v_nom) ** 2 * r * hours
        chem_wh = np.where(charging, (net_w * hours - resist_wh) * coul, net_w * hours - resist_wh)
        room_wh = (self.capacity_ah - self.charge_ah) * self.v_nom
        have_wh = self.charge_ah * self.v_nom
        # A full battery: the controller harvests less. An empty one: the load gets what there is.
        k = np.ones_like(net_w)
        np.divide(room_wh, chem_wh, out=k, where=charging & (chem_wh > room_wh))
        short = ~charging & (-chem_wh > have_wh)
        np.divide(have_wh, -chem_wh, out=k, where=short)
        k = np.clip(k, 0.0, 1.0)
        net_w = net_w * k
        if short.any():
            served = np.divide(bus_w - net_w, demand, out=np.ones_like(demand), where=short & (demand > 0))
            load_w, bypass_w = load_w * served, bypass_w * served
            self.lvd |= short
        bus_w = np.where(charging, demand + net_w, bus_w)  # harvest only what is used or stored
        amps = net_w / self.v_nom
        resist_wh = amps**2 * r * hours
        chem_wh = np.where(charging, (net_w * hours - resist_wh) * coul, net_w * hours - resist_wh)
        chem_wh = np.clip(chem_wh, -have_wh, room_wh)
        self.charge_ah = self.charge_ah + chem_wh / self.v_nom

        harvest_w = bus_w / CONTROLLER_EFFICIENCY
        pv_wh = harvest_w * hours
        load_wh = load_w * hours
        self.unmetered_wh += bypass_w * hours
        # Controller loss, then I²R, coulombic and clipping losses between the bus and the cells.
        self.losses_wh += (pv_wh - bus_w * hours) + (net_w * hours - chem_wh)

        # Temperature: first-order lag towards ambient + sun on the enclosure + I²R heat.
        mass = HEAT_CAPACITY_WH_PER_C_AH * fl.capacity_ah
        target = ambient + self.enclosure_gain_c * (ghi / 1000.0) + (amps**2 * r) / mass * THERMAL_TAU_H
        self.temp_c = self.temp_c + (target - self.temp_c) * (1 - math.exp(-hours / THERMAL_TAU_H))

        # Capacity fade: cycling (throughput × depth stress) and calendar age, both doubled per 10 °C.
        heat = 2.0 ** ((self.temp_c - 25.0) / 10.0)
        cycles = np.abs(chem_wh) / self.v_nom / (2.0 * fl.capacity_ah)
        self.efc += cycles
        depth = np.clip((1.0 - self.soc) / REFERENCE_DOD[fl.chem], 0.2, 3.0) ** 1.5
        fade = (cycles * CYCLE_FADE[fl.chem] * depth + CALENDAR_FADE_PER_YEAR[fl.chem] * hours / 8766.0) * heat
        self.capacity_ah = np.maximum(self.capacity_ah * (1.0 - fade * self.fade_mult), 0.05 * fl.capacity_ah)
        over = np.maximum(self.charge_ah - self.capacity_ah, 0.0)
        self.losses_wh += over * self.v_nom  # charge that no longer fits is lost
        self.charge_ah -= over
        # The controller trips the low-voltage disconnect on the voltage it sees under load.
        self.lvd |= (amps < 0) & (self.terminal_v(amps) < LVD_V[fl.chem])
        return StepResult(pv_w=harvest_w, batt_a=amps, pv_wh=pv_wh, load_wh=load_wh)
