"""The nine alert rules, vectorised over a window of daily rollups (numpy, no database, no loop per unit).

Each rule reads a ``Window``: one row per unit, one column per day (the last column is the day being
evaluated), filled from ``telemetry_daily`` and ``unit_health_daily`` by ``repository.load_window``
(or generated, by the benchmarks). ``evaluate`` returns, per alert kind, which units fire and the
evidence (a few figures per unit) that is stored with the alert. The written rules, and why each
threshold is what it is, are in docs/fleet_health.md; the thresholds themselves are settings
(``PAYGO_HEALTH_*``, see ``Thresholds``).

Over 400 lines because the nine rules and the fleet-wide references they share (``References``, the
neighbours' figures computed once over the whole fleet before the job works in slices) read best side
by side: splitting them would put each rule apart from the reference it is judged against.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

KINDS = (
    "battery_degrading",
    "chronic_deep_discharge",
    "over_temperature",
    "pv_underperformance",
    "offline",
    "tamper",
    "usage_drop",
    "locked_too_long",
    "system_too_small",
)
# Days of rollups a run reads (the usage baseline is the longest look back; the SoH decline reads
# its own series over soh_drop_days, ``Window.soh_past``).
WINDOW_DAYS = 36
REF_PERCENTILE = 98  # the neighbours' reference yield: near the best of their unit-days (the others are curtailed)
V_NOMINAL = {"lead_acid": 12.0, "lifepo4": 12.8}


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of the rules (settings ``PAYGO_HEALTH_<NAME>``; defaults tuned on seed 1)."""

    soh_floor: float = 0.80  # battery degrading: state of health below this share of nameplate ...
    soh_drop: float = 0.035  # ... or down by more than this in soh_drop_days (the 10 % in 90 days
    soh_drop_days: int = 30  # is the same rate; a month's window finds a failing battery sooner)
    deep_soc: float = 0.35  # chronic deep discharge: a day whose lowest charge is below this is a deep one ...
    cutoff_days: int = 3  # ... and this many of the last 7 make it chronic
    no_full_days: int = 10  # ... or this many days in a row without a full charge
    hot_c: float = 38.0  # over-temperature: battery above this ...
    hot_hours: float = 1.0  # ... for at least this many hours a day ...
    hot_days: int = 3  # ... on this many of the last 7 days
    pv_fraction: float = 0.5  # PV underperformance: energy per Wp below this share of the neighbours' best,
    pv_days: int = 4  # ... with the battery not full, on this many of the last 7 days; a day counts too when
    pv_clear_fraction: float = 0.5  # ... its PV clearness (while charging) is under this share of the neighbours'
    offline_days: int = 1  # offline: whole days without a reading received
    moved_away_days: int = 14  # ... silent this long: likely moved away
    tamper_share: float = 0.3  # tamper: share of the harvested energy that no meter saw (7 days)
    tamper_wh: float = 15.0  # ... and at least this many Wh a day
    usage_fraction: float = 0.6  # usage drop: last 7 days below this share of the unit's own baseline
    holiday_fraction: float = 0.2  # ... a day below this share is a day away, not a day of less use
    holiday_days: int = 4  # ... and this many days away in 7 make it a holiday (fewer than 4 days at home)
    locked_days: tuple[int, int, int] = (3, 7, 30)  # locked too long, escalating
    small_cutoff_days: int = 3  # system too small: cut-off days in the last 7 while paid up ...
    small_pv_ratio: float = 0.75  # ... with a panel yielding at least this share of its neighbours' best
    clear_days: int = 14  # an alert closes once its condition has been clear this many days in a row ...
    offline_clear_days: int = 2  # ... (a unit reporting again is plainly back) ...
    locked_clear_days: int = 21  # ... (a customer who pays late every cycle is one collections case) ...
    reopen_days: int = 14  # ... and re-opens (the same alert) if it returns within this many days of closing

    def clear_days_of(self) -> dict[str, int]:
        """Per kind: how many clear days in a row close its alert."""
        return {k: self.offline_clear_days if k == "offline" else self.locked_clear_days
                if k == "locked_too_long" else self.clear_days for k in KINDS}  # fmt: skip

    @classmethod
    def from_settings(cls, settings: Any) -> Thresholds:
        values: dict[str, Any] = {}
        for f in fields(cls):
            v = getattr(settings, f"health_{f.name}", None)
            if v is not None:
                values[f.name] = tuple(v) if f.name == "locked_days" else v
        return cls(**values)


@dataclass
class Window:
    """Daily figures of n units over d days (float arrays n × d, NaN where there is no row)."""

    unit_id: np.ndarray  # n, int64
    first_day: Any  # datetime.date of column 0
    panel_wp: np.ndarray  # n
    battery_ah: np.ndarray  # n, nameplate
    v_nom: np.ndarray  # n, the battery's nominal voltage
    cell: np.ndarray  # n, int: neighbourhood (a grid cell of about 50 km)
    energy_in: np.ndarray  # telemetry_daily
    energy_out: np.ndarray
    reports: np.ndarray
    received: np.ndarray  # unit_health_daily
    capacity_ah: np.ndarray
    min_soc: np.ndarray
    max_soc: np.ndarray
    end_soc: np.ndarray  # the charge at the day's last reading
    hours_hot: np.ndarray
    hours_locked: np.ndarray
    hours_cut: np.ndarray
    hours_full: np.ndarray  # hours at full charge
    last_rssi: np.ndarray
    pv_clearness: np.ndarray  # PV power per Wp while charging over the clear-sky irradiance: the day's best
    soh_past: np.ndarray  # n: the highest smoothed SoH of the last soh_drop_days (NaN: none yet)
    tamper_events: np.ndarray  # n: tamper flags the unit raised in the last 7 days

    @property
    def n(self) -> int:
        return len(self.unit_id)


@dataclass
class Hits:
    """The units (indices into the window) for which a rule fires, and its evidence per unit."""

    idx: np.ndarray
    evidence: dict[str, np.ndarray]
    level: np.ndarray | None = None

    def evidence_of(self, j: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self.evidence.items():
            x = v[j]
            if isinstance(x, np.floating | float):
                out[k] = None if np.isnan(x) else round(float(x), 3)
            elif isinstance(x, np.integer | int):
                out[k] = int(x)
            elif isinstance(x, np.bool_ | bool):
                out[k] = bool(x)
            else:
                out[k] = str(x)
        return out


def _hits(mask: np.ndarray, level: np.ndarray | None = None, **evidence: np.ndarray) -> Hits:
    idx = np.flatnonzero(mask)
    return Hits(idx, {k: np.asarray(v)[idx] for k, v in evidence.items()}, None if level is None else level[idx])


def _nz(a: np.ndarray, nan: float = 0.0) -> np.ndarray:
    """NaN replaced by ``nan`` (numpy's nan_to_num also looks for infinities: slower, not needed)."""
    return np.where(np.isnan(a), nan, a)


def _trailing_run(cond: np.ndarray) -> np.ndarray:
    """Per row, how many of the last columns in a row are True."""
    d = cond.shape[1]
    false_at = np.where(~cond, np.arange(d), -1)
    return d - 1 - false_at.max(axis=1)


def _nanmean(a: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.nansum(a, axis=1)
        k = np.sum(~np.isnan(a), axis=1)
        return np.where(k > 0, s / np.maximum(k, 1), np.nan)


def smoothed_soh(w: Window) -> np.ndarray:
    """The state of health on the last day: the median of the last 7 capacity estimates (of 21 days) / nameplate."""
    last = w.capacity_ah[:, -21:]
    have = ~np.isnan(last)
    # The last seven estimates, right-aligned: sort NaNs first (by position), keep the tail.
    order = np.argsort(np.where(have, np.arange(last.shape[1]), -1), axis=1, kind="stable")
    recent = np.take_along_axis(last, order, axis=1)[:, -7:]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(recent, axis=1)
    enough = have.sum(axis=1) >= 4
    return np.where(enough, med / w.battery_ah, np.nan)


def _group_quantile(values: np.ndarray, gid: np.ndarray, ngroups: int, q: float, least: int) -> np.ndarray:
    """Per group: the q-th percentile (numpy's linear method) of the non-NaN ``values`` (unit × columns)
    of its units, or NaN with fewer than ``least`` of them. One sort for every group at once."""
    v = values.reshape(len(gid), -1)
    flat = v.ravel()
    keys = np.repeat(gid, v.shape[1])
    by_value = np.argsort(flat)  # NaNs last
    order = by_value[np.argsort(keys[by_value], kind="stable")]  # then by group, values still in order
    s = flat[order].astype(np.float64)
    total = np.bincount(keys, minlength=ngroups)
    count = np.bincount(keys, weights=~np.isnan(flat), minlength=ngroups).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(total)[:-1]])
    pos = np.maximum(count - 1, 0) * q / 100.0
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
    a = s[np.minimum(start + lo, len(s) - 1)] if len(s) else np.zeros(ngroups)
    b = s[np.minimum(start + hi, len(s) - 1)] if len(s) else np.zeros(ngroups)
    return np.where(count >= least, a + (b - a) * (pos - lo), np.nan)


def _groups(cell: np.ndarray, kit: np.ndarray) -> tuple[np.ndarray, int]:
    """Each unit's neighbourhood-and-kit group (an index), and how many groups there are."""
    groups, inv = np.unique(np.stack([cell, np.asarray(kit, np.float64)]), axis=1, return_inverse=True)
    return inv.ravel(), groups.shape[1]


def _reference(pooled: np.ndarray, kit: np.ndarray, groups: tuple[np.ndarray, int],
               q: float = REF_PERCENTILE) -> np.ndarray:  # fmt: skip
    """Per unit: the q-th percentile of ``pooled`` (unit × days) over its neighbourhood's units of the
    same kit, else over the kit fleet-wide, else over the fleet (at least 20 unit-days each)."""
    n = len(kit)
    fleet = _group_quantile(pooled, np.zeros(n, np.int64), 1, q, 20)[0]
    kits, kit_id = np.unique(kit, return_inverse=True)
    by_kit = _group_quantile(pooled, kit_id.ravel(), len(kits), q, 20)[kit_id.ravel()]
    gid, ng = groups
    by_group = _group_quantile(pooled, gid, ng, q, 20)[gid]
    return np.where(~np.isnan(by_group), by_group, np.where(~np.isnan(by_kit), by_kit, fleet))


def _median_by(values: np.ndarray, groups: tuple[np.ndarray, int]) -> np.ndarray:
    """Per unit and column: the median of ``values`` over its neighbourhood's units of the same kit
    (at least 5 of them), column by column."""
    gid, ng = groups
    return np.stack([_group_quantile(values[:, j], gid, ng, 50, 5)[gid] for j in range(values.shape[1])], axis=1)


@dataclass
class References:
    """The neighbours' figures each unit is judged against (per unit of the fleet: a rule's verdict on
    a unit depends on the other units only through these, so the fleet can be judged in slices)."""

    yield_ref: np.ndarray  # n: the neighbours' reference yield per Wp (98th percentile, last 7 days)
    full_ref: np.ndarray  # n × 7: the neighbours' median hours at full charge, day by day
    clear_ref: np.ndarray  # n: the neighbours' median PV clearness (last 7 days)

    def take(self, rows: np.ndarray | slice) -> References:
        return References(self.yield_ref[rows], self.full_ref[rows], self.clear_ref[rows])


def per_wp(received: np.ndarray, energy_in: np.ndarray, panel_wp: np.ndarray) -> np.ndarray:
    """The day's PV energy per Wp on the days a unit reported (NaN otherwise)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(received > 0, _nz(energy_in) / panel_wp[:, None], np.nan)


def references(panel_wp: np.ndarray, cell: np.ndarray, yield7: np.ndarray, hours_full7: np.ndarray,
               clearness7: np.ndarray) -> References:  # fmt: skip
    """Every unit's neighbours' figures from the fleet's last 7 days (unit × 7 arrays: ``per_wp``,
    hours at full charge, PV clearness)."""
    if not len(panel_wp):  # no unit installed yet: nothing to judge against
        return References(np.zeros(0), np.zeros((0, hours_full7.shape[1])), np.zeros(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        # The neighbours' reference: what the best of the neighbourhood's panels of the same kit yield
        # per Wp (the 98th percentile of their unit-days of the last 7 days: a full battery makes the
        # controller harvest only what the load takes, so only the top of the range shows what the sun
        # gave). A cloudy week for the whole village lowers it with everyone's yield. Where the
        # neighbourhood has too few such panels: the same kit fleet-wide, then every panel.
        groups = _groups(cell, panel_wp)
        # A full battery hides the panel's yield; how long it stays full against the same kit's
        # neighbours is kept as evidence (too noisy a signal to alert on: see docs/fleet_health.md).
        # The PV clearness (the day's best PV power per Wp while the battery still took charge, over the
        # clear-sky irradiance) against the neighbours' median of the last 7 days: a panel under a bag or
        # thick dust shows it every morning, even on a kit whose battery still fills by the evening. A
        # cloudy week for the whole village lowers the neighbours' median with the unit's own figure.
        return References(_reference(yield7, panel_wp, groups), _median_by(hours_full7, groups),
                          _reference(clearness7, panel_wp, groups, 50))  # fmt: skip


def window_references(w: Window) -> References:
    """The references over the window's own units (the whole fleet, when the window holds it)."""
    return references(w.panel_wp, w.cell, per_wp(w.received, w.energy_in, w.panel_wp)[:, -7:],
                      w.hours_full[:, -7:], w.pv_clearness[:, -7:])  # fmt: skip


def features(w: Window, t: Thresholds, refs: References | None = None) -> dict[str, np.ndarray]:
    """What several rules share, computed once (``refs``: the neighbours' figures of the window's units,
    computed over the whole fleet; by default over the window's own units)."""
    d7 = slice(-7, None)
    seen = w.received > 0
    e_in, e_out = _nz(w.energy_in), _nz(w.energy_out)
    r = window_references(w) if refs is None else refs
    with np.errstate(invalid="ignore", divide="ignore"):
        # Energy per Wp against the neighbours' reference, on days the battery was not full (a full
        # battery makes the controller harvest only what the load takes).
        yields = per_wp(w.received, w.energy_in, w.panel_wp)
        uncurtailed = seen & (_nz(w.max_soc, nan=1.0) < 0.95)
        pv_ratio = yields / (r.yield_ref[:, None] * np.ones(yields.shape[1]))
        full_ratio = np.where(r.full_ref >= 2.0, w.hours_full[:, -7:] / r.full_ref, np.nan)
        clear_ref = r.clear_ref
        clear_ratio = w.pv_clearness[:, -7:] / clear_ref[:, None]
        low_clear = seen[:, -7:] & (clear_ratio < t.pv_clear_fraction)
        low_pv = (uncurtailed & (pv_ratio < t.pv_fraction))[:, -7:] | low_clear
        # Energy no meter saw: harvested (at the controller's efficiency) less what the load took.
        # Less what went into storage over the week (charge at the end against the end of 7 days before).
        in7, out7 = e_in[:, d7].sum(axis=1), e_out[:, d7].sum(axis=1)
        stored = (w.end_soc[:, -1] - w.end_soc[:, -8]) * w.battery_ah * w.v_nom
        unmetered = 0.95 * in7 - out7 - _nz(stored)
        unmetered_share = np.where(in7 > 0, unmetered / in7, 0.0)
    cut_day = _nz(w.min_soc, nan=1.0) < t.deep_soc
    days7 = seen[:, d7].sum(axis=1)
    return {
        "seen": seen,
        "pv_ratio": pv_ratio,
        "low_pv_days": low_pv.sum(axis=1),
        "full_ratio7": _nanmean(full_ratio),
        "clear_ratio7": _nanmean(clear_ratio),
        "low_clear_days": low_clear.sum(axis=1),
        "uncurtailed_days": uncurtailed[:, d7].sum(axis=1),
        "pv_ratio7": _nanmean(np.where(uncurtailed, pv_ratio, np.nan)[:, d7]),
        "unmetered_wh_day": unmetered / np.maximum(days7, 1),
        "unmetered_share": unmetered_share,
        "cut_days": (cut_day & seen)[:, d7].sum(axis=1),
        "paid_cut_days": (cut_day & seen & (_nz(w.hours_locked) < 1))[:, d7].sum(axis=1),
        "days7": days7,
        "soh": smoothed_soh(w),
    }


def evaluate(w: Window, t: Thresholds, refs: References | None = None) -> dict[str, Hits]:
    """Every rule over the window: kind → the units that fire on the last day, with evidence (``refs``:
    see ``features``)."""
    f = features(w, t, refs)
    seen = f["seen"]
    d7 = slice(-7, None)
    out: dict[str, Hits] = {}
    active = f["days7"] >= 4  # enough days seen this week to judge

    # Tamper: the unit's own flag, or energy harvested that no meter saw (a bypass around the meter).
    week_known = ~np.isnan(w.end_soc[:, -8]) & ~np.isnan(w.end_soc[:, -1])  # the week's change of charge
    bypass = active & week_known & (f["unmetered_share"] >= t.tamper_share) & (f["unmetered_wh_day"] >= t.tamper_wh)
    tamper = bypass | (w.tamper_events > 0)
    out["tamper"] = _hits(tamper, unmetered_wh_day=f["unmetered_wh_day"], unmetered_share=f["unmetered_share"],
                          tamper_flags=w.tamper_events)  # fmt: skip

    # Battery degrading: smoothed SoH below the floor, or down by soh_drop from its best of soh_drop_days.
    soh, past = f["soh"], w.soh_past
    with np.errstate(invalid="ignore"):
        low = soh < t.soh_floor
        fell = (past - soh) > t.soh_drop
    degrading = (low | fell) & ~bypass  # a bypass drains the battery too: the estimate is not the battery's
    out["battery_degrading"] = _hits(degrading, soh=soh, soh_best_before=past)

    # Chronic deep discharge: the battery at its cut-off on most days, or long without a full charge.
    no_full = _trailing_run(seen & (_nz(w.max_soc, nan=1.0) < 0.95))
    chronic = active & ((f["cut_days"] >= t.cutoff_days) | (no_full >= t.no_full_days))
    out["chronic_deep_discharge"] = _hits(chronic, cutoff_days_7=f["cut_days"], days_without_full_charge=no_full)

    # Over-temperature: hours a day above hot_c, on hot_days of the last 7.
    hot_days = ((_nz(w.hours_hot) >= t.hot_hours) & seen)[:, d7].sum(axis=1)
    hottest = np.nanmax(np.where(seen[:, d7], w.hours_hot[:, d7], -np.inf), axis=1)
    out["over_temperature"] = _hits(hot_days >= t.hot_days, hot_days_7=hot_days, most_hot_hours=hottest)

    # PV underperformance against the neighbours (a village-wide cloudy week moves the median too).
    pv = active & (f["low_pv_days"] >= t.pv_days)
    out["pv_underperformance"] = _hits(pv, pv_ratio_7=f["pv_ratio7"], clearness_ratio_7=f["clear_ratio7"],
                                       full_hours_ratio_7=f["full_ratio7"], low_days_7=f["low_pv_days"],
                                       low_clearness_days_7=f["low_clear_days"])  # fmt: skip

    # Offline: whole days without a reading received, with the likely cause.
    ever = seen.any(axis=1)
    silent = _trailing_run(~seen)
    offline = ever & (silent >= t.offline_days)
    # The unit's last day with readings: its lowest charge and signal then.
    last_col = w.received.shape[1] - 1 - np.argmax(seen[:, ::-1], axis=1)
    rows = np.arange(w.n)
    last_soc = w.min_soc[rows, last_col]
    last_rssi = w.last_rssi[rows, last_col]
    cause = np.where(silent >= t.moved_away_days, "moved away",
                     np.where(_nz(last_soc, nan=1.0) < 0.1, "battery dying",
                              np.where(_nz(last_rssi, nan=0) < -100, "lost signal", "unknown")))  # fmt: skip
    out["offline"] = _hits(offline, silent_days=silent, likely_cause=cause, last_min_soc=last_soc,
                           last_rssi=last_rssi)  # fmt: skip

    # Usage drop: the last 7 days far below the unit's own baseline while it had credit and energy,
    # and not a household away (days with next to no use at all).
    paid = _nz(w.hours_locked, nan=24.0) < 1
    usable = seen & paid
    # The baseline: the unit's own median of days 22 to 35 ago (a month back, before a slow decline).
    base_block = np.where(usable[:, -35:-21], w.energy_out[:, -35:-21], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        baseline = np.nanmedian(base_block, axis=1)
    recent = np.where(usable[:, d7], w.energy_out[:, d7], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        # A day below holiday_fraction of the baseline is a day away (next to nothing switched on):
        # not "less use". The use is the mean of the days at home.
        away_day = recent < t.holiday_fraction * baseline[:, None]
        away = away_day.sum(axis=1)
        recent_mean = _nanmean(np.where(away_day, np.nan, recent))
        ratio = recent_mean / baseline
    # ... with energy to spare: no deep discharge and no poor-PV day that week (then it is the kit, not the habit).
    had_energy = ((_nz(w.min_soc[:, d7], nan=1.0) >= t.deep_soc).all(axis=1)) & (f["low_pv_days"] == 0)
    at_home = np.sum(~np.isnan(recent), axis=1) - away
    enough = (np.sum(~np.isnan(base_block), axis=1) >= 7) & (at_home >= 4)
    drop = enough & (baseline >= 5) & (ratio < t.usage_fraction) & (away < t.holiday_days) & had_energy
    out["usage_drop"] = _hits(drop, recent_wh_day=recent_mean, baseline_wh_day=baseline, ratio=ratio,
                              days_away_7=away)  # fmt: skip

    # Locked too long: whole days out of credit in a row, escalating at 3, 7 and 30.
    locked = _trailing_run(seen & (_nz(w.hours_locked) >= 20))
    l1, l2, l3 = t.locked_days
    level = np.where(locked >= l3, l3, np.where(locked >= l2, l2, l1))
    out["locked_too_long"] = _hits(locked >= l1, level=level, locked_days=locked)

    # System too small: cut-offs on most days while paid up, with a panel that yields like its
    # neighbours', a healthy battery and no bypass: the household asks more than the kit gives.
    with np.errstate(invalid="ignore"):
        panel_ok = ~(f["pv_ratio7"] < t.small_pv_ratio) & (f["low_pv_days"] == 0)
        battery_ok = ~(soh < t.soh_floor) & ~fell
    small = active & (f["paid_cut_days"] >= t.small_cutoff_days) & panel_ok & battery_ok & ~bypass
    out["system_too_small"] = _hits(small, paid_cutoff_days_7=f["paid_cut_days"], pv_ratio_7=f["pv_ratio7"],
                                    soh=soh)  # fmt: skip
    return out
