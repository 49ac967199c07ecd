"""A self-contained HTML KPI report: table, time series and distributions as inline SVG (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape())

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


def histogram(values: list[float], bins: int = 20, width: int = 420, height: int = 160) -> dict[str, Any]:
    if not values:
        return {"bars": [], "width": width, "height": height, "lo": None, "hi": None, "n": 0}
    lo, hi = min(values), max(values)
    step = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / step), bins - 1)] += 1
    top = max(counts)
    bar_w = (width - 40) / bins
    bars = [
        (30 + i * bar_w, height - 20 - (height - 40) * c / top, bar_w - 1, (height - 40) * c / top, c,
         lo + i * step, lo + (i + 1) * step)
        for i, c in enumerate(counts)
    ]  # fmt: skip
    return {"bars": bars, "width": width, "height": height, "lo": lo, "hi": hi, "n": len(values)}


def render(results: list[dict[str, Any]], dists: dict[str, list[float]], title: str = "Portfolio KPIs") -> str:
    overall = [r for r in results if r["segment"] == "all"]
    series = [
        (label, line_chart([(r["as_of"], _get(r["kpis"], key)) for r in overall])) for key, label in SERIES
    ]  # fmt: skip
    return _env.get_template("report.html").render(
        title=title,
        results=results,
        latest=overall[-1] if overall else None,
        series=series,
        ahead=histogram(dists.get("amount_ahead_behind", [])),
        revenue=histogram(dists.get("revenue_30d", [])),
        get=_get,
    )
