"""The text of clean values as the raw files spell them, and what the contracts allow."""

from __future__ import annotations

import datetime
import re
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scoring.usecase import ColumnSpec, Contract, ContractError

from .knobs import DRIFT_CHANNEL, EPOCH, IntArray

_ID_PATTERN: Final = re.compile(r"^\^([A-Za-z]*)\[0-9\]\{(\d+)\}\$$")


# --- text of values ----------------------------------------------------------------------


def id_format(spec: ColumnSpec) -> tuple[str, int]:
    """The prefix and digit count of an identifier, read from its pattern (`^C[0-9]{7}$`)."""
    match = _ID_PATTERN.match(spec.pattern or "")
    if not match:
        raise ContractError(
            f"column '{spec.name}': the demo generator needs a pattern like '^C[0-9]{{7}}$', "
            f"got {spec.pattern!r}"
        )
    return match.group(1), int(match.group(2))


def id_text(spec: ColumnSpec, numbers: IntArray) -> pa.Array:
    """Identifiers as the contract's pattern spells them."""
    prefix, width = id_format(spec)
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def date_text(days: IntArray) -> pa.Array:
    """ISO dates of day numbers."""
    return pc.cast(pa.array(days.astype(np.int32), pa.date32()), pa.string())


def timestamp_text(seconds: IntArray) -> pa.Array:
    """ISO 8601 UTC timestamps with whole seconds: `2026-03-01T13:45:10Z`."""
    text = pc.cast(pa.array(seconds, pa.timestamp("s")), pa.string())
    return pc.binary_join_element_wise(pc.replace_substring(text, " ", "T"), "Z", "")


def label_text(labels: tuple[str, ...], index: IntArray) -> pa.Array:
    """Labels by position; a negative position is a null."""
    return pc.take(pa.array(labels, pa.string()), pa.array(index, mask=index < 0))


def integer_text(values: IntArray) -> pa.Array:
    """Integers as text; a negative value is a null."""
    return pc.cast(pa.array(values, mask=values < 0), pa.string())


def boolean_text(values: IntArray) -> pa.Array:
    """`true` / `false` for 1 / 0; a negative value is a null."""
    return label_text(("false", "true"), values)


def amount_text(cents: IntArray) -> pa.Array:
    """Amounts in cents as decimals with two places: `12.50`, `-0.05`."""
    magnitude = np.abs(cents)
    sign = pc.if_else(pa.array(cents < 0), "-", "")
    units = pc.cast(pa.array(magnitude // 100), pa.string())
    hundredths = pc.utf8_lpad(pc.cast(pa.array(magnitude % 100), pa.string()), 2, "0")
    return pc.binary_join_element_wise(sign, units, ".", hundredths, "")


# --- what the contracts allow ------------------------------------------------------------


def day_number(value: Any) -> int:
    """Days since 1970-01-01 of a contract date (a date or an ISO string)."""
    return (datetime.date.fromisoformat(str(value)) - EPOCH).days


def allowed_values(contract: Contract, column: str) -> tuple[str, ...]:
    """The allowed values of a column; ContractError when the contract has none."""
    allowed = contract.column(column).allowed
    if not allowed:
        raise ContractError(f"{contract.path}: column '{column}' needs 'allowed' for the demo")
    return allowed


def value_range(contract: Contract, column: str) -> tuple[Any, Any]:
    """The range of a column; ContractError when the contract has none."""
    bounds = contract.column(column).range
    if bounds is None:
        raise ContractError(f"{contract.path}: column '{column}' needs 'range' for the demo")
    return bounds


def drift_channel(contract: Contract) -> str:
    """DRIFT_CHANNEL, checked against the contract's channels."""
    if DRIFT_CHANNEL not in allowed_values(contract, "channel"):
        raise ContractError(f"{contract.path}: channel '{DRIFT_CHANNEL}' is not allowed")
    return DRIFT_CHANNEL
