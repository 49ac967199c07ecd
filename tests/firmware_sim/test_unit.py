from datetime import UTC, datetime, timedelta

from firmware_sim.physics import solar_elevation_deg
from firmware_sim.unit import SimUnit, UnitSpec


def _run(unit: SimUnit, days: int) -> list:  # type: ignore[type-arg]
    t = unit.now
    out = []
    for _ in range(days * 72):
        t += timedelta(minutes=20)
        out.append(unit.report(t))
    return out


def test_sun_is_up_at_local_noon_and_down_at_midnight() -> None:
    # Nairobi, 36.8°E: local noon is about 09:30 UTC.
    assert solar_elevation_deg(-1.29, 36.82, datetime(2024, 3, 20, 9, 30, tzinfo=UTC)) > 80
    assert solar_elevation_deg(-1.29, 36.82, datetime(2024, 3, 20, 21, 30, tzinfo=UTC)) < -60


def test_readings_are_physical_and_sequenced() -> None:
    unit = SimUnit(UnitSpec("S", -1.29, 36.82, 50, 20, "lifepo4"), datetime(2024, 6, 1, tzinfo=UTC), credit_s=2 * 86400)
    readings = _run(unit, 4)
    assert [r.seq for r in readings] == list(range(1, len(readings) + 1))
    assert all(0 <= r.soc <= 1 for r in readings)
    night = [r for r in readings if solar_elevation_deg(-1.29, 36.82, r.ts) < -5]
    assert night and all(r.pv_w == 0 and r.pv_wh == 0 for r in night)
    assert max(r.pv_w for r in readings) > 20  # a 50 Wp panel at midday
    # Credit ran out after two days: the unit locks and serves no load.
    after = [r for r in readings if r.ts > datetime(2024, 6, 3, 0, 20, tzinfo=UTC)]
    assert all(r.locked and r.load_wh == 0 for r in after)
    assert any(r.load_wh > 0 for r in readings[:144])


def test_energy_balance() -> None:
    unit = SimUnit(UnitSpec("S", 11.55, 104.92, 50, 20, "lifepo4"), datetime(2024, 1, 1, tzinfo=UTC))
    start_wh = unit.battery.soc * unit.battery.capacity_wh
    readings = _run(unit, 10)
    end_wh = unit.battery.soc * unit.battery.capacity_wh
    pv_in = sum(r.pv_wh for r in readings)
    load_out = sum(r.load_wh for r in readings)
    # 5 % charge-controller loss on PV energy that reaches the battery or the load.
    losses = 0.05 * pv_in
    assert abs((pv_in - load_out - losses) - (end_wh - start_wh)) <= 0.02 * max(pv_in, 1)
