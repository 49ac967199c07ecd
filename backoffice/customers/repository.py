"""All SQL of customers: the rows, their phone numbers and call notes, and the search box's look-ups
(each by an index: E.164 and national id btree, the name's trigrams, serial prefix, account number)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from backoffice.customers.schemas import SearchHit


@dataclass(frozen=True)
class CustomerRow:
    id: int
    name: str
    national_id: str | None
    village: str | None
    district: str | None
    latitude: float | None
    longitude: float | None
    language: str
    legacy_phone: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PhoneRow:
    e164: str
    position: int


@dataclass(frozen=True)
class NoteRow:
    id: int
    customer_id: int
    serial: str | None
    author: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class CustomerUnit:
    serial: str
    account_number: str
    state: str
    signed_on: date


_EDITABLE = ("name", "national_id", "village", "district", "latitude", "longitude", "language")


def insert_customer(conn: psycopg.Connection, fields: dict[str, Any]) -> int:
    cols = [c for c in _EDITABLE if c in fields]
    query = sql.SQL("insert into customers ({}) values ({}) returning id").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in cols), sql.SQL(", ").join(sql.Placeholder(c) for c in cols)
    )
    row = conn.execute(query, fields).fetchone()
    assert row is not None
    return int(row[0])


def update_customer(conn: psycopg.Connection, customer_id: int, fields: dict[str, Any]) -> None:
    cols = [c for c in _EDITABLE if c in fields]
    sets = [sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in cols]
    query = sql.SQL("update customers set {}, updated_at = paygo_now() where id = {}").format(
        sql.SQL(", ").join(sets), sql.Placeholder("id")
    )
    conn.execute(query, {**fields, "id": customer_id})


def get_customer(conn: psycopg.Connection, customer_id: int, *, lock: bool = False) -> CustomerRow | None:
    with conn.cursor(row_factory=class_row(CustomerRow)) as cur:
        return cur.execute(
            """select id, name, national_id, village, district, latitude, longitude, language, legacy_phone,
                      created_at, updated_at from customers where id = %s"""
            + (" for no key update" if lock else ""),
            (customer_id,),
        ).fetchone()


def customer_with_national_id(conn: psycopg.Connection, national_id: str) -> int | None:
    row = conn.execute("select id from customers where national_id = %s", (national_id,)).fetchone()
    return None if row is None else int(row[0])


def phones_of(conn: psycopg.Connection, customer_id: int) -> list[PhoneRow]:
    with conn.cursor(row_factory=class_row(PhoneRow)) as cur:
        return cur.execute(
            "select e164, position from customer_phones where customer_id = %s order by position, id", (customer_id,)
        ).fetchall()


def replace_phones(conn: psycopg.Connection, customer_id: int, numbers: Sequence[str]) -> None:
    """The customer's numbers become ``numbers`` (E.164, distinct), the first at position 0 (for SMS)."""
    conn.execute("delete from customer_phones where customer_id = %s", (customer_id,))
    with conn.cursor() as cur:
        cur.executemany(
            "insert into customer_phones (customer_id, e164, position) values (%s, %s, %s)",
            [(customer_id, n, i) for i, n in enumerate(numbers)],
        )


def insert_note(conn: psycopg.Connection, customer_id: int, unit_id: int | None, author: str,
                author_user_id: int | None, body: str) -> NoteRow:  # fmt: skip
    with conn.cursor(row_factory=class_row(NoteRow)) as cur:
        row = cur.execute(
            """with n as (insert into call_notes (customer_id, unit_id, author, author_user_id, body)
                          values (%s, %s, %s, %s, %s) returning *)
               select n.id, n.customer_id, u.serial, n.author, n.body, n.created_at
                 from n left join units u on u.id = n.unit_id""",
            (customer_id, unit_id, author, author_user_id, body),
        ).fetchone()
    assert row is not None
    return row


def notes_of(conn: psycopg.Connection, customer_id: int, limit: int = 50) -> list[NoteRow]:
    with conn.cursor(row_factory=class_row(NoteRow)) as cur:
        return cur.execute(
            """select n.id, n.customer_id, u.serial, n.author, n.body, n.created_at
                 from call_notes n left join units u on u.id = n.unit_id
                where n.customer_id = %s order by n.id desc limit %s""",
            (customer_id, limit),
        ).fetchall()


def units_of(conn: psycopg.Connection, customer_id: int) -> list[CustomerUnit]:
    with conn.cursor(row_factory=class_row(CustomerUnit)) as cur:
        return cur.execute(
            """select u.serial, c.account_number, c.state, c.signed_on from contracts c join units u on u.id = c.unit_id
                where c.customer_id = %s order by c.signed_on desc""",
            (customer_id,),
        ).fetchall()


def unit_id_of(conn: psycopg.Connection, serial: str) -> int | None:
    row = conn.execute("select id from units where serial = %s", (serial,)).fetchone()
    return None if row is None else int(row[0])


# --- the search box: every look-up gives rows of SearchHit's shape -----------------------------------

_HIT = """cu.id as customer_id, cu.name as customer_name, cu.village,
          (select p.e164 from customer_phones p where p.customer_id = cu.id order by p.position, p.id limit 1) as phone,
          u.serial, c.account_number, c.state as contract_state"""


def _hits(conn: psycopg.Connection, query: str, params: dict[str, Any]) -> list[SearchHit]:
    with conn.cursor(row_factory=class_row(SearchHit)) as cur:
        return cur.execute(query, params).fetchall()


def hits_by_phone(conn: psycopg.Connection, numbers: list[str], limit: int) -> list[SearchHit]:
    return _hits(
        conn,
        f"""select 'phone' as matched, ph.e164 as matched_text, 1.0::float8 as score, {_HIT}
              from customer_phones ph join customers cu on cu.id = ph.customer_id
              left join contracts c on c.customer_id = cu.id left join units u on u.id = c.unit_id
             where ph.e164 = any(%(numbers)s) order by c.signed_on desc nulls last limit %(limit)s""",
        {"numbers": numbers, "limit": limit},
    )


def hits_by_national_id(conn: psycopg.Connection, national_id: str, limit: int) -> list[SearchHit]:
    return _hits(
        conn,
        f"""select 'national_id' as matched, cu.national_id as matched_text, 1.0::float8 as score, {_HIT}
              from customers cu left join contracts c on c.customer_id = cu.id left join units u on u.id = c.unit_id
             where cu.national_id = %(nid)s order by c.signed_on desc nulls last limit %(limit)s""",
        {"nid": national_id, "limit": limit},
    )


def hits_by_account(conn: psycopg.Connection, account: str, limit: int) -> list[SearchHit]:
    return _hits(
        conn,
        f"""select 'account' as matched, c.account_number as matched_text, 1.0::float8 as score, {_HIT}
              from contracts c join customers cu on cu.id = c.customer_id left join units u on u.id = c.unit_id
             where c.account_number = %(account)s limit %(limit)s""",
        {"account": account, "limit": limit},
    )


def hits_by_serial(conn: psycopg.Connection, prefix: str, limit: int) -> list[SearchHit]:
    """Units whose serial is ``prefix`` (score 1) or starts with it (less, the longer the rest). The
    pattern operators (~>=~, ~<~) use units_serial_pattern_idx whatever the database's collation."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return _hits(
        conn,
        f"""select 'serial' as matched, u.serial as matched_text,
                   case when u.serial = %(prefix)s then 1.0
                        else 0.9 - 0.01 * least(length(u.serial) - length(%(prefix)s), 40) end::float8 as score,
                   {_HIT}
              from units u
              left join lateral (select * from contracts c where c.unit_id = u.id
                                  order by c.signed_on desc limit 1) c on true
              left join customers cu on cu.id = c.customer_id
             where u.serial ~>=~ %(prefix)s and u.serial ~<~ %(upper)s
             order by u.serial limit %(limit)s""",
        {"prefix": prefix, "upper": upper, "limit": limit},
    )


def hits_by_serial_digits(conn: psycopg.Connection, digits: str, limit: int, *, suffix: bool) -> list[SearchHit]:
    """Units whose serial ends in the number ``digits`` (its leading zeros dropped: ``1`` for SHS0000001,
    as a caller reads the digits out; score 0.95, by units_serial_number_idx) and, with ``suffix``, those
    whose serial ends in ``digits`` as typed (the last digits read out: ``4567`` for SHS0234567; less,
    the longer the rest; by the reversed serial's prefix, units_serial_reversed_idx). One query."""
    reversed_ = digits[::-1]
    upper = reversed_[:-1] + chr(ord(reversed_[-1]) + 1)
    return _hits(
        conn,
        f"""with found as (
                (select u.id, 0.95 as score from units u
                  where unit_serial_number(u.serial) = ltrim(%(digits)s, '0') order by u.serial limit %(limit)s)
                union all
                (select u.id, 0.85 - 0.01 * least(length(u.serial) - length(%(digits)s), 40) from units u
                  where %(suffix)s and reverse(u.serial) ~>=~ %(reversed)s and reverse(u.serial) ~<~ %(upper)s
                  order by reverse(u.serial) limit %(limit)s))
            select 'serial' as matched, u.serial as matched_text, max(f.score)::float8 as score, {_HIT}
              from found f join units u on u.id = f.id
              left join lateral (select * from contracts c where c.unit_id = u.id
                                  order by c.signed_on desc limit 1) c on true
              left join customers cu on cu.id = c.customer_id
             group by u.id, u.serial, cu.id, cu.name, cu.village, c.account_number, c.state
             order by score desc, u.serial limit %(limit)s""",
        {"digits": digits, "reversed": reversed_, "upper": upper, "limit": limit, "suffix": suffix},
    )


def name_word_neighbours(conn: psycopg.Connection, text: str, per_word: int) -> list[tuple[str, list[str]]]:
    """Each word of ``text`` (as the name index splits it, in the order typed) and the words of customers'
    names that could be it with a few slips: within three edits (fuzzystrmatch's levenshtein; two for
    words under five letters; a swap counts two here), the fewest first, at most ``per_word``. Over the
    small vocabulary (customer_name_words), the words of about that length (its length index): a
    trigram look-up found nothing more that two slips could explain, and cost as much again."""
    rows = conn.execute(
        """with typed as (select w, i, length(w) as n, case when length(w) >= 5 then 3 else 2 end as k
                            from regexp_split_to_table(lower(%(text)s), '[^[:alnum:]]+') with ordinality as q (w, i)
                           where w <> '')
           select t.w, array(select c.word from (
                               select v.word from customer_name_words v
                                where length(v.word) between t.n - t.k and t.n + t.k
                                  and levenshtein_less_equal(v.word, t.w, t.k) <= t.k) c
                             order by levenshtein_less_equal(c.word, t.w, 4), c.word limit %(per_word)s)
             from typed t order by t.i""",
        {"text": text, "per_word": per_word},
    ).fetchall()
    return [(r[0], list(r[1])) for r in rows]


@dataclass(frozen=True)
class NamedCustomer:
    id: int
    name: str


def customers_named(conn: psycopg.Connection, alternatives: list[list[str]], candidates: int) -> list[NamedCustomer]:
    """Customers whose name holds, for every list of ``alternatives``, one of its words (the word index
    on names); at most ``candidates``: a common name among a million customers must not mean ranking
    tens of thousands of rows."""
    query = " & ".join("(" + " | ".join(_lexeme(w) for w in alts) + ")" for alts in alternatives)
    with conn.cursor(row_factory=class_row(NamedCustomer)) as cur:
        return cur.execute(
            """select id, name from customers where to_tsvector('simple', name) @@ to_tsquery('simple', %s)
                limit %s""",
            (query, candidates),
        ).fetchall()


def customers_named_but_one(
    conn: psycopg.Connection, alternatives: list[list[str]], candidates: int
) -> list[NamedCustomer]:
    """Customers whose name holds one of the words of every list of ``alternatives`` but one."""
    words = ["(" + " | ".join(_lexeme(w) for w in alts) + ")" for alts in alternatives]
    query = " | ".join("(" + " & ".join(words[:k] + words[k + 1 :]) + ")" for k in range(len(words)))
    with conn.cursor(row_factory=class_row(NamedCustomer)) as cur:
        return cur.execute(
            """select id, name from customers where to_tsvector('simple', name) @@ to_tsquery('simple', %s)
                limit %s""",
            (query, candidates),
        ).fetchall()


def hits_by_name(conn: psycopg.Connection, ranked: list[tuple[int, float]], limit: int) -> list[SearchHit]:
    """The hits of customers found by their name, with the score each was ranked by, best first."""
    return _hits(
        conn,
        f"""select 'name' as matched, cu.name as matched_text, r.score::float8 as score, {_HIT}
              from unnest(%(ids)s::bigint[], %(scores)s::float8[]) as r (id, score)
              join customers cu on cu.id = r.id
              left join contracts c on c.customer_id = cu.id left join units u on u.id = c.unit_id
             order by r.score desc, cu.id, c.signed_on desc nulls last limit %(limit)s""",
        {"ids": [i for i, _ in ranked], "scores": [sc for _, sc in ranked], "limit": limit},
    )


def _lexeme(word: str) -> str:
    """A word as a quoted tsquery lexeme (quotes doubled, backslashes escaped)."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"
