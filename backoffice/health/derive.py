"""A day's ``unit_health_daily`` figures from its raw readings, in numpy (no database, no loop per unit).

The nightly job reads the day's readings of a slice of the fleet as arrays (``repository.day_readings``,
one binary COPY) and ``derive`` turns them into one row per unit: readings received, the capacity
estimate (a coulomb count over the night), lowest/highest/last charge, hours hot, locked, at the
cut-off and full (measured from the readings' timestamps), the last signal and the PV clearness
(the day's best PV power per Wp while charging over the clear-sky irradiance at the unit's place and
time). The written rules are in docs/fleet_health.md; this is the same arithmetic the SQL statement
of issues 16 and 25 did (kept as the baseline in ``bench/health_nightly_bench.py``), with NULL as NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The charge at which the low-voltage disconnect cuts the load, by chemistry (lead-acid is cut at
# about 20-25 % under load, LiFePO4 at about 5 %); a reading at or below it is a cut-off hour.
CUT_SOC = {"lead_acid": 0.30, "lifepo4": 0.10}
# A night's estimate is kept when the charge fell by at least this much (a big battery under a light
# load falls little; the reported charge and the metered load are exact enough for 8 %).
MIN_NIGHT_DROP = 0.08
# Hours are measured from the readings' timestamps, not counted as readings × an assumed interval: each
# reading stands for the time since the one before it, at most the unit's own report interval (the
# median gap between its readings that day), so a 5-, 20- or 60-minute unit, or an OpenPAYGO Metrics
# unit sending hourly batches, gets the same hours, and a silence longer than a report is not
# counted as the state before it. A night step for the capacity estimate is one at most this many
# report intervals long.
NIGHT_GAP_INTERVALS = 1.5
DEFAULT_INTERVAL_S = 1200.0  # a unit with a lone reading: the firmware's default 20 minutes
# PV clearness: readings with the battery below this charge (the controller harvests all the panel gives)
# and the sun at least 17.5° up (cos zenith ≥ 0.3: the clear-sky model is good there, dawn's is not).
CHARGING_SOC = 0.97
MIN_SUN_CZ = 0.3

# The columns of one derived day, in ``unit_health_daily``'s order (NaN: NULL).
COLUMNS = ("received", "capacity_ah", "min_soc", "max_soc", "end_soc", "hours_hot", "hours_locked", "hours_cut",
           "hours_full", "last_rssi", "pv_clearness")  # fmt: skip


@dataclass
class Readings:
    """A day's readings of some units as arrays, in any order (NaN: NULL; ``locked`` 1/0)."""

    unit_id: np.ndarray  # int64
    ts: np.ndarray  # Unix seconds
    seq: np.ndarray  # int64
    soc: np.ndarray
    load_wh: np.ndarray
    pv_wh: np.ndarray
    pv_w: np.ndarray
    batt_temp_c: np.ndarray
    locked: np.ndarray
    rssi: np.ndarray


@dataclass
class Sites:
    """The units the readings may belong to, sorted by id: place, panel and chemistry."""

    unit_id: np.ndarray  # int64, ascending
    latitude: np.ndarray  # degrees (0 where unknown, as the SQL's coalesce)
    longitude: np.ndarray
    panel_wp: np.ndarray
    lead_acid: np.ndarray  # bool
    v_nom: np.ndarray  # the battery's nominal voltage


def sun_cz(ts: np.ndarray, latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """The cosine of the sun's zenith angle at each place and instant (NOAA's low-precision formulas,
    the same as the simulator's ``firmware_sim.physics`` and the former SQL): declination and equation
    of time from the fractional year, then the hour angle."""
    days = np.floor(ts / 86400.0)
    hr = (ts - days * 86400.0) / 3600.0
    d = days.astype("datetime64[D]")
    doy = (d - d.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.float64) + 1
    g = 2 * np.pi / 365 * (doy - 1 + (hr - 12) / 24)
    decl = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
            + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))  # fmt: skip
    eqtime = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g) - 0.014615 * np.cos(2 * g)
                       - 0.040849 * np.sin(2 * g))  # fmt: skip
    lat = np.radians(latitude)
    return np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(
        np.radians((hr * 60 + eqtime + 4 * longitude) / 4 - 180)
    )


def _group_median(values: np.ndarray, group: np.ndarray, ngroups: int) -> np.ndarray:
    """Per group: the median of its values (PostgreSQL's percentile_cont(0.5)), NaN for none."""
    order = np.lexsort((values, group))
    v, g = values[order], group[order]
    count = np.bincount(g, minlength=ngroups)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    pos = np.maximum(count - 1, 0) / 2.0
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
    if not len(v):
        return np.full(ngroups, np.nan)
    a, b = v[np.minimum(start + lo, len(v) - 1)], v[np.minimum(start + hi, len(v) - 1)]
    return np.where(count > 0, a + (b - a) * (pos - lo), np.nan)


def derive(r: Readings, s: Sites, hot_c: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per unit with readings (of a known unit): its id, and the day's figures (``COLUMNS``, NaN: NULL)."""
    pos = np.searchsorted(s.unit_id, r.unit_id)
    known = (pos < len(s.unit_id)) & (s.unit_id[np.minimum(pos, max(len(s.unit_id) - 1, 0))] == r.unit_id)
    order = np.lexsort((r.seq[known], r.ts[known], r.unit_id[known]))  # each unit's readings in time order
    site = pos[known][order]

    def col(a: np.ndarray) -> np.ndarray:
        return a[known][order].astype(np.float64)

    uid = r.unit_id[known][order]
    ts, soc, load_wh, pv_wh, pv_w = col(r.ts), col(r.soc), col(r.load_wh), col(r.pv_wh), col(r.pv_w)
    temp, locked, rssi = col(r.batt_temp_c), col(r.locked), col(r.rssi)
    n = len(uid)
    first = np.ones(n, bool)
    first[1:] = uid[1:] != uid[:-1]
    starts = np.flatnonzero(first)
    ends = (np.append(starts[1:], n) - 1)[: len(starts)]  # each unit's last reading (none without readings)
    group = np.cumsum(first) - 1  # each reading's unit, 0..k-1
    k = len(starts)
    ids = uid[starts]
    site_of = site[starts]

    # The time since the unit's previous reading (NaN for its first), and its previous charge.
    gap = np.full(n, np.nan)
    gap[1:] = ts[1:] - ts[:-1]
    gap[first] = np.nan
    prev_soc = np.full(n, np.nan)
    prev_soc[1:] = soc[:-1]
    prev_soc[first] = np.nan
    # Each unit's report interval that day: the median of its positive gaps (a lone reading: 20 minutes).
    positive = gap > 0
    iv = _group_median(gap[positive], group[positive], k)
    iv = np.where(np.isnan(iv), DEFAULT_INTERVAL_S, iv)
    iv_r = iv[group]
    # What each reading stands for, in hours: the time since the one before, capped at the interval.
    h = np.where(np.isnan(gap) | (gap == 0), iv_r, np.minimum(gap, iv_r)) / 3600.0
    with np.errstate(invalid="ignore"):
        night = ((pv_wh == 0) & (prev_soc > soc) & (soc > 0.02) & (prev_soc < 0.99)
                 & (gap <= NIGHT_GAP_INTERVALS * iv_r))  # fmt: skip
        cut = np.where(s.lead_acid[site_of], CUT_SOC["lead_acid"], CUT_SOC["lifepo4"])[group]

        def hours(mask: np.ndarray) -> np.ndarray:
            return np.bincount(group, weights=np.where(mask, h, 0.0), minlength=k)

        night_load = night & ~np.isnan(load_wh)
        night_wh = np.where(
            np.bincount(group, weights=night_load, minlength=k) > 0,
            np.bincount(group, weights=np.where(night_load, load_wh, 0.0), minlength=k),
            np.nan,
        )
        night_drop = np.where(
            np.bincount(group, weights=night, minlength=k) > 0,
            np.bincount(group, weights=np.where(night, prev_soc - soc, 0.0), minlength=k),
            np.nan,
        )
        capacity = np.where(night_drop >= MIN_NIGHT_DROP, night_wh / s.v_nom[site_of] / night_drop, np.nan)
        # PV power per Wp while the battery still takes charge (the controller harvests all the panel
        # gives), over the clear-sky irradiance (Haurwitz) / 1000 W/m²: the day's best. The sun only
        # where it is asked for (readings while charging), from the unit's place and the reading's time.
        charging = np.flatnonzero((soc < CHARGING_SOC) & ~np.isnan(pv_w))
        site_c = site[charging]
        cz = sun_cz(ts[charging], s.latitude[site_c], s.longitude[site_c])
        up = cz >= MIN_SUN_CZ
        clear = np.full(n, np.nan)
        czu = cz[up]
        clear[charging[up]] = pv_w[charging[up]] / s.panel_wp[site_c[up]] / (1.098 * czu * np.exp(-0.057 / czu))
    figures = {
        "received": np.bincount(group, minlength=k).astype(np.float64),
        "capacity_ah": capacity,
        "min_soc": np.fmin.reduceat(soc, starts) if k else np.zeros(0),
        "max_soc": np.fmax.reduceat(soc, starts) if k else np.zeros(0),
        "end_soc": soc[ends],
        "hours_hot": hours(temp > hot_c),
        "hours_locked": hours(locked == 1),
        "hours_cut": hours(soc <= cut),
        "hours_full": hours(soc >= 0.99),
        "last_rssi": rssi[ends],
        "pv_clearness": np.fmax.reduceat(clear, starts) if k else np.zeros(0),
    }
    return ids, figures
