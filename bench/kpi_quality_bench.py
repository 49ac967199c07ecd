"""Portfolio-quality benchmark (issue 28): what the measures of docs/kpi_definitions.md §Q3
and the loan tape add to a KPI
snapshot of a generated 1,000,000-unit portfolio (~40 million ledger rows; bench/kpi_generate.py).

Each run is a fresh process (wall time and its own peak resident memory, bench/peak_memory.py):
  1. baseline: the 2018 guide's KPIs alone (load the CSV, index, docs/kpi_definitions.md KPIs overall and per
     product type) — what a snapshot cost before issue 28;
  2. the whole snapshot's computation: the same plus portfolio quality for every segment and the
     loan tape (CSV text, then gzip as the snapshot stores it);
and prints the time of each stage of run 2.

    .venv/bin/python bench/kpi_quality_bench.py                 # 1M units (generates the ledger once)
    .venv/bin/python bench/kpi_quality_bench.py --units 100000  # a quicker look
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2024-06-30"


def stages(ledger: Path, products: Path, quality: bool) -> None:
    """One snapshot's computation in this process; prints a JSON object of stage timings."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from kpi import engine

    times: dict[str, float] = {}
    start = time.perf_counter()
    # As the snapshot does: the customer ids come from the contracts table, not the CSV (and the
    # baseline, as before issue 28, never read them).
    portfolio = engine.load_portfolio(ledger, products, customers=False)
    times["load + index"] = time.perf_counter() - start
    d = date.fromisoformat(AS_OF)
    types = portfolio.product_types()
    t = time.perf_counter()
    if not quality:
        day = engine._day(portfolio, d.toordinal())
        codes = {pt: [i for i, p in enumerate(portfolio.product_list) if p.product_type == pt] for pt in types}
        everything = np.ones(portfolio.size, dtype=np.bool_)
        masks = [everything] + [np.isin(portfolio.product_of_unit, codes[pt]) for pt in types]
        results = [engine._kpis(portfolio, day, d.toordinal(), m) for m in masks]
        times["2018 KPIs, all segments"] = time.perf_counter() - t
    else:
        from kpi.quality import Quality, _fixed

        _fixed(portfolio)
        times["write-offs, first payments, vintage sums (once per portfolio)"] = time.perf_counter() - t
        t = time.perf_counter()
        tapes: dict[date, str] = {}
        results = engine.compute_many(portfolio, [d], by_product_type=True, tapes=tapes)
        times["2018 KPIs + portfolio quality, all segments, + tape text"] = time.perf_counter() - t
        t = time.perf_counter()
        gz = gzip.compress(tapes[d].encode(), compresslevel=3)
        times[f"tape gzip ({len(tapes[d]) / 1e6:.0f} MB -> {len(gz) / 1e6:.0f} MB)"] = time.perf_counter() - t
        assert Quality  # imported for the record: the measures above come from it
    times["total"] = time.perf_counter() - start
    print(json.dumps({"times": times, "segments": len(results)}))


def run(args: list[str]) -> tuple[float, float, dict[str, object]]:
    scratch = ROOT / ".paygo" / "bench"
    scratch.mkdir(parents=True, exist_ok=True)
    peak = scratch / "quality-peak.tmp"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "peak_memory.py"), str(peak), __file__, *args],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return wall, int(peak.read_text()) / 1e6, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--stages", choices=("kpis", "quality"), help=argparse.SUPPRESS)  # the child's part
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stages:
        stages(args.data / "ledger.csv", args.data / "products.csv", args.stages == "quality")
        return
    data = ROOT / ".paygo" / "bench" / f"kpi-{args.units}"
    if not (data / "ledger.csv").exists():
        print(f"generating a {args.units:,}-unit ledger in {data} …", flush=True)
        subprocess.run([sys.executable, str(ROOT / "bench" / "kpi_generate.py"), "--units", str(args.units),
                        "--out", str(data)], check=True)  # fmt: skip
    from kpi_bench import machine  # type: ignore[import-not-found]  # bench/ is on sys.path when run

    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"machine: {machine()}; load average at start {' '.join(load)}")
    print(f"ledger: {(data / 'ledger.csv').stat().st_size / 1e9:.2f} GB CSV, {args.units:,} units, as of {AS_OF}")
    for name, part in (("baseline: 2018 KPIs only", "kpis"), ("snapshot: KPIs + portfolio quality + tape", "quality")):
        wall, rss, out = run(["--stages", part, "--data", str(data), "--units", str(args.units)])
        print(f"\n{name}: {wall:.1f} s wall, peak {rss:.2f} GB")
        for stage, seconds in out["times"].items():  # type: ignore[attr-defined]
            print(f"  {stage}: {seconds:.1f} s")
    print(f"\nload average at end {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    main()
