"""The fleet runner: many simulated units, one MQTT connection each, on an accelerated clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

import aiomqtt

from firmware_sim.clock import SimClock
from firmware_sim.keypad import Keypad
from firmware_sim.unit import SimUnit, UnitSpec
from ingest import protocol
from ingest.protocol import Reading

log = logging.getLogger(__name__)

BUFFER_LIMIT = 500  # readings kept while the GSM link is down (oldest dropped first)


@dataclass
class FleetConfig:
    host: str
    port: int
    interval: timedelta = timedelta(minutes=20)
    username: str | None = None
    password: str | None = None
    topic_root: str = protocol.TOPIC_ROOT
    # serial -> password: each unit logs in as itself on the device listener (the broker's ACL
    # then holds it to its own topics). Without it every unit uses username/password above.
    credentials: dict[str, str] | None = None
    # serial -> (OpenPAYGO key, starting code): the unit takes token commands from its cmd topic.
    keys: dict[str, tuple[str, int]] | None = None


@dataclass
class FleetStats:
    units: int = 0
    online: int = 0
    readings_sent: int = 0
    messages_sent: int = 0
    locked: int = 0
    dropped: int = 0
    tokens_accepted: int = 0


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early when asked to stop; True when stopping."""
    if seconds <= 0:
        return stop.is_set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


async def run_unit(unit: SimUnit, clock: SimClock, cfg: FleetConfig, stats: FleetStats, stop: asyncio.Event) -> None:
    serial = unit.spec.serial
    status_topic = protocol.topic(serial, "status", cfg.topic_root)
    telemetry_topic = protocol.topic(serial, "telemetry", cfg.topic_root)
    buffer: deque[Reading] = deque()
    rng = random.Random(serial)
    # Stagger the first report over one interval so the fleet does not report in lock-step.
    next_ts = unit.now + cfg.interval * rng.random()
    backoff = 1.0
    was_locked = unit.locked
    keypad = Keypad(*cfg.keys[serial]) if cfg.keys and serial in cfg.keys else None
    while not stop.is_set():
        try:
            async with aiomqtt.Client(
                cfg.host,
                cfg.port,
                identifier=f"unit-{serial}",
                username=serial if cfg.credentials else cfg.username,
                password=cfg.credentials[serial] if cfg.credentials else cfg.password,
                will=aiomqtt.Will(status_topic, b"offline", qos=1, retain=True),
                keepalive=60,
            ) as client:
                await client.publish(status_topic, b"online", qos=1, retain=True)
                stats.online += 1
                backoff = 1.0
                commands = None
                if keypad is not None:
                    await client.subscribe(protocol.topic(serial, "cmd", cfg.topic_root), qos=1)
                    commands = asyncio.create_task(_take_commands(client, unit, keypad, cfg, stats), name="cmd")
                try:
                    while True:
                        if await _sleep_or_stop(stop, clock.real_seconds_until(next_ts)):
                            await client.publish(status_topic, b"offline", qos=1, retain=True)
                            return
                        buffer.append(unit.report(next_ts))
                        next_ts += cfg.interval
                        if len(buffer) > BUFFER_LIMIT:
                            buffer.popleft()
                            stats.dropped += 1
                        if unit.locked != was_locked:
                            stats.locked += 1 if unit.locked else -1
                            was_locked = unit.locked
                        batch = list(buffer)
                        await client.publish(telemetry_topic, protocol.encode_telemetry(serial, batch), qos=1)
                        for _ in batch:
                            buffer.popleft()
                        stats.readings_sent += len(batch)
                        stats.messages_sent += 1
                finally:
                    stats.online -= 1
                    if commands is not None:
                        commands.cancel()
        except aiomqtt.MqttError as err:
            log.debug("unit %s link down: %s", serial, err)
            if await _sleep_or_stop(stop, backoff * (0.5 + rng.random())):
                return
            backoff = min(backoff * 2, 60.0)


async def _take_commands(client: aiomqtt.Client, unit: SimUnit, keypad: Keypad, cfg: FleetConfig,
                         stats: FleetStats) -> None:  # fmt: skip
    """Token commands from the platform: entered like a keypad token, acknowledged on cmd/ack."""
    ack_topic = protocol.topic(unit.spec.serial, "cmd/ack", cfg.topic_root)
    async for message in client.messages:
        try:
            command = json.loads(bytes(message.payload))
            token = str(command["token"])
        except (ValueError, KeyError, TypeError):
            continue  # not a command this firmware knows
        accepted, unit.credit_s = keypad.enter(token, unit.credit_s)
        stats.tokens_accepted += accepted
        reply = {"outbox_id": command.get("outbox_id"), "accepted": accepted}
        await client.publish(ack_topic, json.dumps(reply), qos=1)


async def run_fleet(
    specs: list[UnitSpec],
    clock: SimClock,
    cfg: FleetConfig,
    stop: asyncio.Event,
    stats: FleetStats | None = None,
    credit_days: float = 30.0,
) -> FleetStats:
    stats = stats or FleetStats()
    stats.units = len(specs)
    units = [SimUnit(s, clock.now(), credit_s=credit_days * 86400 * (0.3 + random.random())) for s in specs]
    async with asyncio.TaskGroup() as tg:
        for u in units:
            tg.create_task(run_unit(u, clock, cfg, stats, stop), name=f"unit-{u.spec.serial}")
    return stats
