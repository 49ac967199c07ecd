"""A shipment of units received at a warehouse from a CSV file of serials: ``serial,product`` (the
product's code), one unit a line, with that header. The whole file is checked first; any bad line is
named by its number (``FileProblems``) and nothing is written. Then each unit is registered (its own
OpenPAYGO secret) in stock at the warehouse, with a stock move and an audit row."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import psycopg

import protocol
from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.inventory import repository
from backoffice.inventory.schemas import ReceiptResult, Where
from backoffice.registry import service as registry
from backoffice.textfiles import FileProblems, TextFileError, skip_bom, text_lines

COLUMNS = ("serial", "product")
SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,39}$")
MAX_LINE_BYTES = 1024
MAX_UNITS = 20_000


class ReceiptProblems(FileProblems):
    """A receipt file refused whole; ``errors`` names each bad line."""


def read_receipt(data: bytes, products: dict[str, int], name: str = "receipt.csv") -> list[tuple[int, str, int]]:
    """(line, serial, product id) of each unit in the file, or ReceiptProblems naming every bad line."""
    path = Path(name)
    f = io.BytesIO(data)
    errors: list[str] = []
    try:
        skip_bom(f, path)
        rows = list(csv.reader(text_lines(f, path, errors, MAX_LINE_BYTES)))
    except (TextFileError, csv.Error) as err:
        raise ReceiptProblems([f"{name}: {err}"]) from None
    if not rows or [c.strip().lower() for c in rows[0]] != list(COLUMNS):
        raise ReceiptProblems([f"{name} line 1: the header must be exactly 'serial,product'"] + errors)
    out: list[tuple[int, str, int]] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue  # a blank line (or one already named as unreadable)
        if len(row) != 2:
            errors.append(f"{name} line {number}: expected 2 fields (serial,product), found {len(row)}")
            continue
        serial, code = row[0].strip(), row[1].strip()
        reserved = protocol.reserved_serial(serial)
        if not SERIAL.match(serial):
            errors.append(f"{name} line {number}: serial {serial[:60]!r} is not 3-40 letters, digits, - or _")
        elif reserved:
            errors.append(f"{name} line {number}: {reserved}")
        elif serial in seen:
            errors.append(f"{name} line {number}: serial {serial} is on line {seen[serial]} already")
        else:
            seen[serial] = number
        if code not in products:
            errors.append(f"{name} line {number}: unknown product {code[:60]!r} (known: {', '.join(sorted(products))})")
        elif SERIAL.match(serial) and not reserved:
            out.append((number, serial, products[code]))
    if len(out) > MAX_UNITS:
        errors.append(f"{name}: {len(out):,} units; at most {MAX_UNITS:,} a file")
    if not out and not errors:
        errors.append(f"{name}: no units in the file")
    if errors:
        raise ReceiptProblems(sorted(errors, key=_line_number))
    return out


def _line_number(error: str) -> int:
    found = re.search(r" line (\d+):", error)
    return int(found.group(1)) if found else 0


def receive(
    conn: psycopg.Connection, actor: Actor, secret_key: str, location_id: int, data: bytes, name: str = "receipt.csv"
) -> ReceiptResult:
    """Receive a shipment at a warehouse, in the caller's transaction; ReceiptProblems writes nothing."""
    loc = repository.get_location(conn, location_id)
    if loc is None or loc.kind != "warehouse":
        raise ReceiptProblems([f"no warehouse {location_id}: units are received at a warehouse"])
    units = read_receipt(data, repository.product_ids_by_code(conn), name)
    taken = repository.existing_serials(conn, [s for _, s, _ in units])
    if taken:
        raise ReceiptProblems([f"{name} line {n}: serial {s} exists already" for n, s, _ in units if s in taken])
    here = Where("stock", location_id)
    for _, serial, product_id in units:
        unit_id = registry.register_unit(conn, secret_key, serial, product_id)
        repository.insert_unit_location(conn, unit_id, location_id)
        move_id = repository.insert_move(
            conn, actor.name, unit_id=unit_id, source=None, to=here, state_after="in_stock", reason=f"received ({name})"
        )
        audit.record(
            conn,
            actor,
            "unit-received",
            "unit",
            serial,
            after={"state": "in_stock", "location_id": location_id, "stock_move": move_id},
        )
    return ReceiptResult(location_id=location_id, received=len(units), serials=[s for _, s, _ in units])
