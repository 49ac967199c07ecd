"""The ledger as columns: one numpy array per field, so that a 40-million-row ledger fits and flies.

Every source (a CSV file, the validated rows of the careful reader, the live database) becomes a
``LedgerColumns``; the engine only ever sees these. Money stays exact: each amount is an integer
scaled by ``10**scale`` in its row's own currency.

``read_csv_columns`` is the fast path (Apache Arrow's multi-threaded CSV reader). It accepts only
input it can prove clean; anything doubtful returns ``None`` and the caller uses the careful
row-by-row reader of ``kpi.inputs``, which names every bad line.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from kpi.inputs import LEDGER_COLUMNS, STATUSES, TYPES, InputError, LedgerRow

EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal(): Arrow's date32 counts days from here
MAX_SCALE = 12
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
    product: Int32  # per row: product code
    day: Int32  # per row: date ordinal
    amount: Int  # per row: amount * 10**scale, in the row's currency
    scale: int
    currency: Int32  # per row: currency code
    completed: Bool  # per row: status == completed
    kind: Int8  # per row: index into kpi.inputs.TYPES

    def __len__(self) -> int:
        return len(self.day)


def _codes(values: Sequence[str]) -> tuple[list[str], Int32]:
    names: dict[str, int] = {}
    codes = np.fromiter((names.setdefault(v, len(names)) for v in values), dtype=np.int32, count=len(values))
    return list(names), codes


def columns_from_rows(rows: Sequence[LedgerRow]) -> LedgerColumns:
    """Columns from rows the careful reader has validated (types mapped, statuses known)."""
    scale = max((max(0, -int(r.amount.as_tuple().exponent)) for r in rows), default=0)
    if scale > MAX_SCALE:
        raise InputError([f"amounts with more than {MAX_SCALE} decimals are not supported"])
    receipt_ids, unit = _codes([r.receipt_id for r in rows])
    product_types, product = _codes([r.product_type for r in rows])
    currencies, currency = _codes([r.currency for r in rows])
    amounts = [int(r.amount.scaleb(scale)) for r in rows]
    if amounts and max(abs(a) for a in amounts) >= 2**62:
        raise InputError(["an amount is too large to be held exactly"])
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
    )


def _header(path: Path) -> list[str]:
    with path.open("rb") as f:
        first = f.readline()
    if first.startswith(codecs.BOM_UTF8):
        first = first[len(codecs.BOM_UTF8) :]
    return [h.strip().lower() for h in first.decode("utf-8", errors="replace").rstrip("\r\n").split(",")]


def _dictionary(column: pa.ChunkedArray, normalise: dict[str, str | None]) -> tuple[list[str], Int32] | None:
    """Codes and names of a dictionary column after ``normalise`` (None = a value we cannot accept)."""
    chunks = pa.chunked_array(column.chunks, type=column.type).unify_dictionaries()
    combined = chunks.combine_chunks() if chunks.num_chunks else pa.array([], type=column.type)
    if combined.null_count:
        return None
    names: dict[str, int] = {}
    lut = []
    for raw in combined.dictionary.to_pylist():
        value = normalise.get(raw) if normalise else raw.strip()
        if value is None or value == "":
            return None
        lut.append(names.setdefault(value, len(names)))
    indices = combined.indices.to_numpy(zero_copy_only=False)
    codes = np.asarray(lut, dtype=np.int32)[indices] if lut else np.zeros(0, dtype=np.int32)
    return list(names), codes


def _amounts(column: pa.ChunkedArray) -> tuple[Int, int] | None:
    text = pc.utf8_trim_whitespace(column)
    if text.null_count or not pc.all(pc.match_substring_regex(text, r"^-?[0-9]{1,17}(\.[0-9]{1,12})?$")).as_py():
        return None
    dot = pc.find_substring(text, ".").to_numpy(zero_copy_only=False)
    length = pc.utf8_length(text).to_numpy(zero_copy_only=False)
    decimals = np.where(dot >= 0, length - dot - 1, 0).astype(np.int64)
    scale = int(decimals.max(initial=0))
    try:
        digits = pc.cast(pc.replace_substring(text, ".", ""), pa.int64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, OverflowError):
        return None
    factor = 10 ** (scale - decimals)
    if len(digits) and np.abs(digits).max() >= 2**62 // int(factor.max()):
        return None
    return digits * factor, scale


def read_csv_columns(path: Path, type_map: dict[str, str]) -> LedgerColumns | None:
    """The ledger CSV read with Arrow, or None when anything in it needs the careful reader."""
    header = _header(path)
    if any(c not in header for c in LEDGER_COLUMNS) or len(set(header)) != len(header):
        return None
    dictionary = pa.dictionary(pa.int32(), pa.string())
    types: dict[str, pa.DataType] = dict.fromkeys(
        ("receipt_id", "currency", "status", "type", "product_type"), dictionary
    )
    types.update(date=pa.date32(), amount=pa.string())
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(
                include_columns=[c for c in LEDGER_COLUMNS if c != "customer_id"],
                column_types=types,
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if table.column("date").null_count:
        return None
    statuses = {s: s.strip().lower() for s in _distinct(table.column("status"))}
    kinds = {}
    for t in _distinct(table.column("type")):
        label = t.strip().lower()
        kinds[t] = type_map.get(label, label)
    if not set(statuses.values()) <= set(STATUSES) or not set(kinds.values()) <= set(TYPES):
        return None
    parsed = [
        _dictionary(table.column("receipt_id"), {}),
        _dictionary(table.column("product_type"), {}),
        _dictionary(table.column("currency"), {c: c.strip().upper() for c in _distinct(table.column("currency"))}),
        _dictionary(table.column("status"), dict(statuses)),
        _dictionary(table.column("type"), dict(kinds)),
    ]
    amounts = _amounts(table.column("amount"))
    clean = [p for p in parsed if p is not None]
    if amounts is None or len(clean) != len(parsed):
        return None
    (receipt_ids, unit), (product_types, product), (currencies, currency), status, kind = clean
    completed_code = status[0].index("completed") if "completed" in status[0] else -1
    kind_lut = np.array([TYPES.index(k) for k in kind[0]], dtype=np.int8)
    day = table.column("date").combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False) + EPOCH_ORDINAL
    return LedgerColumns(
        receipt_ids=receipt_ids,
        product_types=product_types,
        currencies=currencies,
        unit=unit,
        product=product,
        day=day.astype(np.int32),
        amount=amounts[0],
        scale=amounts[1],
        currency=currency,
        completed=status[1] == completed_code,
        kind=kind_lut[kind[1]] if len(kind_lut) else np.zeros(0, dtype=np.int8),
    )


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
