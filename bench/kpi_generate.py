"""Generate a large synthetic PAYGO portfolio ledger (docs/kpi_definitions.md §1 format) for the KPI benchmark.

Vectorised with numpy and written with Arrow, so a million units (~40 million rows) take about a
minute. Deterministic for a given seed. Units are acquired over four years; asset-finance units
have a deposit and monthly instalments (expected rows) and pay them with per-customer reliability
and delays, some stop paying, a few are repossessed (refund rows); flexible units top up every
few days in amounts of whole days, some lose interest. Rows are shuffled, as an export would be.

    .venv/bin/python bench/kpi_generate.py --units 1000000 --out .paygo/bench/kpi
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

PRODUCTS_CSV = """\
product_type,business_model,hardware_cost,transport_cost,import_tax,insurance_cost,installation_cost,\
lighting_global_certified,price_per_day,price_to_own,contract_days,deposit_days
shs-basic,asset_finance,42000,3000,2500,,1500,true,,,,
shs-tv,asset_finance,120000,6000,9000,1200,2500,true,,,,
lantern,asset_finance,3500,200,,,,false,,,,
flex-own,flexible,30000,2000,1500,,1000,true,50,36000,720,7
flex-ffs,flexible,25000,2000,1500,,1000,false,40,,,3
"""
# product: (share, deposit, instalment, instalments) for asset finance; (share, deposit, ppd) for flexible
ASSET = {"shs-basic": (0.35, 4500, 1700, 24), "shs-tv": (0.15, 12000, 4200, 36), "lantern": (0.10, 500, 300, 12)}
FLEX = {"flex-own": (0.25, 2000, 50), "flex-ffs": (0.15, 1000, 40)}
START = date(2021, 1, 1).toordinal()
LAST = date(2024, 12, 31).toordinal()  # nothing is received after this date
FLEX_TOPUPS = 120


def _shuffled(parts: list[dict[str, np.ndarray]], rng: np.random.Generator) -> dict[str, np.ndarray]:
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    keep = cols["day"] <= np.where(cols["completed"], LAST, LAST + 800)
    cols = {k: v[keep] for k, v in cols.items()}
    order = rng.permutation(len(cols["day"]))
    return {k: v[order] for k, v in cols.items()}


def _write(path: Path, cols: dict[str, np.ndarray], n_units: int) -> int:
    n_rows = len(cols["day"])
    receipt = pa.DictionaryArray.from_arrays(
        pa.array(cols["unit"], pa.int32()), pa.array([f"R{u:07d}" for u in range(n_units)])
    )
    customer = pa.DictionaryArray.from_arrays(receipt.indices, pa.array([f"C{u:07d}" for u in range(n_units)]))
    names = sorted({*ASSET, *FLEX})
    table = pa.table(
        {
            "date": pa.array(cols["day"] - date(1970, 1, 1).toordinal(), pa.int32()).cast(pa.date32()),
            "customer_id": customer,
            "receipt_id": receipt,
            "amount": pa.array(cols["amount"], pa.int64()),
            "currency": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n_rows, np.int8)), pa.array(["KES"])),
            "status": pa.DictionaryArray.from_arrays(
                pa.array(cols["completed"].astype(np.int8)), pa.array(["expected", "completed"])
            ),
            "type": pa.DictionaryArray.from_arrays(
                pa.array(cols["type"], pa.int8()), pa.array(["deposit", "payment", "maintenance_unscheduled", "return"])
            ),
            "product_type": pa.DictionaryArray.from_arrays(pa.array(cols["product"], pa.int8()), pa.array(names)),
        }
    )
    # Arrow's CSV writer does not take dictionaries: decode them (in slices, to bound memory).
    plain = pa.schema([(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in table.schema])
    with pacsv.CSVWriter(path, plain, write_options=pacsv.WriteOptions(quoting_style="none")) as writer:
        for batch in table.to_batches(max_chunksize=1_000_000):
            writer.write_batch(
                pa.record_batch(
                    [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns],
                    names=batch.schema.names,
                )
            )
    return n_rows


def generate(n_units: int, out: Path, seed: int = 7) -> tuple[Path, Path, int]:
    out.mkdir(parents=True, exist_ok=True)
    ledger = out / "ledger.csv"
    n_rows = _write(ledger, ledger_columns(n_units, seed), n_units)
    products = out / "products.csv"
    products.write_text(PRODUCTS_CSV)
    return ledger, products, n_rows


def ledger_columns(n_units: int, seed: int = 7) -> dict[str, np.ndarray]:
    """The rows as columns (unit, day ordinal, amount in whole KES, product index into the sorted
    product names, completed, type index into deposit/payment/maintenance_unscheduled/return),
    shuffled as an export would be."""
    rng = np.random.default_rng(seed)
    names = sorted({*ASSET, *FLEX})
    shares = np.array([(ASSET | FLEX)[n][0] for n in names])
    product = rng.choice(len(names), size=n_units, p=shares / shares.sum()).astype(np.int64)
    acq = rng.integers(START, LAST - 30, size=n_units)
    units = np.arange(n_units)
    parts: list[dict[str, np.ndarray]] = []

    def rows(unit: np.ndarray, day: np.ndarray, amount: np.ndarray, completed: bool | np.ndarray, typ: int) -> None:
        parts.append({
            "unit": unit, "day": day, "amount": amount, "product": product[unit],
            "completed": np.broadcast_to(np.asarray(completed), unit.shape).copy(),
            "type": np.full(unit.shape, typ, np.int8),
        })  # fmt: skip

    for name, (_, deposit, instalment, count) in ASSET.items():
        u = units[product == names.index(name)]
        rows(u, acq[u], np.full(len(u), deposit), False, 0)
        rows(u, acq[u], np.full(len(u), deposit), True, 0)
        due = acq[u, None] + 30 * np.arange(1, count + 1)
        rows(np.repeat(u, count), due.ravel(), np.full(due.size, instalment), False, 1)
        reliability = rng.beta(6, 1.5, size=len(u))  # most customers pay most instalments
        stop = rng.integers(3, count * 2, size=len(u))  # some stop paying after a while
        paid = (rng.random(due.shape) < reliability[:, None]) & (np.arange(count) < stop[:, None])
        delay = rng.geometric(0.15, size=due.shape) - 1
        got = due + delay
        rows(np.repeat(u, count)[paid.ravel()], got[paid], np.full(int(paid.sum()), instalment), True, 1)
        repair = rng.random(len(u)) < 0.1
        rows(u[repair], acq[u][repair] + rng.integers(30, 700, int(repair.sum())), np.full(int(repair.sum()), 800),
             True, 2)  # fmt: skip
        back = rng.random(len(u)) < 0.02
        rows(u[back], acq[u][back] + rng.integers(60, 400, int(back.sum())), np.full(int(back.sum()), -deposit),
             True, 3)  # fmt: skip

    for name, (_, deposit, ppd) in FLEX.items():
        u = units[product == names.index(name)]
        rows(u, acq[u], np.full(len(u), deposit), True, 0)
        gaps = rng.geometric(1 / rng.uniform(5, 25, size=(len(u), 1)), size=(len(u), FLEX_TOPUPS))
        day = acq[u, None] + np.cumsum(gaps, axis=1)
        days_bought = rng.integers(3, 31, size=day.shape)
        keep = np.arange(FLEX_TOPUPS) < rng.integers(5, FLEX_TOPUPS + 1, size=(len(u), 1))
        rows(np.repeat(u, FLEX_TOPUPS)[keep.ravel()], day[keep], (days_bought * ppd)[keep], True, 1)

    return _shuffled(parts, rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(".paygo/bench/kpi"))
    args = parser.parse_args()
    t0 = time.perf_counter()
    ledger, _, n = generate(args.units, args.out, args.seed)
    print(f"wrote {n:,} rows for {args.units:,} units to {ledger} in {time.perf_counter() - t0:.1f} s")  # noqa: T201


if __name__ == "__main__":
    main()
