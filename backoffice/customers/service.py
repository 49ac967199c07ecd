"""Customers as the call centre keeps them: created and edited with their numbers normalised to E.164,
a national id that belongs to one customer only, and notes of every call, each change audited."""

from __future__ import annotations

from typing import Any

import psycopg
from pydantic import ValidationError

from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.customers import phones
from backoffice.customers import repository as repo
from backoffice.customers.repository import CustomerUnit
from backoffice.customers.schemas import CallNote, Customer, CustomerFields, NewCallNote, NewCustomer, Phone


class CustomerRefused(ValueError):
    """A customer's details that cannot be kept; the message says why (for the person who typed them)."""


def _numbers(typed: list[str], region: str) -> list[str]:
    try:
        return list(dict.fromkeys(phones.to_e164(t, region) for t in typed if t.strip()))
    except phones.PhoneRefused as err:
        raise CustomerRefused(str(err)) from None


def _check_national_id(conn: psycopg.Connection, national_id: str | None, customer_id: int | None) -> None:
    if national_id is None:
        return
    owner = repo.customer_with_national_id(conn, national_id)
    if owner is not None and owner != customer_id:
        raise CustomerRefused(f"national id {national_id} is already customer {owner}'s")


def get_customer(conn: psycopg.Connection, customer_id: int) -> Customer | None:
    row = repo.get_customer(conn, customer_id)
    if row is None:
        return None
    numbers = [Phone(e164=p.e164, display=phones.display(p.e164), position=p.position)
               for p in repo.phones_of(conn, customer_id)]  # fmt: skip
    return Customer(phones=numbers, **row.__dict__)


def create_customer(conn: psycopg.Connection, new: NewCustomer, region: str, actor: Actor) -> Customer:
    """A new customer in the caller's transaction, audited; CustomerRefused says what is wrong."""
    numbers = _numbers(new.phones, region)
    _check_national_id(conn, new.national_id, None)
    fields = new.model_dump(exclude={"phones"})
    customer_id = repo.insert_customer(conn, fields)
    repo.replace_phones(conn, customer_id, numbers)
    after = {**_jsonable(fields), "phones": numbers}
    audit.record(conn, actor, "customer-created", "customer", customer_id, after=after)
    created = get_customer(conn, customer_id)
    assert created is not None
    return created


def update_customer(
    conn: psycopg.Connection, customer_id: int, change: CustomerFields, region: str, actor: Actor
) -> Customer | None:
    """Change the fields given (``phones``: the whole list, the first for SMS), audited with the row
    before and after; None: no such customer."""
    if repo.get_customer(conn, customer_id, lock=True) is None:
        return None
    before = get_customer(conn, customer_id)
    assert before is not None
    fields = change.model_dump(exclude_unset=True, exclude={"phones"})
    if "name" in fields and fields["name"] is None:
        raise CustomerRefused("a customer's name cannot be empty")
    if "language" in fields and fields["language"] is None:
        del fields["language"]
    if "national_id" in fields:
        _check_national_id(conn, fields["national_id"], customer_id)
    if fields:
        repo.update_customer(conn, customer_id, fields)
    if change.phones is not None:
        repo.replace_phones(conn, customer_id, _numbers(change.phones, region))
    after = get_customer(conn, customer_id)
    assert after is not None
    keep = {"name", "national_id", "village", "district", "latitude", "longitude", "language", "phones"}
    old, new = before.model_dump(mode="json", include=keep), after.model_dump(mode="json", include=keep)
    audit.record(conn, actor, "customer-updated", "customer", customer_id, before=old, after=new)
    return after


def add_note(conn: psycopg.Connection, customer_id: int, note: NewCallNote, actor: Actor) -> CallNote:
    """A note of a call with the customer (about one of their units, or none), by the logged-in member
    of staff, audited. LookupError: no such customer or unit."""
    if repo.get_customer(conn, customer_id) is None:
        raise LookupError(f"no customer {customer_id}")
    unit_id = None
    if note.serial:
        unit_id = repo.unit_id_of(conn, note.serial)
        if unit_id is None:
            raise LookupError(f"no unit with serial {note.serial!r}")
    row = repo.insert_note(conn, customer_id, unit_id, actor.name, actor.user_id, note.body)
    audit.record(conn, actor, "call-note-added", "customer", customer_id,
                 after={"note_id": row.id, "serial": note.serial, "body": note.body})  # fmt: skip
    return CallNote(**row.__dict__)


def notes(conn: psycopg.Connection, customer_id: int, limit: int = 50) -> list[CallNote]:
    return [CallNote(**n.__dict__) for n in repo.notes_of(conn, customer_id, limit)]


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def units_of(conn: psycopg.Connection, customer_id: int) -> list[CustomerUnit]:
    return repo.units_of(conn, customer_id)


def reason(err: Exception) -> str:
    """What is wrong with a customer's details, in one sentence (a form's first invalid field)."""
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        field = ".".join(str(x) for x in first.get("loc", ()))
        return f"{field}: {str(first['msg']).removeprefix('Value error, ')}"
    return str(err)
