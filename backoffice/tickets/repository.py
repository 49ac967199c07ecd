"""All SQL of tickets. ``scope``: None for staff who see every ticket, or the one agent whose tickets a
field agent may see (every read of a field agent goes through it: another agent's ticket is not found)."""

from __future__ import annotations

from datetime import date, datetime

import psycopg
from psycopg.rows import class_row

from backoffice.listing import Page, fetch_page
from backoffice.tickets.schemas import PartUsed, Ticket, TicketList, Visit

_TICKET = """
    select t.id, t.kind, t.source, t.state, t.unit_id, u.serial, c.account_number, c.state as contract_state,
           t.customer_id, cu.name as customer_name,
           sms_phone(cu.id) as phone, cu.village, t.agent_id, a.name as agent_name,
           t.note, t.outcome, t.opened_by, t.opened_at, t.due_at, t.closed_by, t.closed_at,
           coalesce(t.closed_at, paygo_now()) > t.due_at and t.state <> 'cancelled' as breached
      from tickets t
      join units u on u.id = t.unit_id
      left join contracts c on c.id = t.contract_id
      left join customers cu on cu.id = t.customer_id
      left join agents a on a.id = t.agent_id
"""
_SCOPED = "(%(scope)s::bigint is null or t.agent_id = %(scope)s)"


def get(conn: psycopg.Connection, ticket_id: int, scope: int | None, lock: bool = False) -> Ticket | None:
    with conn.cursor(row_factory=class_row(Ticket)) as cur:
        if lock:
            cur.execute("select 1 from tickets where id = %s for update", (ticket_id,))
        return cur.execute(_TICKET + f"where t.id = %(id)s and {_SCOPED}", {"id": ticket_id, "scope": scope}).fetchone()


def search(
    conn: psycopg.Connection,
    scope: int | None,
    *,
    states: tuple[str, ...] = (),
    kind: str | None = None,
    agent_id: int | None = None,
    unit_id: int | None = None,
    breached: bool | None = None,
    limit: int = 200,
) -> list[Ticket]:
    """Tickets, the open ones by their due time first, then the newest closed."""
    with conn.cursor(row_factory=class_row(Ticket)) as cur:
        return cur.execute(
            f"""select * from ({_TICKET} where {_SCOPED}
                     and (cardinality(%(states)s::text[]) = 0 or t.state = any(%(states)s))
                     and (%(kind)s::text is null or t.kind = %(kind)s)
                     and (%(agent)s::bigint is null or t.agent_id = %(agent)s)
                     and (%(unit)s::bigint is null or t.unit_id = %(unit)s)) x
                where %(breached)s::boolean is null or breached = %(breached)s
                order by state in ('done', 'cancelled'), case when state in ('done', 'cancelled') then null
                         else due_at end, closed_at desc nulls last, id desc
                limit %(limit)s""",
            {
                "scope": scope,
                "states": list(states),
                "kind": kind,
                "agent": agent_id,
                "unit": unit_id,
                "breached": breached,
                "limit": limit,
            },
        ).fetchall()


# The tickets list's sort keys (TicketList.SORTS) -> the output column of _TICKET each orders by.
TICKET_SORTS = {"due": "due_at", "opened": "opened_at", "closed": "closed_at", "id": "id", "kind": "kind",
                "state": "state", "customer": "customer_name", "village": "village", "agent": "agent_name"}  # fmt: skip


def search_page(conn: psycopg.Connection, scope: int | None, query: TicketList) -> Page[Ticket]:
    """One page of the tickets ``scope`` may see that match ``query``, in its order, with the total."""
    states = ["open", "assigned"] if query.state is None else [] if query.state == "all" else [query.state]
    select = f"""select * from ({_TICKET} where {_SCOPED}
                     and (cardinality(%(states)s::text[]) = 0 or t.state = any(%(states)s))
                     and (%(kind)s::text is null or t.kind = %(kind)s)
                     and (%(agent)s::bigint is null or t.agent_id = %(agent)s)
                     and (%(village)s = '' or cu.village ilike %(village_like)s)) x
                where %(breached)s::boolean is null or breached = %(breached)s"""
    village = query.village.strip()
    like = "%" + village.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    params = {"scope": scope, "states": states, "kind": query.kind, "agent": query.agent_id, "village": village,
              "village_like": like, "breached": query.breached}  # fmt: skip
    return fetch_page(conn, select, params, TICKET_SORTS, query, Ticket, tiebreak="id")


def insert(
    conn: psycopg.Connection,
    unit_id: int,
    contract_id: int | None,
    customer_id: int | None,
    kind: str,
    source: str,
    agent_id: int | None,
    note: str | None,
    opened_by: str,
    due_at: datetime,
) -> int | None:
    """The new ticket's id, or None when the unit has a ticket of this kind open already (the partial unique
    index ``tickets_one_open`` of migration 0040: at most one open per unit and kind)."""
    row = conn.execute(
        """insert into tickets (unit_id, contract_id, customer_id, kind, source, state, agent_id, note, opened_by,
                                due_at)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           on conflict (unit_id, kind) where state in ('open', 'assigned') do nothing returning id""",
        (
            unit_id,
            contract_id,
            customer_id,
            kind,
            source,
            "assigned" if agent_id else "open",
            agent_id,
            note,
            opened_by,
            due_at,
        ),
    ).fetchone()
    return None if row is None else int(row[0])


def open_of_unit(conn: psycopg.Connection, unit_id: int, kind: str) -> tuple[int, int | None] | None:
    """(id, agent id) of the unit's open ticket of this kind, locked, if it has one."""
    row = conn.execute(
        """select id, agent_id from tickets where unit_id = %s and kind = %s and state in ('open', 'assigned')
            for update""",
        (unit_id, kind),
    ).fetchone()
    return None if row is None else (int(row[0]), None if row[1] is None else int(row[1]))


def add_note(conn: psycopg.Connection, ticket_id: int, note: str) -> None:
    """Another report of the same fault, kept on the ticket it joined (newest last)."""
    conn.execute("update tickets set note = concat_ws(E'\\n', note, %s::text) where id = %s", (note, ticket_id))


def contract_of_unit(conn: psycopg.Connection, unit_id: int) -> tuple[int, int, str, str] | None:
    """(contract id, customer id, account number, state) of the unit's newest contract, active ones first."""
    row = conn.execute(
        """select id, customer_id, account_number, state from contracts where unit_id = %s
            order by state = 'active' desc, signed_on desc, id desc limit 1""",
        (unit_id,),
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), str(row[2]), str(row[3]))


def assign(conn: psycopg.Connection, ticket_id: int, agent_id: int) -> None:
    conn.execute("update tickets set agent_id = %s, state = 'assigned' where id = %s", (agent_id, ticket_id))


def close(conn: psycopg.Connection, ticket_id: int, state: str, outcome: str | None, closed_by: str) -> None:
    conn.execute(
        "update tickets set state = %s, outcome = %s, closed_by = %s, closed_at = paygo_now() where id = %s",
        (state, outcome, closed_by, ticket_id),
    )


def add_part_used(conn: psycopg.Connection, ticket_id: int, sku: str, quantity: int) -> None:
    conn.execute(
        """insert into ticket_parts (ticket_id, sku, quantity) values (%s, %s, %s)
           on conflict (ticket_id, sku) do update set quantity = ticket_parts.quantity + excluded.quantity""",
        (ticket_id, sku, quantity),
    )


def parts_used(conn: psycopg.Connection, ticket_id: int) -> list[PartUsed]:
    with conn.cursor(row_factory=class_row(PartUsed)) as cur:
        return cur.execute(
            """select tp.sku, p.name, tp.quantity from ticket_parts tp join parts p on p.sku = tp.sku
                where tp.ticket_id = %s order by tp.sku""",
            (ticket_id,),
        ).fetchall()


def agent_is_active(conn: psycopg.Connection, agent_id: int) -> bool:
    return conn.execute("select 1 from agents where id = %s and active", (agent_id,)).fetchone() is not None


def unit_of_agent_customer(conn: psycopg.Connection, unit_id: int, agent_id: int) -> bool:
    """The unit's current contract (its newest, while active) is one the agent sold, or the unit is on one
    of the agent's open tickets: a unit resold to another agent's customer is no longer theirs."""
    return (
        conn.execute(
            """select 1 from agent_sales s join contracts c on c.id = s.contract_id
                where s.agent_id = %(a)s and c.unit_id = %(u)s and c.state = 'active'
               union all select 1 from tickets t
                where t.agent_id = %(a)s and t.unit_id = %(u)s and t.state in ('open', 'assigned') limit 1""",
            {"a": agent_id, "u": unit_id},
        ).fetchone()
        is not None
    )


def add_visit(
    conn: psycopg.Connection, ticket_id: int, outcome: str, next_visit_on: date | None, note: str | None,
    recorded_by: str,
) -> Visit:  # fmt: skip
    with conn.cursor(row_factory=class_row(Visit)) as cur:
        row = cur.execute(
            """insert into ticket_visits (ticket_id, outcome, next_visit_on, note, recorded_by)
               values (%s, %s, %s, %s, %s)
               returning id, ticket_id, outcome, next_visit_on, note, recorded_by, recorded_at""",
            (ticket_id, outcome, next_visit_on, note, recorded_by),
        ).fetchone()
    assert row is not None
    return row


def visits(conn: psycopg.Connection, ticket_id: int) -> list[Visit]:
    with conn.cursor(row_factory=class_row(Visit)) as cur:
        return cur.execute(
            """select id, ticket_id, outcome, next_visit_on, note, recorded_by, recorded_at from ticket_visits
                where ticket_id = %s order by id""",
            (ticket_id,),
        ).fetchall()


def area_agents(conn: psycopg.Connection, unit_id: int) -> list[tuple[int, str, bool, int, str, str]]:
    """The active agents whose areas cover the customer of the unit's newest contract: an area's village
    equal to the customer's (letter case and spaces aside) and its district, when the area names one,
    equal to the customer's. (agent id, the area matched, whether the agent sold that contract, open
    tickets the agent carries, name, code), the seller first, then the least loaded."""
    return [
        (int(a), str(area), bool(sold), int(load), str(name), str(code))
        for a, area, sold, load, name, code in conn.execute(
            """with c as (select c.id, cu.village, cu.district
                            from contracts c join customers cu on cu.id = c.customer_id
                           where c.unit_id = %s order by c.state = 'active' desc, c.signed_on desc, c.id desc limit 1)
               select a.id,
                      min(ar.village || case when ar.district <> '' then '/' || ar.district else '' end) as area,
                      exists (select 1 from agent_sales s where s.contract_id = c.id and s.agent_id = a.id) as sold,
                      (select count(*) from tickets t where t.agent_id = a.id and t.state in ('open', 'assigned')),
                      a.name, a.code
                 from c join agent_areas ar
                        on lower(btrim(ar.village)) = lower(btrim(c.village))
                       and (ar.district = '' or lower(btrim(ar.district)) = lower(btrim(coalesce(c.district, ''))))
                 join agents a on a.id = ar.agent_id and a.active
                group by a.id, c.id
                order by 3 desc, 4, a.id""",
            (unit_id,),
        ).fetchall()
    ]
