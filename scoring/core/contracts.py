"""Data contracts: YAML files read into typed objects and Spark schemas.

A contract is written once, as YAML, and everything else is derived from it: the Spark
schema a source is read with, the checks its rows must pass, and the tests' fixtures. The
engine's own tables have their contracts in `schemas/` (`load_contract`); a use case's
sources and features have theirs in the use case folder (`read_contract`).

Example:
    >>> contract = load_contract("quarantine")
    >>> contract.partition_by
    ('delivery_date',)
    >>> spark_schema(contract)["reasons"].dataType
    ArrayType(StringType(), True)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pyspark.sql import types as T

from scoring.core.errors import ContractError
from scoring.core.resources import resource_dir
from scoring.core.yamlfile import read_mapping

_SIMPLE_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "bigint": T.LongType(),
    "double": T.DoubleType(),
    "float": T.FloatType(),
    "boolean": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_ARRAY = re.compile(r"^array<(.+)>$")
_MAP = re.compile(r"^map<\s*(\w+)\s*,\s*(.+)>$")
FORMATS = ("csv", "jsonl", "parquet")
#: How a delivered decimal with more digits than its type may be stored (none: quarantined).
ROUNDINGS = ("half_up", "half_even")
#: What a re-delivered key with other content is: a conflict (quarantined) or a correction.
CORRECTIONS = ("conflict", "apply")
#: When a raw source delivers: every ingest date (a missing folder is an error), or only now
#: and then (outcomes, corrections: a date without its folder is a date without a delivery).
SCHEDULES = ("daily", "occasional")
_COLUMN_KEYS = {
    "name",
    "delivered_as",
    "type",
    "nullable",
    "description",
    "allowed",
    "range",
    "pattern",
    "rounding",
}
_CONTRACT_KEYS = {
    "name",
    "kind",
    "description",
    "format",
    "file_glob",
    "encoding",
    "keys",
    "version_column",
    "event_time_column",
    "corrections",
    "schedule",
    "partition_by",
    "columns",
}


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a contract: its type, nullability and allowed values."""

    name: str
    type: str
    nullable: bool
    description: str
    allowed: tuple[str, ...] | None = None
    range: tuple[Any, Any] | None = None
    pattern: str | None = None
    rounding: str | None = None
    delivered_as: str | None = None

    @property
    def spark_type(self) -> T.DataType:
        """The Spark data type named by `type`."""
        return parse_type(self.type)

    @property
    def delivered(self) -> str:
        """The column's name in a raw source's files (CSV header, JSON key, Parquet column):
        `delivered_as` when the files name it otherwise, else `name`."""
        return self.delivered_as or self.name


@dataclass(frozen=True)
class Contract:
    """A table's contract: columns, business keys and, for raw sources, how it is delivered."""

    name: str
    kind: str
    description: str
    columns: tuple[ColumnSpec, ...]
    keys: tuple[str, ...] = ()
    format: str | None = None
    file_glob: str | None = None
    version_column: str | None = None
    event_time_column: str | None = None
    partition_by: tuple[str, ...] = ()
    path: str = ""
    encoding: str = "utf-8"
    corrections: str = "conflict"
    schedule: str = "daily"

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names in contract order."""
        return tuple(c.name for c in self.columns)

    @property
    def delivered_names(self) -> tuple[str, ...]:
        """The columns' names in a raw source's files, in contract order (`ColumnSpec.delivered`)."""
        return tuple(c.delivered for c in self.columns)

    def column(self, name: str) -> ColumnSpec:
        """The spec of column `name`; raises ContractError naming the contract if absent."""
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise ContractError(f"{self.path}: contract '{self.name}' has no column '{name}'")


def parse_type(type_name: str) -> T.DataType:
    """Map a contract type name (`string`, `decimal(12,2)`, ...) to a Spark data type."""
    simple = _SIMPLE_TYPES.get(type_name)
    if simple is not None:
        return simple
    decimal = _DECIMAL.match(type_name)
    if decimal:
        return T.DecimalType(int(decimal.group(1)), int(decimal.group(2)))
    array = _ARRAY.match(type_name)
    if array:
        # Spark types the results of array functions (filter, concat) with nullable elements.
        return T.ArrayType(parse_type(array.group(1).strip()), containsNull=True)
    mapping = _MAP.match(type_name)
    if mapping:
        key, value = parse_type(mapping.group(1)), parse_type(mapping.group(2).strip())
        return T.MapType(key, value, valueContainsNull=True)
    known = ", ".join([*_SIMPLE_TYPES, "decimal(p,s)", "array<type>", "map<key,value>"])
    raise ValueError(f"unknown type '{type_name}' (expected one of: {known})")


def spark_schema(contract: Contract) -> T.StructType:
    """The Spark schema of a contract, in contract order, with its nullability."""
    return T.StructType(
        [T.StructField(c.name, c.spark_type, nullable=c.nullable) for c in contract.columns]
    )


def column_comments(*contracts: Contract) -> dict[str, str]:
    """Column name -> description, from every contract given (a later one wins)."""
    return {c.name: c.description for contract in contracts for c in contract.columns}


@cache
def load_contract(name: str, schemas_dir: str | None = None) -> Contract:
    """Read and validate the engine's contract `schemas/<name>.yaml`.

    Args:
        name: the contract's file name without `.yaml` (`quarantine`, `scores`, ...).
        schemas_dir: another folder to read from; defaults to the packaged `schemas/`.

    Raises:
        ContractError: the file is missing or malformed; the message names file and key.
    """
    folder = Path(schemas_dir) if schemas_dir else resource_dir("schemas")
    path = folder / f"{name}.yaml"
    if not path.is_file():
        raise ContractError(f"{path}: no contract named '{name}'")
    return read_contract(path)


def read_contract(path: str | Path) -> Contract:
    """Read and validate one contract file (a use case's source or features contract).

    Raises:
        ContractError: the file is missing, not YAML or malformed; the message names the
            file and the key.
    """
    path = Path(path)
    raw = read_mapping(path, ContractError, "contract file not found")
    return _contract_from_dict(raw, str(path))


def _contract_from_dict(raw: dict[str, Any], path: str) -> Contract:
    """Build a Contract, naming the file and key of the first problem found."""
    unknown = sorted(set(raw) - _CONTRACT_KEYS)
    if unknown:
        raise ContractError(f"{path}: unknown key(s) {unknown}")
    for required in ("name", "kind", "description", "columns"):
        if required not in raw:
            raise ContractError(f"{path}: missing key '{required}'")
    if not isinstance(raw["columns"], list) or not raw["columns"]:
        raise ContractError(f"{path}: 'columns' must be a non-empty list of columns")
    if raw.get("format") is not None and raw["format"] not in FORMATS:
        raise ContractError(f"{path}: format: '{raw['format']}' is not one of {list(FORMATS)}")
    if raw.get("corrections", "conflict") not in CORRECTIONS:
        raise ContractError(
            f"{path}: corrections: '{raw['corrections']}' is not one of {list(CORRECTIONS)}"
        )
    if raw.get("schedule", "daily") not in SCHEDULES:
        raise ContractError(
            f"{path}: schedule: '{raw['schedule']}' is not one of {list(SCHEDULES)}"
        )
    encoding = _encoding(str(raw.get("encoding", "utf-8")))
    if encoding is None:
        raise ContractError(
            f"{path}: encoding: '{raw['encoding']}' is not one Spark decodes "
            f"({', '.join(sorted(set(ENCODINGS.values())))})"
        )
    columns = tuple(_column_from_dict(c, path, i) for i, c in enumerate(raw["columns"]))
    duplicated = _repeated([c.name for c in columns], fold=str.lower)
    if duplicated:
        raise ContractError(
            f"{path}: column(s) {duplicated} declared more than once "
            "(Spark resolves column names without regard to case)"
        )
    renamed = [c.name for c in columns if c.delivered_as is not None]
    if renamed and raw.get("format") is None:
        raise ContractError(
            f"{path}: columns {renamed} have 'delivered_as', which names a column in a raw "
            "source's files; this contract has no 'format' (it is not read from files)"
        )
    twice = _repeated([c.delivered for c in columns])
    if twice:
        raise ContractError(f"{path}: two columns are delivered as {twice} (delivered_as)")
    padded = [c.delivered for c in columns if c.delivered != c.delivered.strip()]
    if padded and raw.get("format") == "csv":
        raise ContractError(
            f"{path}: delivered_as {padded} begin or end with blanks, which a CSV header's "
            "names never do (ingest strips them)"
        )
    contract = Contract(
        name=raw["name"],
        kind=raw["kind"],
        description=str(raw["description"]).strip(),
        columns=columns,
        keys=tuple(raw.get("keys") or ()),
        format=raw.get("format"),
        file_glob=raw.get("file_glob"),
        version_column=raw.get("version_column"),
        event_time_column=raw.get("event_time_column"),
        partition_by=tuple(raw.get("partition_by") or ()),
        path=path,
        encoding=encoding,
        corrections=str(raw.get("corrections", "conflict")),
        schedule=str(raw.get("schedule", "daily")),
    )
    referenced = [*contract.keys, *contract.partition_by]
    referenced += [c for c in (contract.version_column, contract.event_time_column) if c]
    for column in referenced:
        contract.column(column)  # raises naming the contract when the column is missing
    return contract


def _column_from_dict(raw: Any, path: str, index: int) -> ColumnSpec:
    """Build one ColumnSpec; errors name the file and the column's position or name."""
    where = f"{path}: columns[{index}]"
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: a column must be a mapping")
    unknown = sorted(set(raw) - _COLUMN_KEYS)
    if unknown:
        raise ContractError(f"{where} ({raw.get('name')}): unknown key(s) {unknown}")
    for required in ("name", "type", "nullable", "description"):
        if required not in raw:
            raise ContractError(f"{where} ({raw.get('name')}): missing key '{required}'")
    _check_column_name(_text(raw, "name", where), where)
    try:
        parse_type(raw["type"])
    except ValueError as exc:
        raise ContractError(f"{where} ({raw['name']}): {exc}") from exc
    rounding = raw.get("rounding")
    if rounding is not None and (rounding not in ROUNDINGS or not _DECIMAL.match(raw["type"])):
        raise ContractError(
            f"{where} ({raw['name']}): 'rounding' is one of {list(ROUNDINGS)}, for a decimal"
        )
    value_range = raw.get("range")
    if value_range is not None and (not isinstance(value_range, list) or len(value_range) != 2):
        raise ContractError(f"{where} ({raw['name']}): 'range' must be [low, high]")
    allowed = raw.get("allowed")
    delivered_as = (
        _text(raw, "delivered_as", where) if raw.get("delivered_as") is not None else None
    )
    return ColumnSpec(
        name=raw["name"],
        type=raw["type"],
        nullable=bool(raw["nullable"]),
        description=str(raw["description"]).strip(),
        allowed=tuple(str(a) for a in allowed) if allowed is not None else None,
        range=(value_range[0], value_range[1]) if value_range is not None else None,
        pattern=raw.get("pattern"),
        rounding=rounding,
        delivered_as=delivered_as,
    )


#: Characters a column name cannot hold: Delta refuses ` ,;{}()\n\t=` in a table's column
#: names (without column mapping), and Spark reads `.` as a struct field and a back-quote as
#: quoting when it resolves a name.
_NAME_FORBIDDEN = frozenset(" ,;{}()\n\t=.`")


def _repeated(values: list[str], fold: Callable[[str], str] = str) -> list[str]:
    """The values that occur more than once (after `fold`), sorted."""
    counts = Counter(fold(v) for v in values)
    return sorted({v for v in values if counts[fold(v)] > 1})


def _text(raw: dict[str, Any], key: str, where: str) -> str:
    """The column's `key` as a non-empty text; ContractError naming the column otherwise."""
    value = raw[key]
    if not isinstance(value, str) or not value:
        column = f" ({raw['name']})" if key != "name" else ""
        raise ContractError(f"{where}{column}: '{key}' must be a non-empty text, got {value!r}")
    return value


def _check_column_name(name: str, where: str) -> None:
    """ContractError naming the column when its name cannot be a Delta column."""
    forbidden = sorted({c for c in name if c in _NAME_FORBIDDEN})
    if forbidden:
        raise ContractError(
            f"{where} ({name!r}): a column name cannot hold {forbidden} "
            "(Delta refuses spaces and ,;{}()=, Spark reads '.' as a struct field); "
            "use letters, digits and '_'"
        )


#: Python's canonical name of an encoding -> the name Spark's `decode` takes (the encodings
#: it decodes without legacy settings).
ENCODINGS = {
    "utf-8": "utf-8",
    "iso8859-1": "iso-8859-1",
    "ascii": "us-ascii",
    "utf-16": "utf-16",
    "utf-16-be": "utf-16be",
    "utf-16-le": "utf-16le",
    "utf-32": "utf-32",
}


def _encoding(name: str) -> str | None:
    """The Spark name of an encoding (`latin-1` -> `iso-8859-1`), or None when Spark cannot
    decode it."""
    import codecs

    try:
        return ENCODINGS.get(codecs.lookup(name).name)
    except LookupError:
        return None
