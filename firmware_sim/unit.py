"""What the simulator needs to know of one unit: its serial, where it is, and its kit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnitSpec:
    serial: str
    latitude: float
    longitude: float
    panel_wp: int
    battery_ah: float
    battery_chemistry: str  # lifepo4 or lead_acid
