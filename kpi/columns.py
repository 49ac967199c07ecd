"""The ledger as columns: one numpy array per field, so that a 40-million-row ledger fits and flies.

Every source (a CSV file, the validated rows of the careful reader, the live database) becomes a
``LedgerColumns``; the engine only ever sees these. Money stays exact: each amount is an integer
scaled by ``10**scale`` in its row's own currency.

``read_csv_columns`` is the fast path (Apache Arrow's multi-threaded CSV reader). It accepts only
input it can prove clean; anything doubtful returns ``None`` and the caller uses the careful
row-by-row reader of ``kpi.inputs``, which names every bad line. Arrow checks only the columns it
converts, so a scan of the raw bytes (``_plain_text``, alongside Arrow's parse) makes sure the rest
of the file would pass the careful reader too: UTF-8, no NUL, no line over ``MAX_LINE_BYTES``.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from kpi.inputs import (
    FIRST_DAY,
    LAST_DAY,
    LEDGER_COLUMNS,
    MAX_DECIMALS,
    MAX_LINE_BYTES,
    STATUSES,
    TYPES,
    InputError,
    LedgerRow,
    check_file,
    decimals,
)

_T = TypeVar("_T")
EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal(): Arrow's date32 counts days from here
MAX_SCALE = MAX_DECIMALS
AMOUNT_DECIMALS = 9  # the fast reader's decimal scale; more decimals go to the careful reader
Int = npt.NDArray[np.int64]
Int32 = npt.NDArray[np.int32]
Int8 = npt.NDArray[np.int8]
Bool = npt.NDArray[np.bool_]


@dataclass
class LedgerColumns:
    receipt_ids: list[str]  # unit code -> receipt_id
    product_types: list[str]  # product code -> product_type (as named in the ledger)
    currencies: list[str]  # currency code -> ISO 4217
    unit: Int32  # per row: unit code
    product: npt.NDArray[np.integer]  # per row: product code
    day: Int32  # per row: date ordinal
    amount: Int  # per row: amount * 10**scale, in the row's currency
    scale: int
    currency: npt.NDArray[np.integer]  # per row: currency code
    completed: Bool  # per row: status == completed
    kind: Int8  # per row: index into kpi.inputs.TYPES
    # per unit: the customer_id of its first row in the file (the loan tape's customer_id)
    customer_ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.day)


def _codes(values: Sequence[str]) -> tuple[list[str], Int32]:
    names: dict[str, int] = {}
    codes = np.fromiter((names.setdefault(v, len(names)) for v in values), dtype=np.int32, count=len(values))
    return list(names), codes


def columns_from_rows(rows: Sequence[LedgerRow]) -> LedgerColumns:
    """Columns from rows the careful reader has validated (types mapped, statuses known)."""
    places = [decimals(r.amount) for r in rows]
    scale = max(places, default=0)
    if scale > MAX_SCALE:
        line = rows[places.index(scale)].line
        raise InputError([f"ledger line {line}: amounts with more than {MAX_SCALE} decimals are not supported"])
    receipt_ids, unit = _codes([r.receipt_id for r in rows])
    product_types, product = _codes([r.product_type for r in rows])
    currencies, currency = _codes([r.currency for r in rows])
    amounts = [int(r.amount.scaleb(scale)) for r in rows]
    if amounts and max(abs(a) for a in amounts) >= 2**62:
        big = max(rows, key=lambda r: abs(r.amount))
        fine = rows[places.index(scale)]
        where = f"line {big.line}" if fine is big else f"lines {fine.line} and {big.line}"
        why = f"amounts of {scale} decimals as large as {big.amount} cannot be held exactly (18 digits at most)"
        raise InputError([f"ledger {where}: {why}; round the amounts to fewer decimals"])
    return LedgerColumns(
        receipt_ids=receipt_ids,
        product_types=product_types,
        currencies=currencies,
        unit=unit,
        product=product,
        day=np.array([r.day.toordinal() for r in rows], dtype=np.int32),
        amount=np.array(amounts, dtype=np.int64),
        scale=scale,
        currency=currency,
        completed=np.array([r.status == "completed" for r in rows], dtype=np.bool_),
        kind=np.array([TYPES.index(r.type) for r in rows], dtype=np.int8),
        customer_ids=[rows[i].customer_id for i in first_rows(unit)],
    )


def first_rows(unit: Int32) -> list[int]:
    """Per unit code: the index of its first row. Codes are numbered in order of first appearance,
    so a unit's first row is where the running maximum of the codes rises."""
    if not len(unit):
        return []
    running = np.maximum.accumulate(unit)
    rises = np.flatnonzero(np.diff(running, prepend=np.int32(-1)) > 0)
    return rises.tolist()


def _header(path: Path) -> list[str]:
    with path.open("rb") as f:
        first = f.readline(MAX_LINE_BYTES + 1)
    if first.startswith(codecs.BOM_UTF8):
        first = first[len(codecs.BOM_UTF8) :]
    text = first.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n").split("\n")[0]
    try:
        fields = next(csv.reader([text]), [])
    except csv.Error:
        return []  # the careful reader says what is wrong with it
    return [h.strip().lower() for h in fields]


def _dictionary(column: pa.ChunkedArray, normalise: dict[str, str]) -> tuple[list[str], Int8] | None:
    """Codes and names of a small dictionary column after ``normalise`` ("" = a value we cannot accept).
    Chunk by chunk (each has its own dictionary), so no unified copy of the column is ever made."""
    if column.null_count:
        return None
    names: dict[str, int] = {}
    parts = []
    for chunk in column.chunks:
        lut = []
        for raw in chunk.dictionary.to_pylist():
            value = normalise.get(raw, "")
            if not value:
                return None
            lut.append(names.setdefault(value, len(names)))
        if len(names) > 127:
            return None  # not a small dictionary after all: the careful reader copes
        parts.append(np.asarray(lut, dtype=np.int8)[chunk.indices.to_numpy(zero_copy_only=False)])
    return list(names), np.concatenate(parts) if parts else np.zeros(0, dtype=np.int8)


def _receipts(column: pa.ChunkedArray) -> tuple[list[str], Int32] | None:
    """Unit codes for the receipt ids (one hash table over all of them)."""
    if column.null_count:
        return None
    encoded = column.dictionary_encode()
    if not encoded.num_chunks:
        return [], np.zeros(0, dtype=np.int32)
    names = encoded.chunk(0).dictionary
    trimmed = pc.utf8_trim_whitespace(names)
    if not pc.all(pc.equal(trimmed, names)).as_py() or pc.any(pc.equal(pc.utf8_length(names), 0)).as_py():
        return None  # padded or blank ids: the careful reader trims and reports
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks])
    return names.to_pylist(), codes.astype(np.int32, copy=False)


def _amounts(column: pa.ChunkedArray) -> tuple[Int, int] | None:
    """Decimal128(38, 9) values as int64 at the smallest scale that keeps them exact."""
    if column.null_count:
        return None
    parts = []
    for chunk in column.chunks:
        words = np.frombuffer(chunk.buffers()[1], dtype=np.int64, count=2 * len(chunk), offset=chunk.offset * 16)
        low, high = words[0::2], words[1::2]
        if not (high == (low >> 63)).all():  # the value does not fit in 64 bits
            return None
        parts.append(low)
    values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    del parts
    if len(values) and max(-int(values.min()), int(values.max())) >= 2**62:
        return None
    for scale in range(AMOUNT_DECIMALS + 1):
        step = 10 ** (AMOUNT_DECIMALS - scale)
        if not (values % step).any():
            return values // step, scale
    raise AssertionError("unreachable: a step of 1 divides everything")


def read_csv_columns(path: Path, type_map: dict[str, str], customers: bool = True) -> LedgerColumns | None:
    """The ledger CSV read with Arrow, or None when anything in it needs the careful reader.
    A path that is not a readable regular file raises InputError. Without ``customers`` the
    customer_id column is not read (less memory; the database gives its contracts' customers itself)."""
    check_file(path, "ledger")
    try:
        header = _header(path)
    except OSError:
        return None  # the careful reader says what it cannot read
    if any(c not in header for c in LEDGER_COLUMNS) or len(set(header)) != len(header):
        return None
    dictionary = pa.dictionary(pa.int32(), pa.string())
    types: dict[str, pa.DataType] = dict.fromkeys(
        ("currency", "status", "type", "product_type", "customer_id"), dictionary
    )
    types.update(date=pa.date32(), receipt_id=pa.string(), amount=pa.decimal128(38, AMOUNT_DECIMALS))
    # One helper thread: it scans the raw bytes while Arrow parses, then hashes the receipt ids.
    with ThreadPoolExecutor(1) as pool:
        plain = pool.submit(_plain_text, path)
        try:
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=1 << 24),
                convert_options=pacsv.ConvertOptions(
                    include_columns=[c for c in LEDGER_COLUMNS if customers or c != "customer_id"],
                    column_types=types,
                    strings_can_be_null=False,
                ),
            )
        except (pa.ArrowException, UnicodeDecodeError, OSError):
            return None  # a malformed date or amount, a short row, ...: the careful reader says which line
        if not plain.result() or table.column("date").null_count or not _dates_in_range(table.column("date")):
            return None  # NUL, not UTF-8, a line too long, a date out of range: the careful reader says where
        columns = {name: table.column(name) for name in table.column_names}
        del table  # each column is let go as soon as it is converted, to keep the peak low

        def convert(name: str, how: Callable[[pa.ChunkedArray], _T]) -> _T:
            out = how(columns.pop(name))
            pa.default_memory_pool().release_unused()
            return out

        # the receipt ids are hashed on the helper thread while this thread does the rest
        pending = pool.submit(_receipts, columns.pop("receipt_id"))
        kinds = {}
        for t in _distinct(columns["type"]):
            label = type_map.get(t.strip().lower(), t.strip().lower())
            kinds[t] = label if label in TYPES else ""
        statuses = {}
        for s in _distinct(columns["status"]):
            statuses[s] = s.strip().lower() if s.strip().lower() in STATUSES else ""
        products = {p: p.strip() for p in _distinct(columns["product_type"])}
        currencies = {c: c.strip().upper() for c in _distinct(columns["currency"])}
        small = [
            convert("product_type", lambda c: _dictionary(c, products)),
            convert("currency", lambda c: _dictionary(c, currencies)),
            convert("status", lambda c: _dictionary(c, statuses)),
            convert("type", lambda c: _dictionary(c, kinds)),
        ]
        amounts = convert("amount", _amounts)
        day = convert(
            "date", lambda c: c.combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False) + EPOCH_ORDINAL
        )
        receipts = pending.result()
        customer_ids: list[str] = []
        if customers:
            column = columns.pop("customer_id")
            firsts = pa.array(first_rows(receipts[1]) if receipts else [], type=pa.int64())
            picked = column.take(firsts).cast(pa.string()).to_pylist() if len(firsts) else []
            customer_ids = [c.strip() for c in picked]
            del column
    pa.default_memory_pool().release_unused()  # give the parsed text back before the engine builds
    clean = [p for p in small if p is not None]
    if len(clean) != len(small) or amounts is None or receipts is None:
        return None
    (product_types, product), (currency_names, currency), status, kind = clean
    kind_lut = np.array([TYPES.index(k) for k in kind[0]], dtype=np.int8)
    return LedgerColumns(
        receipt_ids=receipts[0],
        product_types=product_types,
        currencies=currency_names,
        unit=receipts[1],
        product=product,
        day=day.astype(np.int32),
        amount=amounts[0],
        scale=amounts[1],
        currency=currency,
        completed=status[1] == (status[0].index("completed") if "completed" in status[0] else -1),
        kind=kind_lut[kind[1]] if len(kind_lut) else np.zeros(0, dtype=np.int8),
        customer_ids=customer_ids,
    )


def _dates_in_range(column: pa.ChunkedArray) -> bool:
    if not len(column):
        return True
    lo, hi = pc.min_max(column).values()
    return bool(FIRST_DAY <= lo.as_py() and hi.as_py() <= LAST_DAY)


def _plain_text(path: Path) -> bool:
    """The whole file is UTF-8 without NUL bytes or lines over MAX_LINE_BYTES (what the careful reader
    accepts), in one pass of memory bandwidth: chunks of the line limit, so that only a line running
    across a chunk boundary can be too long, and ASCII chunks (the usual ledger) need no decoding."""
    buf = bytearray(MAX_LINE_BYTES)
    decoder = codecs.getincrementaldecoder("utf-8")()
    since_newline = 0  # bytes of the current line seen so far
    try:
        with path.open("rb", buffering=0) as f:
            while n := f.readinto(buf):
                chunk = buf if n == len(buf) else buf[:n]
                if chunk.find(b"\x00") >= 0:
                    return False
                if not chunk.isascii() or decoder.getstate()[0]:
                    decoder.decode(chunk)
                first = chunk.find(b"\n")
                if first < 0:
                    since_newline += n
                else:
                    if since_newline + first > MAX_LINE_BYTES:
                        return False
                    since_newline = n - chunk.rfind(b"\n") - 1
                if since_newline > MAX_LINE_BYTES:
                    return False
            decoder.decode(b"", final=True)
    except (UnicodeDecodeError, OSError):
        return False
    return True


def _distinct(column: pa.ChunkedArray) -> list[str]:
    values: set[str] = set()
    for chunk in column.chunks:
        values.update(v for v in chunk.dictionary.to_pylist() if v is not None)
    return sorted(values)


def scaled(value: Decimal, scale: int) -> int:
    """An exact decimal as an integer of 10**-scale units (the caller chose a scale that fits)."""
    out = value.scaleb(scale)
    if out != out.to_integral_value():
        raise ValueError(f"{value} has more than {scale} decimals")
    return int(out)


# --- the live database: binary arrays straight into the columns (no file, no Python object per row) ---

PG_EPOCH_ORDINAL = 730120  # date(2000, 1, 1).toordinal(): PostgreSQL's binary dates count days from here
_CHUNK_ROWS = 1 << 17  # the least the columns grow by


class Growing:
    """Per-row columns filled block by block, grown by a quarter when full (no list of pieces)."""

    def __init__(self, capacity: int) -> None:
        self.n = 0
        self.cols: dict[str, npt.NDArray[Any]] = {
            "contract": np.empty(capacity, np.int64), "day": np.empty(capacity, np.int32),
            "amount": np.empty(capacity, np.int64), "currency": np.empty(capacity, np.int8),
            "kind": np.empty(capacity, np.int8), "completed": np.empty(capacity, np.bool_),
        }  # fmt: skip

    def extend(self, values: dict[str, npt.NDArray[Any]]) -> None:
        k = len(values["day"])
        if self.n + k > len(self.cols["day"]):
            size = max(self.n + k, len(self.cols["day"]) * 5 // 4 + _CHUNK_ROWS)
            for name, col in self.cols.items():
                grown = np.empty(size, col.dtype)
                grown[: self.n] = col[: self.n]
                self.cols[name] = grown
        for name, col in self.cols.items():
            col[self.n : self.n + k] = values[name]
        self.n += k

    def take(self) -> dict[str, npt.NDArray[Any]]:
        return {name: col[: self.n] for name, col in self.cols.items()}


def columns_from_database(
    rows: dict[str, npt.NDArray[Any]],
    contract_ids: Sequence[int],
    account_numbers: Sequence[str],
    customer_ids: Sequence[str],
    product_codes: Sequence[str],
    currencies: Sequence[str],
    exponents: Sequence[int],
) -> LedgerColumns | None:
    """The engine's columns from the database's rows (``read_array_chunks``) and contracts (in the order
    the CSV export numbers its units: by account number), exactly as ``read_csv_columns`` makes them
    from the export's file: the same units, codes, common decimal scale and amounts. None when
    something needs the careful path (a currency or type outside the lists, a date out of range,
    amounts too large): the caller then reads through the export, which names the problem."""
    # Taken out of ``rows`` so that each array is let go as soon as it is replaced (a lower peak).
    contract, day, amount = rows.pop("contract"), rows.pop("day"), rows.pop("amount")
    cur, kind, completed = rows.pop("currency"), rows.pop("kind"), rows.pop("completed")
    if len(day) and not ((cur > 0).all() and (kind > 0).all()):
        return None
    # Contract id -> rank by account number: a table when ids are dense (serials), else a search.
    ids = np.asarray(contract_ids, dtype=np.int64)
    if not len(ids):
        return None if len(day) else _empty_columns()
    if ids.min() >= 0 and ids.max() < 4 * len(ids) + (1 << 20):
        table = np.full(int(ids.max()) + 1, -1, dtype=np.int32)
        table[ids] = np.arange(len(ids), dtype=np.int32)
        if len(contract) and (contract.min() < 0 or contract.max() > ids.max()):
            return None
        rank = table[contract]
        del table
    else:
        order = np.argsort(ids, kind="stable")
        at = np.minimum(np.searchsorted(ids[order], contract), len(ids) - 1)
        rank = np.where(ids[order][at] == contract, order[at], -1).astype(np.int32)
    del contract
    if len(rank) and rank.min() < 0:
        return None
    # Units are the contracts with rows, numbered in account-number order (as the export's file does).
    used = np.bincount(rank, minlength=len(ids)) > 0
    code = np.cumsum(used, dtype=np.int32) - 1
    unit = code[rank]
    del rank, code
    present = np.flatnonzero(used)
    lo = _ordinal_of(FIRST_DAY) - PG_EPOCH_ORDINAL
    hi = _ordinal_of(LAST_DAY) - PG_EPOCH_ORDINAL
    if len(day) and (int(day.min()) < lo or int(day.max()) > hi):
        return None
    # Products: codes in order of first appearance, as _codes numbers them (any order would do).
    product_types, product_of_contract = _codes([product_codes[i] for i in present.tolist()])
    # Currencies actually used, renumbered; amounts on one scale, then the smallest scale that keeps
    # every amount exact (what the decimal text of the export gives the CSV reader).
    cur -= 1
    used_cur = np.flatnonzero(np.bincount(cur, minlength=len(currencies)))
    names = [currencies[i] for i in used_cur.tolist()]
    remap = np.zeros(len(currencies), dtype=np.int8)
    remap[used_cur] = np.arange(len(used_cur), dtype=np.int8)
    top = max((exponents[i] for i in used_cur.tolist()), default=0)
    lift = np.array([10 ** (top - e) for e in exponents], dtype=np.int64)
    if len(amount) and max(-int(amount.min()), int(amount.max())) * int(lift.max()) >= 2**62:
        return None
    if (lift != 1).any():
        amount = amount * lift[cur]
    scale = top
    for s in range(top + 1):
        step = 10 ** (top - s)
        if step == 1 or not (amount % step).any():
            amount = amount // step if step > 1 else amount
            scale = s
            break
    day += PG_EPOCH_ORDINAL
    kind -= 1
    currency = remap[cur] if len(names) > 1 else np.zeros(len(cur), dtype=np.int8)
    del cur
    # In date order here, one column at a time, so that the engine finds them sorted (the same
    # stable sort it would make, without holding every column twice).
    if len(day) > 1 and not (day[1:] >= day[:-1]).all():
        offset = day - day.min()
        order = np.argsort(offset.astype(np.uint16) if offset.max() < 1 << 16 else offset, kind="stable")
        del offset
        day, unit, amount = day[order], unit[order], amount[order]
        currency, completed, kind = currency[order], completed[order], kind[order]
        del order
    return LedgerColumns(
        receipt_ids=[account_numbers[i] for i in present.tolist()],
        product_types=product_types,
        currencies=names,
        unit=unit,
        product=product_of_contract.astype(np.int8 if len(product_types) < 128 else np.int32)[unit],
        day=day,
        amount=amount,
        scale=scale,
        currency=currency,
        completed=completed,
        kind=kind,
        customer_ids=[customer_ids[i] for i in present.tolist()],
    )


def _ordinal_of(day: date) -> int:
    return day.toordinal()


def _empty_columns() -> LedgerColumns:
    return LedgerColumns(
        receipt_ids=[], product_types=[], currencies=[], unit=np.zeros(0, np.int32), product=np.zeros(0, np.int8),
        day=np.zeros(0, np.int32), amount=np.zeros(0, np.int64), scale=0, currency=np.zeros(0, np.int8),
        completed=np.zeros(0, np.bool_), kind=np.zeros(0, np.int8),
    )  # fmt: skip


def _array(data: bytes, element: str, width: int) -> npt.NDArray[Any] | None:
    """The values of a one-dimensional PostgreSQL binary array without NULLs (``array_send``)."""
    head = np.frombuffer(data, ">i4", count=5) if len(data) >= 20 else None
    if head is None or head[0] != 1 or head[1] != 0 or len(data) != 20 + int(head[3]) * (4 + width):
        return None
    values = np.frombuffer(data, [("n", ">i4"), ("v", element)], offset=20)
    if not (values["n"] == width).all():
        return None
    return values["v"]


def read_array_chunks(
    chunks: Iterable[tuple[bytes | None, bytes | None, bytes | None, bytes | None]], expected_rows: int
) -> dict[str, npt.NDArray[Any]] | None:
    """The columns of the ledger from ``kpi.repository.ledger_arrays`` results, or None if one is not
    what the query makes."""
    out = Growing(max(expected_rows, 1))
    for contract, day, amount, code in chunks:
        if contract is None or day is None or amount is None or code is None:
            continue  # no rows in that id range
        parts = (_array(contract, ">i8", 8), _array(day, ">i4", 4), _array(amount, ">i8", 8), _array(code, ">i4", 4))
        if any(p is None for p in parts) or len({len(p) for p in parts if p is not None}) != 1:
            return None
        c, d, a, k = (p for p in parts if p is not None)
        out.extend({"contract": c, "day": d, "amount": a, "currency": k >> 8, "kind": (k >> 1) & 127,
                    "completed": (k & 1).astype(np.bool_)})  # fmt: skip
    return out.take()
