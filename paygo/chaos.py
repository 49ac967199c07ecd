"""The chaos run (issue 23; ``make chaos``, ``paygo chaos``): a simulated fleet reporting and payments
arriving without pause on the HA stack while, in turn, an ingest worker is killed -9, Mosquitto is
restarted, the PostgreSQL leader is killed -9 (Patroni promotes a standby), the Redis primary is
killed -9 (Sentinel promotes the replica), a Celery worker is killed -9 mid-task and the web app is
restarted. Then it checks, and prints as a table, that nothing acknowledged was lost or doubled.

Every process is the platform's own (``paygo ingest run``, ``paygo api run``, ``paygo worker run``,
``paygo delivery run``, ``paygo sim run``) in a database of its own (paygo_chaos) on the HA stack."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
from openpaygo import TokenType, decode_token

from backoffice import clock, crypto
from backoffice.config import Settings
from backoffice.db import connect
from devtools.ha import faults
from devtools.ha.probe import WriteProbe
from devtools.ha.stack import HAStack
from devtools.postgres import OWNER
from devtools.process import port_open, wait_until
from paygo.celery_app import make_celery
from paygo.demo import prepare_database, provision_units

DB = "paygo_chaos"
MQTT_AWAY = 5.0  # seconds the ingest workers stay away after Mosquitto's restart
REDIS_DB = 12

# The run's read-only checks over the platform's tables (a verification tool's read model, like a
# test's assertions: nothing here writes).
SQL_READING_GAPS = """
    select coalesce(sum(max_seq - min_seq + 1 - n), 0), count(*)
    from (select unit_id, min(seq) as min_seq, max(seq) as max_seq, count(distinct seq) as n
          from telemetry group by unit_id) g"""
SQL_TELEMETRY = "select count(*), count(distinct (unit_id, seq)) from telemetry"
SQL_INBOX = "select provider_txn_id, status, id, contract_id, amount from payment_inbox where provider = 'mpesa'"
SQL_TOKENS = """select t.unit_id, t.count, t.token, t.inbox_id from tokens t order by t.unit_id, t.count"""
SQL_UNIT_KEYS = "select id, openpaygo_key_enc, starting_code from units"
SQL_LEDGER_SINCE = """select contract_id, coalesce(sum(amount), 0) from ledger_entries
                      where status = 'completed' and created_at >= %s group by contract_id"""
SQL_ACCOUNTS = "select account_number from contracts where account_number is not null order by id"
SQL_OUTBOX_STUCK = """select count(*) from outbox where state in ('pending', 'failed')
                      and created_at < paygo_now() - interval '60 seconds'"""
SQL_KPI = "select segment, result from kpi_snapshots where as_of = %s order by segment"
SQL_HEALTH = "select (select count(*) from health_alerts), (select count(*) from unit_health_daily)"


@dataclass
class FaultResult:
    fault: str
    db_writes_unavailable: float
    payments_unanswered: float
    note: str = ""


@dataclass
class Check:
    what: str
    ok: bool
    detail: str


@dataclass
class Children:
    """The platform's processes of the run, each logging to a file of its own."""

    logs: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    args: dict[str, list[str]] = field(default_factory=dict)

    def spawn(self, name: str, args: list[str], **extra: str) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        out = (self.logs / f"{name}.log").open("ab")
        self.args[name] = args
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "paygo.cli", *args], stdout=out,
                                            stderr=subprocess.STDOUT, env={**self.env, **extra},
                                            start_new_session=True)  # fmt: skip

    def kill(self, name: str) -> None:
        p = self.procs[name]
        p.send_signal(signal.SIGKILL)
        p.wait(30)

    def restart(self, name: str, sig: int = signal.SIGTERM) -> None:
        p = self.procs[name]
        if p.poll() is None:
            p.send_signal(sig)
            p.wait(60)
        self.spawn(name, self.args[name])

    def stop(self, names: list[str] | None = None) -> None:
        chosen = [(n, p) for n, p in self.procs.items() if names is None or n in names]
        for _, p in chosen:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in chosen:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Payer:
    """M-Pesa C2B confirmations without pause, each with a TransID of its own; remembers which were
    answered with success (ResultCode 0) and when."""

    def __init__(self, url: str, accounts: list[str], amount: str = "200") -> None:
        self.url, self.accounts, self.amount = url, accounts, amount
        self.answered: list[tuple[float, str]] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="payer", daemon=True)

    def start(self) -> Payer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(150)

    def _run(self) -> None:
        i = 0
        with httpx.Client(timeout=120) as client:
            while not self._stop.is_set():
                i += 1
                txn = f"CHAOS{i:07d}"
                body = {
                    "TransactionType": "Pay Bill", "TransID": txn,
                    "TransTime": clock.local_now().strftime("%Y%m%d%H%M%S"), "TransAmount": self.amount,
                    "BusinessShortCode": "600638", "BillRefNumber": random.choice(self.accounts),
                    "InvoiceNumber": "", "OrgAccountBalance": "", "ThirdPartyTransID": "", "MSISDN": "254700000000",
                    "FirstName": "CHAOS", "MiddleName": "", "LastName": "",
                }  # fmt: skip
                try:
                    r = client.post(f"{self.url}/payments/mpesa/c2b/confirmation", json=body)
                    if r.status_code == 200 and r.json().get("ResultCode") == 0:
                        self.answered.append((time.monotonic(), txn))
                    else:
                        self.failed += 1
                except httpx.HTTPError:
                    self.failed += 1
                    self._stop.wait(0.2)
                self._stop.wait(0.1)

    def longest_gap(self, start: float, end: float) -> float:
        times = [t for t, _ in self.answered if start - 5 <= t <= end]
        before = [t for t in times if t <= start]
        window = ([before[-1]] if before else []) + [t for t in times if t > start]
        return max((b - a for a, b in zip(window, window[1:], strict=False)), default=end - start)

    def wait_answer_after(self, at: float, timeout: float = 120.0) -> None:
        wait_until(lambda: any(t > at for t, _ in self.answered[-50:]), "a payment answered after the fault", timeout)


def run(settings: Settings, units: int = 20, pause: float = 10.0, say: Callable[[str], None] = print,
        baseline: bool = False) -> bool:  # fmt: skip
    """The whole run; prints the tables; True when every check holds."""
    stack = HAStack(settings)
    say("starting the HA stack")
    stack.up()
    with psycopg.connect(stack.ports.database_url("postgres"), autocommit=True) as admin:
        admin.execute(f"drop database if exists {DB} with (force)")
        admin.execute(f"create database {DB} owner {OWNER}")
    # The first free port from base+500 (a base inside Linux's ephemeral range may find one held by an
    # outgoing connection's source port).
    api_port = next(p for p in range(stack.ports.base + 500, stack.ports.base + 600) if not port_open(p))
    s = settings.model_copy(update={"database_url": stack.ports.database_url(DB, user=OWNER),
                                    "redis_url": stack.ports.redis_url(db=REDIS_DB), "api_port": api_port})  # fmt: skip
    say(f"seeding a company of {units} units in {DB}")
    prepare_database(s, units)
    provision_units(s)
    with connect(s, "chaos") as conn:
        accounts = [r[0] for r in conn.execute(SQL_ACCOUNTS)]
        started_at = conn.execute("select paygo_now()").fetchone()[0]  # type: ignore[index]
    env = {**os.environ, "PAYGO_ENVIRONMENT": "test", "PAYGO_DATABASE_URL": s.database_url,
           "PAYGO_REDIS_URL": s.redis_url, "PAYGO_API_PORT": str(api_port), "PAYGO_LOG_LEVEL": "WARNING",
           "PAYGO_TASK_VISIBILITY_TIMEOUT": "10", "PAYGO_HOME": str(settings.home_dir)}  # fmt: skip
    children = Children(stack.dir / "chaos" / "logs", env)
    try:
        return _run(stack, s, children, accounts, started_at, units, pause, say, baseline)
    finally:
        children.stop()  # whatever happened, no process of the run is left behind


def _run(stack: HAStack, s: Settings, children: Children, accounts: list[str], started_at: object, units: int,
         pause: float, say: Callable[[str], None], baseline: bool = False) -> bool:  # fmt: skip
    api_port = s.api_port
    children.spawn("ingest-1", ["ingest", "run", "--worker-id", "chaos-1"])
    children.spawn("ingest-2", ["ingest", "run", "--worker-id", "chaos-2"])
    children.spawn("api", ["api", "run", "--port", str(api_port)])
    children.spawn("worker", ["worker", "run", "--loglevel", "WARNING"])
    children.spawn("delivery", ["delivery", "run"])
    children.spawn("sim", ["sim", "run", "--units", str(units), "--start-days-ago", "1", "--speed", "1440",
                           "--scenario-mix", "healthy", *(["--drop-unrouted"] if baseline else [])])  # fmt: skip
    url = f"http://127.0.0.1:{api_port}"
    wait_until(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, "the web app", 90)
    probe = WriteProbe(s).start()
    payer = Payer(url, accounts).start()
    celery = make_celery(s)
    results: list[FaultResult] = []

    def fault(name: str, act: Callable[[], str]) -> None:
        time.sleep(pause)
        say(f"fault: {name}")
        at = time.monotonic()
        note = act()
        probe.wait_write_after(time.monotonic())
        payer.wait_answer_after(time.monotonic())
        end = time.monotonic()
        results.append(FaultResult(name, probe.longest_gap(at, end), payer.longest_gap(at, end), note))

    def kill_ingest() -> str:
        children.kill("ingest-1")
        time.sleep(2)
        children.spawn("ingest-1", children.args["ingest-1"])
        return "restarted with the same worker id"

    def restart_mosquitto() -> str:
        # The ingest workers are held (SIGSTOP) across the restart and for MQTT_AWAY seconds after it:
        # Mosquitto restores their sessions but not the sessions' shared subscriptions until they
        # subscribe again, so units publish meanwhile into a broker where nothing subscribes. They
        # are told so (MQTT 5 PUBACK "no matching subscribers") and keep those readings.
        held = [children.procs[n] for n in ("ingest-1", "ingest-2")]
        for p in held:
            p.send_signal(signal.SIGSTOP)
        try:
            stack.mosquitto.down()
            stack.mosquitto.up()
            time.sleep(MQTT_AWAY)
        finally:
            for p in held:
                p.send_signal(signal.SIGCONT)
        return f"SIGTERM, started again; ingest workers away for {MQTT_AWAY:.0f} s after it"

    def kill_pg_leader() -> str:
        old, _ = faults.kill_leader(stack)
        new = faults.wait_new_leader(stack, old)
        faults.rejoin(stack, old)
        return f"{old.name} -> {new.name}; {old.name} rejoined"

    def kill_redis_primary() -> str:
        old, _ = faults.kill_redis_primary(stack)
        new = faults.wait_redis_failover(stack, old)
        faults.restart_redis(stack, old)
        return f"{old.name} -> {new.name}; {old.name} rejoined"

    def kill_worker_mid_task() -> str:
        day = (clock.today() - timedelta(days=1)).isoformat()
        result = celery.send_task("kpi.snapshot", args=[day])
        time.sleep(0.3)  # taken by the worker (prefetch 1), running or about to
        children.kill("worker")
        children.spawn("worker", children.args["worker"])
        outcome = result.get(timeout=180)
        return f"kpi.snapshot {outcome['as_of']} ran again after the kill"

    def restart_api() -> str:
        children.restart("api")
        wait_until(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, "the web app", 90)
        return "SIGTERM, started again"

    try:
        time.sleep(pause)
        fault("kill -9 an ingest worker", kill_ingest)
        fault("restart Mosquitto", restart_mosquitto)
        fault("kill -9 the PostgreSQL leader", kill_pg_leader)
        fault("kill -9 the Redis primary", kill_redis_primary)
        fault("kill -9 a Celery worker mid-task", kill_worker_mid_task)
        fault("restart the web app", restart_api)
        time.sleep(pause)
    finally:
        payer.stop()
        children.stop(["sim"])
        probe.stop()
    say("letting ingest and delivery drain")
    checks = _checks(s, payer, probe, started_at, children.logs / "sim.log")
    children.stop()
    _print(results, checks, say)
    return all(c.ok for c in checks)


def _drained(s: Settings) -> Callable[[], bool]:
    last: list[int] = []

    def stable() -> bool:
        with connect(s, "chaos") as conn:
            n = conn.execute("select count(*) from telemetry").fetchone()[0]  # type: ignore[index]
        last.append(int(n))
        return len(last) >= 3 and last[-1] == last[-2] == last[-3]

    return stable


def _sim_not_taken(log: Path) -> str:
    """What the simulator said at its end: reports the broker had no subscriber for (kept, sent again)."""
    import re

    found = re.findall(r"not taken (\d+)", log.read_text(errors="replace")) if log.exists() else []
    return found[-1] if found else "?"


def _checks(s: Settings, payer: Payer, probe: WriteProbe, started_at: object, sim_log: Path) -> list[Check]:
    wait_until(_drained(s), "the readings to stop arriving", 180)
    time.sleep(5)
    checks: list[Check] = []
    with connect(s, "chaos") as conn:
        rows, distinct = conn.execute(SQL_TELEMETRY).fetchone()  # type: ignore[misc]
        gaps, n_units = conn.execute(SQL_READING_GAPS).fetchone()  # type: ignore[misc]
        not_taken = _sim_not_taken(sim_log)
        checks.append(Check("every reading stored exactly once (no seq missing, none twice)",
                            rows == distinct and gaps == 0 and rows > 0,
                            f"{rows:,} readings of {n_units} units, {gaps} seq missing; {not_taken} reports "
                            "answered 'no matching subscribers' were kept and sent again"))  # fmt: skip

        inbox = {r[0]: r for r in conn.execute(SQL_INBOX)}
        answered = [txn for _, txn in payer.answered]
        missing = [t for t in answered if t not in inbox]
        not_credited = [t for t in answered if t in inbox and inbox[t][1] != "credited"]
        per_contract: dict[int, int] = {}
        for txn in answered:
            if txn in inbox and inbox[txn][1] == "credited":
                per_contract[inbox[txn][3]] = per_contract.get(inbox[txn][3], 0) + int(inbox[txn][4])
        ledger = {int(c): int(a) for c, a in conn.execute(SQL_LEDGER_SINCE, (started_at,))}
        ledger_ok = all(ledger.get(c, 0) == a for c, a in per_contract.items())
        checks.append(Check("every payment answered with success credited exactly once",
                            not missing and not not_credited and ledger_ok,
                            f"{len(answered)} answered with success, {len(missing)} missing, "
                            f"{len(not_credited)} not credited, ledger {'matches' if ledger_ok else 'DIFFERS'}; "
                            f"{payer.failed} not answered with success (the provider retries those)"))  # fmt: skip

        keys = {int(u): (crypto.decrypt(s.secret_key, k), int(sc)) for u, k, sc in conn.execute(SQL_UNIT_KEYS)}
        bad, n_tokens = 0, 0
        state: dict[int, tuple[int, list[int]]] = {}
        per_inbox: dict[int, int] = {}
        for unit_id, count, token, inbox_id in conn.execute(SQL_TOKENS):
            n_tokens += 1
            if inbox_id is not None:
                per_inbox[inbox_id] = per_inbox.get(inbox_id, 0) + 1
            key, starting = keys[int(unit_id)]
            last, used = state.get(unit_id, (1, [1]))  # a unit leaves the factory at count 1
            value, kind, got, used2 = decode_token(token=token, secret_key=key, count=last, used_counts=used,
                                                   starting_code=starting)  # fmt: skip
            if kind not in (TokenType.ADD_TIME, TokenType.SET_TIME, TokenType.DISABLE_PAYG) or got != count:
                bad += 1
            else:
                state[unit_id] = (max(last, got), used2)
        doubled = sum(1 for n in per_inbox.values() if n > 1)
        detail = f"{n_tokens} tokens, {bad} refused, {doubled} payments with two"
        checks.append(Check("every token valid for its unit, no count reused (official decoder)",
                            bad == 0 and doubled == 0, detail))  # fmt: skip

        stuck = conn.execute(SQL_OUTBOX_STUCK).fetchone()[0]  # type: ignore[index]
        checks.append(Check("nothing stuck in the outbox", stuck == 0, f"{stuck} deliveries pending for over 60 s"))

    # The KPI and alert jobs, run twice more through the broker: the same results, nothing doubled.
    day = clock.today() - timedelta(days=1)
    app = make_celery(s)
    outcomes = []
    for _ in range(2):
        app.send_task("kpi.snapshot", args=[day.isoformat()]).get(timeout=300)
        app.send_task("health.evaluate", args=[day.isoformat()]).get(timeout=300)
        with connect(s, "chaos") as conn:
            kpis = [(seg, res) for seg, res in conn.execute(SQL_KPI, (day,))]
            health = conn.execute(SQL_HEALTH).fetchone()
        outcomes.append((kpis, health))
    same = outcomes[0] == outcomes[1] and bool(outcomes[0][0])
    detail = f"{len(outcomes[0][0])} KPI segments, alerts/daily rows {outcomes[0][1]} after each run"
    checks.append(Check("KPI and alert jobs re-run idempotently", same, detail))
    lost = probe.lost()
    checks.append(Check("every acknowledged probe write on the final leader", not lost,
                        f"{len(probe.acked)} writes, {len(lost)} missing"))  # fmt: skip
    return checks


def _print(results: list[FaultResult], checks: list[Check], say: Callable[[str], None]) -> None:
    say("")
    say(f"{'fault':<36} {'db writes unavailable':>22} {'payments unanswered':>20}  note")
    for r in results:
        say(f"{r.fault:<36} {r.db_writes_unavailable:>20.1f} s {r.payments_unanswered:>18.1f} s  {r.note}")
    say("")
    say(f"{'check':<66} {'ok':<4} detail")
    for c in checks:
        say(f"{c.what:<66} {'yes' if c.ok else 'NO':<4} {c.detail}")
