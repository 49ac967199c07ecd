"""The live fleet (composition: the simulator's units from the registry's installed units, with their
OpenPAYGO keys and MQTT credentials), run until stopped while a callback shows its progress."""

from __future__ import annotations

import asyncio
import dataclasses
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from backoffice import clock as platform_clock
from backoffice import crypto
from backoffice.config import Settings
from backoffice.db import connect
from backoffice.devices import service as devices
from backoffice.registry.repository import firmware_state, installed_units, newest_charge, unit_keys
from devtools.demo_data import synthetic_specs
from firmware_sim import scenarios
from firmware_sim.clock import SimClock
from firmware_sim.fleet import FleetConfig, FleetStats, run_fleet
from firmware_sim.metrics_device import MetricsConfig, run_metrics_fleet
from firmware_sim.unit import UnitSpec

# A unit whose newest reading is older than this when the simulated clock starts has gone for good.
SILENT_FOR_GOOD = timedelta(days=3)


class FleetSetupError(ValueError):
    """The fleet cannot start as asked; the message says what to do."""


@dataclass
class Fleet:
    specs: list[UnitSpec]
    clock: SimClock
    config: FleetConfig
    assignment: scenarios.Assignment
    # Units reporting with OpenPAYGO Metrics over HTTP instead of MQTT (with_metrics_units).
    metrics_specs: list[UnitSpec] = field(default_factory=list)
    metrics_keys: dict[str, tuple[str, int]] = field(default_factory=dict)
    metrics_config: MetricsConfig | None = None
    metrics_assignment: scenarios.Assignment | None = None


def with_metrics_units(
    settings: Settings, fleet: Fleet, n: int, auth_method: str, condensed: bool, cbor: bool
) -> Fleet:
    """The last ``n`` of the fleet's units report with OpenPAYGO Metrics to the device API instead."""
    if n <= 0:
        return fleet
    if n > len(fleet.specs) or not fleet.config.keys:
        raise FleetSetupError("--metrics-units: at most --units, and units from the database (not --synthetic)")
    keep, metrics = fleet.specs[: len(fleet.specs) - n], fleet.specs[len(fleet.specs) - n :]
    cfg = MetricsConfig(f"http://127.0.0.1:{settings.device_api_port}", auth_method=auth_method, condensed=condensed,
                        cbor=cbor, self_pay=fleet.config.self_pay, seed=fleet.config.seed)  # fmt: skip
    keys = {s.serial: fleet.config.keys[s.serial] for s in metrics if s.serial in fleet.config.keys}
    if len(keys) < n:
        raise FleetSetupError("--metrics-units: some of those units have no OpenPAYGO key")
    a, k = fleet.assignment, len(keep)
    split = [scenarios.Assignment(a.kind[p], a.onset[p], a.severity[p], a.duration_s[p])
             for p in (slice(None, k), slice(k, None))]  # fmt: skip
    return dataclasses.replace(fleet, specs=keep, assignment=split[0], metrics_specs=metrics, metrics_keys=keys,
                               metrics_config=cfg, metrics_assignment=split[1])  # fmt: skip


def fleet_units(
    settings: Settings, units: int, synthetic: bool
) -> tuple[list[UnitSpec], dict[str, str | None], dict[str, tuple[str, int]]]:
    """The units to simulate, their MQTT passwords and their (OpenPAYGO key, starting code)."""
    if synthetic:
        return synthetic_specs(units), {}, {}
    with connect(settings, "sim") as conn:
        rows = installed_units(conn, units)
        passwords = {r.serial: devices.password(conn, settings.secret_key, r.serial) for r in rows}
        keys = {
            s: (crypto.decrypt(settings.secret_key, k), c)
            for s, (k, c) in unit_keys(conn, [r.serial for r in rows]).items()
        }
    if not rows:
        raise FleetSetupError("no installed units in the database; run 'paygo db seed-demo' first, or --synthetic")
    specs = [UnitSpec(r.serial, r.latitude, r.longitude, r.panel_wp, r.battery_ah, r.battery_chemistry) for r in rows]
    return specs, passwords, keys


def prepare(
    settings: Settings, *, units: int, speed: float, start_days_ago: float, device_login: bool,
    weights: dict[str, float], self_pay: bool, connections: int, synthetic: bool, seed: int,
) -> Fleet:  # fmt: skip
    """The fleet, its clock, how it connects and which units get which scenario when."""
    if connections and device_login and not synthetic:
        device_login = False  # shared connections publish for many units: only the services listener allows it
    specs, passwords, keys = fleet_units(settings, units, synthetic)
    clock = SimClock(platform_clock.utc_now() - timedelta(days=start_days_ago), speed, wall=platform_clock.utc_now)
    cfg = FleetConfig(settings.mqtt_host, settings.mqtt_port, topic_root=settings.mqtt_topic_root, keys=keys,
                      self_pay=self_pay, connections=connections, seed=seed)  # fmt: skip
    if not synthetic:
        # Units with a past in the database resume it: the credit their newest reading showed (less
        # the time since), unlocked for good when paid off, their keypad at the platform's count, and
        # their battery's charge (no jump where the history meets the live fleet).
        # One that had gone silent for good before the clock's start (its customer moved away) stays so.
        with connect(settings, "sim") as conn:
            state = firmware_state(conn, [s.serial for s in specs], clock.now())
            charge = newest_charge(conn, [s.serial for s in specs])
        gone = {s for s, (*_, last) in state.items() if last < clock.now() - SILENT_FOR_GOOD}
        specs = [s for s in specs if s.serial not in gone] or specs
        credit = {s: np.inf if off else left for s, (_, left, off, _) in state.items()}
        cfg = dataclasses.replace(
            cfg, credit_s=credit, token_counts={s: n for s, (n, *_) in state.items()}, soc=charge
        )  # the batteries go on from their newest reading too
    if device_login and not synthetic:
        missing = [s for s, p in passwords.items() if p is None]
        if missing:
            raise FleetSetupError(f"{len(missing)} unit(s) have no MQTT credentials (e.g. {missing[0]}); "
                                  "run 'paygo devices provision' first, or use --no-device-login")  # fmt: skip
        credentials = {s: p for s, p in passwords.items() if p is not None}
        cfg = dataclasses.replace(cfg, port=settings.device_mqtt_port, credentials=credentials)
    # Scenario onsets fall inside the simulated span up to now (or one real-speed day after it).
    end = max(platform_clock.utc_now(), clock.now() + timedelta(days=1))
    assignment = scenarios.assign(len(specs), weights, clock.now(), end, np.random.default_rng(seed))
    return Fleet(specs, clock, cfg, assignment)


def run(fleet: Fleet, stats: FleetStats, duration: float, show: Callable[[], None]) -> None:
    """Run until SIGINT or SIGTERM (or ``duration`` real seconds), calling ``show`` twice a second."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if duration:
            loop.call_later(duration, stop.set)
        task = asyncio.create_task(
            run_fleet(fleet.specs, fleet.clock, fleet.config, stop, stats, assignment=fleet.assignment), name="fleet"
        )
        metrics = None
        if fleet.metrics_config is not None and fleet.metrics_specs:
            units = run_metrics_fleet(fleet.metrics_specs, fleet.metrics_keys, fleet.clock, fleet.metrics_config,
                                      stop, stats, assignment=fleet.metrics_assignment)  # fmt: skip
            metrics = asyncio.create_task(units, name="metrics")
        while not task.done():
            show()
            await asyncio.sleep(0.5)
        await task
        if metrics is not None:
            stop.set()
            await metrics

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # a socket per unit in realistic mode
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, len(fleet.specs) + 256)), hard))
    asyncio.run(main())
