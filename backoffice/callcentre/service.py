"""The unit page's data (``load_unit_page``) and the call centre's actions on it: resend a token, grant
goodwill days within the caller's limit, write a call note."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg

from backoffice import clock
from backoffice.audit.schemas import Actor
from backoffice.callcentre import charts
from backoffice.callcentre import repository as repo
from backoffice.callcentre.answer import answer
from backoffice.callcentre.schemas import (
    AlertFact,
    ContractInfo,
    GoodwillGranted,
    LatestTicket,
    UnitInfo,
    UnitPage,
    UnitStatus,
)
from backoffice.config import Settings
from backoffice.credit import repository as credit_repo
from backoffice.credit import service as credit
from backoffice.customers import service as customers
from backoffice.customers.schemas import CallNote, NewCallNote
from backoffice.staff.schemas import Staff
from backoffice.tickets import repository as tickets_repo
from backoffice.tickets import service as tickets
from backoffice.tickets.schemas import Ticket

# The unit's open alerts as the first screen needs them; the web app hands in the health domain's
# (paygo/web.py, ``app.state.unit_alerts``), which this domain may not import.
AlertsOf = Callable[[psycopg.Connection, int], list[AlertFact]]

SMS_READERS = frozenset({"call_centre"})  # the SMS log holds live tokens: who may read GET /api/sms
LIST_LIMIT = 20
PAYMENTS_LIMIT = 500  # every payment of a contract (weekly for ten years), not only the newest
CHART_DAYS = 30
READING_DAYS = 7


def load_unit_page(
    conn: psycopg.Connection, serial: str, *, with_sms: bool = True, now: datetime | None = None,
    alerts: AlertsOf | None = None,
) -> UnitPage | None:  # fmt: skip
    """Everything about the unit ``serial`` the call centre sees, or None when there is no such unit.
    The charts end at its newest reading (or ``now`` when it never reported): the readings of the 7 days
    before it, and 30 daily rollups up to its day. ``with_sms``: the SMS log too (the call centre's).
    The unit's state is the newest of its report and the tokens it acknowledged since (``_status``);
    ``answer`` is the first screen (backoffice/callcentre/answer.py), from ``alerts`` too when given."""
    head = repo.head(conn, serial)
    if head is None:
        return None
    now = now or clock.utc_now()
    as_of = head.last_ts or now
    last_day = as_of.astimezone(UTC).date()
    first_day = last_day - timedelta(days=CHART_DAYS - 1)
    customer = customers.get_customer(conn, head.customer_id) if head.customer_id is not None else None
    contract = _contract(conn, head.contract_id, clock.business_day(now)) if head.contract_id is not None else None
    cid = head.contract_id
    page = UnitPage(
        as_of=as_of,
        unit=UnitInfo(
            id=head.unit_id,
            serial=head.serial,
            state=head.unit_state,
            product_code=head.product_code,
            product_name=head.product_name,
            installed_at=head.installed_at,
            latitude=head.latitude,
            longitude=head.longitude,
        ),  # fmt: skip
        customer=customer,
        contract=contract,
        status=_status(conn, head, now),
        readings=repo.readings(conn, head.unit_id, as_of - timedelta(days=READING_DAYS), as_of),
        days=repo.days(conn, head.unit_id, first_day, last_day),
        payments=repo.payments(conn, cid, PAYMENTS_LIMIT) if cid else [],
        tokens=repo.tokens(conn, cid, LIST_LIMIT) if cid else [],
        goodwill=repo.goodwill(conn, cid, LIST_LIMIT) if cid else [],
        events=repo.events(conn, head.unit_id, LIST_LIMIT),
        notes=customers.notes(conn, customer.id, LIST_LIMIT) if customer else [],
        sms=(repo.sms(conn, [p.e164 for p in customer.phones], LIST_LIMIT) if customer else []) if with_sms else None,
        alerts=alerts(conn, head.unit_id) if alerts is not None else [],
        latest_ticket=_latest_ticket(conn, head.unit_id),
    )
    return page.model_copy(update={"answer": answer(page, now)})


def _status(conn: psycopg.Connection, head: repo.Head, now: datetime) -> UnitStatus:
    """The unit's state from the newest of two facts: its newest report, and the tokens it acknowledged
    after that report arrived (folded onto the report's credit by the rule of credit ends). A goodwill
    token acknowledged a minute ago shows its light on at once, not at the next 20-minute report."""
    until = (head.last_ts + timedelta(seconds=head.credit_s)
             if head.last_ts is not None and head.credit_s is not None else None)  # fmt: skip
    status = UnitStatus(
        last_ts=head.last_ts, last_received_at=head.last_received_at, batt_v=head.batt_v, soc=head.soc,
        credit_s=head.credit_s, credit_until=until, locked=head.locked, online=head.online,
        online_since=head.online_since, reported_locked=head.locked, reported_credit_s=head.credit_s,
    )  # fmt: skip
    acked = repo.acknowledged_since(conn, head.unit_id, head.last_received_at, until)
    if acked.tokens == 0 or acked.acked_at is None:
        return status
    if acked.forever:
        return status.model_copy(update={"token_acked_at": acked.acked_at, "locked": False, "credit_s": None,
                                         "credit_until": None})  # fmt: skip
    end = acked.credit_end
    left = None if end is None else max(int((end - acked.acked_at).total_seconds()), 0)
    return status.model_copy(update={"token_acked_at": acked.acked_at, "credit_until": end, "credit_s": left,
                                     "locked": end is None or end <= now})  # fmt: skip


def _latest_ticket(conn: psycopg.Connection, unit_id: int) -> LatestTicket | None:
    """The unit's newest open ticket, else its newest closed one, with the next visit agreed."""
    found = tickets_repo.search(conn, None, unit_id=unit_id, limit=20)  # the open ones first
    if not found:
        return None
    still_open = [t for t in found if t.state in ("open", "assigned")]
    t = max(still_open, key=lambda x: (x.opened_at, x.id)) if still_open else found[0]
    days = [v.next_visit_on for v in tickets_repo.visits(conn, t.id) if v.next_visit_on is not None]
    return LatestTicket(id=t.id, kind=t.kind, state=t.state, agent_name=t.agent_name, opened_at=t.opened_at,
                        due_at=t.due_at, next_visit_on=days[-1] if days else None)  # fmt: skip


def _contract(conn: psycopg.Connection, contract_id: int, today: date) -> ContractInfo | None:
    a = credit_repo.accounts(conn, [contract_id]).get(contract_id)
    if a is None:
        return None
    price = credit.total_price(a)
    expected = repo.expected_to_date(conn, contract_id, today)
    return ContractInfo(
        id=a.contract_id, account_number=a.account_number, state=a.state, signed_on=a.signed_on, currency=a.currency,
        paid_total=a.paid_total, price=price, balance=None if price is None else max(price - a.paid_total, 0),
        expected_to_date=expected, arrears=None if expected is None else max(expected - a.paid_total, 0),
        days_granted=a.days_granted, goodwill_days=a.goodwill_days,
        credit_end=a.credit_end and a.credit_end.astimezone(UTC), paid_until=credit.credit_day(a.credit_end),
        unlocked_for_good=a.unlocked,
    )  # fmt: skip


def page_charts(page: UnitPage) -> tuple[list[charts.Chart], list[charts.Chart]]:
    """The charts of 7 days (from the readings) and of 30 days (from the daily rollups)."""
    end = page.as_of
    start = end - timedelta(days=READING_DAYS)
    r = page.readings
    week = [
        charts.line("batt-v-7d", "Battery voltage", "V", [(x.ts, x.batt_v) for x in r], start, end),
        charts.line("soc-7d", "State of charge", "%", [(x.ts, x.soc) for x in r], start, end, 100, True),
        charts.line("pv-7d", "PV energy per report", "Wh", [(x.ts, x.pv_wh) for x in r], start, end, 1, True),
        charts.line("load-7d", "Load energy per report", "Wh", [(x.ts, x.load_wh) for x in r], start, end, 1, True),
    ]
    last = end.astimezone(UTC).date()
    first = last - timedelta(days=CHART_DAYS - 1)
    d = page.days
    noon = [(datetime(x.day.year, x.day.month, x.day.day, 12, tzinfo=UTC), x) for x in d]
    day_start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    day_end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    month = [
        charts.line("batt-v-30d", "Battery voltage, lowest of the day", "V", [(t, x.min_batt_v) for t, x in noon],
                    day_start, day_end),
        charts.bars("soc-30d", "Hours below 20 % charge per day", "h", [(x.day, x.hours_low_soc) for x in d], first,
                    last),
        charts.bars("pv-30d", "PV energy per day", "Wh", [(x.day, x.pv_wh) for x in d], first, last),
        charts.bars("load-30d", "Load energy per day", "Wh", [(x.day, x.load_wh) for x in d], first, last),
    ]  # fmt: skip
    return week, month


class ActionRefused(ValueError):
    """The call centre's action cannot be done; the message says why, shown on the page."""


def goodwill_limit(settings: Settings, roles: frozenset[str]) -> int:
    """The most goodwill days the caller may give a contract, in one grant or in several within 30 days
    (credit.GOODWILL_WINDOW_DAYS): the call centre's limit, or the administrators'."""
    return settings.goodwill_admin_max_days if "admin" in roles else settings.goodwill_max_days


def grant_goodwill(
    conn: psycopg.Connection, settings: Settings, serial: str, days: int, reason: str, actor: Actor,
    roles: frozenset[str],
) -> GoodwillGranted:  # fmt: skip
    """Goodwill days for the unit's contract, at most the caller's limit (ActionRefused says why not);
    LookupError: no such unit or no contract."""
    limit = goodwill_limit(settings, roles)
    if days > limit:
        who = "an administrator" if "admin" in roles else "the call centre"
        more = ("" if "admin" in roles else
                f"; an administrator may give up to {settings.goodwill_admin_max_days}")  # fmt: skip
        raise ActionRefused(f"{days} goodwill days refused: {who} may give at most {limit} days at once{more}")
    # The same limit holds for grants that add up (checked under the account's lock, in credit).
    head = repo.head(conn, serial)
    if head is None or head.contract_id is None:
        raise LookupError(f"no unit {serial!r} with a contract")
    try:
        done = credit.grant_goodwill(conn, head.contract_id, days, reason, settings.secret_key, actor, limit)
    except credit.GoodwillRefused as err:
        raise ActionRefused(str(err)) from None
    return GoodwillGranted(grant_id=done.grant_id, token_id=done.token_id, token=done.token, days=done.days)


def resend_token(conn: psycopg.Connection, serial: str, token_id: int, actor: Actor) -> int:
    """Send a token of this unit's contract again (audited); LookupError: not this unit's token."""
    head = repo.head(conn, serial)
    if head is None or head.contract_id is None or not repo.token_of_contract(conn, token_id, head.contract_id):
        raise LookupError(f"unit {serial} has no token {token_id}")
    queued = credit.resend_token(conn, token_id, actor)
    if not queued:
        raise LookupError(f"token {token_id} has no deliveries to repeat")
    return queued


def add_note(conn: psycopg.Connection, serial: str, body: str, actor: Actor) -> CallNote:
    """A call note on the unit's customer (LookupError: the unit has no customer)."""
    head = repo.head(conn, serial)
    if head is None or head.customer_id is None:
        raise LookupError(f"unit {serial!r} has no customer to note a call with")
    return customers.add_note(conn, head.customer_id, NewCallNote(body=body, serial=serial), actor)


@dataclass(frozen=True)
class TicketAgents:
    """The assignees the unit page's ticket form offers: the active agents serving the customer's area,
    the one it proposes first (tickets.service.default_agent; None: nobody serves the area, and the ticket
    waits for the dispatcher, who may give it to anyone on the ticket's page). Only the area's agents:
    the page stays small however many agents the company has."""

    agents: list[tuple[int, str, str]]  # (id, name, code)
    proposed: int | None
    area: str | None


def ticket_agents(conn: psycopg.Connection, unit_id: int) -> TicketAgents:
    found = tickets_repo.area_agents(conn, unit_id)
    first = found[0] if found else None
    return TicketAgents([(a[0], a[4], a[5]) for a in found], first[0] if first else None, first[1] if first else None)


def ticket_of_unit(conn: psycopg.Connection, ticket_id: int, unit_id: int) -> Ticket | None:
    found = tickets_repo.get(conn, ticket_id, None)
    return found if found is not None and found.unit_id == unit_id else None


def open_ticket(
    conn: psycopg.Connection, settings: Settings, staff: Staff, serial: str, kind: str, note: str | None,
    agent_id: int | None,
) -> int:  # fmt: skip
    """A ticket on the unit opened by the call centre (audited as ``staff``; a unit's open ticket of the
    same kind is joined, not doubled). ActionRefused / LookupError say why not."""
    try:
        return tickets.open_for(conn, staff, serial, kind, note, agent_id, settings.ticket_sla_hours,
                                settings.working_hours)  # fmt: skip
    except tickets.TicketRefused as err:
        raise ActionRefused(str(err)) from None
