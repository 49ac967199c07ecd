"""All SQL of the registry (products, customers, units, contracts)."""

from __future__ import annotations

from datetime import date, datetime

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from backoffice.listing import Page, fetch_page
from backoffice.registry.schemas import ContractRef, InstalledUnit, Product, UnitList, UnitSummary, UnitTerms


def insert_product(conn: psycopg.Connection, **fields: object) -> int:
    cols = list(fields)
    query = sql.SQL("insert into products ({}) values ({}) returning id").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in cols),
        sql.SQL(", ").join(sql.Placeholder(c) for c in cols),
    )
    row = conn.execute(query, fields).fetchone()
    assert row is not None
    return int(row[0])


def get_product(conn: psycopg.Connection, product_id: int) -> Product:
    with conn.cursor(row_factory=class_row(Product)) as cur:
        row = cur.execute(
            """select id, code, name, business_model, currency, hardware_cost, price_per_day,
                      deposit_amount, instalment_amount, instalment_count, instalment_period_days,
                      panel_wp, battery_chemistry
                 from products where id = %s""",
            (product_id,),
        ).fetchone()
    if row is None:
        raise LookupError(f"no product {product_id}")
    return row


def insert_unit(
    conn: psycopg.Connection,
    serial: str,
    product_id: int,
    key_enc: bytes,
    starting_code: int,
    lat: float | None,
    lon: float | None,
    installed_at: datetime | None,
) -> int:
    row = conn.execute(
        """insert into units (serial, product_id, state, openpaygo_key_enc, starting_code,
                              latitude, longitude, installed_at, created_at)
           values (%(serial)s, %(product_id)s,
                   case when %(installed_at)s::timestamptz is null then 'in_stock' else 'installed' end,
                   %(key)s, %(code)s, %(lat)s, %(lon)s, %(installed_at)s,
                   least(paygo_now(), coalesce(%(installed_at)s::timestamptz, paygo_now())))
           returning id""",
        {
            "serial": serial,
            "product_id": product_id,
            "installed_at": installed_at,
            "key": key_enc,
            "code": starting_code,
            "lat": lat,
            "lon": lon,
        },
    ).fetchone()
    assert row is not None
    return int(row[0])


def insert_contract(
    conn: psycopg.Connection,
    account_number: str,
    customer_id: int,
    unit_id: int,
    product_id: int,
    currency: str,
    signed_on: date,
) -> int:
    row = conn.execute(
        """insert into contracts (account_number, customer_id, unit_id, product_id, currency, signed_on, key_generation)
           values (%s, %s, %s, %s, %s, %s, (select key_generation from units where id = %s)) returning id""",
        (account_number, customer_id, unit_id, product_id, currency, signed_on, unit_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def lock_unit(conn: psycopg.Connection, unit_id: int) -> str:
    """The unit's serial, its row locked until the transaction ends (sales and re-keying of one unit
    one after the other). LookupError: no such unit."""
    row = conn.execute("select serial from units where id = %s for no key update", (unit_id,)).fetchone()
    if row is None:
        raise LookupError(f"no unit {unit_id}")
    return str(row[0])


def contract_holding_unit(conn: psycopg.Connection, unit_id: int) -> tuple[str, str] | None:
    """(account number, state) of the contract whose customer has the unit (active, or paid off: then
    the customer owns it), or None."""
    row = conn.execute(
        """select account_number, state from contracts where unit_id = %s and state in ('active', 'paid_off')
            order by id desc limit 1""",
        (unit_id,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def contract_under_current_key(conn: psycopg.Connection, unit_id: int) -> tuple[str, str] | None:
    """(account number, state) of the contract the unit was sold under with the key it has now, or None."""
    row = conn.execute(
        """select c.account_number, c.state from contracts c join units u on u.id = c.unit_id
            where c.unit_id = %s and c.key_generation = u.key_generation""",
        (unit_id,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def set_unit_key(conn: psycopg.Connection, unit_id: int, key_enc: bytes, starting_code: int) -> tuple[int, int]:
    """The unit's next key (its generation goes up by one); its token count runs on from the highest
    count it was ever given, so that a count stays unique among the unit's tokens (tokens' unique key).
    Returns (generation, token count the unit is provisioned with)."""
    row = conn.execute(
        """update units u set openpaygo_key_enc = %s, starting_code = %s, key_generation = key_generation + 1,
                  token_count = greatest(u.token_count, coalesce((select max(t.count) from tokens t
                                                                   where t.unit_id = u.id), 0))
            where id = %s returning key_generation, token_count""",
        (key_enc, starting_code, unit_id),
    ).fetchone()
    if row is None:
        raise LookupError(f"no unit {unit_id}")
    return int(row[0]), int(row[1])


def next_contract_sequence(conn: psycopg.Connection) -> int:
    row = conn.execute("select coalesce(max(id), 0) + 1 from contracts").fetchone()
    assert row is not None
    return int(row[0])


def unit_ids_by_serial(conn: psycopg.Connection) -> dict[str, tuple[int, datetime]]:
    """serial -> (unit id, created_at) for every unit; the ingest workers cache it."""
    return {s: (i, c) for s, i, c in conn.execute("select serial, id, created_at from units")}


def installed_units(conn: psycopg.Connection, limit: int | None = None) -> list[InstalledUnit]:
    with conn.cursor(row_factory=class_row(InstalledUnit)) as cur:
        return cur.execute(
            """select u.serial, coalesce(u.latitude, 11.55) as latitude,
                      coalesce(u.longitude, 104.92) as longitude, p.panel_wp,
                      p.battery_ah::float8 as battery_ah, p.battery_chemistry
                 from units u join products p on p.id = u.product_id
                where u.state = 'installed' order by u.serial limit %s""",
            (limit,),
        ).fetchall()


def count_installed(conn: psycopg.Connection) -> int:
    row = conn.execute("select count(*) from units where state = 'installed'").fetchone()
    return int(row[0]) if row else 0


def units_with_terms(conn: psycopg.Connection, installed_by_default: datetime, limit: int) -> list[UnitTerms]:
    """Installed units, the oldest installation first (``installed_by_default`` where none is known),
    with their kit and the terms of their newest active contract."""
    with conn.cursor(row_factory=class_row(UnitTerms)) as cur:
        return cur.execute(
            """select u.id as unit_id, u.serial, coalesce(u.latitude, 11.55) as latitude,
                      coalesce(u.longitude, 104.92) as longitude, p.panel_wp, p.battery_ah::float8 as battery_ah,
                      p.battery_chemistry, coalesce(u.installed_at, %s) as installed_at, c.id as contract_id,
                      p.business_model, p.price_per_day, p.instalment_amount, p.instalment_period_days
                 from units u join products p on p.id = u.product_id
                 left join lateral (select id from contracts c where c.unit_id = u.id and c.state = 'active'
                                     order by c.signed_on desc limit 1) c on true
                where u.state = 'installed' order by u.installed_at nulls first, u.id limit %s""",
            (installed_by_default, limit),
        ).fetchall()


def contract_by_account(conn: psycopg.Connection, account_number: str) -> ContractRef | None:
    """The contract of an account number (what customers type when they pay), or None."""
    with conn.cursor(row_factory=class_row(ContractRef)) as cur:
        return cur.execute("select id, currency from contracts where account_number = %s", (account_number,)).fetchone()


_UNIT_SUMMARY = """
    select u.serial, p.code as product_code, u.state, cu.name as customer_name,
           c.account_number, u.latitude, u.longitude, l.ts as last_ts,
           l.received_at as last_received_at, l.batt_v, l.soc, l.credit_s, l.locked,
           pr.online, pr.changed_at as online_since, cu.id as customer_id,
           nullif(concat_ws(', ', nullif(cu.village, ''), nullif(cu.district, '')), '') as area,
           coalesce(c.state = 'active' and c.credit_end < paygo_now(), false) as in_arrears
      from units u
      join products p on p.id = u.product_id
      left join lateral (select * from contracts c where c.unit_id = u.id
                          order by c.signed_on desc limit 1) c on true
      left join customers cu on cu.id = c.customer_id
      left join unit_latest l on l.unit_id = u.id
      left join unit_presence pr on pr.unit_id = u.id
"""


def list_units(conn: psycopg.Connection, search: str = "", limit: int = 100) -> list[UnitSummary]:
    """Units whose serial or customer name contains ``search``, or whose account or phone equals it."""
    with conn.cursor(row_factory=class_row(UnitSummary)) as cur:
        return cur.execute(
            _UNIT_SUMMARY
            + """where %(q)s = '' or u.serial ilike %(like)s or cu.name ilike %(like)s
                       or c.account_number = %(q)s
                       or exists (select 1 from customer_phones ph where ph.customer_id = cu.id and ph.e164 = %(q)s)
                 order by u.serial limit %(limit)s""",
            {"q": search, "like": f"%{search}%", "limit": limit},
        ).fetchall()


# The units list's sort keys (UnitList.SORTS) -> the output column of _UNIT_SUMMARY each orders by.
UNIT_SORTS = {"serial": "serial", "customer": "customer_name", "account": "account_number", "product": "product_code",
              "area": "area", "last_report": "last_received_at", "battery": "batt_v", "charge": "soc",
              "credit": "credit_s", "state": "state"}  # fmt: skip


def units_page(conn: psycopg.Connection, query: UnitList) -> Page[UnitSummary]:
    """One page of the units list: ``query``'s search text and filters, in its order, with the total."""
    text = query.q.strip()
    select = (
        _UNIT_SUMMARY
        + """where (%(q)s = '' or u.serial ilike %(like)s or cu.name ilike %(like)s or c.account_number = %(q)s
                    or exists (select 1 from customer_phones ph where ph.customer_id = cu.id and ph.e164 = %(q)s))
             and (%(state)s::text is null or u.state = %(state)s)
             and (%(locked)s::boolean is null or l.locked = %(locked)s)
             and (%(arrears)s::boolean is null
                  or coalesce(c.state = 'active' and c.credit_end < paygo_now(), false) = %(arrears)s)
             and (%(area)s = '' or cu.village ilike %(area_like)s or cu.district ilike %(area_like)s)"""
    )
    params = {"q": text, "like": f"%{_escape_like(text)}%", "state": query.state, "locked": query.locked,
              "arrears": query.arrears, "area": query.area.strip(),
              "area_like": f"%{_escape_like(query.area.strip())}%"}  # fmt: skip
    return fetch_page(conn, select, params, UNIT_SORTS, query, UnitSummary, tiebreak="serial")


def _escape_like(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern (a typed % or _ is not a wildcard)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_unit(conn: psycopg.Connection, serial: str) -> UnitSummary | None:
    with conn.cursor(row_factory=class_row(UnitSummary)) as cur:
        return cur.execute(_UNIT_SUMMARY + "where u.serial = %s", (serial,)).fetchone()


def counts(conn: psycopg.Connection) -> dict[str, int]:
    row = conn.execute(
        """select (select count(*) from units), (select count(*) from contracts),
                  (select count(*) from telemetry), (select count(*) from ingest_rejects),
                  (select count(*) from ledger_entries)"""
    ).fetchone()
    assert row is not None
    return dict(zip(("units", "contracts", "telemetry", "rejects", "ledger_entries"), row, strict=True))


def set_contract_state(conn: psycopg.Connection, account_number: str, new: str, allowed_from: tuple[str, ...]) -> str:
    """Move a contract to ``new``; returns the state it was in. LookupError / ValueError say why not."""
    row = conn.execute("select state from contracts where account_number = %s for update", (account_number,)).fetchone()
    if row is None:
        raise LookupError(f"no contract with account number {account_number!r}")
    old = str(row[0])
    if old not in allowed_from:
        raise ValueError(
            f"contract {account_number} is {old}; only {', '.join(allowed_from)} contracts can become {new}"
        )
    conn.execute("update contracts set state = %s where account_number = %s", (new, account_number))
    return old


def unit_keys(conn: psycopg.Connection, serials: list[str]) -> dict[str, tuple[bytes, int]]:
    """serial -> (encrypted OpenPAYGO key, starting code), for the simulated firmware."""
    rows = conn.execute(
        "select serial, openpaygo_key_enc, starting_code from units where serial = any(%s) "
        "and openpaygo_key_enc is not null",
        (serials,),
    ).fetchall()
    return {str(s): (bytes(k), int(c)) for s, k, c in rows}


def recent_events(
    conn: psycopg.Connection, contract_id: int, limit: int = 20
) -> list[tuple[datetime, str, dict[str, object]]]:
    """What the contract's unit last reported happening to it (boot, tokens, tamper, LVD, ...)."""
    rows = conn.execute(
        """select e.ts, e.kind, e.detail from unit_events e join contracts c on c.unit_id = e.unit_id
            where c.id = %s order by e.ts desc limit %s""",
        (contract_id, limit),
    ).fetchall()
    return [(ts, kind, detail) for ts, kind, detail in rows]


def newest_reading(conn: psycopg.Connection) -> datetime | None:
    """The time of the newest reading of any unit (None before the first)."""
    row = conn.execute("select max(ts) from unit_latest").fetchone()
    return row[0] if row else None


def firmware_state(
    conn: psycopg.Connection, serials: list[str], at: datetime
) -> dict[str, tuple[int, float, bool, datetime]]:
    """serial -> (token count, seconds of credit left at ``at``, unlocked for good, newest reading), as
    the units' newest readings and contracts say: where a simulated unit resumes its firmware's life.
    Units without a reading are left out."""
    rows = conn.execute(
        """select u.serial, u.token_count,
                  greatest(coalesce(l.credit_s, 0) - extract(epoch from %s - l.ts), 0)::float8,
                  exists (select 1 from contracts c where c.unit_id = u.id and c.state = 'paid_off'), l.ts
             from units u join unit_latest l on l.unit_id = u.id
            where u.serial = any(%s)""",
        (at, serials),
    ).fetchall()
    return {str(s): (int(n), float(credit), bool(off), ts) for s, n, credit, off, ts in rows}


def newest_charge(conn: psycopg.Connection, serials: list[str]) -> dict[str, float]:
    """serial -> the state of charge (0..1) of the unit's newest reading; units without one are left out."""
    rows = conn.execute(
        """select u.serial, l.soc from units u join unit_latest l on l.unit_id = u.id
            where u.serial = any(%s) and l.soc is not null""",
        (serials,),
    ).fetchall()
    return {str(s): float(soc) for s, soc in rows}


def products(conn: psycopg.Connection) -> list[Product]:
    """Every product (the plans a unit can be sold under), by code."""
    with conn.cursor(row_factory=class_row(Product)) as cur:
        return cur.execute(
            """select id, code, name, business_model, currency, hardware_cost, price_per_day,
                      deposit_amount, instalment_amount, instalment_count, instalment_period_days,
                      panel_wp, battery_chemistry
                 from products order by code"""
        ).fetchall()


def product_of_unit(conn: psycopg.Connection, unit_id: int) -> int:
    row = conn.execute("select product_id from units where id = %s", (unit_id,)).fetchone()
    if row is None:
        raise LookupError(f"no unit {unit_id}")
    return int(row[0])
