"""The KPI charts' axes (kpi/report.py): points placed by their dates, every tick labelled with a date and
never two labels on top of each other, shares labelled as percentages."""

from __future__ import annotations

from kpi.report import line_chart


def test_points_are_placed_by_date_and_ticks_are_dated_and_apart() -> None:
    points = [("2026-08-31", 0.1), ("2026-09-30", 0.2), ("2026-10-31", None), ("2026-11-30", 0.3), ("2026-12-08", 0.25)]
    chart = line_chart(points, percent=True)
    xs = [x for x, _, _, _ in chart["dots"]]
    # 30 days, then 61, then 8: the gaps follow the calendar, not the points' order.
    assert abs((xs[1] - xs[0]) / (xs[2] - xs[1]) - 30 / 61) < 1e-9
    assert abs((xs[3] - xs[2]) / (xs[1] - xs[0]) - 8 / 30) < 1e-9
    labels = [label for _, label in chart["ticks"]]
    assert labels[0] == "31 Aug 2026" and labels[-1] == "8 Dec 2026" and "30 Nov 2026" not in labels  # too close
    ticks = [x for x, _ in chart["ticks"]]
    assert all(b - a >= 72 for a, b in zip(ticks, ticks[1:], strict=False))
    assert (chart["min_label"], chart["max_label"]) == ("0.0 %", "30.0 %")
    assert [v for _, _, _, v in chart["dots"]] == ["10.0 %", "20.0 %", "30.0 %", "25.0 %"]


def test_one_point_or_none() -> None:
    assert line_chart([("2026-08-31", 3.0)])["ticks"] == [(52.0, "31 Aug 2026")]
    assert line_chart([("2026-08-31", None)])["ticks"] == []
