"""The payment inbox as a list page asks for it (``/payments``): the query it accepts, the rows it shows
and their SQL (paged, sorted and filtered by backoffice/listing.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar, Literal

import psycopg
from pydantic import Field

from backoffice.listing import ListQuery, Page, fetch_page

InboxStatus = Literal["received", "credited", "unmatched", "held", "rejected", "pending", "failed", "reversed",
                      "reversal", "error", "refunded"]  # fmt: skip


class PaymentList(ListQuery):
    """The payment inbox list's query (backoffice/listing.py); the days are the company's."""

    SORTS: ClassVar[tuple[str, ...]] = ("received", "paid", "amount", "provider", "status", "account", "id")
    DEFAULT_SORT: ClassVar[str] = "-received"

    status: InboxStatus | None = None
    provider: str = Field("", max_length=40)
    q: str = Field("", max_length=100, description="a transaction id, or the account typed")
    since: date | None = Field(None, description="received on or after this day")
    until: date | None = Field(None, description="received on or before this day")


@dataclass(frozen=True)
class InboxListRow:
    """A payment of the inbox list, with the contract it was credited to (its account and unit)."""

    id: int
    provider: str
    provider_txn_id: str
    received_at: datetime
    status: str
    reason: str | None
    account: str | None
    amount: int | None
    currency: str | None
    paid_at: datetime | None
    contract_account: str | None
    serial: str | None
    customer_id: int | None
    customer_name: str | None


# The inbox list's sort keys (PaymentList.SORTS) -> the output column each orders by.
INBOX_SORTS = {"received": "received_at", "paid": "paid_at", "amount": "amount", "provider": "provider",
               "status": "status", "account": "account", "id": "id"}  # fmt: skip


def inbox_page(conn: psycopg.Connection, query: PaymentList, since: datetime | None,
               until: datetime | None) -> Page[InboxListRow]:  # fmt: skip
    """One page of the payment inbox: ``query``'s filters (received in [since, until), the company's days
    turned into instants by the caller), in its order, with the total."""
    select = """select i.id, i.provider, i.provider_txn_id, i.received_at, i.status, i.reason, i.account, i.amount,
                       i.currency, i.paid_at, c.account_number as contract_account, u.serial,
                       cu.id as customer_id, cu.name as customer_name
                  from payment_inbox i
                  left join contracts c on c.id = i.contract_id
                  left join units u on u.id = c.unit_id
                  left join customers cu on cu.id = c.customer_id
                 where (%(status)s::text is null or i.status = %(status)s)
                   and (%(provider)s = '' or i.provider = %(provider)s)
                   and (%(q)s = '' or i.provider_txn_id = %(q)s or i.account = %(q)s or c.account_number = %(q)s)
                   and (%(since)s::timestamptz is null or i.received_at >= %(since)s)
                   and (%(until)s::timestamptz is null or i.received_at < %(until)s)"""
    params = {"status": query.status, "provider": query.provider.strip(), "q": query.q.strip(), "since": since,
              "until": until}  # fmt: skip
    return fetch_page(conn, select, params, INBOX_SORTS, query, InboxListRow, tiebreak="id")
