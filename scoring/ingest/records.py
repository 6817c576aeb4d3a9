"""Contract checks on raw records: parse, cast, validate, deduplicate. Pure functions.

Every check is derived from the source's contract (type, nullability, `pattern`,
`allowed`, `range`, `keys`, `version_column`); nothing here repeats a schema. A raw frame
has one row per delivered record: `_record` (the original text) and `_source_file`.

Example:
    >>> contract = load_contract("transactions")  # doctest: +SKIP
    >>> checked = lines.transform(parse_json_lines, contract).transform(validate, contract)
    >>> checked = checked.transform(mark_duplicates, contract)  # adds `_status`
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from scoring.core.contracts import ColumnSpec, Contract

CORRUPT = "_corrupt_record"
RECORD = "_record"
RECORD_BASE64 = "_record_base64"
SOURCE_FILE = "_source_file"
KEYS = "_keys"
REASONS = "_reasons"
STATUS = "_status"
# `_status` values: every input record ends in exactly one of them.
VALID, DUPLICATE, QUARANTINED = "valid", "duplicate", "quarantined"
# Reasons that stand alone: the record as a whole cannot be read as its contract says.
ENCODING, MALFORMED, AMBIGUOUS, CONFLICT = "encoding", "malformed", "ambiguous", "conflict"
_WIDE_DECIMAL = "decimal(38,18)"
_PARSE_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}


def decode_text(lines: DataFrame, encoding: str) -> DataFrame:
    """Lines as text in `encoding`, with `_record_base64`: the raw bytes of a line that is not
    valid UTF-8 (null otherwise), so every reader of the quarantine can read the text.

    A UTF-8 line's invalid bytes become replacement characters in `_record`; a line in another
    encoding is decoded from its bytes.
    """
    raw = F.col(RECORD)
    if encoding != "utf-8":
        return lines.select(
            F.decode(raw.cast("binary"), encoding).alias(RECORD),
            SOURCE_FILE,
            F.lit(None).cast("string").alias(RECORD_BASE64),
        )
    valid = F.is_valid_utf8(raw)
    return lines.select(
        F.when(valid, raw).otherwise(F.make_valid_utf8(raw)).alias(RECORD),
        SOURCE_FILE,
        F.when(~valid, F.base64(raw.cast("binary"))).alias(RECORD_BASE64),
    )


def string_schema(names: tuple[str, ...]) -> str:
    """DDL of all `names` as strings plus the corrupt-record column, for permissive parsing."""
    quoted = ["`" + name.replace("`", "``") + "`" for name in (*names, CORRUPT)]
    return ", ".join(f"{name} STRING" for name in quoted)


def parse_csv_lines(lines: DataFrame, contract: Contract, header: tuple[str, ...]) -> DataFrame:
    """Parse CSV lines whose file header is `header` into the contract's columns, as strings.

    Columns are bound by header name, so a file may order them differently; extra header
    columns are ignored. A line with another number of fields than the header has `_corrupt_record`.
    """
    parsed = F.from_csv(F.col(RECORD), string_schema(header), _PARSE_OPTIONS)
    return lines.select(
        RECORD,
        SOURCE_FILE,
        *_base64(lines),
        *[parsed[c.delivered].alias(c.name) for c in contract.columns],
        parsed[CORRUPT].alias(CORRUPT),
    )


def parse_json_lines(lines: DataFrame, contract: Contract) -> DataFrame:
    """Parse JSON lines into the contract's columns as strings (numbers keep their JSON text).

    Adds `_keys`, the keys of each object as written (null when malformed), so a caller can
    tell a key that is absent from one that is null, and a key written twice (`ambiguous`).
    """
    parsed = F.from_json(F.col(RECORD), string_schema(contract.delivered_names), _PARSE_OPTIONS)
    return lines.select(
        RECORD,
        SOURCE_FILE,
        *_base64(lines),
        *[parsed[c.delivered].alias(c.name) for c in contract.columns],
        parsed[CORRUPT].alias(CORRUPT),
        F.json_object_keys(F.col(RECORD)).alias(KEYS),
    )


def _base64(lines: DataFrame) -> list[str]:
    """`_record_base64` when the lines carry it (decoded text lines do)."""
    return [RECORD_BASE64] if RECORD_BASE64 in lines.columns else []


def blank_to_null(raw: Column) -> Column:
    """A raw value that is empty or only whitespace counts as absent."""
    return F.when(F.trim(raw) != "", raw)


def typed_value(raw: Column, spec: ColumnSpec) -> Column:
    """The raw string cast to the contract type; null when absent or when the cast fails.

    A decimal with more digits than its scale is rounded half-up by Spark's cast, or half to
    even with `rounding: half_even`; without `rounding` such a value is quarantined
    (`precision`, see `column_reasons`).
    """
    if spec.type == "string":
        return raw
    if spec.rounding == "half_even":
        scale = spec.spark_type.scale  # type: ignore[attr-defined]
        return F.bround(raw.try_cast(_WIDE_DECIMAL), scale).try_cast(spec.spark_type)
    return raw.try_cast(spec.spark_type)


def lost_precision(raw: Column, typed: Column) -> Column:
    """Whether casting `raw` to its decimal type dropped digits (`12.345` to `12.35`)."""
    wide = raw.try_cast(_WIDE_DECIMAL)
    return typed.isNotNull() & wide.isNotNull() & (wide != typed.cast(_WIDE_DECIMAL))


def column_reasons(raw: Column, spec: ColumnSpec) -> Column:
    """The reasons one raw value breaks its column spec, as array<string> (empty when fine)."""
    typed = typed_value(raw, spec)
    checks: list[tuple[Column, str]] = [(raw.isNotNull() & typed.isNull(), "bad_type")]
    if spec.type.startswith("decimal") and spec.rounding is None:
        checks.append((lost_precision(raw, typed), "precision"))
    if not spec.nullable:
        checks.append((raw.isNull(), "missing"))
    if spec.pattern is not None:
        checks.append((typed.isNotNull() & ~raw.rlike(spec.pattern), "pattern"))
    if spec.allowed is not None:
        checks.append(
            (typed.isNotNull() & ~typed.cast("string").isin(*spec.allowed), "not_allowed")
        )
    if spec.range is not None:
        low, high = (F.lit(bound).try_cast(spec.spark_type) for bound in spec.range)
        checks.append(((typed < low) | (typed > high), "out_of_range"))
    found = [F.when(condition, F.lit(f"{kind}:{spec.name}")) for condition, kind in checks]
    return F.filter(F.array(*found), lambda reason: reason.isNotNull())


def record_reasons(contract: Contract, columns: Sequence[str]) -> Column:
    """All reasons of a parsed record: `encoding` or `malformed` alone; else `ambiguous` (a
    JSON key written twice) and every column's reasons. `columns` are the parsed frame's."""
    per_column = [column_reasons(F.col(c.name), c) for c in contract.columns]
    whole: list[Column] = []
    if KEYS in columns:
        twice = F.size(F.col(KEYS)) != F.size(F.array_distinct(F.col(KEYS)))
        whole.append(F.filter(F.array(F.when(twice, F.lit(AMBIGUOUS))), lambda r: r.isNotNull()))
    reasons = F.when(F.col(CORRUPT).isNotNull(), F.array(F.lit(MALFORMED))).otherwise(
        F.concat(*whole, *per_column)
    )
    if RECORD_BASE64 in columns:  # text lines: one that is not valid text says only that
        reasons = F.when(F.col(RECORD_BASE64).isNotNull(), F.array(F.lit(ENCODING))).otherwise(
            reasons
        )
    return reasons


def validate(parsed: DataFrame, contract: Contract) -> DataFrame:
    """Typed contract columns + `_reasons` (array<string>); other columns are passed on.

    A row with no reasons is valid and its columns are typed per contract; a row with reasons
    keeps whatever did cast (it goes to quarantine with its original text).
    """
    passed_on = [c for c in parsed.columns if c not in (*contract.column_names, CORRUPT)]
    blanked = parsed.select(
        *passed_on,
        CORRUPT,
        *[blank_to_null(F.col(c)).alias(c) for c in contract.column_names],
    )
    return blanked.select(
        *[typed_value(F.col(c.name), c).alias(c.name) for c in contract.columns],
        *passed_on,
        record_reasons(contract, blanked.columns).alias(REASONS),
    )


def flag_future(checked: DataFrame, contract: Contract, latest: datetime) -> DataFrame:
    """Add `future:<col>` to the reasons of a record whose version or event time is after
    `latest` (the end of its delivery date plus the tolerance): a record dated 2030 would
    otherwise win every later version, or sit in bronze as an event that has not happened."""
    times = [c for c in (contract.version_column, contract.event_time_column) if c]
    checks = [
        F.when(_after(F.col(c), contract.column(c).type, latest), F.lit(f"future:{c}"))
        for c in times
        if contract.column(c).type in ("date", "timestamp")
    ]
    if not checks:
        return checked
    found = F.filter(F.array(*checks), lambda reason: reason.isNotNull())
    return checked.withColumn(REASONS, F.concat(F.col(REASONS), found))


def _after(column: Column, type_name: str, latest: datetime) -> Column:
    """Whether a date or timestamp is after the instant `latest`."""
    if type_name == "date":
        return column > F.lit(latest.date())
    return column > F.lit(latest)


def mark_duplicates(checked: DataFrame, contract: Contract) -> DataFrame:
    """Add `_status`: quarantined (has reasons), duplicate (another valid row wins) or valid.

    Among valid rows with one business key the newest `version_column` wins (customers:
    `updated_at`); ties, and sources without a version column (an identical re-delivery),
    are broken by the newest file name and then the record text, so reruns pick the same row.
    Valid rows of one key (and version) whose contents differ are a `conflict`: nothing says
    which is right, so all of them are quarantined, none wins by chance.
    """
    is_valid = F.size(REASONS) == 0
    same = [*contract.keys, *([contract.version_column] if contract.version_column else [])]
    contents = F.size(
        F.collect_set(F.when(is_valid, content_hash(contract))).over(Window.partitionBy(*same))
    )
    reasons = F.when(is_valid & (contents > 1), F.array(F.lit(CONFLICT))).otherwise(F.col(REASONS))
    flagged = checked.withColumn(REASONS, reasons)
    is_valid = F.size(REASONS) == 0
    order = [is_valid.desc()]
    if contract.version_column:
        order.append(F.col(contract.version_column).desc_nulls_last())
    order += [F.col(SOURCE_FILE).desc(), F.col(RECORD).desc()]
    by_key = Window.partitionBy(*contract.keys).orderBy(*order)
    status = (
        F.when(~is_valid, F.lit(QUARANTINED))
        .when(F.row_number().over(by_key) > 1, F.lit(DUPLICATE))
        .otherwise(F.lit(VALID))
    )
    return flagged.withColumn(STATUS, status)


def content_hash(contract: Contract) -> Column:
    """A hash of a record's typed contract columns: equal contents, equal hashes."""
    return F.xxhash64(*[F.col(c) for c in contract.column_names])


def conform(df: DataFrame, contract: Contract) -> DataFrame:
    """Select exactly the contract's columns, in order, cast to the contract's types."""
    return df.select(*[F.col(c.name).cast(c.spark_type).alias(c.name) for c in contract.columns])
