"""All SQL of the agents domain: agents and their areas, their sales (``agent_sales``), their customers,
commissions (computed from the ledger and ``commission_rules``) and payouts."""

from __future__ import annotations

from datetime import date

import psycopg
from psycopg.rows import class_row

from backoffice.agents.par import Row, Terms
from backoffice.agents.schemas import (
    Agent,
    AgentList,
    Commission,
    CommissionRule,
    Customer,
    Money,
    Payout,
    Sale,
    SaleSummary,
)
from backoffice.listing import Page, fetch_page

_AGENT = """
    select a.id, a.user_id, su.username, a.code, a.name, a.kind, a.phone, a.active,
           coalesce((select array_agg(ar.village || case when ar.district <> '' then '/' || ar.district else '' end
                                      order by ar.village) from agent_areas ar where ar.agent_id = a.id),
                    '{}') as areas,
           s.id as location_id
      from agents a
      left join staff_users su on su.id = a.user_id
      left join stock_locations s on s.agent_id = a.id
"""


def agents(conn: psycopg.Connection) -> list[Agent]:
    with conn.cursor(row_factory=class_row(Agent)) as cur:
        return cur.execute(_AGENT + "order by a.active desc, a.name, a.id").fetchall()


# The agents list's sort keys (AgentList.SORTS) -> the output column of _AGENT each orders by.
AGENT_SORTS = {"name": "name", "code": "code", "kind": "kind", "active": "active"}


def agents_page(conn: psycopg.Connection, query: AgentList) -> Page[Agent]:
    """One page of the agents matching ``query`` (kind, active, an area they serve), in its order."""
    area = query.area.strip()
    like = "%" + area.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    select = (
        _AGENT
        + """where (%(kind)s::text is null or a.kind = %(kind)s)
               and (%(active)s::boolean is null or a.active = %(active)s)
               and (%(area)s = '' or exists (select 1 from agent_areas ar where ar.agent_id = a.id
                                              and (ar.village ilike %(like)s or ar.district ilike %(like)s)))"""
    )
    params = {"kind": query.kind, "active": query.active, "area": area, "like": like}
    return fetch_page(conn, select, params, AGENT_SORTS, query, Agent, tiebreak="id")


def get_agent(conn: psycopg.Connection, agent_id: int) -> Agent | None:
    with conn.cursor(row_factory=class_row(Agent)) as cur:
        return cur.execute(_AGENT + "where a.id = %s", (agent_id,)).fetchone()


def agent_of_user(conn: psycopg.Connection, user_id: int | None) -> Agent | None:
    if user_id is None:
        return None
    with conn.cursor(row_factory=class_row(Agent)) as cur:
        return cur.execute(_AGENT + "where a.user_id = %s and a.active", (user_id,)).fetchone()


def user_id_of(conn: psycopg.Connection, username: str) -> tuple[int, list[str]] | None:
    row = conn.execute("select id, roles from staff_users where username = %s", (username,)).fetchone()
    return None if row is None else (int(row[0]), list(row[1]))


def insert_agent(
    conn: psycopg.Connection, user_id: int | None, code: str, name: str, kind: str, phone: str | None
) -> int:
    row = conn.execute(
        "insert into agents (user_id, code, name, kind, phone) values (%s, %s, %s, %s, %s) returning id",
        (user_id, code, name, kind, phone),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_area(conn: psycopg.Connection, agent_id: int, village: str, district: str) -> None:
    conn.execute(
        "insert into agent_areas (agent_id, village, district) values (%s, %s, %s) on conflict do nothing",
        (agent_id, village, district),
    )


def contract_of_account(conn: psycopg.Connection, account_number: str) -> int | None:
    row = conn.execute("select id from contracts where account_number = %s", (account_number,)).fetchone()
    return None if row is None else int(row[0])


def paid_since_sale(conn: psycopg.Connection, contract_id: int, agent_id: int) -> int | None:
    """The agent recorded for the contract, when it is another than ``agent_id`` and has been paid
    commissions since the sale was recorded; None otherwise."""
    row = conn.execute(
        """select s.agent_id from agent_sales s
            where s.contract_id = %s and s.agent_id <> %s
              and exists (select 1 from commission_payouts p where p.agent_id = s.agent_id
                           and p.paid_at >= s.recorded_at)""",
        (contract_id, agent_id),
    ).fetchone()
    return None if row is None else int(row[0])


def lock_sale(conn: psycopg.Connection, contract_id: int) -> int | None:
    """The agent recorded for the contract (None: none yet), the record locked until the transaction ends."""
    row = conn.execute("select agent_id from agent_sales where contract_id = %s for update", (contract_id,)).fetchone()
    return None if row is None else int(row[0])


def lock_agents(conn: psycopg.Connection, agent_ids: set[int]) -> None:
    """Lock agents' rows, in id order (two callers locking the same pair never deadlock): the lock a
    payout of each takes (``lock_agent``), so a change to what they earn waits for their payouts and the
    other way round."""
    conn.execute("select id from agents where id = any(%s) order by id for update", (sorted(agent_ids),)).fetchall()


def insert_sale(conn: psycopg.Connection, contract_id: int, agent_id: int) -> bool:
    """The first record of who sold a contract; False when another was recorded meanwhile."""
    return (
        conn.execute(
            "insert into agent_sales (contract_id, agent_id) values (%s, %s) on conflict (contract_id) do nothing",
            (contract_id, agent_id),
        ).rowcount
        == 1
    )


def move_sale(conn: psycopg.Connection, contract_id: int, agent_id: int) -> None:
    conn.execute(
        "update agent_sales set agent_id = %s, recorded_at = paygo_now() where contract_id = %s",
        (agent_id, contract_id),
    )


_SALES = """
    select c.id as contract_id, c.account_number, cu.id as customer_id, cu.name as customer_name, cu.village,
           u.serial, p.code as product_code, c.state, c.signed_on
      from agent_sales s join contracts c on c.id = s.contract_id join customers cu on cu.id = c.customer_id
      join units u on u.id = c.unit_id join products p on p.id = c.product_id
"""


def sales(conn: psycopg.Connection, agent_id: int, limit: int = 20) -> list[Sale]:
    with conn.cursor(row_factory=class_row(Sale)) as cur:
        return cur.execute(
            _SALES + "where s.agent_id = %s order by c.signed_on desc, c.id desc limit %s", (agent_id, limit)
        ).fetchall()


def counts(conn: psycopg.Connection, agent_id: int) -> tuple[int, int]:
    """(contracts sold, units installed at those customers under an active contract)."""
    row = conn.execute(
        """select count(*), count(*) filter (where c.state = 'active' and u.state = 'installed')
             from agent_sales s join contracts c on c.id = s.contract_id join units u on u.id = c.unit_id
            where s.agent_id = %s""",
        (agent_id,),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def customers(conn: psycopg.Connection, agent_id: int) -> list[Customer]:
    """The agent's customers: those of the active contracts they sold and of their open tickets."""
    with conn.cursor(row_factory=class_row(Customer)) as cur:
        return cur.execute(
            """select cu.id, cu.name,
                      sms_phone(cu.id) as phone,
                      cu.village, cu.district from customers cu
                where cu.id in (select c.customer_id from agent_sales s join contracts c on c.id = s.contract_id
                                 where s.agent_id = %(a)s and c.state = 'active'
                                union select t.customer_id from tickets t
                                 where t.agent_id = %(a)s and t.state in ('open', 'assigned'))
                order by cu.name, cu.id""",
            {"a": agent_id},
        ).fetchall()


def collections(conn: psycopg.Connection, agent_id: int, since: date) -> list[Money]:
    with conn.cursor(row_factory=class_row(Money)) as cur:
        return cur.execute(
            """select e.currency, sum(e.amount)::bigint as amount
                 from agent_sales s join ledger_entries e on e.contract_id = s.contract_id
                where s.agent_id = %s and e.status = 'completed' and e.type in ('deposit', 'payment', 'return')
                  and e.entry_date >= %s
                group by e.currency order by e.currency""",
            (agent_id, since),
        ).fetchall()


def par_inputs(conn: psycopg.Connection, agent_id: int, as_of: date) -> list[tuple[list[Row], Terms]]:
    """Each contract the agent sold: its ledger rows (completed ones to ``as_of``) and product terms."""
    terms: dict[int, Terms] = {}
    for cid, model, ppd, pto, dd in conn.execute(
        """select c.id, p.business_model, p.price_per_day, p.price_to_own, p.deposit_days
             from agent_sales s join contracts c on c.id = s.contract_id join products p on p.id = c.product_id
            where s.agent_id = %s""",
        (agent_id,),
    ):
        terms[int(cid)] = Terms(model, ppd, pto, dd)
    rows: dict[int, list[Row]] = {cid: [] for cid in terms}
    for cid, d, status, kind, amount in conn.execute(
        """select e.contract_id, e.entry_date, e.status, e.type, e.amount
             from agent_sales s join ledger_entries e on e.contract_id = s.contract_id
            where s.agent_id = %s and (e.status = 'expected' or e.entry_date <= %s)""",
        (agent_id, as_of),
    ):
        rows[int(cid)].append(Row(d, status, kind, int(amount)))
    return [(rows[cid], terms[cid]) for cid in terms]


def commissions(conn: psycopg.Connection, agent_id: int | None = None) -> list[Commission]:
    """Per agent and currency: the deposit share plus the share of each payment made within the rule's
    months of signing; all of a contract's commission clawed back when it ended in default
    (repossessed or written off) or was returned within the rule's claw-back days; less what was paid
    out. A reversal's rows count as the rows they undo (their type and date), so a reversal takes back
    exactly what its payment earned."""
    with conn.cursor(row_factory=class_row(Commission)) as cur:
        return cur.execute(
            """with sold as (
                 select s.agent_id, c.id, c.currency, c.signed_on, c.state, c.ended_at, r.deposit_share_bp,
                        r.payment_share_bp, r.payment_months, r.clawback_days
                   from agent_sales s join contracts c on c.id = s.contract_id
                   join lateral (select * from commission_rules r where r.product_id = c.product_id
                                     or r.product_id is null order by r.product_id nulls last limit 1) r on true
                  where %(agent)s::bigint is null or s.agent_id = %(agent)s),
               per_contract as (
                 select sold.agent_id, sold.currency,
                        coalesce(sum(e.amount) filter (where e.type = 'deposit'), 0) * sold.deposit_share_bp / 10000
                        + coalesce(sum(e.amount) filter (where e.type = 'payment'
                                   and coalesce(o.entry_date, e.entry_date)
                                       < sold.signed_on + make_interval(months => sold.payment_months)), 0)
                          * sold.payment_share_bp / 10000 as earned,
                        sold.state in ('repossessed', 'written_off', 'returned')
                          and sold.ended_at < sold.signed_on + make_interval(days => sold.clawback_days) as clawed
                   from sold left join ledger_entries e on e.contract_id = sold.id and e.status = 'completed'
                   left join ledger_entries o on o.id = e.reverses_entry_id
                  group by sold.agent_id, sold.currency, sold.id, sold.signed_on, sold.state, sold.ended_at,
                           sold.deposit_share_bp, sold.payment_share_bp, sold.payment_months, sold.clawback_days),
               per_agent as (
                 select agent_id, currency, sum(earned)::bigint as earned,
                        sum(case when clawed then earned else 0 end)::bigint as clawed_back
                   from per_contract group by agent_id, currency),
               paid as (
                 select agent_id, currency, sum(amount)::bigint as paid from commission_payouts
                  where %(agent)s::bigint is null or agent_id = %(agent)s group by agent_id, currency)
               select a.id as agent_id, a.code as agent_code, a.name as agent_name,
                      coalesce(pa.currency, pd.currency) as currency, coalesce(pa.earned, 0) as earned,
                      coalesce(pa.clawed_back, 0) as clawed_back, coalesce(pd.paid, 0) as paid,
                      coalesce(pa.earned, 0) - coalesce(pa.clawed_back, 0) - coalesce(pd.paid, 0) as due
                 from per_agent pa full join paid pd on pd.agent_id = pa.agent_id and pd.currency = pa.currency
                 join agents a on a.id = coalesce(pa.agent_id, pd.agent_id)
                order by a.code, currency""",
            {"agent": agent_id},
        ).fetchall()


def insert_payout(
    conn: psycopg.Connection, agent_id: int, currency: str, amount: int, paid_by: str, note: str | None
) -> Payout:
    with conn.cursor(row_factory=class_row(Payout)) as cur:
        row = cur.execute(
            """insert into commission_payouts (agent_id, currency, amount, paid_by, note) values (%s, %s, %s, %s, %s)
               returning id, agent_id, currency, amount, paid_at, paid_by""",
            (agent_id, currency, amount, paid_by, note),
        ).fetchone()
    assert row is not None
    return row


def lock_agent(conn: psycopg.Connection, agent_id: int) -> bool:
    """Serialises payouts of one agent (two finance clerks paying at once pay once)."""
    return conn.execute("select 1 from agents where id = %s for update", (agent_id,)).fetchone() is not None


def link_user(conn: psycopg.Connection, agent_code: str, user_id: int) -> bool:
    """Give an agent without a login the staff user ``user_id``; False when it has one or is unknown."""
    return (
        conn.execute(
            "update agents set user_id = %s where code = %s and user_id is null "
            "and not exists (select 1 from agents where user_id = %s)",
            (user_id, agent_code, user_id),
        ).rowcount
        == 1
    )


def sale_summary(conn: psycopg.Connection, account_number: str) -> SaleSummary | None:
    with conn.cursor(row_factory=class_row(SaleSummary)) as cur:
        return cur.execute(
            """select c.account_number, c.state as contract_state, c.signed_on, cu.id as customer_id,
                      cu.name as customer_name, cu.village, u.serial, u.state as unit_state, l.place as unit_place,
                      p.code as product_code, p.name as product_name, c.currency, p.deposit_amount,
                      coalesce((select sum(e.amount) from ledger_entries e where e.contract_id = c.id
                                   and e.status = 'completed' and e.type = 'deposit'), 0)::bigint as deposit_paid,
                      a.code as agent_code, a.name as agent_name
                 from contracts c join customers cu on cu.id = c.customer_id join units u on u.id = c.unit_id
                 join products p on p.id = c.product_id
                 left join unit_locations l on l.unit_id = u.id
                 left join agent_sales s on s.contract_id = c.id left join agents a on a.id = s.agent_id
                where c.account_number = %s""",
            (account_number,),
        ).fetchone()


def contract_parties(conn: psycopg.Connection, account_number: str) -> tuple[int, int, str] | None:
    """(customer id, unit id, state) of a contract, its row locked until the transaction ends."""
    row = conn.execute(
        "select customer_id, unit_id, state from contracts where account_number = %s for update", (account_number,)
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), str(row[2]))


def commission_rules(conn: psycopg.Connection) -> list[CommissionRule]:
    """The default rule first, then each product's own."""
    with conn.cursor(row_factory=class_row(CommissionRule)) as cur:
        return cur.execute(
            """select r.product_id, p.code as product_code, r.deposit_share_bp, r.payment_share_bp,
                      r.payment_months, r.clawback_days
                 from commission_rules r left join products p on p.id = r.product_id
                order by r.product_id nulls first, p.code"""
        ).fetchall()


def commission_rule(conn: psycopg.Connection, product_id: int | None) -> CommissionRule | None:
    """A product's own rule (None: the default rule), its row locked until the transaction ends."""
    with conn.cursor(row_factory=class_row(CommissionRule)) as cur:
        return cur.execute(
            """select r.product_id, p.code as product_code, r.deposit_share_bp, r.payment_share_bp,
                      r.payment_months, r.clawback_days
                 from commission_rules r left join products p on p.id = r.product_id
                where r.product_id is not distinct from %s for update of r""",
            (product_id,),
        ).fetchone()


def save_commission_rule(conn: psycopg.Connection, rule: CommissionRule) -> None:
    """Insert or replace the rule of ``rule.product_id`` (None: the default rule)."""
    values = (rule.deposit_share_bp, rule.payment_share_bp, rule.payment_months, rule.clawback_days, rule.product_id)
    updated = conn.execute(
        """update commission_rules set deposit_share_bp = %s, payment_share_bp = %s, payment_months = %s,
                  clawback_days = %s where product_id is not distinct from %s""",
        values,
    ).rowcount
    if not updated:
        conn.execute(
            """insert into commission_rules (deposit_share_bp, payment_share_bp, payment_months, clawback_days,
                                             product_id) values (%s, %s, %s, %s, %s)""",
            values,
        )


def account_of_contract(conn: psycopg.Connection, contract_id: int) -> str:
    row = conn.execute("select account_number from contracts where id = %s", (contract_id,)).fetchone()
    assert row is not None
    return str(row[0])
