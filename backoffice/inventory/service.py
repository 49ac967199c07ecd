"""Moving units through their lifecycle and parts between locations, in the caller's transaction.

in stock (warehouse) → with an agent → installed at a customer → (paid off) → repossessed (with the
agent) → refurbishing (warehouse) → re-keyed (``rekey_unit``) → in stock again; or written off. A paid-off
unit is its customer's and is never repossessed. Every move updates the unit's one
location row only where it still is what the mover saw (compare and set), appends a ``stock_moves``
row and an audit row: of two concurrent moves of one unit exactly one succeeds, the other is refused
(``MoveRefused``) and its transaction writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from backoffice import crypto
from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.inventory import repository
from backoffice.inventory.schemas import KeySheet, Location, MoveAction, UnitWhere, Where
from backoffice.registry import repository as registry
from backoffice.registry import service as registry_service

GONE = Where("gone")


class MoveRefused(Exception):
    """A move that cannot be made (the unit is elsewhere or in another state, no such place, too few
    parts); the message says why, for people."""


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class Step:
    """An action of the lifecycle: the states it starts from, the state it leaves, where it goes."""

    from_states: tuple[str, ...]
    to_state: dict[str, str]  # state before -> state after
    from_places: tuple[str, ...]


STEPS: dict[str, Step] = {
    "assign_to_agent": Step(("in_stock",), {"in_stock": "with_agent"}, ("stock",)),
    "return_to_warehouse": Step(
        ("with_agent", "repossessed", "returned"),
        {"with_agent": "in_stock", "repossessed": "refurbishing", "returned": "refurbishing"},
        ("stock", "customer", "unknown"),
    ),
    "transfer": Step(
        ("in_stock", "refurbishing"), {"in_stock": "in_stock", "refurbishing": "refurbishing"}, ("stock",)
    ),
    "install": Step(("in_stock", "with_agent"), {"in_stock": "installed", "with_agent": "installed"}, ("stock",)),
    # Never a paid-off unit: it is its customer's (refused with the reason in move_unit).
    "repossess": Step(
        ("installed", "returned"), {"installed": "repossessed", "returned": "repossessed"}, ("customer", "unknown")
    ),
    "refurbished": Step(("refurbishing",), {"refurbishing": "in_stock"}, ("stock",)),
    "write_off": Step(
        ("in_stock", "with_agent", "repossessed", "refurbishing", "returned"),
        dict.fromkeys(("in_stock", "with_agent", "repossessed", "refurbishing", "returned"), "written_off"),
        ("stock", "customer", "unknown"),
    ),
}


def _warehouse(conn: psycopg.Connection, location_id: int | None) -> Location:
    if location_id is None:
        found = [loc for loc in repository.locations(conn) if loc.kind == "warehouse"]
        if not found:
            raise MoveRefused("there is no warehouse: add one first")
        return found[0]
    loc = repository.get_location(conn, location_id)
    if loc is None or loc.kind != "warehouse":
        raise MoveRefused(f"no warehouse {location_id}")
    return loc


def _agent_location(conn: psycopg.Connection, agent_id: int | None) -> Location:
    loc = None if agent_id is None else repository.location_of_agent(conn, agent_id)
    if loc is None:
        raise MoveRefused(
            "name the agent (agent_id) who takes the unit" if agent_id is None else f"no agent {agent_id}"
        )
    return loc


def _target(
    conn: psycopg.Connection,
    action: str,
    location_id: int | None,
    agent_id: int | None,
    customer_id: int | None,
    here: Where,
) -> Where:
    if action in ("assign_to_agent", "repossess"):
        return Where("stock", _agent_location(conn, agent_id).id)
    if action in ("return_to_warehouse", "transfer"):
        return Where("stock", _warehouse(conn, location_id).id)
    if action == "install":
        if customer_id is None or not repository.customer_exists(conn, customer_id):
            raise MoveRefused("name the customer (customer_id) the unit is installed for")
        return Where("customer", customer_id=customer_id)
    if action == "refurbished":
        return here
    return GONE


def move_unit(
    conn: psycopg.Connection,
    actor: Actor,
    unit_id: int,
    action: MoveAction,
    *,
    location_id: int | None = None,
    agent_id: int | None = None,
    customer_id: int | None = None,
    note: str | None = None,
    ticket_id: int | None = None,
    expected: Where | None = None,
) -> UnitWhere:
    """Make one lifecycle move of a unit; returns where it is now. ``expected``: where the caller saw it
    (a page shown earlier); by default where this transaction sees it. MoveRefused says why not."""
    step = STEPS[action]
    repository.track_untracked(conn, unit_id)
    now = repository.current(conn, unit_id)
    if now is None:
        raise NotFound(f"no unit {unit_id}")
    here, state = now
    seen = expected or here
    holder = registry.contract_holding_unit(conn, unit_id) if action == "repossess" else None
    if action == "repossess" and (state == "paid_off" or (holder is not None and holder[1] == "paid_off")):
        serial = registry.lock_unit(conn, unit_id)
        of = f" (contract {holder[0]})" if holder is not None else ""
        raise MoveRefused(f"unit {serial} is paid off{of}: it belongs to the customer and cannot be repossessed")
    if state not in step.from_states or here.place not in step.from_places:
        raise MoveRefused(
            f"a unit {state.replace('_', ' ')} ({here.place}) cannot be moved by {action}; "
            f"{action} moves units that are {' or '.join(step.from_states)}"
        )
    if holder is not None:  # active: else payments would go on buying light for a unit that is not there
        raise MoveRefused(f"contract {holder[0]} is still active: end it first (a repossession ticket closed "
                          "as done does both)")  # fmt: skip
    if action == "return_to_warehouse" and here.place == "stock":
        loc = repository.get_location(conn, here.location_id or 0)
        if loc is None or loc.kind != "agent":
            raise MoveRefused("the unit is not with an agent")
    to = _target(conn, action, location_id, agent_id, customer_id, here)
    if to == here and action != "refurbished":
        raise MoveRefused("the unit is there already")
    new_state = step.to_state[state]
    # Compare and set, location first: the row lock it takes serialises concurrent movers of this unit.
    if not repository.compare_and_set(conn, unit_id, seen, to):
        raise MoveRefused("the unit was moved by someone else meanwhile: reload and look where it is now")
    if not repository.set_state(conn, unit_id, new_state, (state,)):
        raise MoveRefused("the unit's state changed meanwhile: reload and try again")
    reason = action if not note else f"{action}: {note}"
    move_id = repository.insert_move(
        conn,
        actor.name,
        unit_id=unit_id,
        source=seen,
        to=to,
        state_before=state,
        state_after=new_state,
        reason=reason,
        ticket_id=ticket_id,
    )
    after = repository.unit_where(conn, unit_id)
    assert after is not None
    audit.record(
        conn,
        actor,
        f"unit-{action.replace('_', '-')}",
        "unit",
        after.serial,
        before={"state": state, "place": seen.place, "location_id": seen.location_id, "customer_id": seen.customer_id},
        after={
            "state": new_state,
            "place": to.place,
            "location_id": to.location_id,
            "customer_id": to.customer_id,
            "stock_move": move_id,
            "ticket": ticket_id,
            "note": note,
        },
    )
    return after


REKEY_STATES = ("in_stock", "refurbishing")  # at the depot, where the technician's provisioning tool is


def rekey_unit(conn: psycopg.Connection, actor: Actor, unit_id: int, secret_key: str, note: str | None) -> KeySheet:
    """Give a unit at the depot a new OpenPAYGO secret and starting code (its token count runs on), so that
    nothing its last customer was given works on it for the next one: a unit is sold once per key
    (contracts.service refuses the rest). The technician's provisioning tool writes the returned sheet
    into the unit; the step is recorded (``unit_keyings``, audited without the secret). MoveRefused: the
    unit is not at the depot, or a customer has it (active or paid off)."""
    repository.track_untracked(conn, unit_id)
    serial = registry.lock_unit(conn, unit_id)
    now = repository.current(conn, unit_id)
    if now is None:
        raise NotFound(f"no unit {unit_id}")
    here, state = now
    if state not in REKEY_STATES or here.place != "stock":
        raise MoveRefused(f"unit {serial} is {state.replace('_', ' ')}: a unit is re-keyed at the depot, "
                          "in stock or refurbishing")  # fmt: skip
    holder = registry.contract_holding_unit(conn, unit_id)
    if holder is not None:
        raise MoveRefused(f"contract {holder[0]} is {holder[1].replace('_', ' ')}: its unit keeps the key its "
                          "customer's tokens are made with")  # fmt: skip
    key_hex, starting_code = registry_service.new_key()
    generation, count = registry.set_unit_key(conn, unit_id, crypto.encrypt(secret_key, key_hex), starting_code)
    repository.insert_keying(conn, unit_id, generation, actor.name, note)
    audit.record(conn, actor, "unit-rekeyed", "unit", serial, before={"key_generation": generation - 1},
                 after={"key_generation": generation, "token_count": count, "note": note})  # fmt: skip
    return KeySheet(serial=serial, generation=generation, secret_key=key_hex, starting_code=starting_code,
                    token_count=count)  # fmt: skip


def add_parts(
    conn: psycopg.Connection,
    actor: Actor,
    sku: str,
    quantity: int,
    to_location_id: int,
    from_location_id: int | None = None,
    name: str | None = None,
    ticket_id: int | None = None,
) -> None:
    """Parts received at a location (``from_location_id`` None) or moved from one location to another."""
    if not repository.part_exists(conn, sku):
        if not name:
            raise MoveRefused(f"unknown part {sku!r}: give its name to add it")
        repository.insert_part(conn, sku, name)
    if repository.get_location(conn, to_location_id) is None:
        raise MoveRefused(f"no stock location {to_location_id}")
    source = None
    if from_location_id is not None:
        if from_location_id == to_location_id:
            raise MoveRefused("the parts are there already")
        take_parts(conn, from_location_id, sku, quantity)
        source = Where("stock", from_location_id)
    repository.add_parts(conn, to_location_id, sku, quantity)
    move_id = repository.insert_move(
        conn,
        actor.name,
        sku=sku,
        quantity=quantity,
        source=source,
        to=Where("stock", to_location_id),
        reason="parts moved" if source else "parts received",
        ticket_id=ticket_id,
    )
    audit.record(
        conn,
        actor,
        "parts-moved" if source else "parts-received",
        "part",
        sku,
        after={
            "quantity": quantity,
            "from_location_id": from_location_id,
            "to_location_id": to_location_id,
            "stock_move": move_id,
        },
    )


def take_parts(conn: psycopg.Connection, location_id: int, sku: str, quantity: int) -> None:
    if not repository.take_parts(conn, location_id, sku, quantity):
        held = repository.part_quantity(conn, location_id, sku)
        raise MoveRefused(f"only {held} of {sku} there, not {quantity}")


def use_parts(
    conn: psycopg.Connection,
    actor: Actor,
    location_id: int,
    sku: str,
    quantity: int,
    ticket_id: int,
    customer_id: int | None,
) -> None:
    """Parts a visit fitted: out of the agent's stock, into the customer's unit (a move, audited)."""
    if not repository.part_exists(conn, sku):
        raise MoveRefused(f"unknown part {sku!r}")
    take_parts(conn, location_id, sku, quantity)
    to = Where("customer", customer_id=customer_id) if customer_id else GONE
    move_id = repository.insert_move(
        conn,
        actor.name,
        sku=sku,
        quantity=quantity,
        source=Where("stock", location_id),
        to=to,
        reason="used on a visit",
        ticket_id=ticket_id,
    )
    audit.record(
        conn,
        actor,
        "parts-used",
        "part",
        sku,
        after={"quantity": quantity, "from_location_id": location_id, "ticket": ticket_id, "stock_move": move_id},
    )
