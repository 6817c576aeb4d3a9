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

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from scoring.core.contracts import ColumnSpec, Contract

CORRUPT = "_corrupt_record"
RECORD = "_record"
SOURCE_FILE = "_source_file"
REASONS = "_reasons"
STATUS = "_status"
# `_status` values: every input record ends in exactly one of them.
VALID, DUPLICATE, QUARANTINED = "valid", "duplicate", "quarantined"
MALFORMED = "malformed"
_PARSE_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}


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
        RECORD, SOURCE_FILE, *[parsed[c].alias(c) for c in (*contract.column_names, CORRUPT)]
    )


def parse_json_lines(lines: DataFrame, contract: Contract) -> DataFrame:
    """Parse JSON lines into the contract's columns as strings (numbers keep their JSON text).

    Adds `_keys`, the keys present in each object (null when malformed), so a caller can tell
    a key that is absent from one that is null.
    """
    parsed = F.from_json(F.col(RECORD), string_schema(contract.column_names), _PARSE_OPTIONS)
    return lines.select(
        RECORD,
        SOURCE_FILE,
        *[parsed[c].alias(c) for c in (*contract.column_names, CORRUPT)],
        F.json_object_keys(F.col(RECORD)).alias("_keys"),
    )


def blank_to_null(raw: Column) -> Column:
    """A raw value that is empty or only whitespace counts as absent."""
    return F.when(F.trim(raw) != "", raw)


def typed_value(raw: Column, spec: ColumnSpec) -> Column:
    """The raw string cast to the contract type; null when absent or when the cast fails."""
    if spec.type == "string":
        return raw
    return raw.try_cast(spec.spark_type)


def column_reasons(raw: Column, spec: ColumnSpec) -> Column:
    """The reasons one raw value breaks its column spec, as array<string> (empty when fine)."""
    typed = typed_value(raw, spec)
    checks: list[tuple[Column, str]] = [(raw.isNotNull() & typed.isNull(), "bad_type")]
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


def record_reasons(contract: Contract) -> Column:
    """All reasons of a parsed record: `malformed` alone, or every column's reasons."""
    per_column = [column_reasons(F.col(c.name), c) for c in contract.columns]
    return F.when(F.col(CORRUPT).isNotNull(), F.array(F.lit(MALFORMED))).otherwise(
        F.concat(*per_column)
    )


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
        record_reasons(contract).alias(REASONS),
    )


def mark_duplicates(checked: DataFrame, contract: Contract) -> DataFrame:
    """Add `_status`: quarantined (has reasons), duplicate (another valid row wins) or valid.

    Among valid rows with one business key the newest `version_column` wins (customers:
    `updated_at`); ties, and sources without a version column (an identical re-delivery),
    are broken by the newest file name and then the record text, so reruns pick the same row.
    """
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
    return checked.withColumn(STATUS, status)


def conform(df: DataFrame, contract: Contract) -> DataFrame:
    """Select exactly the contract's columns, in order, cast to the contract's types."""
    return df.select(*[F.col(c.name).cast(c.spark_type).alias(c.name) for c in contract.columns])
