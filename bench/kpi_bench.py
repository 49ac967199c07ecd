"""KPI engine benchmark (issue 6): a generated 1,000,000-unit portfolio (~40 million ledger rows).

Measures, each in a fresh process (wall time and peak resident memory of that process):
  1. `paygo kpi compute` for one as-of date, from the CSV (parse + index + KPIs);
  2. the same for 12 month-end dates;
  3. the baseline: a straightforward pandas implementation of the same definitions (docs/kpi_definitions.md)
     (bench/kpi_pandas_baseline.py)
     for the one date, and checks that both give the same numbers (1e-6 relative: the baseline uses floats).

    .venv/bin/python bench/kpi_bench.py                 # 1M units; generates the ledger once (~1 min)
    .venv/bin/python bench/kpi_bench.py --units 100000  # a quicker look
"""

from __future__ import annotations

import argparse
import calendar
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
ONE_DATE = "2024-06-30"
MONTH_ENDS = [f"2024-{m:02d}-{calendar.monthrange(2024, m)[1]}" for m in range(1, 13)]
console = Console()


def run(cmd: list[str]) -> tuple[float, float, bytes]:
    """Wall seconds, peak RSS in GB and stdout of one Python script run in a fresh process."""
    scratch = ROOT / ".paygo" / "bench"
    out_path, peak_path = scratch / "stdout.tmp", scratch / "peak.tmp"
    start = time.perf_counter()
    with out_path.open("wb") as out:
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "peak_memory.py"), str(peak_path), *cmd], stdout=out, cwd=ROOT
        )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, int(peak_path.read_text()) / 1e6, out_path.read_bytes()


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))) / 1e6  # fmt: skip
    system = f"{platform.platform()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GB RAM, {system}"


def worst_difference(a: Any, b: Any, path: str = "") -> tuple[float, str]:
    if isinstance(a, dict):
        return max((worst_difference(a[k], b.get(k), f"{path}.{k}") for k in a if k in b), default=(0.0, ""))
    if a is None or b is None:
        return (0.0 if a is None and b is None else math.inf), path
    a, b = float(a), float(b)
    return abs(a - b) / max(abs(a), abs(b), 1e-12), path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--regenerate", action="store_true", help="write the ledger again even if it exists")
    parser.add_argument("--no-baseline", action="store_true", help="skip the pandas baseline")
    args = parser.parse_args()

    data = ROOT / ".paygo" / "bench" / f"kpi-{args.units}"
    ledger, products = data / "ledger.csv", data / "products.csv"
    if args.regenerate or not ledger.exists():
        with console.status(f"generating a {args.units:,}-unit ledger in {data} …"):
            # In a child process, so that this one stays small while it measures the others.
            subprocess.run([sys.executable, str(ROOT / "bench" / "kpi_generate.py"), "--units", str(args.units),
                            "--out", str(data)], check=True)  # fmt: skip
    rows = sum(1 for _ in ledger.open("rb")) - 1
    size = ledger.stat().st_size / 1e9
    console.print(f"machine: {machine()}\nledger: {rows:,} rows, {args.units:,} units, {size:.2f} GB CSV")

    paygo = [str(ROOT / ".venv" / "bin" / "paygo"), "kpi", "compute", "--ledger", str(ledger), "--products",
             str(products)]  # fmt: skip
    results = {}
    with console.status("engine, one as-of date …"):
        results["engine, 1 date"] = run([*paygo, "--as-of", ONE_DATE])
    with console.status("engine, 12 month-end dates …"):
        results["engine, 12 dates"] = run([*paygo, *[a for d in MONTH_ENDS for a in ("--as-of", d)]])
    if not args.no_baseline:
        with console.status("pandas baseline, one as-of date …"):
            baseline = [str(ROOT / "bench" / "kpi_pandas_baseline.py"), str(ledger), str(products)]
            results["pandas baseline, 1 date"] = run([*baseline, ONE_DATE])

    table = Table(title=f"KPIs over {args.units:,} units / {rows:,} rows")
    for col in ("run", "wall s", "peak RSS GB"):
        table.add_column(col, justify="right" if col != "run" else "left")
    for name, (wall, rss, _) in results.items():
        table.add_row(name, f"{wall:.1f}", f"{rss:.2f}")
    console.print(table)
    if "pandas baseline, 1 date" in results:
        engine = json.loads(results["engine, 1 date"][2])[0]["kpis"]
        base = json.loads(results["pandas baseline, 1 date"][2])[0]["kpis"]
        diff, where = worst_difference(base, engine)
        speedup = results["pandas baseline, 1 date"][0] / results["engine, 1 date"][0]
        console.print(f"baseline / engine wall time, 1 date: {speedup:.1f}x")
        console.print(f"largest relative difference between them: {diff:.2e}" + (f" (at {where})" if diff else ""))


if __name__ == "__main__":
    main()
