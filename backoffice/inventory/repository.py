"""All SQL of the inventory: stock locations, where each unit is (``unit_locations``, one row a unit),
the append-only ``stock_moves``, and parts counted per location (``part_stock``, never below zero)."""

from __future__ import annotations

import psycopg
from psycopg.rows import class_row

from backoffice.inventory.schemas import (
    InventoryList,
    Location,
    LocationStock,
    PartCount,
    StockMove,
    UnitWhere,
    Where,
)
from backoffice.listing import Page, fetch_page

# A unit that has no location row yet (registered by code that knows nothing of stock): where its state
# and newest contract say it is. The same rule as migration 0023's for the units that existed then.
_TRACK = """
    insert into unit_locations (unit_id, place, location_id, customer_id)
    select u.id,
           case when u.state = 'in_stock' then 'stock'
                when u.state in ('retired', 'written_off') then 'gone'
                when c.customer_id is not null then 'customer' else 'unknown' end,
           case when u.state = 'in_stock' then (select min(id) from stock_locations where kind = 'warehouse') end,
           case when u.state not in ('in_stock', 'retired', 'written_off') then c.customer_id end
      from units u
      left join lateral (select customer_id from contracts c where c.unit_id = u.id
                          order by c.signed_on desc, c.id desc limit 1) c on true
     where (%(unit_id)s::bigint is null or u.id = %(unit_id)s)
       and not exists (select 1 from unit_locations l where l.unit_id = u.id)
    on conflict (unit_id) do nothing
"""


def track_untracked(conn: psycopg.Connection, unit_id: int | None = None) -> int:
    """Give units without a location row (one, or all) the place their state says; returns how many."""
    return conn.execute(_TRACK, {"unit_id": unit_id}).rowcount


_UNIT_WHERE = """
    select u.id as unit_id, u.serial, p.code as product_code, u.state,
           coalesce(l.place, 'untracked') as place, l.location_id, s.name as location_name,
           l.customer_id, cu.name as customer_name, l.since
      from units u
      join products p on p.id = u.product_id
      left join unit_locations l on l.unit_id = u.id
      left join stock_locations s on s.id = l.location_id
      left join customers cu on cu.id = l.customer_id
"""


def unit_where(conn: psycopg.Connection, unit_id: int) -> UnitWhere | None:
    with conn.cursor(row_factory=class_row(UnitWhere)) as cur:
        return cur.execute(_UNIT_WHERE + "where u.id = %s", (unit_id,)).fetchone()


def unit_id_of(conn: psycopg.Connection, serial: str) -> int | None:
    row = conn.execute("select id from units where serial = %s", (serial,)).fetchone()
    return None if row is None else int(row[0])


def search_units(
    conn: psycopg.Connection, q: str = "", location_id: int | None = None, limit: int = 100
) -> list[UnitWhere]:
    """Units whose serial contains ``q`` (case-insensitive), optionally only those at one location."""
    with conn.cursor(row_factory=class_row(UnitWhere)) as cur:
        return cur.execute(
            _UNIT_WHERE
            + """where (%(q)s = '' or u.serial ilike %(like)s)
                               and (%(loc)s::bigint is null or l.location_id = %(loc)s)
                             order by u.serial limit %(limit)s""",
            {
                "q": q,
                "like": "%" + q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%",
                "loc": location_id,
                "limit": limit,
            },
        ).fetchall()


def units_in_states(conn: psycopg.Connection, states: tuple[str, ...], limit: int = 500) -> list[UnitWhere]:
    """Units in one of ``states`` (e.g. those a sale may take from the stock), by serial."""
    with conn.cursor(row_factory=class_row(UnitWhere)) as cur:
        return cur.execute(
            _UNIT_WHERE + "where u.state = any(%s) order by u.serial limit %s", (list(states), limit)
        ).fetchall()


# The inventory list's sort keys (InventoryList.SORTS) -> the output column of _UNIT_WHERE each orders by.
INVENTORY_SORTS = {"serial": "serial", "product": "product_code", "state": "state", "place": "place", "since": "since"}


def units_page(conn: psycopg.Connection, query: InventoryList) -> Page[UnitWhere]:
    """One page of the units whose serial contains ``query.q``, in its state, place or location."""
    q = query.q.strip()
    select = (
        _UNIT_WHERE
        + """where (%(q)s = '' or u.serial ilike %(like)s)
               and (%(state)s::text is null or u.state = %(state)s)
               and (%(place)s::text is null or coalesce(l.place, 'untracked') = %(place)s)
               and (%(loc)s::bigint is null or l.location_id = %(loc)s)"""
    )
    params = {"q": q, "like": "%" + q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%",
              "state": query.state, "place": query.place, "loc": query.location_id}  # fmt: skip
    return fetch_page(conn, select, params, INVENTORY_SORTS, query, UnitWhere, tiebreak="unit_id")


def current(conn: psycopg.Connection, unit_id: int) -> tuple[Where, str] | None:
    """Where a unit is and its state, as this transaction sees them (no lock: moves compare and set)."""
    row = conn.execute(
        """select l.place, l.location_id, l.customer_id, u.state
             from units u join unit_locations l on l.unit_id = u.id where u.id = %s""",
        (unit_id,),
    ).fetchone()
    return None if row is None else (Where(row[0], row[1], row[2]), str(row[3]))


def compare_and_set(conn: psycopg.Connection, unit_id: int, seen: Where, to: Where) -> bool:
    """Move the unit to ``to`` only if it is still where ``seen`` says: a concurrent move that got there
    first leaves this one updating no row (PostgreSQL re-reads the row once the other commits)."""
    return (
        conn.execute(
            """update unit_locations set place = %s, location_id = %s, customer_id = %s, since = paygo_now()
                where unit_id = %s and place = %s and location_id is not distinct from %s
                  and customer_id is not distinct from %s""",
            (to.place, to.location_id, to.customer_id, unit_id, seen.place, seen.location_id, seen.customer_id),
        ).rowcount
        == 1
    )


def set_state(conn: psycopg.Connection, unit_id: int, new: str, allowed_from: tuple[str, ...]) -> bool:
    return (
        conn.execute(
            "update units set state = %s where id = %s and state = any(%s)", (new, unit_id, list(allowed_from))
        ).rowcount
        == 1
    )


def insert_keying(conn: psycopg.Connection, unit_id: int, generation: int, actor: str, note: str | None) -> None:
    """The record of a re-keying at the depot (the key itself is only in ``units``, encrypted)."""
    conn.execute(
        "insert into unit_keyings (unit_id, generation, actor, note) values (%s, %s, %s, %s)",
        (unit_id, generation, actor, note),
    )


def insert_unit_location(conn: psycopg.Connection, unit_id: int, location_id: int) -> None:
    conn.execute(
        "insert into unit_locations (unit_id, place, location_id) values (%s, 'stock', %s)", (unit_id, location_id)
    )


def insert_move(
    conn: psycopg.Connection,
    actor: str,
    *,
    unit_id: int | None = None,
    sku: str | None = None,
    quantity: int | None = None,
    source: Where | None,
    to: Where,
    state_before: str | None = None,
    state_after: str | None = None,
    reason: str,
    ticket_id: int | None = None,
) -> int:
    row = conn.execute(
        """insert into stock_moves (actor, unit_id, sku, quantity, from_place, from_location_id, from_customer_id,
                                    to_place, to_location_id, to_customer_id, state_before, state_after, reason,
                                    ticket_id)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning id""",
        (
            actor,
            unit_id,
            sku,
            quantity,
            source.place if source else None,
            source.location_id if source else None,
            source.customer_id if source else None,
            to.place,
            to.location_id,
            to.customer_id,
            state_before,
            state_after,
            reason,
            ticket_id,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


_MOVES = """
    select m.id, m.at, m.actor, u.serial, m.sku, m.quantity, m.from_place,
           coalesce(fl.name, fc.name) as from_name, m.to_place, coalesce(tl.name, tc.name) as to_name,
           m.state_before, m.state_after, m.reason, m.ticket_id
      from stock_moves m
      left join units u on u.id = m.unit_id
      left join stock_locations fl on fl.id = m.from_location_id
      left join customers fc on fc.id = m.from_customer_id
      left join stock_locations tl on tl.id = m.to_location_id
      left join customers tc on tc.id = m.to_customer_id
"""


def moves_of_unit(conn: psycopg.Connection, unit_id: int, limit: int = 100) -> list[StockMove]:
    with conn.cursor(row_factory=class_row(StockMove)) as cur:
        return cur.execute(_MOVES + "where m.unit_id = %s order by m.id desc limit %s", (unit_id, limit)).fetchall()


def recent_moves(conn: psycopg.Connection, location_id: int | None = None, limit: int = 50) -> list[StockMove]:
    with conn.cursor(row_factory=class_row(StockMove)) as cur:
        return cur.execute(
            _MOVES
            + """where %(loc)s::bigint is null or m.from_location_id = %(loc)s or m.to_location_id = %(loc)s
                        order by m.id desc limit %(limit)s""",
            {"loc": location_id, "limit": limit},
        ).fetchall()


def locations(conn: psycopg.Connection) -> list[Location]:
    with conn.cursor(row_factory=class_row(Location)) as cur:
        return cur.execute(
            "select id, kind, name, agent_id from stock_locations order by kind desc, name, id"
        ).fetchall()


def get_location(conn: psycopg.Connection, location_id: int) -> Location | None:
    with conn.cursor(row_factory=class_row(Location)) as cur:
        return cur.execute(
            "select id, kind, name, agent_id from stock_locations where id = %s", (location_id,)
        ).fetchone()


def location_of_agent(conn: psycopg.Connection, agent_id: int) -> Location | None:
    with conn.cursor(row_factory=class_row(Location)) as cur:
        return cur.execute(
            "select id, kind, name, agent_id from stock_locations where agent_id = %s", (agent_id,)
        ).fetchone()


def insert_location(conn: psycopg.Connection, kind: str, name: str, agent_id: int | None = None) -> int:
    row = conn.execute(
        "insert into stock_locations (kind, name, agent_id) values (%s, %s, %s) returning id", (kind, name, agent_id)
    ).fetchone()
    assert row is not None
    return int(row[0])


def stock(conn: psycopg.Connection, location_id: int | None = None) -> list[LocationStock]:
    """Units by state and parts by SKU at each location (or one)."""
    out = []
    for loc in locations(conn):
        if location_id is not None and loc.id != location_id:
            continue
        units: dict[str, int] = dict(
            conn.execute(
                """select u.state, count(*) from unit_locations l join units u on u.id = l.unit_id
                where l.location_id = %s group by u.state order by u.state""",
                (loc.id,),
            ).fetchall()
        )
        out.append(
            LocationStock(location=loc, units={str(k): int(v) for k, v in units.items()}, parts=parts_at(conn, loc.id))
        )
    return out


def parts_at(conn: psycopg.Connection, location_id: int) -> list[PartCount]:
    with conn.cursor(row_factory=class_row(PartCount)) as cur:
        return cur.execute(
            """select s.location_id, s.sku, p.name, s.quantity from part_stock s join parts p on p.sku = s.sku
                where s.location_id = %s order by s.sku""",
            (location_id,),
        ).fetchall()


def part_exists(conn: psycopg.Connection, sku: str) -> bool:
    return conn.execute("select 1 from parts where sku = %s", (sku,)).fetchone() is not None


def insert_part(conn: psycopg.Connection, sku: str, name: str) -> None:
    conn.execute("insert into parts (sku, name) values (%s, %s) on conflict (sku) do nothing", (sku, name))


def add_parts(conn: psycopg.Connection, location_id: int, sku: str, quantity: int) -> None:
    conn.execute(
        """insert into part_stock (location_id, sku, quantity) values (%s, %s, %s)
           on conflict (location_id, sku) do update set quantity = part_stock.quantity + excluded.quantity""",
        (location_id, sku, quantity),
    )


def take_parts(conn: psycopg.Connection, location_id: int, sku: str, quantity: int) -> bool:
    """Take ``quantity`` of a SKU from a location; False (nothing taken) when it holds fewer."""
    return (
        conn.execute(
            "update part_stock set quantity = quantity - %s where location_id = %s and sku = %s and quantity >= %s",
            (quantity, location_id, sku, quantity),
        ).rowcount
        == 1
    )


def part_quantity(conn: psycopg.Connection, location_id: int, sku: str) -> int:
    row = conn.execute(
        "select quantity from part_stock where location_id = %s and sku = %s", (location_id, sku)
    ).fetchone()
    return 0 if row is None else int(row[0])


def product_ids_by_code(conn: psycopg.Connection) -> dict[str, int]:
    return {str(code): int(pid) for pid, code in conn.execute("select id, code from products")}


def existing_serials(conn: psycopg.Connection, serials: list[str]) -> set[str]:
    return {str(s) for (s,) in conn.execute("select serial from units where serial = any(%s)", (serials,))}


def customer_of_contract(conn: psycopg.Connection, account_number: str) -> int | None:
    row = conn.execute("select customer_id from contracts where account_number = %s", (account_number,)).fetchone()
    return None if row is None else int(row[0])


def customer_exists(conn: psycopg.Connection, customer_id: int) -> bool:
    return conn.execute("select 1 from customers where id = %s", (customer_id,)).fetchone() is not None
