"""Ingest benchmark (issues 3 and 24): drain a broker backlog of queued QoS 1 readings.

The backlog is what units send (issue 24): every field of the wire contract in each reading, and
store-and-forward flushes, a share of the messages (``--flush-share``, default 10 %) each carrying
a unit's missed readings (``--flush-readings``, default 12: four hours offline).

In one run, on the same broker and PostgreSQL, each against its own backlog of N readings
(a topic root of its own):
  raw     a paho subscriber that acknowledges and writes nothing (the MQTT ceiling);
  naive   one INSERT and one commit per message (measured over its first --naive-seconds);
  copy    binary COPY of N rows straight into the table (the database ceiling, no MQTT);
  ours 1  `paygo ingest run`, one worker;
  ours 2  two workers sharing the subscription.
The drain rate counts from the first committed reading to the last. The peak memory of a worker
is the VmHWM of its two processes (network side and database side) added up. The worker holds all
the ingest slots (PAYGO_INGEST_SLOTS broker sessions, ingest/slots.py) when it runs alone.

    .venv/bin/python bench/ingest_bench.py [--readings 200000]
    .venv/bin/python bench/ingest_bench.py --ratio-only --repeat 3   # raw and 1 worker, side by side
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from rich.console import Console
from rich.table import Table

import protocol
from backoffice.config import Settings, load_settings
from devtools.stack import fresh_database
from ingest import writer
from protocol import Reading

ROOT = Path(__file__).resolve().parent.parent
DB = "paygo_bench_ingest"
UNITS = 10_000
console = Console()


def prepare(settings: Settings) -> Settings:
    bench = fresh_database(settings, DB)
    with psycopg.connect(bench.database_url, autocommit=True) as conn:
        conn.execute("insert into products (code, name, business_model, currency) values ('P', 'p', 'flexible', 'KES')")
        conn.execute(
            """insert into units (serial, product_id, created_at)
               select 'B' || lpad(i::text, 6, '0'), (select id from products), now() - interval '60 days'
               from generate_series(1, %s) i""",
            (UNITS,),
        )
        conn.execute("select telemetry_ensure_partitions(now() - interval '30 days', now() + interval '7 days')")
    return bench


FLUSH_SHARE = 0.10
FLUSH_READINGS = 12


def full_reading(seq: int, ts: datetime) -> Reading:
    """A reading with every field of the wire contract, as the simulator's units send them."""
    return Reading(
        seq=seq,
        ts=ts,
        batt_v=12.4 + (seq % 9) / 10,
        batt_a=-0.35 + (seq % 7) / 10,
        soc=0.2 + (seq % 70) / 100,
        batt_temp_c=24.0 + seq % 12,
        pv_v=17.2 + (seq % 5) / 10,
        pv_w=float(seq % 60),
        pv_wh=float(seq % 20),
        load_wh=float(seq % 8) / 2,
        credit_s=86_400 * 3 - (seq % 1000) * 60,
        locked=seq % 97 == 0,
        rssi=-60 - seq % 40,
        fw="2.4.1",
    )


def messages(root: str, n: int, start: datetime) -> list[tuple[str, bytes]]:
    """``n`` full readings: most units send one reading a message, a share of the messages are
    store-and-forward flushes of FLUSH_READINGS readings (each unit's seq and ts keep rising)."""
    out = []
    next_seq = [1] * UNITS
    every = max(1, round(1 / FLUSH_SHARE)) if FLUSH_SHARE > 0 else 0
    sent = i = 0
    while sent < n:
        unit = i % UNITS
        serial = f"B{unit + 1:06d}"
        k = min(FLUSH_READINGS if every and i % every == every - 1 else 1, n - sent)
        seqs = range(next_seq[unit], next_seq[unit] + k)
        readings = [full_reading(q, start + timedelta(minutes=20 * q)) for q in seqs]
        next_seq[unit] += k
        out.append((protocol.topic(serial, "telemetry", root), protocol.encode_telemetry(serial, readings)))
        sent += k
        i += 1
    return out


def client(settings: Settings, client_id: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    return c


def publish_all(settings: Settings, msgs: list[tuple[str, bytes]]) -> float:
    pub = client(settings, f"pub-{uuid.uuid4().hex[:6]}")
    pub.connect(settings.mqtt_host, settings.mqtt_port)
    pub.loop_start()
    start = time.perf_counter()
    for i in range(0, len(msgs), 30_000):  # message ids are 16-bit: keep fewer than 65,535 outstanding
        infos = [pub.publish(t, p, qos=1) for t, p in msgs[i : i + 30_000]]
        for info in infos:
            info.wait_for_publish(120)
    elapsed = time.perf_counter() - start
    pub.loop_stop()
    pub.disconnect()
    return elapsed


def session(settings: Settings, client_id: str, topic: str) -> mqtt.Client:
    """A persistent session subscribed to ``topic`` (QoS 1), so the broker queues for it while away."""
    c = resume(settings, client_id, None)
    c.subscribe(topic, qos=1)
    time.sleep(0.5)
    return c


def resume(settings: Settings, client_id: str, on_message: object) -> mqtt.Client:
    """Connect with the client id's persistent session (one hour) and start its network loop."""
    c = client(settings, client_id)
    if on_message is not None:
        c.on_message = on_message  # type: ignore[assignment]
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    c.connect(settings.mqtt_host, settings.mqtt_port, clean_start=False, properties=props)
    c.loop_start()
    return c


def count(conn: psycopg.Connection) -> int:
    row = conn.execute("select count(*) from telemetry").fetchone()
    return int(row[0]) if row else 0


def raw_drain(settings: Settings, n: int) -> float:
    root = f"raw-{uuid.uuid4().hex[:6]}/paygo/v1/units"
    cid = f"raw-{uuid.uuid4().hex[:6]}"
    filt = f"{root}/+/telemetry"
    session(settings, cid, filt).disconnect()
    backlog = messages(root, n, datetime.now(UTC) - timedelta(days=20))
    publish_all(settings, backlog)
    got = [0, 0.0, 0.0]
    done = threading.Event()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        if got[0] == 0:
            got[1] = time.perf_counter()
        got[0] += 1
        if got[0] >= len(backlog):
            got[2] = time.perf_counter()
            done.set()

    c = resume(settings, cid, on_message)
    done.wait(600)
    c.loop_stop()
    c.disconnect()
    return n / (got[2] - got[1])


def naive(settings: Settings, n: int, seconds: float) -> float:
    """One INSERT and commit per message, straight from the subscriber callback."""
    root = f"naive-{uuid.uuid4().hex[:6]}/paygo/v1/units"
    cid = f"naive-{uuid.uuid4().hex[:6]}"
    session(settings, cid, f"{root}/+/telemetry").disconnect()
    publish_all(settings, messages(root, n, datetime.now(UTC) - timedelta(days=25)))
    conn = psycopg.connect(settings.database_url)
    ids = dict(conn.execute("select serial, id from units").fetchall())
    conn.commit()
    state = {"n": 0, "first": 0.0, "last": 0.0}

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        serial, _ = protocol.parse_topic(msg.topic, root)
        m = protocol.parse_telemetry(msg.payload, serial)
        for r in m.readings:
            conn.execute(
                "insert into telemetry (unit_id, ts, seq, batt_v, soc, pv_wh, load_wh)"
                " values (%s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
                (ids[serial], r.ts, r.seq, r.batt_v, r.soc, r.pv_wh, r.load_wh),
            )
        conn.commit()
        if not state["n"]:
            state["first"] = time.perf_counter()
        state["n"] += 1
        state["last"] = time.perf_counter()

    c = resume(settings, cid, on_message)
    time.sleep(seconds)
    c.loop_stop()
    c.disconnect()
    conn.close()
    # The rest of its backlog is dropped with the session.
    cleaner = client(settings, cid)
    cleaner.connect(settings.mqtt_host, settings.mqtt_port, clean_start=True)
    cleaner.disconnect()
    return state["n"] / max(state["last"] - state["first"], 1e-9)


def copy_ceiling(settings: Settings, n: int) -> float:
    start = datetime.now(UTC) - timedelta(days=28)
    rows = [
        (i % UNITS + 1, start + timedelta(minutes=20 * (i // UNITS + 1)), i // UNITS + 1, datetime.now(UTC), 12.7, None,
         0.6, None, None, None, 4.0, 2.5, None, None, None, None)
        for i in range(n)
    ]  # fmt: skip
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("delete from telemetry")
        conn.execute("delete from telemetry_daily")
        conn.commit()
        t = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"copy telemetry ({writer._COLS}) from stdin (format binary)") as copy:
            copy.set_types(writer._TYPES)
            for r in rows:
                copy.write_row(r)
        conn.commit()
        rate = n / (time.perf_counter() - t)
        conn.execute("delete from telemetry")
        conn.commit()
    return rate


def _vm_hwm_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(x.split()[1] for x in status.splitlines() if x.startswith("VmHWM:"))) / 1e3


def ours(settings: Settings, n: int, workers: int) -> tuple[float, float]:
    root = f"ours{workers}-{uuid.uuid4().hex[:6]}/paygo/v1/units"
    env = {**os.environ, "PAYGO_DATABASE_URL": settings.database_url, "PAYGO_MQTT_TOPIC_ROOT": root,
           "PAYGO_LOG_LEVEL": "WARNING", "PAYGO_INGEST_GROUP": f"bench{uuid.uuid4().hex[:6]}"}  # fmt: skip
    ids = [f"bench-{workers}-{i}-{uuid.uuid4().hex[:4]}" for i in range(workers)]

    def start(worker_id: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([str(ROOT / ".venv" / "bin" / "paygo"), "ingest", "run", "--worker-id", worker_id],
                                env=env)  # fmt: skip

    # Create the workers' sessions on the broker, then stop them: the backlog queues for them.
    procs = [start(w) for w in ids]
    time.sleep(6)  # they claim the slots, connect and subscribe the slots' sessions
    for p in procs:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("delete from telemetry")
        conn.execute("delete from telemetry_daily")
        publish_all(settings, messages(root, n, datetime.now(UTC) - timedelta(days=20)))
        procs = [start(w) for w in ids]
        first = last = 0.0
        while True:
            c = count(conn)
            now = time.perf_counter()
            if c and not first:
                first = now
            if c >= n:
                last = now
                break
            time.sleep(0.05)
        peak = 0.0
        for p in procs:
            # A worker is two processes (network side, database side): their peaks added up.
            pids = [p.pid, *(c.pid for c in psutil.Process(p.pid).children(recursive=True))]
            peak = max(peak, sum(_vm_hwm_mb(pid) for pid in pids))
            p.send_signal(signal.SIGTERM)
            p.wait(30)
    return n / (last - first), peak


def _steady_publisher(settings: Settings, root: str, rate: int, seconds: float) -> None:
    """Runs in a process of its own: ``rate`` one-reading messages a second, each stamped with the
    time it was published (the reading's ts), for ``seconds``."""
    pub = client(settings, f"live-pub-{uuid.uuid4().hex[:6]}")
    pub.connect(settings.mqtt_host, settings.mqtt_port)
    pub.loop_start()
    start = time.time()
    sent = 0
    seq = 0
    while time.time() - start < seconds:
        seq += 1
        for i in range(rate // 10):
            serial = f"B{(sent + i) % UNITS + 1:06d}"
            reading = full_reading(seq * 1000 + i, datetime.now(UTC))
            pub.publish(protocol.topic(serial, "telemetry", root), protocol.encode_telemetry(serial, [reading]), qos=1)
        sent += rate // 10
        time.sleep(max(0.0, start + sent / rate - time.time()))
    time.sleep(2)
    pub.loop_stop()
    pub.disconnect()


def live(settings: Settings, rate: int, seconds: float) -> tuple[float, float, int]:
    """Publish-to-commit latency with a steady fleet: the real worker code in this process, timing
    each batch's commit against the publish time carried in each reading."""
    import multiprocessing

    from ingest.consumer import IngestWorker, Received

    root = f"live-{uuid.uuid4().hex[:6]}/paygo/v1/units"
    latencies: list[float] = []

    class TimedWorker(IngestWorker):
        def _commit(self, messages: list[Received]) -> None:
            super()._commit(messages)
            done = datetime.now(UTC)
            for m in messages:
                serial, _ = protocol.parse_topic(m.topic, root)
                for r in protocol.parse_telemetry(m.payload, serial).readings:
                    latencies.append((done - r.ts).total_seconds())

    worker = TimedWorker(settings.model_copy(update={"mqtt_topic_root": root}), f"live-{uuid.uuid4().hex[:6]}")
    thread = threading.Thread(target=worker.run)
    thread.start()
    worker.wait_connected(30)
    time.sleep(1)
    publisher = multiprocessing.get_context("spawn").Process(target=_steady_publisher,
                                                             args=(settings, root, rate, seconds))  # fmt: skip
    publisher.start()
    publisher.join(seconds + 60)
    time.sleep(1)
    worker.stop()
    thread.join(30)
    ordered = sorted(latencies)
    return ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)], len(ordered)


def ratio_only(settings: Settings, n: int, repeat: int) -> None:
    """The bare subscriber and one worker, alternately on backlogs of the same readings."""
    table = Table(title=f"full readings: {n:,} in a backlog, {FLUSH_SHARE:.0%} of the messages are flushes of "
                        f"{FLUSH_READINGS} readings; {UNITS:,} units")  # fmt: skip
    for col in ("round", "raw paho subscriber readings/s", "ours, 1 worker readings/s", "ratio", "worker peak RSS MB"):
        table.add_column(col, justify="right")
    ratios = []
    for r in range(repeat):
        with console.status(f"round {r + 1}: raw subscriber …"):
            raw = raw_drain(settings, n)
        with console.status(f"round {r + 1}: ours, 1 worker …"):
            one, rss = ours(settings, n, 1)
        ratios.append(one / raw)
        table.add_row(str(r + 1), f"{raw:,.0f}", f"{one:,.0f}", f"{one / raw:.2f}", f"{rss:.0f}")
    console.print(table)
    ordered = sorted(ratios)
    console.print(f"ours (1 worker) / raw subscriber: median {ordered[len(ordered) // 2]:.2f}, "
                  f"range {ordered[0]:.2f}-{ordered[-1]:.2f} (target >= 0.85)")  # fmt: skip


def main() -> None:
    global FLUSH_SHARE, FLUSH_READINGS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--flush-share", type=float, default=FLUSH_SHARE, help="share of messages that are flushes")
    parser.add_argument("--flush-readings", type=int, default=FLUSH_READINGS, help="readings in a flush")
    parser.add_argument("--ratio-only", action="store_true", help="only the raw subscriber and one worker")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of --ratio-only")
    parser.add_argument("--live-only", action="store_true", help="only the live publish-to-commit latency")
    parser.add_argument("--naive-seconds", type=float, default=20)
    parser.add_argument("--live-rate", type=int, default=2000, help="readings/s of the live-latency run")
    parser.add_argument("--live-seconds", type=float, default=30)
    args = parser.parse_args()
    n = args.readings
    FLUSH_SHARE, FLUSH_READINGS = args.flush_share, args.flush_readings
    with console.status("preparing the database …"):
        settings = prepare(load_settings())
    if args.ratio_only:
        ratio_only(settings, n, args.repeat)
        return
    if args.live_only:
        with console.status(f"live: {args.live_rate} readings/s for {args.live_seconds:.0f} s …"):
            p50, p99, seen = live(settings, args.live_rate, args.live_seconds)
        console.print(f"live, {args.live_rate} full readings/s: publish-to-commit p50 {p50 * 1000:.0f} ms, "
                      f"p99 {p99 * 1000:.0f} ms over {seen:,} readings (target p99 <= 1 s)")  # fmt: skip
        return
    results: dict[str, tuple[float, float | None]] = {}
    with console.status("raw subscriber …"):
        results["raw paho subscriber (writes nothing)"] = (raw_drain(settings, n), None)
    with console.status("naive ingest …"):
        results[f"naive: INSERT + commit per message ({args.naive_seconds:.0f} s)"] = (
            naive(settings, n, args.naive_seconds), None)  # fmt: skip
    with console.status("COPY ceiling …"):
        results["COPY ceiling (no MQTT)"] = (copy_ceiling(settings, n), None)
    with console.status("ours, 1 worker …"):
        results["ours, 1 worker"] = ours(settings, n, 1)
    with console.status("ours, 2 workers …"):
        results["ours, 2 workers"] = ours(settings, n, 2)
    with console.status(f"live: {args.live_rate} readings/s for {args.live_seconds:.0f} s …"):
        p50, p99, seen = live(settings, args.live_rate, args.live_seconds)
    table = Table(title=f"backlog drain: {n:,} full readings, QoS 1, {FLUSH_SHARE:.0%} of the messages flushes of "
                        f"{FLUSH_READINGS}, {UNITS:,} units")  # fmt: skip
    table.add_column("run")
    table.add_column("readings/s", justify="right")
    table.add_column("worker peak RSS MB", justify="right")
    for name, (rate, rss) in results.items():
        table.add_row(name, f"{rate:,.0f}", "" if rss is None else f"{rss:.0f}")
    console.print(table)
    raw = results["raw paho subscriber (writes nothing)"][0]
    one = results["ours, 1 worker"][0]
    naive_rate = next(v[0] for k, v in results.items() if k.startswith("naive"))
    console.print(f"ours (1 worker) / raw subscriber: {one / raw:.2f} (target >= 0.85); "
                  f"/ naive: {one / naive_rate:.1f}x (target >= 10x)")  # fmt: skip
    console.print(f"live, {args.live_rate} readings/s: publish-to-commit p50 {p50 * 1000:.0f} ms, "
                  f"p99 {p99 * 1000:.0f} ms over {seen:,} readings (target p99 <= 1 s)")  # fmt: skip
    sys.exit(0)


if __name__ == "__main__":
    main()
