"""The benchmark's baseline: a straightforward pandas implementation of docs/kpi_definitions.md (asset finance
and flexible units, "all" segment, no fx), written the way an analyst would: read the CSV into a
DataFrame, then per as-of date filter and group by unit. Money is float64 here (the platform's
engine is exact); the benchmark checks that both agree to 1e-6 relative.

    .venv/bin/python bench/kpi_pandas_baseline.py LEDGER PRODUCTS 2024-06-30 [...]
"""

from __future__ import annotations

import json
import sys
from datetime import date

import numpy as np
import pandas as pd

CR = ["deposit", "payment", "return"]


def load(ledger: str, products: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(
        ledger,
        usecols=lambda c: c.lower() in {"date", "receipt_id", "amount", "currency", "status", "type", "product_type"},
        dtype={
            "receipt_id": "category",
            "currency": "category",
            "status": "category",
            "type": "category",
            "product_type": "category",
            "amount": "float64",
        },  # fmt: skip
        parse_dates=["date"],
    )
    df.columns = [c.lower() for c in df.columns]
    prod = pd.read_csv(products).set_index("product_type")
    cost_cols = ["hardware_cost", "transport_cost", "import_tax", "insurance_cost", "installation_cost"]
    prod["unit_cost"] = prod[cost_cols].fillna(0).sum(axis=1)
    return df, prod


def units_table(df: pd.DataFrame, prod: pd.DataFrame) -> pd.DataFrame:
    g = df.groupby("receipt_id", observed=True)
    u = pd.DataFrame({"product_type": g["product_type"].first().astype(str)})
    dep = df[(df.status == "completed") & (df.type == "deposit")].groupby("receipt_id", observed=True)["date"].min()
    u["acq"] = dep.reindex(u.index).fillna(g["date"].min())
    u["flexible"] = u.product_type.map(prod.business_model) == "flexible"
    u["has_exp_dep"] = (
        df[(df.status == "expected") & (df.type == "deposit")].groupby("receipt_id", observed=True).size()
        .reindex(u.index).fillna(0) > 0
    )  # fmt: skip
    sched = _sched_rows(df, u)
    c_asset = sched.groupby("receipt_id", observed=True)["amount"].sum().reindex(u.index).fillna(0)
    u["C"] = np.where(u.flexible, u.product_type.map(prod.price_to_own), c_asset)
    exp_cr = df[(df.status == "expected") & df.type.isin(CR)].groupby("receipt_id", observed=True)["date"].max()
    flex_end = u.acq + pd.to_timedelta(u.product_type.map(prod.contract_days), unit="D")
    u["end"] = np.where(u.flexible, flex_end, exp_cr.reindex(u.index))
    u["ppd"] = u.product_type.map(prod.price_per_day)
    u["unit_cost"] = u.product_type.map(prod.unit_cost)
    u["certified"] = u.product_type.map(prod.lighting_global_certified).astype(str).str.lower() == "true"
    u["deposit_days"] = u.product_type.map(prod.deposit_days).fillna(0)
    return u


def _sched_rows(df: pd.DataFrame, u: pd.DataFrame) -> pd.DataFrame:
    exp = (df.status == "expected") & df.type.isin(CR)
    dep_paid = (df.status == "completed") & (df.type == "deposit")
    no_exp_dep = ~df.receipt_id.map(u.has_exp_dep).astype(bool)
    return df[exp | (dep_paid & no_exp_dep)]


def _sum_upto(rows: pd.DataFrame, t: pd.Timestamp, index: pd.Index) -> pd.Series:
    return rows[rows.date <= t].groupby("receipt_id", observed=True)["amount"].sum().reindex(index).fillna(0)


def access_end(df: pd.DataFrame, u: pd.DataFrame, d: pd.Timestamp) -> pd.Series:
    pays = df[(df.status == "completed") & (df.type == "payment") & (df.amount > 0) & (df.date <= d)]
    pays = pays[pays.receipt_id.map(u.flexible).astype(bool)].sort_values(["receipt_id", "date"])
    start = (u.acq - pd.Timestamp(0)).dt.days + u.deposit_days
    out = start.where(u.flexible).to_dict()
    ppd = u.ppd.to_dict()
    for rid, day, amount in zip(pays.receipt_id, (pays.date - pd.Timestamp(0)).dt.days, pays.amount, strict=True):
        out[rid] = max(out[rid], day) + amount / ppd[rid]
    return pd.Series(out).reindex(u.index)


def compute(df: pd.DataFrame, prod: pd.DataFrame, u: pd.DataFrame, as_of: date) -> dict[str, object]:
    d = pd.Timestamp(as_of)
    d90 = d - pd.Timedelta(days=90)
    completed = df[df.status == "completed"]
    paid_rows = completed[completed.type.isin(CR)]
    sched = _sched_rows(df, u)

    def active_at(t: pd.Timestamp) -> tuple[pd.Series, pd.Series, pd.Series]:
        paid = _sum_upto(paid_rows, t, u.index)
        owed = (u.C - paid).clip(lower=0)
        pos = completed[(completed.amount > 0) & (completed.date > t - pd.Timedelta(days=90)) & (completed.date <= t)]
        recent = u.index.isin(pos.receipt_id.unique())
        return (u.acq <= t) & recent & (u.C.isna() | (owed > 0)), paid, owed

    active, paid, owed = active_at(d)
    earlier, paid90, _ = active_at(d90)
    pos = completed[(completed.amount > 0) & (completed.date > d90) & (completed.date <= d)]
    churned = earlier & ~u.index.isin(pos.receipt_id.unique())
    n = int(active.sum())
    s90 = _sum_upto(sched, d90, u.index)
    carried = (paid90 - s90).clip(lower=0)
    received = paid - paid90
    end = access_end(df, u, d)
    days_d = (d - pd.Timestamp(0)).days
    par, par_count = {}, {}
    has_c = active & u.C.notna()
    for k in (7, 14, 21, 30):
        billed = _sum_upto(sched, d - pd.Timedelta(days=k), u.index) - s90
        risk = np.where(u.flexible, days_d - end >= k, billed - received - carried > 0.005) & active
        par[str(k)] = owed[risk & has_c].sum() / owed[has_c].sum() if has_c.any() else None
        par_count[str(k)] = risk.sum() / n if n else None
    x = np.where(u.flexible, (end - days_d) * u.ppd, paid - _sum_upto(sched, d, u.index))[active]
    window = completed[(completed.date > d - pd.Timedelta(days=30)) & (completed.date <= d)]
    maint = window[window.type.astype(str).str.startswith("maintenance")]
    dep = _sum_upto(completed[completed.type == "deposit"], d, u.index)
    with_end = active & u.end.notna()
    costed = active & (u.unit_cost > 0)
    return {
        "as_of": as_of.isoformat(),
        "segment": "all",
        "kpis": {
            "portfolio_size": n,
            "arpu": window.amount.sum() / n if n else None,
            "average_unit_cost": u.unit_cost[active].mean() if n else None,
            "average_credit_period_days": (u.end - u.acq)[with_end].dt.days.mean() if with_end.any() else None,
            "average_deposit_ratio": (dep / u.unit_cost)[costed].mean() if costed.any() else None,
            "par": par,
            "par_count": par_count,
            "churn": churned.sum() / earlier.sum() if earlier.any() else None,
            "amount_ahead_behind": {"mean": x.mean(), "std": x.std(ddof=0)} if n else {"mean": None, "std": None},
            "average_total_expected_revenue": u.C[active & ~u.flexible].mean(),
            "average_maintenance_cost": maint.amount.sum() / n if n else None,
            "standards_compliance": u.certified[active].mean() if n else None,
        },
    }


def main() -> None:
    ledger, products, *dates = sys.argv[1:]
    df, prod = load(ledger, products)
    u = units_table(df, prod)
    out = [compute(df, prod, u, date.fromisoformat(t)) for t in dates]
    json.dump(out, sys.stdout, default=float)


if __name__ == "__main__":
    main()
