"""Simulated units that report with OpenPAYGO Metrics over HTTP instead of MQTT, next to the MQTT ones.

Each unit's firmware keeps its readings (a bounded buffer, oldest dropped first) and, every
``batch_every`` of simulated time while its GSM link is up, posts them to ``{base_url}/device_data``
as one request built by the official ``openpaygo`` device-side builder (``MetricsRequestHandler``):
its auth method (sa, ta, ca, da or ra) with the unit's key, simple or condensed, JSON or CBOR. The
readings leave the buffer only when the server answers 201 (store-and-forward across outages and
server errors); a request refused as a replay is dropped with its readings, like real firmware
whose counter the server no longer accepts. The answer's signature is checked with the unit's key;
its tokens are entered as if typed (``Keypad``), and a ``settings.base_url`` is followed from the
next request on. The physics, scenarios and payments are the engine's (``FleetSim``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import numpy as np
from openpaygo import MetricsRequestHandler

from firmware_sim import scenarios
from firmware_sim.clock import SimClock
from firmware_sim.engine import FIRMWARE_VERSION, INTERVAL, FleetSim
from firmware_sim.fleet import BUFFER_LIMIT, FleetStats, _sleep_or_stop
from firmware_sim.keypad import UNLOCKED_FOREVER, Entry, Keypad
from firmware_sim.unit import UnitSpec
from protocol import Reading
from protocol import openpaygo_metrics as om

log = logging.getLogger(__name__)

SIM_FORMAT = om.DATA_FORMATS[2]
METHODS = ("sa", "ta", "ca", "da", "ra")
MAX_STEPS = 200  # readings per request (about 10 kB condensed)


@dataclass
class MetricsConfig:
    base_url: str  # the device API, e.g. http://127.0.0.1:18001
    auth_method: str = "ra"
    condensed: bool = True
    cbor: bool = False
    batch_every: timedelta = timedelta(hours=1)  # simulated time between requests
    buffer_limit: int = BUFFER_LIMIT
    self_pay: bool = True
    timeout_s: float = 10.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.auth_method not in METHODS:
            raise ValueError(f"auth_method must be one of {', '.join(METHODS)}")


@dataclass
class MetricsDevice:
    """One unit's Metrics firmware: its buffer, its request counter, the server it reports to."""

    serial: str
    key: str
    keypad: Keypad | None
    cfg: MetricsConfig
    base_url: str
    buffer: deque[Reading] = field(default_factory=deque)
    request_count: int = 0
    last_timestamp: int = 0
    dropped: int = 0
    moved_to: str | None = None  # a base_url the server sent

    def keep(self, reading: Reading) -> bool:
        self.buffer.append(reading)
        if len(self.buffer) > self.cfg.buffer_limit:
            self.buffer.popleft()
            self.dropped += 1
            return False
        return True

    def build(self, now: datetime, tampered: bool = False) -> tuple[bytes, dict[str, str], dict[str, Any], int]:
        """(body, headers, the request as a dict, readings in it) of the next request."""
        batch = list(self.buffer)[:MAX_STEPS]
        self.request_count += 1
        # A timestamp must rise from one request to the next (the simulated clock may run fast).
        stamp = max(int(now.timestamp()), self.last_timestamp + 1)
        self.last_timestamp = stamp
        req = MetricsRequestHandler(self.serial, data_format=SIM_FORMAT, secret_key=self.key,
                                    auth_method=self.cfg.auth_method)  # fmt: skip
        if self.cfg.auth_method != "ta":
            req.set_request_count(self.request_count)
        if self.cfg.auth_method != "ca":
            req.set_timestamp(stamp)
        data: dict[str, Any] = {"firmware_version": FIRMWARE_VERSION, "tampered": tampered}
        if self.keypad is not None:
            data["token_count"] = self.keypad.count
        req.set_data(data)
        req.set_historical_data([_step(r) for r in batch])
        body = dict(req.get_condensed_request_dict() if self.cfg.condensed else req.get_simple_request_dict())
        raw, headers = encode_request(body, self.cfg.cbor)
        return raw, headers, body, len(batch)

    def take_answer(self, answer: dict[str, Any], request: dict[str, Any], credit_s: float, now_s: float) -> float:
        """Apply a 201 answer: its tokens entered, its base_url kept; returns the credit after. An
        answer whose signature is not the unit's is ignored (tokens carry their own proof)."""
        simple = dict(om.OpenPAYGOMetricsShared.convert_dict_keys_to_simple(answer))
        signed = "auth" in simple and om.verify_answer(answer, self.serial, self.key, request)
        if set(simple) - {"token_list", "auth"} and not signed:
            log.warning("unit %s: an unsigned or forged answer ignored", self.serial)
            return credit_s
        for token in simple.get("token_list") or []:
            if self.keypad is not None:
                entry, credit = self.keypad.enter(str(token).zfill(9), credit_s, now_s)
                if entry is Entry.ACCEPTED:
                    credit_s = credit
        url = (simple.get("settings") or {}).get("base_url")
        if signed and isinstance(url, str) and url:
            self.moved_to = url
            self.base_url = url.rstrip("/")
        return credit_s

    async def flush(self, client: httpx.AsyncClient, now: datetime, credit_s: float, stats: FleetStats) -> float:
        """Post the buffer (in requests of at most MAX_STEPS); readings leave it only on a 201."""
        while self.buffer:
            raw, headers, request, n = self.build(now)
            try:
                answer = await client.post(f"{self.base_url}/device_data", content=raw, headers=headers)
            except httpx.HTTPError as err:
                log.debug("unit %s: server unreachable: %s", self.serial, err)
                return credit_s  # kept for the next try
            if answer.status_code == 201:
                for _ in range(n):
                    self.buffer.popleft()
                stats.readings_sent += n
                stats.buffered -= n
                stats.messages_sent += 1
                body = decode_answer(answer.content, answer.headers.get("content-type"))
                credit_s = self.take_answer(body, request, credit_s, now.timestamp())
                continue
            if 400 <= answer.status_code < 500:  # refused: a retry would be refused the same way
                log.warning("unit %s: request refused (%s): %s", self.serial, answer.status_code, answer.text[:200])
                for _ in range(n):
                    self.buffer.popleft()
                stats.dropped += n
                stats.buffered -= n
                continue
            return credit_s  # a server error: keep and retry later
        return credit_s


def _step(r: Reading) -> dict[str, Any]:
    values = r.model_dump(exclude={"seq", "ts", "fw"}, exclude_none=True)
    return values | {"timestamp": int(r.ts.timestamp())}


def encode_request(body: dict[str, Any], cbor: bool) -> tuple[bytes, dict[str, str]]:
    kind = om.CBOR if cbor else om.JSON
    return om.encode(body, kind), {"content-type": kind}


def decode_answer(raw: bytes, content_type: str | None) -> dict[str, Any]:
    try:
        body = om.decode(raw, content_type)
    except om.ProtocolError:
        return {}
    return body if isinstance(body, dict) else {}


async def run_metrics_fleet(
    specs: list[UnitSpec],
    keys: dict[str, tuple[str, int]],
    clock: SimClock,
    cfg: MetricsConfig,
    stop: asyncio.Event,
    stats: FleetStats | None = None,
    credit_days: float = 30.0,
    assignment: scenarios.Assignment | None = None,
) -> FleetStats:
    """Run Metrics units until ``stop``: the engine's physics on the simulated clock, each unit posting
    its buffer every ``batch_every`` (at its own phase) while its link is up."""
    stats = stats or FleetStats()
    stats.units += len(specs)
    rng = np.random.default_rng(cfg.seed + 1)
    sim = FleetSim(specs, clock.now(), seed=cfg.seed + 1, credit_days=credit_days * rng.uniform(0.3, 1.3, len(specs)),
                   interval=INTERVAL, assignment=assignment, payers=cfg.self_pay)  # fmt: skip
    devices = [
        MetricsDevice(
            s.serial,
            keys[s.serial][0],
            Keypad(*keys[s.serial]) if cfg.self_pay is False else None,
            cfg,
            cfg.base_url.rstrip("/"),
        )  # fmt: skip
        for s in specs
    ]
    period = cfg.batch_every.total_seconds()
    due = clock.now().timestamp() + rng.uniform(0, period, len(specs))
    step = timedelta(seconds=sim.step_s)
    async with httpx.AsyncClient(timeout=cfg.timeout_s) as client:
        while not stop.is_set():
            for reports, _events, payments in sim.advance_to(clock.now()):
                for p in payments:
                    sim.add_credit(p.idx, p.days)
                if reports is None:
                    continue
                for j, i in enumerate(reports.idx):
                    if devices[i].keep(reports.reading(j)):
                        stats.buffered += 1
                    else:
                        stats.dropped += 1
            sim.link_up = scenarios.link_up(sim.assignment, sim.now.timestamp())
            now_s = sim.now.timestamp()
            ready = [i for i in range(len(devices)) if due[i] <= now_s and sim.link_up[i] and devices[i].buffer]
            if ready:
                credits = await asyncio.gather(
                    *(devices[i].flush(client, sim.now, float(sim.credit_s[i]), stats) for i in ready)
                )
                for i, credit in zip(ready, credits, strict=True):
                    if credit == UNLOCKED_FOREVER:
                        sim.unlock_forever(i)
                    elif devices[i].keypad is not None:
                        sim.credit_s[i] = credit
                    due[i] += period * max(1, np.ceil((now_s - due[i]) / period))
            stats.sim_time = sim.now
            if await _sleep_or_stop(stop, clock.real_seconds_until(sim.now + step)):
                break
    return stats
