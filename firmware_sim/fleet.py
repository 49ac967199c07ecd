"""The fleet runner: the engine's units on an accelerated clock, talking MQTT like real firmware.

Realistic mode gives every unit its own MQTT connection (its own credentials on the device
listener when given), a retained ``online`` status and an ``offline`` last will, a token command
subscription, a bounded store-and-forward buffer while its GSM link is down, and reconnects with
jittered exponential back-off. Load mode multiplexes many units over a few connections on the
services listener, for benchmarks that need more units than sockets.

One task steps the physics of the whole fleet on the simulated clock (``engine.FleetSim``); each
unit's task only sends what its unit reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import numpy as np

import protocol
from firmware_sim import scenarios
from firmware_sim.clock import SimClock
from firmware_sim.engine import INTERVAL, FleetSim
from firmware_sim.keypad import UNLOCKED_FOREVER, Entry, Keypad
from firmware_sim.unit import UnitSpec
from protocol import Reading

log = logging.getLogger(__name__)

BUFFER_LIMIT = 1000  # readings kept while the GSM link is down (~14 days at 20 minutes), oldest dropped first


@dataclass
class FleetConfig:
    host: str
    port: int
    interval: timedelta = INTERVAL
    username: str | None = None
    password: str | None = None
    topic_root: str = protocol.TOPIC_ROOT
    # serial -> password: each unit logs in as itself on the device listener (the broker's ACL
    # then holds it to its own topics). Without it every unit uses username/password above.
    credentials: dict[str, str] | None = None
    # serial -> (OpenPAYGO key, starting code): the unit takes token commands from its cmd topic.
    keys: dict[str, tuple[str, int]] | None = None
    buffer_limit: int = BUFFER_LIMIT
    # True: the simulated customers pay by themselves (credit as if they typed the token). False:
    # credit comes only from the platform's token commands (the demo, where payments are simulated).
    self_pay: bool = True
    # Load mode: this many shared connections instead of one per unit (0: one per unit).
    connections: int = 0
    seed: int = 0
    # Keep and resend a report the broker answers "no matching subscribers" (MQTT 5). False: firmware
    # that takes any PUBACK as delivered, on MQTT 3.1.1 (the chaos run's baseline, --baseline).
    resend_unrouted: bool = True
    # Units resuming a known past (the demo after its history): serial -> credit left in seconds
    # (inf: unlocked for good), and serial -> the last token count the keypad accepted.
    credit_s: dict[str, float] | None = None
    token_counts: dict[str, int] | None = None
    # ... and serial -> the state of charge (0..1) its newest reading showed: the battery goes on from there.
    soc: dict[str, float] | None = None


@dataclass
class FleetStats:
    units: int = 0
    online: int = 0
    readings_sent: int = 0
    messages_sent: int = 0
    locked: int = 0
    dropped: int = 0
    buffered: int = 0
    tokens_accepted: int = 0
    events_sent: int = 0
    not_taken: int = 0  # reports the broker answered "no matching subscribers" (kept, sent again)
    most_online: int = 0
    sim_time: datetime | None = None  # how far the physics has got (behind the clock when overloaded)
    max_lag_s: float = 0.0  # the largest lag of the physics behind the simulated clock, simulated seconds


@dataclass
class UnitLink:
    """What one unit's firmware keeps between reports: its send buffer and its pending events."""

    serial: str
    limit: int
    buffer: deque[Reading] = field(default_factory=deque)
    events: list[protocol.DeviceEvent] = field(default_factory=list)
    # One publish in flight at a time (reports and command acks), so the last PUBACK is its own.
    publishing: asyncio.Lock = field(default_factory=asyncio.Lock)
    dropped: int = 0  # readings lost to a full buffer, reported with the next flush
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def keep(self, reading: Reading) -> bool:
        """Buffer a reading; False when the oldest had to be dropped to make room."""
        self.buffer.append(reading)
        if len(self.buffer) > self.limit:
            self.buffer.popleft()
            self.dropped += 1
            return False
        return True

    def batches(self) -> list[list[Reading]]:
        items = list(self.buffer)
        size = protocol.MAX_READINGS_PER_MESSAGE
        return [items[i : i + size] for i in range(0, len(items), size)]


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early when asked to stop; True when stopping."""
    if seconds <= 0:
        return stop.is_set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


# MQTT 5 PUBACK reason 0x10: the broker took the message but no subscription matched it, so nobody
# will store it (e.g. right after a broker restart: Mosquitto 2.0 restores a persistent session's plain
# subscriptions, not its shared ones, until the ingest worker subscribes again). The firmware keeps
# the report and sends it again (docs/operations.md, "Mosquitto restarts").
NO_MATCHING_SUBSCRIBERS = 0x10
NOT_TAKEN_RETRY_S = 1.0


class UnitClient(aiomqtt.Client):
    """A unit's own connection, MQTT 5: remembers the reason code of the last PUBACK (the unit has one
    publish in flight at a time, ``UnitLink.publishing``)."""

    last_puback: int = 0

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:  # noqa: ANN401
        self.last_puback = int(getattr(reason_code, "value", 0) or 0)
        super()._on_publish(client, userdata, mid, reason_code, properties)


async def _taken(client: aiomqtt.Client, link: UnitLink, topic: str, payload: bytes, stats: FleetStats) -> bool:
    """Publish at QoS 1; True when the broker took it for a subscriber (a PUBACK but 0x10)."""
    async with link.publishing:
        await client.publish(topic, payload, qos=1)
        taken = getattr(client, "last_puback", 0) != NO_MATCHING_SUBSCRIBERS
    if not taken:
        stats.not_taken += 1
    return taken


async def _flush(client: aiomqtt.Client, link: UnitLink, cfg: FleetConfig, stats: FleetStats) -> bool:
    """Send the buffer oldest first; each batch leaves the buffer only once the broker has it for a
    subscriber. False when the broker answered that nobody subscribes (keep it, try again soon)."""
    serial = link.serial
    if link.dropped:
        link.events.append(_event("buffer_overflow", {"dropped": link.dropped}))
        link.dropped = 0
    while link.events:
        batch_ev = link.events[: protocol.MAX_EVENTS_PER_MESSAGE]
        if not await _taken(client, link, protocol.topic(serial, "events", cfg.topic_root),
                            protocol.encode_events(serial, batch_ev), stats):  # fmt: skip
            return False
        del link.events[: len(batch_ev)]
        stats.events_sent += len(batch_ev)
    for batch in link.batches():
        if not await _taken(client, link, protocol.topic(serial, "telemetry", cfg.topic_root),
                            protocol.encode_telemetry(serial, batch), stats):  # fmt: skip
            return False
        for _ in batch:
            link.buffer.popleft()
        stats.readings_sent += len(batch)
        stats.messages_sent += 1
        stats.buffered -= len(batch)
    return True


def _drop_link(client: aiomqtt.Client) -> None:
    """The GSM link dies: the socket closes without a DISCONNECT, so the broker sends the last will."""
    sock = client._client.socket()  # noqa: SLF001 - the only way to lose a link the way a modem does
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


async def run_unit(i: int, link: UnitLink, sim: FleetSim, cfg: FleetConfig, stats: FleetStats, stop: asyncio.Event,
                   keypad: Keypad | None) -> None:  # fmt: skip
    serial = link.serial
    status_topic = protocol.topic(serial, "status", cfg.topic_root)
    rng = random.Random(f"{serial}:{cfg.seed}")
    backoff = 1.0
    while not stop.is_set():
        if not sim.link_up[i]:  # no GSM coverage: wait for it (readings pile up in the buffer)
            link.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(link.wake.wait(), timeout=1.0)
            continue
        try:
            async with (UnitClient if cfg.resend_unrouted else aiomqtt.Client)(
                cfg.host, cfg.port, identifier=f"unit-{serial}",
                protocol=aiomqtt.ProtocolVersion.V5 if cfg.resend_unrouted else aiomqtt.ProtocolVersion.V311,
                username=serial if cfg.credentials else cfg.username,
                password=cfg.credentials[serial] if cfg.credentials else cfg.password,
                will=aiomqtt.Will(status_topic, protocol.encode_status(False), qos=1, retain=True), keepalive=60,
            ) as client:  # fmt: skip
                await client.publish(status_topic, protocol.encode_status(True), qos=1, retain=True)
                stats.online += 1
                backoff = 1.0
                commands = None
                if keypad is not None:
                    await client.subscribe(protocol.topic(serial, "cmd", cfg.topic_root), qos=1)
                    commands = asyncio.create_task(_take_commands(client, i, sim, link, keypad, cfg, stats))
                try:
                    while not stop.is_set():
                        if not sim.link_up[i]:
                            _drop_link(client)
                            break
                        if not await _flush(client, link, cfg, stats):
                            await _sleep_or_stop(stop, NOT_TAKEN_RETRY_S)
                            continue
                        link.wake.clear()
                        if link.buffer:
                            continue
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(link.wake.wait(), timeout=1.0)
                    else:
                        await client.publish(status_topic, protocol.encode_status(False), qos=1, retain=True)
                finally:
                    stats.online -= 1
                    if commands is not None:
                        commands.cancel()
        except aiomqtt.MqttError as err:
            log.debug("unit %s link down: %s", serial, err)
            if not sim.link_up[i]:
                continue
            if await _sleep_or_stop(stop, backoff * (0.5 + rng.random())):
                return
            backoff = min(backoff * 2, 60.0)


async def _take_commands(client: aiomqtt.Client, i: int, sim: FleetSim, link: UnitLink, keypad: Keypad,
                         cfg: FleetConfig, stats: FleetStats) -> None:  # fmt: skip
    """Token commands from the platform: entered like a keypad token, acknowledged on cmd/ack."""
    ack_topic = protocol.topic(link.serial, "cmd/ack", cfg.topic_root)
    async for message in client.messages:
        try:
            command = protocol.parse_command(bytes(message.payload))
        except protocol.ProtocolError:
            continue  # not a command this firmware knows
        entry, credit = keypad.enter(command.token, float(sim.credit_s[i]), sim.now.timestamp())
        accepted = entry is Entry.ACCEPTED
        if accepted:
            if credit == UNLOCKED_FOREVER:
                sim.unlock_forever(i)
            else:
                sim.credit_s[i] = credit
        stats.tokens_accepted += accepted
        link.events.append(_event("token", {"result": str(entry), "count": keypad.count}, sim.now))
        async with link.publishing:
            await client.publish(ack_topic, protocol.encode_ack(command.outbox_id, accepted), qos=1)


async def _shared_connection(n: int, links: list[UnitLink], cfg: FleetConfig, stats: FleetStats,
                             stop: asyncio.Event, sim: FleetSim, members: list[int]) -> None:  # fmt: skip
    """Load mode: one connection sends for many units (on the services listener)."""
    wake = asyncio.Event()
    for i in members:
        links[i].wake = wake
    async with aiomqtt.Client(cfg.host, cfg.port, identifier=f"sim-load-{cfg.seed}-{n}", username=cfg.username,
                              password=cfg.password, max_queued_outgoing_messages=0) as client:  # fmt: skip
        stats.online += len(members)
        while not stop.is_set():
            wake.clear()
            sends = [_flush(client, links[i], cfg, stats) for i in members if links[i].buffer and sim.link_up[i]]
            if sends:
                await asyncio.gather(*sends)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=1.0)
        stats.online -= len(members)


async def run_fleet(
    specs: list[UnitSpec],
    clock: SimClock,
    cfg: FleetConfig,
    stop: asyncio.Event,
    stats: FleetStats | None = None,
    credit_days: float = 30.0,
    assignment: scenarios.Assignment | None = None,
) -> FleetStats:
    stats = stats or FleetStats()
    stats.units = len(specs)
    rng = np.random.default_rng(cfg.seed)
    sim = FleetSim(specs, clock.now(), seed=cfg.seed, credit_days=credit_days * rng.uniform(0.3, 1.3, len(specs)),
                   interval=cfg.interval, assignment=assignment, payers=cfg.self_pay)  # fmt: skip
    if cfg.credit_s:
        known = [cfg.credit_s.get(s.serial) for s in specs]
        credit = np.array([sim.credit_s[i] if c is None or np.isinf(c) else c for i, c in enumerate(known)])
        sim.carry_in(credit, sim.next_pay, np.array([c is not None and np.isinf(c) for c in known]))
    if cfg.soc:
        sim.carry_in_charge(np.array([cfg.soc.get(s.serial, np.nan) for s in specs], float))
    links = [UnitLink(s.serial, cfg.buffer_limit) for s in specs]
    for ev in sim.boot_events():
        links[ev.idx].events.append(_event(ev.kind, ev.detail, ev.ts))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(_tick(sim, links, clock, stats, stop), name="physics")
        if cfg.connections:
            for n in range(cfg.connections):
                members = list(range(n, len(specs), cfg.connections))
                tg.create_task(_shared_connection(n, links, cfg, stats, stop, sim, members), name=f"conn-{n}")
        else:
            for i, s in enumerate(specs):
                keypad = None
                if cfg.keys and s.serial in cfg.keys:
                    count = (cfg.token_counts or {}).get(s.serial, 1)
                    keypad = Keypad(*cfg.keys[s.serial], count=count)
                tg.create_task(run_unit(i, links[i], sim, cfg, stats, stop, keypad), name=f"unit-{s.serial}")
    return stats


def _event(kind: str, detail: dict[str, Any], ts: datetime | None = None) -> protocol.DeviceEvent:
    return protocol.DeviceEvent.model_validate({"kind": kind, "ts": ts or datetime.now(UTC), "detail": detail})


async def _tick(sim: FleetSim, links: list[UnitLink], clock: SimClock, stats: FleetStats, stop: asyncio.Event) -> None:
    """Step the whole fleet's physics as the simulated clock moves; hand each unit its reports."""
    step = timedelta(seconds=sim.step_s)
    while not stop.is_set():
        for reports, events, payments in sim.advance_to(clock.now()):
            for p in payments:
                sim.add_credit(p.idx, p.days)  # the customer paid and typed the token
            for ev in events:
                links[ev.idx].events.append(_event(ev.kind, ev.detail, ev.ts))
            if reports is None:
                continue
            for j, i in enumerate(reports.idx):
                link = links[i]
                if link.keep(reports.reading(j)):
                    stats.buffered += 1
                else:
                    stats.dropped += 1
                link.wake.set()
        sim.link_up = scenarios.link_up(sim.assignment, sim.now.timestamp())
        stats.locked = int(sim.locked.sum())
        stats.sim_time = sim.now
        stats.most_online = max(stats.most_online, stats.online)
        stats.max_lag_s = max(stats.max_lag_s, (clock.now() - sim.now).total_seconds() - sim.step_s)
        if await _sleep_or_stop(stop, clock.real_seconds_until(sim.now + step)):
            return
