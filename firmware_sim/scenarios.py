"""What can happen to a unit, when it starts, and the ground truth written for scoring detection.

``paygo sim run --scenario-mix healthy=70,panel_covered=5,...`` gives each unit one scenario, drawn
by weight, and an onset time inside the run; ``--truth FILE`` writes one CSV line per unit
(serial, scenario, onset, detail) so that alerts can be scored against what really happened.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from firmware_sim.physics import Physics

SCENARIOS = {
    "healthy": "nothing wrong",
    "panel_covered": "panel covered or badly soiled (wrapped in a bag against the dust): 15-35 % of the light",
    "battery_failing": "capacity fades 40x faster than normal",
    "deep_discharge": "more appliances: the load is 1.3-1.7x what the panel yields, the battery runs flat most nights",
    "overheating": "enclosure in full sun or blocked vents: the battery runs 15-25 °C hotter at midday",
    "tampered": "a tamper event, then an 8 W bypass around the meter that credit does not switch off",
    "gsm_outage": "no GSM link for 2-6 days, then the stored readings are flushed",
    "stops_paying": "the customer makes no more payments: the unit locks when its credit runs out",
    "migrates": "the customer moves away with the unit: it goes silent for good and is later removed",
    "usage_dropping": "the household uses less and less (down to 15 % over 30-60 days): losing interest",
}
DEFAULT_MIX = "healthy=70,panel_covered=4,battery_failing=4,deep_discharge=4,overheating=3,tampered=3,gsm_outage=4,stops_paying=4,migrates=2,usage_dropping=2"  # noqa: E501
NAMES = list(SCENARIOS)


class MixError(ValueError):
    pass


def parse_mix(text: str) -> dict[str, float]:
    """``healthy=70,panel_covered=5`` → weights; unknown names and bad numbers are refused by name."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if name not in SCENARIOS:
            raise MixError(f"unknown scenario {name!r}; known: {', '.join(NAMES)}")
        try:
            weight = float(value) if sep else 1.0
        except ValueError:
            raise MixError(f"weight of {name} is not a number: {value!r}") from None
        if weight < 0:
            raise MixError(f"weight of {name} is negative: {weight}")
        weights[name] = weight
    if not weights or sum(weights.values()) <= 0:
        raise MixError("the scenario mix gives no unit a scenario (all weights are zero)")
    return weights


@dataclass
class Assignment:
    """One scenario per unit (an index into NAMES), its onset, and per-unit parameters."""

    kind: np.ndarray  # int, index into NAMES
    onset: np.ndarray  # seconds since the epoch; +inf for healthy
    severity: np.ndarray  # 0..1, drawn per unit, used by each scenario's own range
    duration_s: np.ndarray  # gsm_outage length, usage_dropping ramp, migrates time to removal

    @classmethod
    def healthy(cls, n: int) -> Assignment:
        return cls(np.zeros(n, int), np.full(n, np.inf), np.zeros(n), np.zeros(n))

    def mask(self, name: str) -> np.ndarray:
        return self.kind == NAMES.index(name)

    def started(self, name: str, t_s: float) -> np.ndarray:
        return self.mask(name) & (self.onset <= t_s)


def assign(n: int, weights: dict[str, float], start: datetime, end: datetime, rng: np.random.Generator) -> Assignment:
    names = list(weights)
    p = np.array([weights[k] for k in names], float)
    drawn = rng.choice(len(names), size=n, p=p / p.sum())
    kind = np.array([NAMES.index(names[i]) for i in drawn], int)
    t0, t1 = start.timestamp(), end.timestamp()
    span = max(t1 - t0, 1.0)
    # Onsets fall between 10 % and 60 % of the run so that there is data before and after.
    onset = np.where(kind == 0, np.inf, t0 + span * rng.uniform(0.1, 0.6, n))
    severity = rng.random(n)
    duration = np.zeros(n)
    duration = np.where(kind == NAMES.index("gsm_outage"), rng.uniform(2, 6, n) * 86400, duration)
    duration = np.where(kind == NAMES.index("usage_dropping"), rng.uniform(30, 60, n) * 86400, duration)
    duration = np.where(kind == NAMES.index("migrates"), rng.uniform(30, 90, n) * 86400, duration)
    return Assignment(kind, onset, severity, duration)


def apply(a: Assignment, physics: Physics, t_s: float) -> None:
    """Set the physical modifiers of every unit whose scenario has begun by ``t_s``."""
    sev = a.severity
    physics.cover = np.where(a.started("panel_covered", t_s), 0.15 + 0.2 * sev, 1.0)
    physics.fade_mult = np.where(a.started("battery_failing", t_s), 40.0, 1.0)
    # The load outgrows the system: 1.3-1.7x what the panel yields on a typical day, at least 1.5x before.
    need = (1.3 + 0.4 * sev) * physics.typical_pv_wh / np.maximum(physics.typical_load_wh, 1.0)
    grow = np.where(a.started("deep_discharge", t_s), np.maximum(need, 1.5), 1.0)
    since = np.clip((t_s - a.onset) / np.maximum(a.duration_s, 1.0), 0.0, 1.0)
    drop = np.where(a.started("usage_dropping", t_s), 1.0 - 0.85 * since, 1.0)
    physics.load_mult = grow * drop
    physics.enclosure_gain_c = np.where(a.started("overheating", t_s), 15.0 + 10.0 * sev, 0.0)
    physics.unmetered_w = np.where(a.started("tampered", t_s), 8.0, 0.0)


def link_up(a: Assignment, t_s: float) -> np.ndarray:
    """Whether each unit's GSM link works at ``t_s``."""
    outage = a.started("gsm_outage", t_s) & (t_s < a.onset + a.duration_s)
    return ~(outage | a.started("migrates", t_s))


def link_back_at(a: Assignment) -> np.ndarray:
    """When a unit's link comes back after its outage (inf: never; nan: no outage)."""
    back = np.full(len(a.kind), np.nan)
    back = np.where(a.mask("gsm_outage"), a.onset + a.duration_s, back)
    return np.where(a.mask("migrates"), np.inf, back)


def write_truth(path: Path, serials: list[str], a: Assignment) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["serial", "scenario", "onset", "detail"])
        for i, serial in enumerate(serials):
            name = NAMES[a.kind[i]]
            onset = "" if not np.isfinite(a.onset[i]) else _iso(a.onset[i])
            detail = _detail(name, a, i)
            w.writerow([serial, name, onset, detail])


def _iso(t_s: float) -> str:
    return (datetime(1970, 1, 1) + timedelta(seconds=float(t_s))).isoformat(timespec="seconds") + "Z"


def _detail(name: str, a: Assignment, i: int) -> str:
    sev, dur = float(a.severity[i]), float(a.duration_s[i])
    if name == "panel_covered":
        return f"light reaching the cells {0.15 + 0.2 * sev:.2f}"
    if name == "overheating":
        return f"enclosure gain {15 + 10 * sev:.1f} C at full sun"
    if name == "gsm_outage":
        return f"link back {_iso(a.onset[i] + dur)}"
    if name == "migrates":
        return f"removed {_iso(a.onset[i] + dur)}"
    if name == "usage_dropping":
        return f"down to 15 % by {_iso(a.onset[i] + dur)}"
    return SCENARIOS[name]
