"""Dirt: which lines get which defect, and what a spoiled value looks like."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scoring.usecase import ColumnSpec, Contract, ContractError

from .knobs import (
    CODE,
    DIRT_SHARES,
    EVERY_DEFECT_FROM_LINES,
    INVALID_KINDS,
    UNKNOWN_LABELS,
    BoolArray,
    CodeArray,
    IntArray,
)
from .values import label_text

_NUMERIC: Final = re.compile(r"^(int|bigint|double|float|decimal\(\d+,\s*(\d+)\))$")


# --- which lines -------------------------------------------------------------------------


def share_count(rng: np.random.Generator, eligible: int, share: float) -> int:
    """How many of `eligible` lines get a kind: binomial, at least one in larger deliveries."""
    count = int(rng.binomial(eligible, share)) if eligible else 0
    return max(count, 1) if eligible >= EVERY_DEFECT_FROM_LINES else count


def pick(rng: np.random.Generator, pool: IntArray, count: int) -> IntArray:
    """`count` distinct members of `pool` (all when fewer), in ascending order."""
    chosen = rng.choice(pool, size=min(count, pool.size), replace=False)
    return np.sort(chosen).astype(np.int64)


def split_at_random(rng: np.random.Generator, rows: IntArray, ways: int) -> list[IntArray]:
    """`rows` dealt at random into `ways` groups, each in the order of `rows`."""
    target = rng.integers(ways, size=rows.size)
    return [rows[target == i] for i in range(ways)]


def kind_codes(size: int, kind: str) -> CodeArray:
    """`size` lines of one kind."""
    return np.full(size, CODE[kind], dtype=np.int8)


def assign_defects(
    rng: np.random.Generator, codes: CodeArray, eligible: BoolArray, contract: Contract
) -> None:
    """Give a few eligible lines one defect each, in place; no line gets two."""
    kinds = [k for k in INVALID_KINDS if k == "malformed" or defect_columns(contract, k)]
    candidates = np.flatnonzero(eligible)
    counts = [share_count(rng, candidates.size, DIRT_SHARES[k]) for k in kinds]
    total = min(sum(counts), candidates.size)
    chosen = rng.choice(candidates, size=total, replace=False)
    codes[chosen] = np.repeat(np.array([CODE[k] for k in kinds], dtype=np.int8), counts)[:total]


def defect_columns(contract: Contract, kind: str) -> tuple[ColumnSpec, ...]:
    """The columns a field defect can hit; identifiers are the columns with a pattern."""
    checks: dict[str, Callable[[ColumnSpec], bool]] = {
        "null_key": lambda c: not c.nullable and c.pattern is not None,
        "null_required": lambda c: not c.nullable and c.pattern is None,
        "unknown_category": lambda c: c.allowed is not None,
        "bad_cast": lambda c: c.type != "string",
        "out_of_range": lambda c: c.range is not None and (c.type == "date" or _is_number(c)),
    }
    return tuple(c for c in contract.columns if checks[kind](c))


# --- spoiled values ----------------------------------------------------------------------


def _is_number(spec: ColumnSpec) -> bool:
    """Whether the column holds a number (written bare in JSON)."""
    return _NUMERIC.match(spec.type) is not None


def is_json_string(spec: ColumnSpec) -> bool:
    """Whether JSON lines write the column's values as strings."""
    return not _is_number(spec) and spec.type != "boolean"


def bad_text(
    kind: str, spec: ColumnSpec, clean: pa.Array, rng: np.random.Generator
) -> tuple[pa.Array, bool]:
    """The spoiled text of `clean` values for a field defect, and whether JSON quotes it."""
    if kind in ("null_key", "null_required"):
        return pa.nulls(len(clean), pa.string()), False
    if kind == "unknown_category":
        labels = tuple(label for label in UNKNOWN_LABELS if label not in (spec.allowed or ()))
        if not labels:
            raise ContractError(f"column '{spec.name}' allows every label of UNKNOWN_LABELS")
        return label_text(labels, rng.integers(len(labels), size=len(clean))), True
    if kind == "bad_cast":
        return _uncastable(spec, clean), True
    return _out_of_range(spec, len(clean), rng), is_json_string(spec)


def _uncastable(spec: ColumnSpec, clean: pa.Array) -> pa.Array:
    """Values that look right to a person but fail the cast to the column's type."""
    if spec.type in ("date", "timestamp"):
        # A local date format instead of ISO: 15.03.2026 (13:45).
        clean = pc.fill_null(clean, "1970-01-01T00:00:00Z")
        day = pc.utf8_slice_codeunits(clean, 8, 10)
        month = pc.utf8_slice_codeunits(clean, 5, 7)
        local = pc.binary_join_element_wise(day, month, pc.utf8_slice_codeunits(clean, 0, 4), ".")
        if spec.type == "date":
            return local
        return pc.binary_join_element_wise(local, pc.utf8_slice_codeunits(clean, 11, 16), " ")
    if spec.type == "boolean":
        return pc.if_else(pc.equal(pc.fill_null(clean, "true"), "false"), "nein", "ja")
    # A decimal comma and the letter O for the last digit: 12.50 -> 12,5O. The letter makes
    # every parser fail; a comma alone would pass a locale-aware one (12,50 -> 1250).
    filled = pc.fill_null(clean, str(spec.range[0]) if spec.range else "0")
    commas = pc.replace_substring(pc.utf8_slice_codeunits(filled, 0, -1), ".", ",")
    return pc.binary_join_element_wise(commas, "O", "")


def _out_of_range(spec: ColumnSpec, count: int, rng: np.random.Generator) -> pa.Array:
    """Values one range-width below or above the contract's range."""
    assert spec.range is not None  # defect_columns only offers columns with a range
    if spec.type == "date":
        low, high = (datetime.date.fromisoformat(str(v)) for v in spec.range)
        span = min(high - low, low - datetime.date.min, datetime.date.max - high)
        options = ((low - span).isoformat(), (high + span).isoformat())
    else:
        low_number, high_number = float(spec.range[0]), float(spec.range[1])
        width = high_number - low_number
        options = (_number_text(spec, low_number - width), _number_text(spec, high_number + width))
    return label_text(options, rng.integers(2, size=count))


def _number_text(spec: ColumnSpec, value: float) -> str:
    """A number as the column's type writes it: decimals with their scale, integers bare."""
    match = _NUMERIC.match(spec.type)
    if match and match.group(2) is not None:
        return f"{value:.{int(match.group(2))}f}"
    return str(int(value)) if spec.type in ("int", "bigint") else repr(value)


# --- arrays of lines ---------------------------------------------------------------------


def take_rows(values: pa.Array, rows: IntArray) -> pa.Array:
    """The values at positions `rows`, in that order."""
    return pc.take(values, pa.array(rows))


def replace_rows(values: pa.Array, rows: IntArray, replacements: pa.Array) -> pa.Array:
    """`values` with the ascending positions `rows` replaced, in order, by `replacements`."""
    mask = np.zeros(len(values), dtype=np.bool_)
    mask[rows] = True
    return pc.replace_with_mask(values, pa.array(mask), replacements)
