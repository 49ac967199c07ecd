"""Call-centre benchmark (issue 14): the search box and the unit page over a million customers.

Loads once (bulk COPY, never through the API) into a database of its own on the local stack, and
keeps it between runs (a marker row says the load finished; ``--reload`` starts again):

- 1,000,000 customers (Swahili- and Khmer-style romanised names made from syllables, 70 % in Kenya
  with +254 numbers and 30 % in Cambodia with +855 numbers, a fifth with a second number, a
  national id, village, district, GPS position, language), 1,000,000 installed units and as many
  contracts signed over the last 12 months (monthly instalments);
- the ledger of those 12 months: every contract's schedule (deposit and 12 instalments, expected)
  and its payments (deposit at signing, then about monthly, most on time, some late, some stopped);
- ``telemetry_daily``: 30 days for every unit (30 million rows), ``unit_latest`` and
  ``unit_presence`` for every unit;
- every payment as the platform keeps it: the provider's callback (``payment_inbox``), its token
  and the token's two deliveries (``outbox``: SMS and unit command);
- for the ``--sampled`` units the unit page is measured on (2,000): raw ``telemetry`` of 30 days
  (every field a unit sends, every 20 minutes: 72 a day).

Then measures, in one run, the same query mix and the same unit pages twice: first without the
indexes the call centre's migrations add (dropped inside a transaction that is rolled back), then
with them; prints p50/p95/p99 of each and the two p95 figures against the targets (search ≤ 50 ms,
unit page ≤ 150 ms).

Before those, the callers' mix (issue 26): what callers say (serial digits without the prefix,
national phone forms of both countries, names with two slips, ...), each query with the customer
meant, through the search as it was before issue 26 (the baseline, kept here) and the new one, by one
agent and by ``--agents`` at once; prints the found-rate beside p50/p95 per kind. ``--search-only``
loads and measures only what the search reads (customers, numbers, units, contracts: about 2 minutes).

    PAYGO_HOME=... .venv/bin/python bench/callcentre_bench.py [--reload] [--customers N] [--search-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from backoffice.callcentre.service import load_unit_page
from backoffice.config import Settings, load_settings
from backoffice.customers import phones
from backoffice.customers import repository as customers_repo
from backoffice.customers import search as customer_search
from backoffice.customers.schemas import SearchHit
from backoffice.customers.search import search
from backoffice.registry.service import account_number, is_valid_account_number
from devtools.stack import drop_database, fresh_database
from ingest.bulk import binary_copy, pg_ts
from ingest.writer import COLUMNS, ensure_partitions

ROOT = Path(__file__).resolve().parent.parent
DB = "paygo_bench_callcentre"
MIGRATIONS = ROOT / "backoffice" / "migrations"
# The call centre's migrations (issue 14): the indexes they create are the ones measured against.
CALLCENTRE_MIGRATIONS = ("0017_customers.sql", "0018_goodwill.sql", "0019_unit_page.sql")
SEARCH_TARGET_MS, PAGE_TARGET_MS, AGENTS_TARGET_MS = 50.0, 150.0, 150.0
# The countries the bench's company serves (PAYGO_PHONE_REGIONS): its customers are in Kenya and Cambodia.
REGIONS = ["KE", "KH"]
PG_EPOCH_DAY = date(2000, 1, 1).toordinal()
console = Console(width=150)

# --- names: syllables of Swahili-style and Khmer-style romanised names --------------------------------
SW_ONSETS = ["", "b", "ch", "d", "f", "g", "h", "j", "k", "l", "m", "mb", "mw", "n", "nd", "ng", "ny", "p", "r",
             "s", "sh", "t", "w", "y", "z", "kh", "nj"]  # fmt: skip
SW_VOWELS = ["a", "e", "i", "o", "u"]
KM_ONSETS = ["", "b", "ch", "d", "h", "k", "kh", "l", "m", "n", "nh", "ng", "p", "ph", "r", "s", "t", "th", "v",
             "y", "sr", "kr", "pr", "tr"]  # fmt: skip
KM_RIMES = ["a", "ak", "al", "am", "an", "ang", "ay", "eng", "ea", "ear", "eat", "ieng", "im", "in", "ith", "o",
            "oeun", "om", "on", "ong", "ou", "oun", "ov", "uk", "um", "un", "ung", "ey", "y", "ol"]  # fmt: skip
VILLAGES_KE = [("Kakuma", "Turkana", 3.72, 34.86), ("Marsabit", "Marsabit", 2.33, 37.99),
               ("Homa Bay", "Homa Bay", -0.53, 34.46), ("Kitui", "Kitui", -1.37, 38.01),
               ("Garissa", "Garissa", -0.45, 39.65), ("Bungoma", "Bungoma", 0.56, 34.56),
               ("Voi", "Taita-Taveta", -3.39, 38.56), ("Lodwar", "Turkana", 3.12, 35.6),
               ("Kilifi", "Kilifi", -3.63, 39.85), ("Narok", "Narok", -1.08, 35.87)]  # fmt: skip
VILLAGES_KH = [("Kampong Tralach", "Kampong Chhnang", 11.9, 104.75), ("Angk Snuol", "Kandal", 11.45, 104.7),
               ("Chi Kraeng", "Siem Reap", 13.2, 104.3), ("Kralanh", "Siem Reap", 13.6, 103.4),
               ("Prey Kabbas", "Takeo", 11.2, 104.8), ("Baray", "Kampong Thom", 12.4, 105.1),
               ("Sotr Nikum", "Siem Reap", 13.3, 104.0)]  # fmt: skip


def _words(rng: random.Random, n: int, make: Callable[[], str]) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        w = make()
        if 3 <= len(w) <= 12:
            out.add(w.capitalize())
    return sorted(out)


def name_vocabularies(rng: random.Random) -> tuple[list[str], list[str], list[str], list[str]]:
    """(Swahili-style given, family, Khmer-style given, family): a few thousand words each, like a
    country's names (most customers share the common ones)."""

    def sw() -> str:
        return "".join(rng.choice(SW_ONSETS) + rng.choice(SW_VOWELS) for _ in range(rng.choice([2, 3, 3, 4])))

    def km() -> str:
        return "".join(rng.choice(KM_ONSETS) + rng.choice(KM_RIMES) for _ in range(rng.choice([1, 2, 2])))

    return _words(rng, 1500, sw), _words(rng, 3000, sw), _words(rng, 1200, km), _words(rng, 800, km)


def zipf_pick(rng: np.random.Generator, words: list[str], n: int) -> np.ndarray:
    """Common names common, rare ones rare (Zipf-like weights)."""
    w = 1.0 / np.arange(1, len(words) + 1) ** 0.9
    return np.array(words, dtype=object)[rng.choice(len(words), size=n, p=w / w.sum())]


# --- loading ---------------------------------------------------------------------------------------


@dataclass
class Plan:
    customers: int
    sampled: int
    days: int
    seed: int
    search_only: bool = False


def progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TextColumn("·"),
                    TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=console)  # fmt: skip


def plain_indexes(conn: psycopg.Connection, tables: list[str]) -> list[tuple[str, str]]:
    """(name, definition) of the indexes of these tables that back no constraint: dropped for the load
    and built again after it (a bulk load then an index build beats keeping them up row by row)."""
    return conn.execute(
        """select i.indexname, i.indexdef from pg_indexes i
            where i.schemaname = 'public' and i.tablename = any(%s)
              and not exists (select 1 from pg_constraint c where c.conname = i.indexname)""",
        (tables,),
    ).fetchall()


def copy_rows(conn: psycopg.Connection, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> None:
    with conn.cursor() as cur, cur.copy(f"copy {table} ({', '.join(columns)}) from stdin") as cp:
        for r in rows:
            cp.write_row(r)


def copy_binary(conn: psycopg.Connection, table: str, columns: list[tuple[str, str, np.ndarray]]) -> None:
    n = len(columns[0][2])
    payload = binary_copy([(kind, values) for _, kind, values in columns], n)
    with conn.cursor() as cur, cur.copy(f"copy {table} ({', '.join(c for c, _, _ in columns)}) from stdin "
                                        "(format binary)") as cp:  # fmt: skip
        cp.write(payload)


def fixed(prefix: bytes, values: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` and each value in ``width`` digits (zero-padded), as fixed-width bytes (numpy ``S``),
    built digit by digit: no Python object per row."""
    v = np.asarray(values, np.int64)
    out = np.empty((len(v), len(prefix) + width), np.uint8)
    out[:, : len(prefix)] = np.frombuffer(prefix, np.uint8)
    for k in range(width):
        out[:, len(prefix) + width - 1 - k] = 48 + (v // 10**k) % 10
    return out.view(f"S{len(prefix) + width}").ravel()


def join_fixed(*parts: bytes | np.ndarray) -> np.ndarray:
    """Fixed-width bytes joined column-wise: constants, ``S`` arrays or uint8 matrices of one row count."""
    n = next(len(p) for p in parts if isinstance(p, np.ndarray))
    mats = []
    for p in parts:
        if isinstance(p, bytes):
            mats.append(np.broadcast_to(np.frombuffer(p, np.uint8), (n, len(p))))
        elif p.dtype == np.uint8:
            mats.append(p)
        else:
            mats.append(p.view(np.uint8).reshape(n, p.dtype.itemsize))
    joined = np.ascontiguousarray(np.concatenate(mats, axis=1))
    return joined.view(f"S{joined.shape[1]}").ravel()


def pg_day(days: np.ndarray) -> np.ndarray:
    """Date ordinals as PostgreSQL's binary date (days since 2000-01-01)."""
    return (days - PG_EPOCH_DAY).astype(np.int32)


def load(settings: Settings, plan: Plan) -> None:
    n, rng, prng = plan.customers, np.random.default_rng(plan.seed), random.Random(plan.seed)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    today = now.date()
    big = ["customers", "customer_phones", "units", "contracts", "ledger_entries", "telemetry_daily", "unit_latest",
           "payment_inbox", "tokens", "outbox"]  # fmt: skip
    # As the superuser of the local stack: only it may switch the foreign-key triggers off.
    superuser = settings.database_url.replace("//paygo_owner@", "//paygo@", 1)
    with psycopg.connect(superuser, autocommit=True) as conn, progress() as bar:
        conn.execute("set session_replication_role = replica")  # no foreign-key triggers during the load
        conn.execute("set maintenance_work_mem = '1GB'")
        dropped = plain_indexes(conn, big)
        for name, _ in dropped:
            conn.execute(f"drop index {name}")
        conn.execute(
            """insert into products (code, name, business_model, currency, hardware_cost, deposit_amount,
                                     instalment_amount, instalment_count, instalment_period_days, panel_wp,
                                     battery_ah, lighting_global_certified)
               values ('SHS-50', 'Home 50', 'asset_finance', 'KES', 1450000, 200000, 130000, 12, 30, 50, 20, true),
                      ('SHS-100-TV', 'Home 100 with TV', 'asset_finance', 'KES', 3900000, 500000, 320000, 12, 30,
                       100, 60, true)"""
        )
        products = [r[0] for r in conn.execute("select id from products order by id")]

        # Customers --------------------------------------------------------------------------------
        sw_given, sw_family, km_given, km_family = name_vocabularies(prng)
        kenyan = rng.random(n) < 0.7
        given = np.where(kenyan, zipf_pick(rng, sw_given, n), zipf_pick(rng, km_given, n))
        family = np.where(kenyan, zipf_pick(rng, sw_family, n), zipf_pick(rng, km_family, n))
        middle = np.where(rng.random(n) < 0.25, zipf_pick(rng, sw_given, n), "")
        names = [f"{g} {m} {f}" if m else f"{g} {f}" for g, m, f in zip(given, middle, family, strict=True)]
        ke_v, kh_v = rng.integers(0, len(VILLAGES_KE), n), rng.integers(0, len(VILLAGES_KH), n)
        lang = np.where(kenyan, np.where(rng.random(n) < 0.6, "sw", "en"), "km")
        nid = rng.permutation(np.arange(10_000_000, 10_000_000 + 3 * n))[:n]
        created = now - timedelta(days=400)
        task = bar.add_task("customers", total=n)

        def customer_rows() -> Iterator[tuple[Any, ...]]:
            for i in range(n):
                v = VILLAGES_KE[ke_v[i]] if kenyan[i] else VILLAGES_KH[kh_v[i]]
                national = str(nid[i]) if kenyan[i] else f"KH{nid[i]}"
                yield (i + 1, names[i], v[0], v[1], v[2] + rng_jit[i, 0], v[3] + rng_jit[i, 1], str(lang[i]), national,
                       created)  # fmt: skip
                if i % 50_000 == 0:
                    bar.update(task, completed=i)

        rng_jit = rng.uniform(-0.15, 0.15, (n, 2))
        copy_rows(conn, "customers", ["id", "name", "village", "district", "latitude", "longitude", "language",
                                      "national_id", "created_at"], customer_rows())  # fmt: skip
        bar.update(task, completed=n)
        conn.execute("select setval('customers_id_seq', %s)", (n,))
        task = bar.add_task("name words (vocabulary)", total=1)
        conn.execute("""insert into customer_name_words (word)
                        select distinct unnest(tsvector_to_array(to_tsvector('simple', name))) from customers
                        on conflict do nothing""")  # fmt: skip
        bar.update(task, completed=1)

        # Phones: +2547[0-2]xxxxxxx (Safaricom) and +85512xxxxxx / +85597xxxxxxx, unique; a fifth have two.
        second = rng.random(n) < 0.2
        total = n + int(second.sum())
        ke_nums = rng.choice(30_000_000, size=total, replace=False)
        kh_nums = rng.choice(10_000_000, size=total, replace=False)
        owners = np.concatenate([np.arange(1, n + 1), np.flatnonzero(second) + 1])
        position = np.concatenate([np.zeros(n, int), np.ones(total - n, int)])
        task = bar.add_task("customer phones", total=total)

        def phone_rows() -> Iterator[tuple[Any, ...]]:
            for j in range(total):
                c = owners[j] - 1
                e164 = f"+2547{ke_nums[j]:08d}" if kenyan[c] else f"+85597{kh_nums[j]:07d}"
                yield (int(owners[j]), e164, int(position[j]))
                if j % 50_000 == 0:
                    bar.update(task, completed=j)

        copy_rows(conn, "customer_phones", ["customer_id", "e164", "position"], phone_rows())
        bar.update(task, completed=total)

        # Units and contracts: signed over the last 12 months --------------------------------------
        signed = today.toordinal() - rng.integers(1, 365, n)
        product = np.where(rng.random(n) < 0.7, products[0], products[1])
        task = bar.add_task("units and contracts", total=2 * n)

        def unit_rows() -> Iterator[tuple[Any, ...]]:
            for i in range(n):
                v = VILLAGES_KE[ke_v[i]] if kenyan[i] else VILLAGES_KH[kh_v[i]]
                inst = datetime.fromordinal(int(signed[i])).replace(tzinfo=UTC) + timedelta(hours=10)
                yield (i + 1, f"SHS{i + 1:07d}", int(product[i]), "installed", int(rng_tok[i]), v[2] + rng_jit[i, 0],
                       v[3] + rng_jit[i, 1], inst, int(rng_code[i]))  # fmt: skip
                if i % 50_000 == 0:
                    bar.update(task, completed=i)

        rng_tok, rng_code = rng.integers(2, 60, n), rng.integers(100_000_000, 999_999_999, n)
        copy_rows(conn, "units", ["id", "serial", "product_id", "state", "token_count", "latitude", "longitude",
                                  "installed_at", "starting_code"], unit_rows())  # fmt: skip
        conn.execute("select setval('units_id_seq', %s)", (n,))
        # Most pay about monthly; 15 % pay late (every 35-50 days), 8 % stopped some months ago.
        habit = rng.random(n)
        every = np.where(habit < 0.77, rng.uniform(27, 32, n), rng.uniform(35, 50, n))
        stopped = np.where(habit > 0.92, today.toordinal() - rng.integers(20, 200, n), 10**7)
        deposit = np.where(product == products[0], 200_000, 500_000)
        instalment = np.where(product == products[0], 130_000, 320_000)
        pays = [np.arange(s + every[i], min(today.toordinal(), stopped[i]), every[i]).astype(int)
                for i, s in enumerate(signed)]  # fmt: skip
        paid_total = deposit + instalment * np.array([len(p) for p in pays])
        price = deposit + 12 * instalment
        state = np.where(paid_total >= price, "paid_off", "active")

        def contract_rows() -> Iterator[tuple[Any, ...]]:
            for i in range(n):
                yield (i + 1, account_number(i + 1), i + 1, i + 1, int(product[i]), str(state[i]), "KES",
                       date.fromordinal(int(signed[i])), int(min(paid_total[i], price[i])),
                       30 * (1 + len(pays[i])))  # fmt: skip
                if i % 50_000 == 0:
                    bar.update(task, completed=n + i)

        columns = ["id", "account_number", "customer_id", "unit_id", "product_id", "state", "currency", "signed_on",
                   "paid_total", "days_granted"]  # fmt: skip
        copy_rows(conn, "contracts", columns, contract_rows())
        conn.execute("select setval('contracts_id_seq', %s)", (n,))
        bar.update(task, completed=2 * n)

        def load_history() -> None:
            # The ledger: schedules (expected) and payments (completed), in chunks of 100,000 contracts ---
            task = bar.add_task("ledger (12 months)", total=n)
            for lo in range(0, n, 100_000):
                hi = min(n, lo + 100_000)
                ids = np.arange(lo + 1, hi + 1)
                k = np.arange(13)
                exp_c = np.repeat(ids, 13)
                exp_d = (signed[lo:hi, None] + 30 * k[None, :]).ravel()
                exp_a = np.where(k[None, :] == 0, deposit[lo:hi, None], instalment[lo:hi, None]).ravel()
                exp_t = np.where(np.tile(k, hi - lo) == 0, b"deposit", b"payment")
                copy_binary(conn, "ledger_entries", [("contract_id", ">i8", exp_c),
                                                     ("entry_date", ">i4", pg_day(exp_d)),
                                                     ("status", "S8", np.full(len(exp_c), b"expected")),
                                                     ("type", "S7", exp_t), ("amount", ">i8", exp_a),
                                                     ("currency", "S3", np.full(len(exp_c), b"KES"))])  # fmt: skip
                counts = np.array([len(pays[i]) for i in range(lo, hi)])
                comp_c = np.concatenate([ids, np.repeat(ids, counts)])
                comp_d = np.concatenate([signed[lo:hi], *(pays[i] for i in range(lo, hi))])
                comp_a = np.concatenate([deposit[lo:hi], np.repeat(instalment[lo:hi], counts)])
                comp_t = np.concatenate([np.full(hi - lo, b"deposit"), np.full(int(counts.sum()), b"payment")])
                copy_binary(conn, "ledger_entries", [("contract_id", ">i8", comp_c),
                                                     ("entry_date", ">i4", pg_day(comp_d)),
                                                     ("status", "S9", np.full(len(comp_c), b"completed")),
                                                     ("type", "S7", comp_t), ("amount", ">i8", comp_a),
                                                     ("currency", "S3", np.full(len(comp_c), b"KES"))])  # fmt: skip
                bar.update(task, completed=hi)

            # Daily rollups of 30 days for every unit, one COPY a day ------------------------------------
            task = bar.add_task(f"telemetry_daily ({plan.days} days)", total=plan.days)
            ids = np.arange(1, n + 1, dtype=np.int64)
            for d in range(plan.days):
                day = today.toordinal() - plan.days + 1 + d
                pv = rng.gamma(8, 20, n) * np.where(product == products[0], 1.0, 2.0)
                load_wh = pv * rng.uniform(0.6, 1.0, n)
                vmin = rng.normal(12.4, 0.4, n).astype(np.float32)
                copy_binary(conn, "telemetry_daily", [
                    ("unit_id", ">i8", ids), ("day", ">i4", pg_day(np.full(n, day))), ("energy_in_wh", ">f8", pv),
                    ("energy_out_wh", ">f8", load_wh), ("min_batt_v", ">f4", vmin),
                    ("max_batt_v", ">f4", vmin + rng.uniform(1.0, 2.0, n).astype(np.float32)),
                    ("hours_low_soc", ">f4", np.maximum(rng.normal(1, 2, n), 0).astype(np.float32)),
                    ("max_batt_temp_c", ">f4", rng.normal(38, 4, n).astype(np.float32)),
                    ("reports", ">i4", np.full(n, 72, np.int32))])  # fmt: skip
                bar.update(task, completed=d + 1)

            # The newest reading and presence of every unit ----------------------------------------------
            task = bar.add_task("unit_latest, unit_presence", total=2)
            last = now.timestamp() - rng.uniform(0, 1200, n)
            credit = np.maximum(rng.normal(10, 8, n), 0) * 86400
            fw = b"bench-1"
            copy_binary(conn, "unit_latest", [
                ("unit_id", ">i8", ids), ("ts", ">i8", pg_ts(last)), ("seq", ">i8", np.full(n, 30 * 72, np.int64)),
                ("received_at", ">i8", pg_ts(last + 2)), ("batt_v", ">f4", rng.normal(13, 0.3, n).astype(np.float32)),
                ("soc", ">f4", rng.uniform(0.2, 1, n).astype(np.float32)),
                ("batt_temp_c", ">f4", rng.normal(30, 3, n).astype(np.float32)),
                ("pv_w", ">f4", rng.uniform(0, 50, n).astype(np.float32)), ("credit_s", ">i8", credit.astype(np.int64)),
                ("locked", "?", credit == 0), ("rssi", ">i2", rng.integers(-100, -60, n).astype(np.int16)),
                ("fw", f"S{len(fw)}", np.full(n, fw))])  # fmt: skip
            bar.update(task, completed=1)
            copy_binary(conn, "unit_presence", [("unit_id", ">i8", ids), ("online", "?", rng.random(n) < 0.9),
                                                ("changed_at", ">i8", pg_ts(last - 3600))])  # fmt: skip
            bar.update(task, completed=2)

            # The sampled units: 30 days of raw readings, and their money as the platform keeps it -------
            sampled = sampled_units(plan)
            start = now - timedelta(days=plan.days)
            ensure_partitions(conn, start - timedelta(days=1), now + timedelta(days=1))
            task = bar.add_task(f"telemetry ({len(sampled):,} units × {plan.days} d)", total=len(sampled))
            steps = plan.days * 72
            t = start.timestamp() + 1200 * np.arange(1, steps + 1)
            hour = (t % 86400) / 3600
            sun = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None)
            for lo in range(0, len(sampled), 100):
                chunk = sampled[lo : lo + 100]
                m = len(chunk)
                unit = np.repeat(chunk, steps)
                ts = np.tile(t, m)
                pv_w = (np.tile(sun, m) * rng.uniform(20, 50, m * steps)).astype(np.float32)
                soc = np.clip(0.6 + 0.3 * np.tile(np.sin((hour - 9) / 24 * 2 * np.pi), m)
                              + rng.normal(0, 0.05, m * steps),
                              0.05, 1).astype(np.float32)  # fmt: skip
                cols = {
                    "unit_id": ("unit_id", ">i8", unit.astype(np.int64)), "ts": ("ts", ">i8", pg_ts(ts)),
                    "seq": ("seq", ">i8", np.tile(np.arange(1, steps + 1, dtype=np.int64), m)),
                    "received_at": ("received_at", ">i8", pg_ts(ts + 2)),
                    "batt_v": ("batt_v", ">f4", (12.0 + 1.4 * soc).astype(np.float32)),
                    "batt_a": ("batt_a", ">f4", (pv_w / 13 - 0.8).astype(np.float32)), "soc": ("soc", ">f4", soc),
                    "batt_temp_c": ("batt_temp_c", ">f4", (28 + 8 * np.tile(sun, m)).astype(np.float32)),
                    "pv_v": ("pv_v", ">f4", np.where(pv_w > 0.05, 17.8, 0).astype(np.float32)),
                    "pv_w": ("pv_w", ">f4", pv_w), "pv_wh": ("pv_wh", ">f4", pv_w / 3),
                    "load_wh": ("load_wh", ">f4", (pv_w / 3 * 0.8 + 2).astype(np.float32)),
                    "credit_s": ("credit_s", ">i8", np.full(m * steps, 864_000, np.int64)),
                    "locked": ("locked", "?", np.zeros(m * steps, bool)),
                    "rssi": ("rssi", ">i2", rng.integers(-100, -60, m * steps).astype(np.int16)),
                    "fw": ("fw", f"S{len(fw)}", np.full(m * steps, fw)),
                }  # fmt: skip
                copy_binary(conn, "telemetry", [cols[c] for c in COLUMNS])
                bar.update(task, completed=lo + m)
            # Every payment as the platform keeps it: the provider's callback (payment_inbox), the token it
            # bought and its two deliveries (SMS and unit command), in chunks of 100,000 contracts.
            task = bar.add_task("payments, tokens, deliveries", total=n)
            accounts = np.array([account_number(i) for i in range(1, n + 1)], dtype="S8")
            phones = np.where(kenyan, fixed(b"+2547", ke_nums[:n], 8), fixed(b"+85597", kh_nums[:n], 7))
            unix_day = date(1970, 1, 1).toordinal()
            done = 0
            for lo in range(0, n, 100_000):
                hi = min(n, lo + 100_000)
                counts = np.array([len(pays[i]) for i in range(lo, hi)])
                m = int(counts.sum())
                c = np.repeat(np.arange(lo, hi), counts)  # 0-based contract (= unit, = customer) index
                day = np.concatenate([pays[i] for i in range(lo, hi)]) if m else np.zeros(0, int)
                at = (day - unix_day) * 86400.0 + rng.uniform(6, 20, m) * 3600
                pid = np.arange(done + 1, done + m + 1, dtype=np.int64)
                nth = np.arange(m) - np.repeat(np.cumsum(counts) - counts, counts)
                token = fixed(b"", rng.integers(0, 10**9, m), 9)
                serial = fixed(b"SHS", c + 1, 7)
                copy_binary(conn, "payment_inbox", [
                    ("id", ">i8", pid), ("provider", "S5", np.full(m, b"mpesa")),
                    ("provider_txn_id", "S11", fixed(b"BN", pid, 9)), ("received_at", ">i8", pg_ts(at + 2)),
                    ("raw", "S2", np.full(m, b"{}")), ("status", "S8", np.full(m, b"credited")),
                    ("account", "S8", accounts[c]), ("amount", ">i8", instalment[c].astype(np.int64)),
                    ("currency", "S3", np.full(m, b"KES")), ("paid_at", ">i8", pg_ts(at)), ("payer", "S13", phones[c]),
                    ("contract_id", ">i8", (c + 1).astype(np.int64))])  # fmt: skip
                copy_binary(conn, "tokens", [
                    ("id", ">i8", pid), ("unit_id", ">i8", (c + 1).astype(np.int64)),
                    ("contract_id", ">i8", (c + 1).astype(np.int64)), ("inbox_id", ">i8", pid),
                    ("token_type", "S8", np.full(m, b"add_time")), ("value_days", ">i4", np.full(m, 30, np.int32)),
                    ("count", ">i4", (rng_tok[c] + 2 * (nth + 1)).astype(np.int32)), ("token", "S9", token),
                    ("created_at", ">i8", pg_ts(at + 3))])  # fmt: skip
                digits = token.view(np.uint8).reshape(m, 9)
                spaced = join_fixed(b"Your solar token ", digits[:, :3], b" ", digits[:, 3:6], b" ", digits[:, 6:],
                                    b" adds 30 days (unit ", serial, b").")  # fmt: skip
                for channel, ids_, recipient, body in ((b"sms", 2 * pid - 1, phones[c], spaced),
                                                       (b"mqtt", 2 * pid, serial, np.full(m, b"{}"))):  # fmt: skip
                    copy_binary(conn, "outbox", [
                        ("id", ">i8", ids_), ("channel", f"S{len(channel)}", np.full(m, channel)),
                        ("token_id", ">i8", pid), ("recipient", recipient.dtype.str, recipient),
                        ("body", body.dtype.str, body), ("state", "S5", np.full(m, b"acked")),
                        ("attempts", ">i4", np.ones(m, np.int32)), ("created_at", ">i8", pg_ts(at + 3)),
                        ("sent_at", ">i8", pg_ts(at + 5))])  # fmt: skip
                done += m
                bar.update(task, completed=hi)
            for seq, value in (("payment_inbox_id_seq", done), ("tokens_id_seq", done), ("outbox_id_seq", 2 * done)):
                conn.execute("select setval(%s, %s)", (seq, max(value, 1)))
            # The triggers that keep contracts.credit_end are off for the load: each end folded once from its
            # contract's tokens (docs/credit_end.md).
            conn.execute(
                """update contracts c set credit_end = f.credit_end
                     from (select contract_id, fold_credit_end(token_type, value_days, created_at order by count, id)
                                  as credit_end from tokens group by contract_id) f
                    where f.contract_id = c.id"""
            )

        # --search-only: what the search box reads ends here (customers, phones, units, contracts).
        if not plan.search_only:
            load_history()

        task = bar.add_task("indexes built again, analyze", total=len(dropped) + 1)
        for k, (_, definition) in enumerate(dropped):
            conn.execute(definition)
            bar.update(task, completed=k + 1)
        conn.execute("analyze")
        bar.update(task, completed=len(dropped) + 1)
        conn.execute("create table bench_loaded (loaded_at timestamptz, plan jsonb)")
        conn.execute("alter table bench_loaded owner to paygo_owner")
        conn.execute("insert into bench_loaded values (now(), %s)", (json.dumps(plan.__dict__),))


def sampled_units(plan: Plan) -> np.ndarray:
    """The units the unit page is measured on (and which have raw readings): spread over the ids."""
    rng = np.random.default_rng(plan.seed + 7)
    return np.sort(rng.choice(np.arange(1, plan.customers + 1), size=plan.sampled, replace=False)).astype(np.int64)


def loaded(settings: Settings, plan: Plan) -> bool:
    try:
        with psycopg.connect(settings.database_url, connect_timeout=5) as conn:
            row = conn.execute("select plan from bench_loaded").fetchone()
    except psycopg.Error:
        return False
    return row is not None and row[0] == plan.__dict__


# --- the query mix ---------------------------------------------------------------------------------


def typo(word: str, rng: random.Random) -> str:
    """One slip of the keyboard: a letter dropped, doubled, swapped with the next, or replaced."""
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["drop", "double", "swap", "replace"])
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + rng.choice("aeiouknmst") + word[i + 1 :]


def query_mix(conn: psycopg.Connection, plan: Plan, count: int) -> list[tuple[str, str]]:
    """(kind, text) drawn with the seed from the loaded rows, typed as people type them."""
    rng = random.Random(plan.seed + 11)
    ids = [rng.randrange(1, plan.customers + 1) for _ in range(count)]
    rows = {r[0]: r for r in conn.execute(
        """select cu.id, cu.name, cu.national_id, p.e164, u.serial, c.account_number
             from customers cu join customer_phones p on p.customer_id = cu.id and p.position = 0
             join contracts c on c.customer_id = cu.id join units u on u.id = c.unit_id where cu.id = any(%s)""",
        (ids,),
    )}  # fmt: skip
    out = []
    kinds = ["phone"] * 35 + ["name"] * 30 + ["serial"] * 15 + ["account"] * 10 + ["national_id"] * 10
    for cid in ids:
        _, name, nid, e164, serial, account = rows[cid]
        kind = rng.choice(kinds)
        if kind == "phone":
            if e164.startswith("+254"):
                local = e164[4:]
                text = rng.choice([f"+254 {local[:3]} {local[3:6]} {local[6:]}", f"254{local}",
                                   f"0{local[:3]} {local[3:6]} {local[6:]}", f"0{local}", local])  # fmt: skip
            else:
                text = rng.choice([e164, f"+855 {e164[4:6]} {e164[6:9]} {e164[9:]}", e164[1:]])
        elif kind == "name":
            words = name.split()
            pick = rng.choice(["full", "typo", "first_last", "lower"])
            if pick == "typo":
                j = rng.randrange(len(words))
                words[j] = typo(words[j], rng)
            elif pick == "first_last":
                words = [words[0], words[-1]]
            text = " ".join(words)
            text = text.lower() if pick == "lower" else text
        elif kind == "serial":
            text = rng.choice([serial, serial.lower()])
        elif kind == "account":
            text = rng.choice([account, f"{account[:4]} {account[4:]}"])
        else:
            text = nid
        out.append((kind, text))
    return out


@dataclass(frozen=True)
class Query:
    kind: str
    text: str
    customer_id: int  # the customer the caller means
    name: str  # that customer's name
    namesakes: int  # customers of exactly that name, the meant one included


def two_slips(name: str, rng: random.Random) -> str:
    """Two slips of the keyboard in a name: one in each of two words, or both in one word."""
    words = name.split()
    long_ = [j for j, w in enumerate(words) if len(w) >= 4] or [0]
    if len(long_) >= 2 and rng.random() < 0.5:
        for j in rng.sample(long_, 2):
            words[j] = typo(words[j], rng)
    else:
        j = rng.choice(long_)
        first = typo(words[j], rng)
        words[j] = typo(first, rng)
    return " ".join(words)


CALLERS_KINDS = {"phone": 22, "phone_national": 12, "name": 18, "name_two_slips": 12, "serial": 8,
                 "serial_digits": 12, "account": 8, "national_id": 8}  # fmt: skip


def callers_mix(conn: psycopg.Connection, plan: Plan, count: int) -> list[Query]:
    """What callers say (issue 26), drawn with the seed from the loaded rows, each with the customer meant:
    phones typed as people type them, in the national form of either country (``097 058 6261``,
    ``(097) 058-6261``, ``(0712) 345 678``); names whole, in lower case, first and last only, with one
    slip, or with two; serials whole or only their digits (``0234567``, ``234567``); accounts; national ids."""
    rng = random.Random(plan.seed + 26)
    ids = [rng.randrange(1, plan.customers + 1) for _ in range(count)]
    rows = {r[0]: r for r in conn.execute(
        """select cu.id, cu.name, cu.national_id, p.e164, u.serial, c.account_number
             from customers cu join customer_phones p on p.customer_id = cu.id and p.position = 0
             join contracts c on c.customer_id = cu.id join units u on u.id = c.unit_id where cu.id = any(%s)""",
        (ids,),
    )}  # fmt: skip
    names = [rows[cid][1] for cid in ids]
    namesakes = dict(conn.execute("select name, count(*) from customers where name = any(%s) group by name",
                                  (names,)).fetchall())  # fmt: skip
    kinds = [k for k, weight in CALLERS_KINDS.items() for _ in range(weight)]
    out = []
    for cid in ids:
        _, name, nid, e164, serial, account = rows[cid]
        kind = rng.choice(kinds)
        if kind == "phone":
            if e164.startswith("+254"):
                local = e164[4:]
                text = rng.choice([f"+254 {local[:3]} {local[3:6]} {local[6:]}", f"254{local}",
                                   f"0{local[:3]} {local[3:6]} {local[6:]}", f"0{local}", local])  # fmt: skip
            else:
                text = rng.choice([e164, f"+855 {e164[4:6]} {e164[6:9]} {e164[9:]}", e164[1:]])
        elif kind == "phone_national":
            local = e164[4:]
            if e164.startswith("+254"):
                text = rng.choice([f"(0{local[:3]}) {local[3:6]} {local[6:]}", f"(0{local[:3]}) {local[3:]}"])
            else:
                text = rng.choice([f"0{local[:2]} {local[2:5]} {local[5:]}", f"0{local}",
                                   f"(0{local[:2]}) {local[2:5]}-{local[5:]}",
                                   f"{local[:2]} {local[2:5]} {local[5:]}"])  # fmt: skip
        elif kind == "name":
            words = name.split()
            pick = rng.choice(["full", "typo", "first_last", "lower"])
            if pick == "typo":
                j = rng.randrange(len(words))
                words[j] = typo(words[j], rng)
            elif pick == "first_last":
                words = [words[0], words[-1]]
            text = " ".join(words)
            text = text.lower() if pick == "lower" else text
        elif kind == "name_two_slips":
            text = two_slips(name, rng)
        elif kind == "serial":
            text = rng.choice([serial, serial.lower()])
        elif kind == "serial_digits":
            digits = re.sub(r"\D", "", serial)
            text = rng.choice([digits, digits.lstrip("0") or "0"])
        elif kind == "account":
            text = rng.choice([account, f"{account[:4]} {account[4:]}"])
        else:
            text = nid
        out.append(Query(kind, text, cid, name, namesakes[name]))
    return out


# --- measuring -------------------------------------------------------------------------------------


def callcentre_indexes() -> list[str]:
    names = []
    for f in CALLCENTRE_MIGRATIONS:
        text = (MIGRATIONS / f).read_text()
        names += re.findall(r"create\s+(?:unique\s+)?index\s+(\w+)", text, re.IGNORECASE)
    return names


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def figures(ms: list[float]) -> list[str]:
    return [f"{pct(ms, p):.1f}" for p in (50, 95, 99, 100)]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


@dataclass
class Run:
    label: str
    search_ms: list[float]
    search_by_kind: dict[str, list[float]]
    page_ms: list[float]
    found: int
    timeouts: int
    missed: list[tuple[str, str]]


def measure(conn: psycopg.Connection, label: str, queries: list[tuple[str, str]], serials: list[str],
            timeout_ms: int | None) -> Run:  # fmt: skip
    run = Run(label, [], {}, [], 0, 0, [])
    with progress() as bar:
        task = bar.add_task(f"{label}: search", total=len(queries))
        for kind, text in queries:
            conn.execute("savepoint q")
            found = False
            t = time.perf_counter()
            try:
                found = bool(search(conn, text, 20, regions=REGIONS))
                ms = (time.perf_counter() - t) * 1000
                conn.execute("release savepoint q")
            except psycopg.errors.QueryCanceled:
                conn.execute("rollback to savepoint q")
                ms, run.timeouts = float(timeout_ms or 0), run.timeouts + 1
            run.found += found
            if not found:
                run.missed.append((kind, text))
            run.search_ms.append(ms)
            run.search_by_kind.setdefault(kind, []).append(ms)
            bar.advance(task)
        task = bar.add_task(f"{label}: unit page", total=len(serials))
        for serial in serials:
            conn.execute("savepoint q")
            try:
                ms = timed(lambda serial=serial: load_unit_page(conn, serial))
                conn.execute("release savepoint q")
            except psycopg.errors.QueryCanceled:
                conn.execute("rollback to savepoint q")
                ms, run.timeouts = float(timeout_ms or 0), run.timeouts + 1
            run.page_ms.append(ms)
            bar.advance(task)
    return run


# The name look-ups of the search before issue 26 (customers/repository.py at fc39224), verbatim.


def baseline_name_word_alternatives(conn: psycopg.Connection, text: str, per_word: int) -> list[list[str]]:
    """For each word of ``text`` (as the name index splits it), the words of customers' names most like
    it (pg_trgm similarity at least its threshold, 0.3), the most similar first; a word like none is
    left out. The vocabulary is small and trigram-indexed (customer_name_words)."""
    rows = conn.execute(
        """select array(select v.word from customer_name_words v where v.word %% q.w
                         order by similarity(v.word, q.w) desc, v.word limit %(per_word)s)
             from unnest(tsvector_to_array(to_tsvector('simple', %(text)s))) as q (w)""",
        {"text": text, "per_word": per_word},
    ).fetchall()
    return [list(r[0]) for r in rows if r[0]]


def baseline_hits_by_name(
    conn: psycopg.Connection, text: str, alternatives: list[list[str]], limit: int, candidates: int
) -> list[SearchHit]:
    """Customers whose name holds, for every word typed, one of its ``alternatives`` (the word index on
    names), ranked by the similarity of the whole name to ``text``. At most ``candidates`` names are
    ranked: a common name among a million customers must not mean ranking tens of thousands of rows."""
    query = " & ".join("(" + " | ".join(customers_repo._lexeme(w) for w in alts) + ")" for alts in alternatives)
    return customers_repo._hits(
        conn,
        f"""with found as materialized (
                select id, name from customers
                 where to_tsvector('simple', name) @@ to_tsquery('simple', %(query)s) limit %(candidates)s),
             best as (select id, similarity(name, %(text)s) as score from found
                       order by score desc, id limit %(limit)s)
            select 'name' as matched, cu.name as matched_text, best.score::float8 as score, {customers_repo._HIT}
              from best join customers cu on cu.id = best.id
              left join contracts c on c.customer_id = cu.id left join units u on u.id = c.unit_id
             order by best.score desc, cu.id, c.signed_on desc nulls last limit %(limit)s""",
        {"query": query, "text": text, "limit": limit, "candidates": candidates},
    )


def baseline_search(conn: psycopg.Connection, q: str, limit: int = 20) -> list[Any]:
    """The search box as it was before issue 26 (at fc39224), for the baseline of the same run: numbers
    in national form read in the default region only (KE), serials by their prefix only, each name word
    by its trigram-similar words only (pg_trgm's threshold)."""
    text = " ".join(q.split())[: customer_search.MAX_QUERY]
    if len(text) < 2:
        return []
    squeezed = text.replace(" ", "").upper()
    hits = []
    numbers = phones.search_forms(text, "KE")
    if numbers:
        hits += customers_repo.hits_by_phone(conn, numbers, limit)
    if is_valid_account_number(squeezed):
        hits += customers_repo.hits_by_account(conn, squeezed, limit)
    if re.fullmatch(r"[0-9A-Z_-]{3,64}", squeezed) and any(c.isdigit() for c in squeezed):
        hits += customers_repo.hits_by_serial(conn, squeezed, limit)
    if re.fullmatch(r"[0-9A-Z/-]{2,32}", squeezed) and any(c.isdigit() for c in squeezed):
        hits += customers_repo.hits_by_national_id(conn, squeezed, limit)
    if any(c.isalpha() for c in text) and len(text) >= 3:
        alternatives = baseline_name_word_alternatives(conn, text, 6)
        if alternatives:
            hits += baseline_hits_by_name(conn, text, alternatives, limit, 400)
    return customer_search._best(hits, limit)


def new_search(conn: psycopg.Connection, q: str, limit: int = 20) -> list[Any]:
    return search(conn, q, limit, regions=REGIONS)


SEARCHES: dict[str, Callable[[psycopg.Connection, str, int], list[Any]]] = {
    "baseline (before issue 26)": baseline_search, "now": new_search}  # fmt: skip


def meant(query: Query, hits: list[Any]) -> tuple[bool, bool]:
    """(found, strictly found): strictly, the customer meant is among the hits; found, also when the
    hits show the name meant but more customers bear it than they show (namesakes the caller's words
    cannot tell apart: the agent asks for the village or the number)."""
    strict = any(h.customer_id == query.customer_id for h in hits)
    shown = sum((h.customer_name or "").lower() == query.name.lower() for h in hits)
    return strict or 0 < shown < query.namesakes, strict


def run_queries(url: str, which: str, queries: list[Query]) -> list[tuple[str, float, bool, bool]]:
    """Each query through one search: (kind, ms, found, strictly found). One connection, one
    transaction rolled back (the search writes nothing)."""
    fn = SEARCHES[which]
    out = []
    with psycopg.connect(url) as conn:
        for query in queries:
            t = time.perf_counter()
            hits = fn(conn, query.text, 20)
            ms = (time.perf_counter() - t) * 1000
            out.append((query.kind, ms, *meant(query, hits)))
        conn.rollback()
    return out


def run_agents(url: str, which: str, queries: list[Query], agents: int) -> list[tuple[str, float, bool, bool]]:
    """The same queries typed by ``agents`` call-centre agents at once: each a process of its own with
    its own connection (as the web app's workers are), each taking every agents-th query."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(agents) as pool:
        parts = pool.map(run_queries, [url] * agents, [which] * agents, [queries[k::agents] for k in range(agents)])
        return [r for part in parts for r in part]


def compare_search(url: str, queries: list[Query], agents: int) -> None:
    """The callers' mix through the baseline and the new search, one agent then ``agents`` at once:
    found-rate beside p50/p95 per kind."""
    results: dict[tuple[str, int], list[tuple[str, float, bool, bool]]] = {}
    for which in SEARCHES:
        run_queries(url, which, queries[:100])  # warm-up
        console.print(f"searching: {which}, 1 agent")
        results[which, 1] = run_queries(url, which, queries)
        console.print(f"searching: {which}, {agents} agents at once")
        results[which, agents] = run_agents(url, which, queries, agents)
    table = Table(title=f"search on callers' words: {len(queries):,} queries, found = the customer meant")
    for col in ("search", "agents", "kind", "n", "found %", "strict %", "p50 ms", "p95 ms", "max ms"):
        table.add_column(col, justify="left" if col in ("search", "kind") else "right")
    kinds = ["all", *CALLERS_KINDS]
    for (which, n_agents), rows in results.items():
        for k, kind in enumerate(kinds):
            sel = [r for r in rows if kind in ("all", r[0])]
            ms = [r[1] for r in sel]
            table.add_row(which if k == 0 else "", str(n_agents) if k == 0 else "", kind, str(len(sel)),
                          f"{100 * sum(r[2] for r in sel) / len(sel):.1f}",
                          f"{100 * sum(r[3] for r in sel) / len(sel):.1f}",
                          f"{pct(ms, 50):.1f}", f"{pct(ms, 95):.1f}", f"{max(ms):.1f}")  # fmt: skip
        table.add_section()
    console.print(table)
    now = results["now", 1]
    missed = [(q.kind, q.text, q.name) for q, r in zip(queries, now, strict=True) if not r[2]]
    console.print(f"the new search missed {len(missed)}: {missed[:12]}")
    found = 100 * sum(r[2] for r in now) / len(now)
    console.print(
        f"callers' mix: found {found:.1f} % (target ≥ 95; baseline "
        f"{100 * sum(r[2] for r in results['baseline (before issue 26)', 1]) / len(now):.1f} %) · p95 "
        f"{pct([r[1] for r in now], 95):.1f} ms (target ≤ {SEARCH_TARGET_MS:.0f}) · p95 with {agents} agents "
        f"{pct([r[1] for r in results['now', agents]], 95):.1f} ms (target ≤ {AGENTS_TARGET_MS:.0f})"
    )


def over_http(settings: Settings, serials: list[str]) -> tuple[list[float], list[int]]:
    """The unit page as the call centre gets it (the web app in process: guard, query, charts, HTML):
    milliseconds and bytes of each."""
    from fastapi.testclient import TestClient

    from backoffice.audit.schemas import Actor
    from backoffice.staff import service as staff
    from paygo.web import create_app

    with psycopg.connect(settings.database_url) as conn, conn.transaction():
        _, token = staff.create_token(conn, "bench-call-centre", ["call_centre"], Actor("bench"))
    ms, sizes = [], []
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {token}"}) as client:
        client.get(f"/units/{serials[0]}")
        for serial in serials:
            t = time.perf_counter()
            r = client.get(f"/units/{serial}")
            ms.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, (serial, r.status_code)
            sizes.append(len(r.content))
    return ms, sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--sampled", type=int, default=2_000, help="units with raw readings (the unit pages measured)")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--queries", type=int, default=2_000, help="search queries with the indexes")
    ap.add_argument("--pages", type=int, default=500, help="unit pages with the indexes")
    ap.add_argument("--baseline-queries", type=int, default=200, help="the first N of the same queries, without")
    ap.add_argument("--baseline-pages", type=int, default=100, help="the first N of the same pages, without")
    ap.add_argument("--baseline-timeout-ms", type=int, default=20_000, help="a query without indexes stops here")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--reload", action="store_true", help="load again even if a complete load is there")
    ap.add_argument("--drop", action="store_true", help="drop the bench database at the end")
    ap.add_argument("--callers-queries", type=int, default=2_000, help="the callers' mix (issue 26)")
    ap.add_argument("--agents", type=int, default=8, help="agents searching at once")
    ap.add_argument(
        "--search-only",
        action="store_true",
        help="load and measure only what the search box reads (no ledger, readings or unit pages)",
    )
    args = ap.parse_args()
    plan = Plan(args.customers, args.sampled, args.days, args.seed, args.search_only)
    base = load_settings()
    db = DB if plan.customers == 1_000_000 else f"{DB}_{plan.customers}"  # a smaller look keeps the big one
    db += "_search" if plan.search_only else ""
    settings = base.model_copy(update={"database_url": f"postgresql://paygo_owner@127.0.0.1:{base.pg_port}/{db}"})
    if args.reload or not loaded(settings, plan):
        console.print(f"loading {plan.customers:,} customers into {db} (kept for the next run; --reload to redo)")
        t0 = time.perf_counter()
        settings = fresh_database(base, db)
        load(settings, plan)
        console.print(f"[green]loaded[/] in {time.perf_counter() - t0:.0f} s")
    else:
        console.print(f"reusing the complete load in {db} (--reload to load again)")
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        sizes = conn.execute(
            """select relname, reltuples::bigint, pg_size_pretty(pg_total_relation_size(oid)) from pg_class
                where relname in ('customers', 'customer_phones', 'units', 'contracts', 'ledger_entries',
                                  'telemetry_daily', 'payment_inbox', 'tokens', 'outbox', 'unit_latest')
                order by relname"""
        ).fetchall()
        raw = conn.execute("select count(*) from telemetry").fetchone()[0]  # type: ignore[index]
        db_size = conn.execute("select pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]  # type: ignore[index]
        queries = query_mix(conn, plan, args.queries)
        callers = callers_mix(conn, plan, args.callers_queries)
    console.print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}")
    compare_search(settings.database_url, callers, args.agents)
    if plan.search_only:
        if args.drop:
            drop_database(base, db)
        return
    rng = random.Random(plan.seed + 13)
    sampled = sampled_units(plan).tolist()
    serials = [f"SHS{u:07d}" for u in rng.sample(sampled, min(args.pages, len(sampled)))]
    indexes = callcentre_indexes()
    console.print(f"the call centre's indexes (migrations {', '.join(CALLCENTRE_MIGRATIONS)}): {', '.join(indexes)}")

    with psycopg.connect(settings.database_url) as conn:
        # Without: the same database with those indexes dropped inside a transaction that is rolled back.
        for name in indexes:
            conn.execute(f"drop index if exists {name}")
        conn.execute(f"set local statement_timeout = {args.baseline_timeout_ms}")
        measure(conn, "warm-up (without)", queries[:10], serials[:5], args.baseline_timeout_ms)
        without = measure(conn, "without indexes", queries[: args.baseline_queries], serials[: args.baseline_pages],
                          args.baseline_timeout_ms)  # fmt: skip
        conn.rollback()
    with psycopg.connect(settings.database_url) as conn:
        back = conn.execute("select count(*) from pg_indexes where indexname = any(%s)", (indexes,)).fetchone()
        assert back is not None and back[0] == len(indexes), "the indexes are not back after the rollback"
        measure(conn, "warm-up (with)", queries[-20:], serials[-10:], None)
        with_ = measure(conn, "with indexes", queries, serials, None)
        same = measure(conn, "with indexes, the baseline's queries", queries[: args.baseline_queries],
                       serials[: args.baseline_pages], None)  # fmt: skip
        conn.rollback()

    http_ms, page_bytes = over_http(settings, serials[:100])
    table = Table(title=f"call centre over {plan.customers:,} customers (ms)")
    for col in ("run", "what", "n", "p50", "p95", "p99", "max"):
        table.add_column(col, justify="right" if col not in ("run", "what") else "left")
    for run in (without, same, with_):
        table.add_row(run.label, "search (all)", str(len(run.search_ms)), *figures(run.search_ms))
        for kind, ms in sorted(run.search_by_kind.items()):
            table.add_row("", f"  {kind}", str(len(ms)), *figures(ms))
        table.add_row("", "unit page", str(len(run.page_ms)), *figures(run.page_ms))
        if run.timeouts:
            table.add_row("", f"  stopped at {args.baseline_timeout_ms} ms", str(run.timeouts), "", "", "", "")
    table.add_row("with indexes", "unit page over HTTP", str(len(http_ms)), *figures(http_ms))
    console.print(table)
    console.print(f"unit page HTML: median {statistics.median(page_bytes) / 1024:.0f} KB, largest "
                  f"{max(page_bytes) / 1024:.0f} KB (target < 300 KB)")  # fmt: skip
    loaded_rows = ", ".join(f"{r[0]} {r[1]:,} ({r[2]})" for r in sizes)
    console.print(f"loaded: {loaded_rows}, telemetry {raw:,}; database {db_size}")
    console.print(f"searches that found something: with {with_.found}/{len(with_.search_ms)}, "
                  f"without {without.found}/{len(without.search_ms)}; found nothing: {with_.missed[:10]}")  # fmt: skip
    console.print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}")
    s95, p95 = pct(with_.search_ms, 95), pct(with_.page_ms, 95)
    console.print(
        f"search p95 {s95:.1f} ms (target ≤ {SEARCH_TARGET_MS:.0f}; without the indexes "
        f"{pct(without.search_ms, 95):.0f}) · unit page p95 {p95:.1f} ms (target ≤ {PAGE_TARGET_MS:.0f}; "
        f"without {pct(without.page_ms, 95):.0f})"
    )
    if args.drop:
        drop_database(base, db)


if __name__ == "__main__":
    main()
