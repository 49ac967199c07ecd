"""All SQL of the unit page. Each query reads by an index on the unit or its contract (units.serial,
contracts_unit_idx, the telemetry key (unit_id, ts, seq), telemetry_daily's (unit_id, day), the
contract's payments, tokens and goodwill, the outbox by recipient), so a page costs the same with a
million units."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import psycopg
from psycopg.rows import class_row

from backoffice.callcentre.schemas import Day, Event, GoodwillGrant, Payment, Reading, Sms, Token


@dataclass(frozen=True)
class Head:
    """The unit, its newest contract, what it last said and whether it is online: one row."""

    unit_id: int
    serial: str
    unit_state: str
    installed_at: datetime | None
    latitude: float | None
    longitude: float | None
    product_code: str
    product_name: str
    contract_id: int | None
    customer_id: int | None
    last_ts: datetime | None
    last_received_at: datetime | None
    batt_v: float | None
    soc: float | None
    credit_s: int | None
    locked: bool | None
    online: bool | None
    online_since: datetime | None


def head(conn: psycopg.Connection, serial: str) -> Head | None:
    with conn.cursor(row_factory=class_row(Head)) as cur:
        return cur.execute(
            """select u.id as unit_id, u.serial, u.state as unit_state, u.installed_at, u.latitude, u.longitude,
                      p.code as product_code, p.name as product_name, c.id as contract_id, c.customer_id,
                      l.ts as last_ts, l.received_at as last_received_at, l.batt_v, l.soc, l.credit_s, l.locked,
                      pr.online, pr.changed_at as online_since
                 from units u
                 join products p on p.id = u.product_id
                 left join lateral (select id, customer_id from contracts c where c.unit_id = u.id
                                     order by c.signed_on desc, c.id desc limit 1) c on true
                 left join unit_latest l on l.unit_id = u.id
                 left join unit_presence pr on pr.unit_id = u.id
                where u.serial = %s""",
            (serial,),
        ).fetchone()


def expected_to_date(conn: psycopg.Connection, contract_id: int, day: date) -> int | None:
    """What the schedule expected by ``day`` (None: the contract has no schedule)."""
    row = conn.execute(
        """select sum(amount) from ledger_entries
            where contract_id = %s and status = 'expected' and entry_date <= %s""",
        (contract_id, day),
    ).fetchone()
    if row is None or row[0] is None:
        has = conn.execute(
            "select 1 from ledger_entries where contract_id = %s and status = 'expected' limit 1", (contract_id,)
        ).fetchone()
        return 0 if has else None
    return int(row[0])


def readings(conn: psycopg.Connection, unit_id: int, start: datetime, end: datetime) -> list[Reading]:
    with conn.cursor(row_factory=class_row(Reading)) as cur:
        return cur.execute(
            """select ts, batt_v, soc, pv_wh, load_wh from telemetry
                where unit_id = %s and ts > %s and ts <= %s order by ts, seq""",
            (unit_id, start, end),
        ).fetchall()


def days(conn: psycopg.Connection, unit_id: int, first: date, last: date) -> list[Day]:
    """The daily rollups (kept by ingest with the readings): no reading is read again for 30 days."""
    with conn.cursor(row_factory=class_row(Day)) as cur:
        return cur.execute(
            """select day, energy_in_wh as pv_wh, energy_out_wh as load_wh, min_batt_v, max_batt_v, hours_low_soc,
                      reports
                 from telemetry_daily where unit_id = %s and day between %s and %s order by day""",
            (unit_id, first, last),
        ).fetchall()


def payments(conn: psycopg.Connection, contract_id: int, limit: int) -> list[Payment]:
    """Every payment the ledger holds for the contract (completed rows: deposits taken at signing, a
    backfilled history, callbacks, finance's assignments), with the provider's reference where it came
    through the payment inbox; and the contract's payments that have not reached the ledger (held,
    rejected, still being processed). Newest first."""
    with conn.cursor(row_factory=class_row(Payment)) as cur:
        return cur.execute(
            """select * from (
                 select e.id as entry_id, i.id, e.entry_date as paid_on, e.type, i.received_at, i.paid_at,
                        i.provider, i.provider_txn_id, e.amount, e.currency::text as currency,
                        coalesce(i.status, 'credited') as status, i.reason, true as in_ledger
                   from ledger_entries e left join payment_inbox i on i.id = e.inbox_id
                  where e.contract_id = %(c)s and e.status = 'completed'
                 union all
                 select null, i.id, coalesce(i.paid_at, i.received_at)::date, null, i.received_at, i.paid_at,
                        i.provider, i.provider_txn_id, i.amount, i.currency::text, i.status, i.reason, false
                   from payment_inbox i
                  where i.contract_id = %(c)s and i.status not in ('credited', 'reversal')
                    and not exists (select 1 from ledger_entries e where e.inbox_id = i.id)) p
               order by paid_on desc, received_at desc nulls last, entry_id desc nulls first, id desc
               limit %(limit)s""",
            {"c": contract_id, "limit": limit},
        ).fetchall()


def tokens(conn: psycopg.Connection, contract_id: int, limit: int) -> list[Token]:
    """The newest tokens, whether each was goodwill, and how its latest SMS and unit command fared."""
    with conn.cursor(row_factory=class_row(Token)) as cur:
        return cur.execute(
            """select t.id, t.token_type, t.value_days, t.count, t.token, t.created_at,
                      exists (select 1 from goodwill_grants g where g.token_id = t.id) as goodwill,
                      (select o.state from outbox o where o.token_id = t.id and o.channel = 'sms'
                        order by o.id desc limit 1) as sms_state,
                      m.state as unit_state, m.attempts as unit_attempts, m.last_error as unit_error,
                      case when m.state in ('pending', 'sent') then m.next_attempt_at end as unit_next_attempt_at
                 from tokens t
                 left join lateral (select o.state, o.attempts, o.last_error, o.next_attempt_at from outbox o
                                     where o.token_id = t.id and o.channel = 'mqtt' order by o.id desc limit 1) m
                        on true
                where t.contract_id = %s order by t.created_at desc, t.id desc limit %s""",
            (contract_id, limit),
        ).fetchall()


def token_of_contract(conn: psycopg.Connection, token_id: int, contract_id: int) -> bool:
    row = conn.execute("select 1 from tokens where id = %s and contract_id = %s", (token_id, contract_id)).fetchone()
    return row is not None


def goodwill(conn: psycopg.Connection, contract_id: int, limit: int) -> list[GoodwillGrant]:
    with conn.cursor(row_factory=class_row(GoodwillGrant)) as cur:
        return cur.execute(
            """select id, created_at, days, reason, granted_by, token_id from goodwill_grants
                where contract_id = %s order by id desc limit %s""",
            (contract_id, limit),
        ).fetchall()


def events(conn: psycopg.Connection, unit_id: int, limit: int) -> list[Event]:
    with conn.cursor(row_factory=class_row(Event)) as cur:
        return cur.execute(
            "select ts, kind, detail from unit_events where unit_id = %s order by ts desc limit %s", (unit_id, limit)
        ).fetchall()


def sms(conn: psycopg.Connection, numbers: list[str], limit: int) -> list[Sms]:
    """SMS to any of these numbers from the outbox, newest first, with what became of each."""
    with conn.cursor(row_factory=class_row(Sms)) as cur:
        return cur.execute(
            """select id, recipient, body, state, attempts, created_at, sent_at, last_error from outbox
                where channel = 'sms' and recipient = any(%s) order by id desc limit %s""",
            (numbers, limit),
        ).fetchall()


@dataclass(frozen=True)
class Acknowledged:
    """The tokens the unit acknowledged after its newest report, folded onto that report's credit."""

    credit_end: datetime | None  # None: none acknowledged since, or no credit ever
    forever: bool  # a DISABLE_PAYG among them: unlocked for good
    acked_at: datetime | None  # the newest acknowledgement
    tokens: int


def acknowledged_since(
    conn: psycopg.Connection, unit_id: int, since: datetime | None, start: datetime | None
) -> Acknowledged:
    """The unit's tokens whose command it acknowledged (outbox, channel mqtt, state acked: the delivery
    dispatcher on ``cmd/ack``, ingest on a Metrics token count) after ``since`` (the arrival of its newest
    report), folded in count order from ``start`` (the report's credit end) by the one rule of credit ends
    (``credit_end_after``, migration 0033), each taken at its acknowledgement: what the unit's keypad did
    with them. Reads the unit's tokens by (unit_id, count) and their deliveries by outbox_token_idx."""
    row = conn.execute(
        """with acked as (select t.id, t.count, t.token_type, t.value_days, min(o.acked_at) as acked_at
                            from tokens t join outbox o on o.token_id = t.id
                           where t.unit_id = %(unit)s and o.channel = 'mqtt' and o.state = 'acked'
                             and o.acked_at > coalesce(%(since)s::timestamptz, '-infinity')
                           group by t.id),
                folded as (select fold_credit_end(k, d, at order by ord, cnt, id) as e from (
                             select 0 as ord, 0::bigint as cnt, 0::bigint as id, 'set_time'::text as k, 0 as d,
                                    %(start)s::timestamptz as at
                             union all select 1, count, id, token_type, value_days, acked_at from acked) f)
           select nullif(e, 'infinity'), coalesce(e = 'infinity', false),
                  (select max(acked_at) from acked), (select count(*) from acked)
             from folded""",
        {"unit": unit_id, "since": since, "start": start},
    ).fetchone()
    assert row is not None
    return Acknowledged(row[0], bool(row[1]), row[2], int(row[3]))
