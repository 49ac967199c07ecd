"""Physics of a solar home system: sun, panel, battery and household load.

A first, deliberately simple model (clear-sky irradiance from the sun's elevation, a battery
integrated by coulomb counting, an evening-heavy load profile); the simulator issue deepens it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime


def solar_elevation_deg(lat: float, lon: float, when: datetime) -> float:
    """Elevation of the sun above the horizon (NOAA's low-precision formulas, ~0.5° accuracy)."""
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
    true_solar_min = hour * 60 + eqtime + 4 * lon
    ha = math.radians(true_solar_min / 4 - 180)
    phi = math.radians(lat)
    cos_zen = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    return 90 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zen))))


def clear_sky_ghi(elevation_deg: float) -> float:
    """Global horizontal irradiance under a clear sky, W/m² (Haurwitz model)."""
    if elevation_deg <= 0:
        return 0.0
    cz = math.sin(math.radians(elevation_deg))
    return 1098 * cz * math.exp(-0.057 / cz)


@dataclass
class Battery:
    capacity_ah: float
    chemistry: str = "lifepo4"
    soc: float = 0.8
    internal_ohm: float = 0.05

    @property
    def nominal_v(self) -> float:
        return 12.8 if self.chemistry == "lifepo4" else 12.0

    @property
    def capacity_wh(self) -> float:
        return self.capacity_ah * self.nominal_v

    def open_circuit_v(self) -> float:
        if self.chemistry == "lifepo4":  # flat curve with knees at both ends
            return 12.0 + 1.2 * self.soc + 0.6 * (self.soc - 0.5) ** 3 - 0.4 * math.exp(-30 * self.soc)
        return 11.6 + 1.2 * self.soc

    def terminal_v(self, current_a: float) -> float:
        return self.open_circuit_v() + current_a * self.internal_ohm

    def apply(self, energy_wh: float) -> float:
        """Charge (+) or discharge (-) energy; returns what the battery really took or gave."""
        before = self.soc
        self.soc = min(1.0, max(0.0, self.soc + energy_wh / self.capacity_wh))
        return (self.soc - before) * self.capacity_wh


@dataclass
class Household:
    """Evening lights, a radio, phone charging and (big kits) a TV, with per-household habits."""

    base_w: float
    evening_w: float
    rng: random.Random

    def load_w(self, local_hour: float) -> float:
        w = self.base_w
        if 18 <= local_hour < 22.5:
            w += self.evening_w * (0.7 + 0.6 * self.rng.random())
        elif 5.5 <= local_hour < 7:
            w += 0.4 * self.evening_w
        return w
