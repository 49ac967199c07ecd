"""Each alert rule on hand-made daily figures: a village of identical healthy units, then one fault at a
time, and the look-alikes that must not fire (a cloudy week for the whole village, a prepaid holiday,
a late payer's short lock)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from backoffice.health.rules import KINDS, Thresholds, Window, evaluate, smoothed_soh

N, D = 30, 36  # units in one neighbourhood, days in the window
T = Thresholds()


def village(n: int = N, days: int = D) -> Window:
    """Healthy 50 Wp / 20 Ah units: 200 Wh of sun, 60 Wh used, full every day, 8 hours full, 30 °C."""
    rng = np.random.default_rng(7)

    def grid(value: float, noise: float = 0.0) -> np.ndarray:
        return value * (1 + noise * rng.standard_normal((n, days)))

    return Window(
        unit_id=np.arange(1, n + 1, dtype=np.int64), first_day=date(2026, 5, 1),
        panel_wp=np.full(n, 50.0), battery_ah=np.full(n, 20.0), v_nom=np.full(n, 12.8),
        cell=np.zeros(n, np.int64),
        energy_in=grid(70.0, 0.05), energy_out=grid(60.0, 0.1), reports=grid(72.0),
        received=grid(72.0), capacity_ah=grid(19.9, 0.003), min_soc=grid(0.6, 0.05), max_soc=grid(1.0),
        end_soc=grid(0.9), hours_hot=grid(0.0), hours_locked=grid(0.0), hours_cut=grid(0.0),
        hours_full=grid(8.0, 0.1), last_rssi=grid(-80.0), pv_clearness=grid(0.75, 0.1),
        soh_past=np.full(n, 0.995), tamper_events=np.zeros(n),
    )  # fmt: skip


def fired(w: Window) -> dict[str, set[int]]:
    return {k: {int(w.unit_id[i]) for i in h.idx} for k, h in evaluate(w, T).items()}


def only(w: Window, kind: str, unit: int = 1) -> None:
    got = fired(w)
    assert unit in got[kind], got
    others = {k: v for k, v in got.items() if v and k != kind}
    assert others == {}, f"other alerts fired too: {others}"
    assert got[kind] == {unit}


def test_a_healthy_village_raises_nothing() -> None:
    assert fired(village()) == {k: set() for k in KINDS}


def test_battery_degrading_on_the_capacity_estimate() -> None:
    w = village()
    w.capacity_ah[0, -10:] = 15.0  # 75 % of nameplate on the last nights
    only(w, "battery_degrading")
    h = evaluate(w, T)["battery_degrading"]
    assert h.evidence_of(0)["soh"] == pytest.approx(0.75)


def test_battery_degrading_on_a_fast_decline_above_the_floor() -> None:
    w = village()
    w.capacity_ah[0, -10:] = 18.5  # 0.925: above 80 %, but 7 points down on its best of the month
    only(w, "battery_degrading")
    w.soh_past[0] = 0.94  # it was already there a month ago: a slow battery, no alert
    assert fired(w)["battery_degrading"] == set()


def test_few_estimates_give_no_state_of_health() -> None:
    w = village()
    w.capacity_ah[0, :] = np.nan
    w.capacity_ah[0, -2:] = 10.0  # two nights are not enough to call it
    assert np.isnan(smoothed_soh(w)[0])
    assert fired(w)["battery_degrading"] == set()


def test_chronic_deep_discharge_and_system_too_small() -> None:
    w = village()
    w.min_soc[0, -7:] = [0.1, 0.5, 0.08, 0.12, 0.6, 0.1, 0.09]  # five deep nights in seven
    w.max_soc[0, -7:] = 0.9
    got = fired(w)
    assert got["chronic_deep_discharge"] == {1}
    assert got["system_too_small"] == {1}  # paid up, panel and battery fine: the household outgrew it


def test_deep_discharge_while_locked_is_not_a_too_small_system() -> None:
    w = village()
    w.min_soc[0, -7:] = 0.1
    w.hours_locked[0, -7:] = 24.0
    got = fired(w)
    assert got["system_too_small"] == set()


def test_two_deep_nights_are_not_chronic() -> None:
    w = village()
    w.min_soc[0, -3:-1] = 0.1
    assert fired(w)["chronic_deep_discharge"] == set()


def test_over_temperature_needs_hours_on_several_days() -> None:
    w = village()
    w.hours_hot[0, -7:] = [2, 0, 3, 0, 2, 0, 0]
    only(w, "over_temperature")
    w.hours_hot[0, -7:] = [0, 0, 0, 0, 0, 0, 5]  # one hot afternoon
    assert fired(w)["over_temperature"] == set()


def test_covered_panel_against_its_neighbours() -> None:
    w = village()
    w.energy_in[0, -7:] = 15.0  # a quarter of the neighbours' yield, and the battery no longer fills
    w.energy_out[0, -7:] = 14.0
    w.max_soc[0, -7:] = 0.5
    w.min_soc[0, -7:] = 0.4
    w.hours_full[0, -7:] = 0.0
    assert 1 in fired(w)["pv_underperformance"]


def test_a_covered_panel_whose_battery_still_fills() -> None:
    w = village()
    # A spare-capacity kit: the day's energy and the full battery look as before, but while the
    # battery charged the panel gave a quarter of what the sun offered its neighbours.
    w.pv_clearness[0, -5:] = 0.19
    only(w, "pv_underperformance")
    h = evaluate(w, T)["pv_underperformance"]
    assert h.evidence_of(0)["low_clearness_days_7"] == 5


def test_a_panel_dim_for_a_day_or_two_is_not_covered() -> None:
    w = village()
    w.pv_clearness[0, -3:] = 0.2  # three dim days (a cloud over one house) are not four
    w.pv_clearness[1, -7:] = 0.45  # a bit dusty: 60 % of the neighbours', not under half
    assert fired(w)["pv_underperformance"] == set()


def test_a_cloudy_week_for_the_whole_village_is_not_a_covered_panel() -> None:
    w = village()
    # Every panel makes a quarter of its usual yield; no battery fills; the clearness of every panel falls.
    w.energy_in[:, -7:] *= 0.25
    w.max_soc[:, -7:] = 0.6
    w.hours_full[:, -7:] = 0.0
    w.pv_clearness[:, -7:] *= 0.3
    assert fired(w)["pv_underperformance"] == set()


def test_offline_with_its_likely_cause() -> None:
    w = village()
    w.received[0, -2:] = 0  # two whole days without a reading
    w.received[1, -20:] = 0
    w.min_soc[2, -3] = 0.02  # the battery was flat on its last day
    w.received[2, -2:] = 0
    w.last_rssi[3, -3] = -109
    w.received[3, -2:] = 0
    h = evaluate(w, T)["offline"]
    causes = {int(w.unit_id[i]): h.evidence_of(j)["likely_cause"] for j, i in enumerate(h.idx)}
    assert causes == {1: "unknown", 2: "moved away", 3: "battery dying", 4: "lost signal"}


def test_tamper_by_unmetered_energy_and_by_the_flag() -> None:
    w = village()
    w.energy_in[0, -8:] = 200.0  # the panel works hard, the meter sees 60 Wh, the battery ends where it began
    w.tamper_events[1] = 1
    got = fired(w)
    assert got["tamper"] == {1, 2}


def test_charging_a_flat_battery_is_not_unmetered_energy() -> None:
    w = village()
    w.end_soc[0, -8] = 0.1  # flat a week ago, full now: the harvest went into the battery
    w.energy_in[0, -7:] = 60 + 0.8 * 20 * 12.8 / 7
    assert fired(w)["tamper"] == set()


def test_usage_drop_against_its_own_baseline() -> None:
    w = village()
    w.energy_out[0, -7:] = 20.0  # a third of its usual 60 Wh, with credit and a full battery
    w.energy_in[0, -7:] = 22.0  # the controller harvests only what the load takes
    only(w, "usage_drop")


def test_a_prepaid_holiday_is_not_a_usage_drop() -> None:
    w = village()
    w.energy_out[0, -7:] = 0.5  # away: credit, but nothing switched on (only the controller's own draw)
    w.energy_in[0, -7:] = 0.6
    assert fired(w)["usage_drop"] == set()


def test_no_usage_while_locked_is_not_a_usage_drop() -> None:
    w = village()
    w.energy_out[0, -7:] = 0.0
    w.energy_in[0, -7:] = 0.0
    w.hours_locked[0, -7:] = 24.0
    got = fired(w)
    assert got["usage_drop"] == set()
    assert got["locked_too_long"] == {1}


def test_locked_too_long_escalates() -> None:
    w = village()
    for unit, days in ((1, 2), (2, 3), (3, 8), (4, 31)):
        w.hours_locked[unit - 1, -days:] = 24.0
    h = evaluate(w, T)["locked_too_long"]
    levels = {int(w.unit_id[i]): int(h.level[j]) for j, i in enumerate(h.idx)} if h.level is not None else {}
    assert levels == {2: 3, 3: 7, 4: 30}


def test_two_days_away_in_a_week_are_not_a_usage_drop() -> None:
    w = village()
    w.energy_out[0, -7:] = [60, 5, 60, 60, 6, 60, 60]  # away twice: the days at home are as usual
    w.energy_in[0, -7:] = w.energy_out[0, -7:] / 0.9
    assert fired(w)["usage_drop"] == set()
    w.energy_out[0, -7:] = [25, 5, 25, 25, 6, 25, 25]  # away twice, and much less use on the other days
    w.energy_in[0, -7:] = w.energy_out[0, -7:] / 0.9
    assert fired(w)["usage_drop"] == {1}


def test_three_days_away_and_less_use_at_home_is_a_usage_drop() -> None:
    w = village()
    # Away three days of the week (a trip): the four days at home as usual: not a drop.
    w.energy_out[0, -7:] = [60, 5, 4, 60, 6, 60, 60]
    w.energy_in[0, -7:] = w.energy_out[0, -7:] / 0.9
    assert fired(w)["usage_drop"] == set()
    # The same three days away, and the days at home well under the baseline: the drop shows at home.
    w.energy_out[0, -7:] = [25, 5, 4, 25, 6, 25, 25]
    w.energy_in[0, -7:] = w.energy_out[0, -7:] / 0.9
    assert fired(w)["usage_drop"] == {1}
    # Four days away: a holiday, whatever the other days.
    w.energy_out[0, -7:] = [25, 5, 4, 3, 6, 25, 25]
    w.energy_in[0, -7:] = w.energy_out[0, -7:] / 0.9
    assert fired(w)["usage_drop"] == set()
