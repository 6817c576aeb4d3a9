"""The plain-JSON form of the vectorised preprocessing's column operations
(`scoring.model.column_ops`): no pickle, so a compiled model's preprocessing ships as text;
categories and fill values keep their type (str, int, float, bool, None; a non-finite float
as {"float": "nan" | "inf" | "-inf"}), and arrays their dtype.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scoring.model.column_ops import Encode, Impute, Op, Scale, Select


def op_to_json(op: Op) -> dict[str, Any]:
    """The plain-JSON form of an operation."""
    if isinstance(op, Impute):
        return {
            "op": "impute",
            "missing": scalar_to_json(op.missing),
            "floats": op.floats,
            "fit_dtype": op.fit_dtype.str,
            "fill": array_to_json(op.fill),
            "keep": [bool(k) for k in op.keep],
        }
    if isinstance(op, Encode):
        return {
            "op": op.kind,
            "categories": [array_to_json(c) for c in op.categories],
            "unknown_error": op.unknown_error,
            "dtype": op.dtype.str,
            "drop": [None if d is None else int(d) for d in op.drop],
            "unknown_value": scalar_to_json(op.unknown_value),
            "missing_value": scalar_to_json(op.missing_value),
            "missing_at": [None if m is None else int(m) for m in op.missing_at],
        }
    if isinstance(op, Scale):
        return {
            "op": op.kind,
            "first": None if op.first is None else array_to_json(op.first),
            "second": None if op.second is None else array_to_json(op.second),
            "clip": None if op.clip is None else [scalar_to_json(c) for c in op.clip],
        }
    return {
        "op": "select",
        "branches": [
            {"columns": list(picked), "steps": [op_to_json(s) for s in steps]}
            for picked, steps in op.branches
        ],
    }


def op_from_json(data: dict[str, Any]) -> Op:
    """An operation from its `op_to_json` form."""
    kind = data["op"]
    if kind == "impute":
        return Impute(
            missing=scalar_from_json(data["missing"]),
            floats=data["floats"],
            fit_dtype=np.dtype(data["fit_dtype"]),
            fill=array_from_json(data["fill"]),
            keep=np.array(data["keep"], dtype=bool),
        )
    if kind in ("onehot", "ordinal"):
        return Encode(
            kind=kind,
            categories=[array_from_json(c) for c in data["categories"]],
            unknown_error=data["unknown_error"],
            dtype=np.dtype(data["dtype"]),
            drop=list(data["drop"]),
            unknown_value=scalar_from_json(data["unknown_value"]),
            missing_value=scalar_from_json(data["missing_value"]),
            missing_at=list(data["missing_at"]),
        )
    if kind in ("standard", "minmax"):
        clip = data["clip"]
        return Scale(
            kind=kind,
            first=None if data["first"] is None else array_from_json(data["first"]),
            second=None if data["second"] is None else array_from_json(data["second"]),
            clip=None if clip is None else (scalar_from_json(clip[0]), scalar_from_json(clip[1])),
        )
    if kind == "select":
        return Select(
            [(list(b["columns"]), [op_from_json(s) for s in b["steps"]]) for b in data["branches"]]
        )
    raise ValueError(f"vectorised preprocessing: unknown operation '{kind}' in its JSON form")


def scalar_to_json(value: Any) -> Any:
    """A category / fill value as JSON, keeping its type: str, int, float, bool, None; a
    non-finite float as {"float": "nan" | "inf" | "-inf"}."""
    if value is None or isinstance(value, str):
        return None if value is None else str(value)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else {"float": repr(number)}
    raise TypeError(f"a {type(value).__name__} value ({value!r}) has no JSON form")


def scalar_from_json(value: Any) -> Any:
    """The value `scalar_to_json` wrote."""
    return float(value["float"]) if isinstance(value, dict) else value


def array_to_json(values: np.ndarray) -> dict[str, Any]:
    """A 1-D array as {"dtype", "values"}; `array_from_json` gives it back equal, dtype too."""
    return {"dtype": values.dtype.str, "values": [scalar_to_json(v) for v in values.tolist()]}


def array_from_json(data: dict[str, Any]) -> np.ndarray:
    """The array `array_to_json` wrote."""
    values = [scalar_from_json(v) for v in data["values"]]
    dtype = np.dtype(data["dtype"])
    if dtype.kind != "O":
        return np.array(values, dtype=dtype)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
