"""A self-contained HTML KPI report: table, time series and distributions as inline SVG (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape

_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape())

HISTOGRAM_BINS = 24
SERIES = [
    ("portfolio_size", "Portfolio size (units)"),
    ("par.30", "PAR 30 (by balance)"),
    ("arpu", "ARPU, last 30 days"),
    ("churn", "Churn (90 days)"),
]


def _get(kpis: dict[str, Any], key: str) -> float | None:
    value: Any = kpis
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return None if value is None else float(value)


def line_chart(points: list[tuple[str, float | None]], width: int = 420, height: int = 160) -> dict[str, Any]:
    known = [(i, v) for i, (_, v) in enumerate(points) if v is not None]
    if not known:
        return {"path": "", "dots": [], "width": width, "height": height, "min": None, "max": None}
    lo, hi = min(v for _, v in known), max(v for _, v in known)
    span = (hi - lo) or abs(hi) or 1.0
    n = max(len(points) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return 30 + (width - 40) * i / n, height - 20 - (height - 40) * (v - lo) / span

    dots = [(*xy(i, v), points[i][0], v) for i, v in known]
    path = " ".join(f"{'M' if j == 0 else 'L'}{x:.1f},{y:.1f}" for j, (x, y, _, _) in enumerate(dots))
    return {"path": path, "dots": dots, "width": width, "height": height, "min": lo, "max": hi}


def binned(values: list[float], bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """Histogram counts over ``bins`` equal-width bins between the smallest and largest value."""
    if not values:
        return {"lo": None, "hi": None, "counts": [], "n": 0}
    array = np.asarray(values, dtype=np.float64)
    lo, hi = float(array.min()), float(array.max())
    counts, _ = np.histogram(array, bins=bins, range=(lo, hi if hi > lo else lo + 1))
    return {"lo": lo, "hi": hi, "counts": counts.tolist(), "n": len(values)}


def histogram(hist: dict[str, Any] | None, width: int = 420, height: int = 160) -> dict[str, Any]:
    """SVG bars for counts from ``binned``."""
    counts = (hist or {}).get("counts") or []
    if not counts or not hist:
        return {"bars": [], "width": width, "height": height, "lo": None, "hi": None, "n": 0}
    lo, hi = hist["lo"], hist["hi"]
    step = ((hi - lo) or 1.0) / len(counts)
    top = max(counts) or 1
    bar_w = (width - 40) / len(counts)
    bars = [
        (30 + i * bar_w, height - 20 - (height - 40) * c / top, bar_w - 1, (height - 40) * c / top, c,
         lo + i * step, lo + (i + 1) * step)
        for i, c in enumerate(counts)
    ]  # fmt: skip
    return {"bars": bars, "width": width, "height": height, "lo": lo, "hi": hi, "n": hist["n"]}


def series_charts(overall: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Line charts of the headline KPIs over the given results ("all" segment, oldest first)."""
    return [(label, line_chart([(r["as_of"], _get(r["kpis"], key)) for r in overall])) for key, label in SERIES]


def render(results: list[dict[str, Any]], dists: dict[str, list[float]], title: str = "Portfolio KPIs") -> str:
    overall = [r for r in results if r["segment"] == "all"]
    series = series_charts(overall)
    return _env.get_template("report.html").render(
        title=title,
        results=results,
        latest=overall[-1] if overall else None,
        series=series,
        ahead=histogram(binned(dists.get("amount_ahead_behind", []))),
        revenue=histogram(binned(dists.get("revenue_30d", []))),
        get=_get,
    )
