"""Fleet-health rules benchmark (issue 16): every rule over 1,000,000 units' daily rollups.

    .venv/bin/python bench/health_bench.py [--units 1000000] [--sample 20000] [--seed 1]

Input: a generated window of daily figures (``backoffice.health.rules.Window``: the columns of
``telemetry_daily`` and ``unit_health_daily`` the rules read) for N units over the 36 days a run reads
(30 days of history and more: the usage baseline looks 22-35 days back), in 2,000 neighbourhoods of
three kits, with about 10 % of the units given one of the faults the rules look for.

  ours       ``rules.evaluate`` (numpy, vectorised over the fleet): the code the nightly job and
             bench/fleet_health.py run;
  baseline   the same rules written straightforwardly, one unit at a time over Python lists
             (``rowwise`` below), on a random sample of --sample units and extrapolated to N
             (at 1M units it would take tens of minutes); both are run on that sample and must raise
             the same (unit, kind) alerts.

Not measured here: reading the window from PostgreSQL (``repository.load_window``) and the alerts'
write-back; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import resource
import time
from dataclasses import fields, replace

import numpy as np

from backoffice.health.rules import KINDS, REF_PERCENTILE, WINDOW_DAYS, Thresholds, Window, evaluate

KITS = ((10.0, 6.0, 12.0), (50.0, 20.0, 12.8), (100.0, 60.0, 12.8))  # panel Wp, battery Ah, nominal V


def generate(n: int, days: int, seed: int) -> Window:
    rng = np.random.default_rng(seed)
    f32 = np.float32
    kit = rng.integers(0, 3, n)
    wp = np.array([k[0] for k in KITS], f32)[kit]
    ah = np.array([k[1] for k in KITS], f32)[kit]
    v = np.array([k[2] for k in KITS], f32)[kit]
    use = (wp * rng.uniform(0.8, 1.4, n).astype(f32))[:, None]  # Wh a day

    def noise(scale: float) -> np.ndarray:
        return (1 + scale * rng.standard_normal((n, days), dtype=f32)).astype(f32)

    out = (use * noise(0.15)).clip(0)
    w = Window(
        unit_id=np.arange(1, n + 1, dtype=np.int64), first_day=None, panel_wp=wp, battery_ah=ah, v_nom=v,
        cell=rng.integers(0, 2000, n), energy_in=(out / 0.9 * noise(0.03)).astype(f32), energy_out=out,
        reports=np.full((n, days), 72, f32), received=np.full((n, days), 72, f32),
        capacity_ah=np.where(rng.random((n, days)) < 0.7, ah[:, None] * noise(0.004), np.nan).astype(f32),
        min_soc=(0.6 * noise(0.1)).clip(0, 1), max_soc=np.ones((n, days), f32), end_soc=(0.9 * noise(0.02)).clip(0, 1),
        hours_hot=np.zeros((n, days), f32), hours_locked=np.zeros((n, days), f32), hours_cut=np.zeros((n, days), f32),
        hours_full=(7 * noise(0.15)).clip(0, 24), last_rssi=np.full((n, days), -80, f32),
        pv_clearness=(0.75 * noise(0.1)).clip(0, 1.2),
        soh_past=np.full(n, 0.99, f32), tamper_events=np.zeros(n, f32),
    )  # fmt: skip
    # About 1 % of the units for each of ten faults, from a random day of the window.
    fault = np.where(rng.random(n) < 0.1, rng.integers(0, 10, n), -1)
    start = rng.integers(days - 20, days - 2, n)
    after = np.arange(days)[None, :] >= start[:, None]
    f = fault[:, None]
    w.capacity_ah[:] = np.where((f == 0) & after, 0.7 * w.capacity_ah, w.capacity_ah)
    w.min_soc[:] = np.where((f == 1) & after, 0.1, w.min_soc)
    w.hours_hot[:] = np.where((f == 2) & after, 3.0, w.hours_hot)
    covered = (f == 3) & after
    w.energy_in[:] = np.where(covered, 0.2 * wp[:, None] * 4, w.energy_in)
    w.max_soc[:] = np.where(covered, 0.5, w.max_soc)
    w.hours_full[:] = np.where(covered, 0.0, w.hours_full)
    w.pv_clearness[:] = np.where(covered, 0.2, w.pv_clearness)
    w.received[:] = np.where((f == 4) & after, 0, w.received)
    w.energy_in[:] = np.where((f == 5) & after, w.energy_in + 200, w.energy_in)
    w.energy_out[:] = np.where((f == 6) & after, 0.3 * w.energy_out, w.energy_out)
    w.energy_in[:] = np.where((f == 6) & after, 0.3 * w.energy_in, w.energy_in)
    locked = (f == 7) & after
    w.hours_locked[:] = np.where(locked, 24.0, w.hours_locked)
    w.energy_out[:] = np.where(locked, 0.0, w.energy_out)
    w.energy_in[:] = np.where(locked, 0.0, w.energy_in)
    w.energy_out[:] = np.where((f == 8) & after, 0.02 * w.energy_out, w.energy_out)  # away
    w.tamper_events[:] = np.where(fault == 9, 1, 0)
    return w


def take(w: Window, idx: np.ndarray) -> Window:
    return replace(w, **{f.name: getattr(w, f.name)[idx] for f in fields(w) if f.name != "first_day"})


# ---------------------------------------------------------------- the baseline: one unit at a time
def _isnan(x: float) -> bool:
    return x != x


def _percentile(values: list[float], q: float) -> float:
    """numpy's default (linear) percentile."""
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _median(values: list[float]) -> float:
    return _percentile(values, 50)


def rowwise(w: Window, t: Thresholds) -> set[tuple[int, str]]:
    """Every rule, unit by unit, over plain Python lists (what one would write first)."""
    n, d = w.n, w.energy_in.shape[1]
    rows = [
        {
            name: [float(x) for x in getattr(w, name)[i]]
            for name in (
                "energy_in",
                "energy_out",
                "received",
                "capacity_ah",
                "min_soc",
                "max_soc",
                "end_soc",
                "hours_hot",
                "hours_locked",
                "hours_full",
                "last_rssi",
                "pv_clearness",
            )
        }  # fmt: skip
        for i in range(n)
    ]
    wp = [float(x) for x in w.panel_wp]
    kit_of = wp
    group = [(int(w.cell[i]), wp[i]) for i in range(n)]

    def nz(x: float, default: float = 0.0) -> float:
        return default if _isnan(x) else x

    # Neighbourhood references, gathered unit by unit.
    per_wp: list[list[float]] = []
    for i, r in enumerate(rows):
        per_wp.append([r["energy_in"][j] / wp[i] if r["received"][j] > 0 else math.nan for j in range(d)])
    pooled_by: dict[object, list[float]] = {}
    clear_by: dict[object, list[float]] = {}
    for i in range(n):
        for x in per_wp[i][-7:]:
            if not _isnan(x):
                pooled_by.setdefault(("all",), []).append(x)
                pooled_by.setdefault(("kit", kit_of[i]), []).append(x)
                pooled_by.setdefault(group[i], []).append(x)
        for x in rows[i]["pv_clearness"][-7:]:
            if not _isnan(x):
                clear_by.setdefault(("all",), []).append(x)
                clear_by.setdefault(("kit", kit_of[i]), []).append(x)
                clear_by.setdefault(group[i], []).append(x)

    def best(key: object) -> float:
        v = pooled_by.get(key, [])
        return _percentile(v, REF_PERCENTILE) if len(v) >= 20 else math.nan

    def typical_clearness(key: object) -> float:
        v = clear_by.get(key, [])
        return _median(v) if len(v) >= 20 else math.nan

    fired: set[tuple[int, str]] = set()
    for i, r in enumerate(rows):
        uid = int(w.unit_id[i])
        seen = [x > 0 for x in r["received"]]
        days7 = sum(seen[-7:])
        active = days7 >= 4
        ref = best(group[i])
        if _isnan(ref):
            ref = best(("kit", kit_of[i]))
        if _isnan(ref):
            ref = best(("all",))
        ref_c = typical_clearness(group[i])
        if _isnan(ref_c):
            ref_c = typical_clearness(("kit", kit_of[i]))
        if _isnan(ref_c):
            ref_c = typical_clearness(("all",))
        low_pv = 0
        for j in range(d - 7, d):
            unc = seen[j] and nz(r["max_soc"][j], 1.0) < 0.95
            low = unc and per_wp[i][j] / ref < t.pv_fraction
            low_clear = seen[j] and r["pv_clearness"][j] / ref_c < t.pv_clear_fraction
            low_pv += low or low_clear
        ratios = [per_wp[i][j] / ref for j in range(d - 7, d) if seen[j] and nz(r["max_soc"][j], 1.0) < 0.95]
        pv_ratio7 = sum(ratios) / len(ratios) if ratios else math.nan
        in7, out7 = sum(nz(x) for x in r["energy_in"][-7:]), sum(nz(x) for x in r["energy_out"][-7:])
        stored = (r["end_soc"][-1] - r["end_soc"][-8]) * float(w.battery_ah[i]) * float(w.v_nom[i])
        unmetered = 0.95 * in7 - out7 - nz(stored)
        share = unmetered / in7 if in7 > 0 else 0.0
        week_known = not _isnan(r["end_soc"][-8]) and not _isnan(r["end_soc"][-1])
        bypass = active and week_known and share >= t.tamper_share and unmetered / max(days7, 1) >= t.tamper_wh
        if bypass or w.tamper_events[i] > 0:
            fired.add((uid, "tamper"))
        est = [x for x in r["capacity_ah"][-21:] if not _isnan(x)]
        soh = _median(est[-7:]) / float(w.battery_ah[i]) if len(est) >= 4 else math.nan
        past = float(w.soh_past[i])
        fell = not _isnan(past) and not _isnan(soh) and past - soh > t.soh_drop
        if ((not _isnan(soh) and soh < t.soh_floor) or fell) and not bypass:
            fired.add((uid, "battery_degrading"))
        deep = [seen[j] and nz(r["min_soc"][j], 1.0) < t.deep_soc for j in range(d)]
        cut_days = sum(deep[-7:])
        no_full = 0
        for j in range(d - 1, -1, -1):
            if seen[j] and nz(r["max_soc"][j], 1.0) < 0.95:
                no_full += 1
            else:
                break
        if active and (cut_days >= t.cutoff_days or no_full >= t.no_full_days):
            fired.add((uid, "chronic_deep_discharge"))
        if sum(1 for j in range(d - 7, d) if seen[j] and nz(r["hours_hot"][j]) >= t.hot_hours) >= t.hot_days:
            fired.add((uid, "over_temperature"))
        if active and low_pv >= t.pv_days:
            fired.add((uid, "pv_underperformance"))
        silent = 0
        for j in range(d - 1, -1, -1):
            if seen[j]:
                break
            silent += 1
        if any(seen) and silent >= t.offline_days:
            fired.add((uid, "offline"))
        usable = [seen[j] and nz(r["hours_locked"][j], 24.0) < 1 for j in range(d)]
        base = [r["energy_out"][j] for j in range(d - 35, d - 21) if usable[j] and not _isnan(r["energy_out"][j])]
        recent = [r["energy_out"][j] for j in range(d - 7, d) if usable[j] and not _isnan(r["energy_out"][j])]
        if len(base) >= 7 and recent:
            baseline = _median(base)
            home = [x for x in recent if not x < t.holiday_fraction * baseline]
            away = len(recent) - len(home)
            had_energy = all(nz(r["min_soc"][j], 1.0) >= t.deep_soc for j in range(d - 7, d)) and low_pv == 0
            if len(home) >= 4 and baseline >= 5 and away < t.holiday_days and had_energy:
                if (sum(home) / len(home)) / baseline < t.usage_fraction:
                    fired.add((uid, "usage_drop"))
        locked = 0
        for j in range(d - 1, -1, -1):
            if seen[j] and nz(r["hours_locked"][j]) >= 20:
                locked += 1
            else:
                break
        if locked >= t.locked_days[0]:
            fired.add((uid, "locked_too_long"))
        paid_cut = sum(1 for j in range(d - 7, d) if deep[j] and nz(r["hours_locked"][j]) < 1)
        panel_ok = not (pv_ratio7 < 0.7) and low_pv == 0
        battery_ok = not (soh < t.soh_floor) and not fell
        if active and paid_cut >= t.small_cutoff_days and panel_ok and battery_ok and not bypass:
            fired.add((uid, "system_too_small"))
    return fired


def vectorised(w: Window, t: Thresholds) -> set[tuple[int, str]]:
    return {(int(w.unit_id[i]), k) for k, h in evaluate(w, t).items() for i in h.idx}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=20_000, help="units the row-by-row baseline runs on")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t = Thresholds()
    t0 = time.perf_counter()
    w = generate(args.units, WINDOW_DAYS, args.seed)
    print(f"generated {args.units:,} units × {WINDOW_DAYS} days in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    hits = evaluate(w, t)
    ours = time.perf_counter() - t0
    counts = {k: len(hits[k].idx) for k in KINDS}
    print(f"ours (numpy, every rule): {ours:.1f} s for {args.units:,} units; alerts: {counts}")
    idx = np.sort(np.random.default_rng(args.seed).choice(args.units, min(args.sample, args.units), replace=False))
    sample = take(w, idx)
    t0 = time.perf_counter()
    base = rowwise(sample, t)
    row_s = time.perf_counter() - t0
    same = vectorised(sample, t)
    agree = "the same alerts" if base == same else f"DIFFERENT alerts ({len(base ^ same)} differ)"
    per_unit = row_s / len(idx)
    print(f"baseline (row by row): {row_s:.1f} s for {len(idx):,} units → {per_unit * args.units:.0f} s "
          f"extrapolated to {args.units:,}; on the sample both give {agree} ({len(same)} alerts)")  # fmt: skip
    print(f"speed-up {per_unit * args.units / ours:.0f}x; peak memory "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB")  # fmt: skip


if __name__ == "__main__":
    main()
