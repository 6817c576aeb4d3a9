"""A delivery's files read into checked records: parsed, decoded, typed, validated, deduplicated.

CSV and JSON lines are read as text lines (so the quarantine keeps each record exactly as
delivered), decoded with the contract's `encoding`; a UTF-8 line that is not valid UTF-8
becomes text with replacement characters plus its raw bytes (base64), and is quarantined
with reason `encoding`. A CSV header (one line per file) must name every contract column.
Parquet records are typed by the client; each contract column is read back as text and goes
through the same checks, and the quarantine keeps the record as one JSON object. Record-level
problems become quarantine reasons (see `scoring.ingest.records`). Files name a column as the
contract says it is delivered (`ColumnSpec.delivered`: its `delivered_as`, else its name);
everything read is named by the contract's `name`.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from scoring.core import io, sql
from scoring.core.contracts import Contract
from scoring.core.errors import DataError
from scoring.ingest.records import (
    CORRUPT,
    RECORD,
    RECORD_BASE64,
    SOURCE_FILE,
    decode_text,
    flag_future,
    mark_duplicates,
    parse_csv_lines,
    parse_json_lines,
    validate,
)


def checked_records(
    spark: SparkSession, files: Sequence[str], contract: Contract, latest: datetime
) -> DataFrame:
    """Every record of the files, typed and validated, with `_reasons` and `_status`.

    `latest` is the last instant a version or event time of this delivery may have (the end
    of the delivery date plus the tolerance); a later one is quarantined (`future:<col>`).
    Lazy: nothing is read in bulk here. CSV headers are read (one line per file) and checked.
    """
    if contract.format == "csv":
        parsed = _parse_csv_files(spark, list(files), contract)
    elif contract.format == "jsonl":
        lines = decode_text(io.read_lines(spark, list(files)), contract.encoding)
        parsed = parse_json_lines(lines, contract)
    elif contract.format == "parquet":
        parsed = _parse_parquet_files(spark, list(files), contract)
    else:
        raise DataError(f"{contract.path}: unsupported format '{contract.format}'")
    return (
        parsed.transform(validate, contract)
        .transform(flag_future, contract, latest)
        .transform(mark_duplicates, contract)
    )


def _parse_csv_files(spark: SparkSession, files: list[str], contract: Contract) -> DataFrame:
    """Parse CSV files, grouped by header so columns bind by name even if a file reorders them."""
    by_header: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for file in files:
        header_line, spark_path = _csv_header(spark, file, contract)
        header = _header_columns(header_line, file, contract)
        by_header.setdefault(header, []).append((spark_path, header_line))
    lines = decode_text(io.read_lines(spark, files), contract.encoding)
    parts = []
    for header, members in by_header.items():
        is_member = F.col(SOURCE_FILE).isin(*[path for path, _ in members])
        is_header = F.col(RECORD).isin(*{line for _, line in members})
        parts.append(parse_csv_lines(lines.filter(is_member & ~is_header), contract, header))
    return reduce(DataFrame.unionByName, parts)


def _csv_header(spark: SparkSession, file: str, contract: Contract) -> tuple[str, str]:
    """The header line of a CSV file and Spark's name for the file; DataError when empty."""
    first = io.first_line(spark, file, contract.encoding)
    if first is None:
        raise DataError(f"{file}: empty file, expected a CSV header line")
    return first


def _header_columns(header_line: str, file: str, contract: Contract) -> tuple[str, ...]:
    """The header's column names; DataError naming file and column when one is missing."""
    header = tuple(name.strip() for name in next(csv.reader([header_line])))
    _require_columns(file, "CSV header", "header", header, contract)
    return header


def _require_columns(
    file: str, what: str, listed_as: str, names: Sequence[str], contract: Contract
) -> None:
    """DataError naming the file and the first of the contract's columns `names` lacks."""
    missing = [name for name in contract.delivered_names if name not in names]
    if missing:
        raise DataError(
            f"{file}: {what} lacks required column '{missing[0]}' of contract "
            f"'{contract.name}' (all missing: {missing}; {listed_as}: {list(names)})"
        )


def _parse_parquet_files(spark: SparkSession, files: list[str], contract: Contract) -> DataFrame:
    """Parquet files as text columns, grouped by schema (files of one drop may differ)."""
    by_schema: dict[str, list[str]] = {}
    for file in files:
        schema = _parquet_schema(spark, file)
        _require_columns(file, "Parquet schema", "columns", schema.names, contract)
        by_schema.setdefault(schema.json(), []).append(file)
    parts = [_parquet_as_text(spark, group, contract) for group in by_schema.values()]
    return reduce(DataFrame.unionByName, parts)


def _parquet_schema(spark: SparkSession, file: str) -> T.StructType:
    """A Parquet file's schema (its footer); DataError naming the file when it is not one."""
    try:
        return spark.read.parquet(file).schema
    except Exception as exc:  # Spark's error for a file that is not Parquet is a JVM trace
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{file}: not a readable Parquet file ({first[:200]})") from exc


def _parquet_as_text(spark: SparkSession, files: list[str], contract: Contract) -> DataFrame:
    """The contract's columns as text, the record as JSON (named as delivered), the file it
    came from."""
    frame = spark.read.parquet(*files)
    delivered = {c.name: F.col(sql.identifier(c.delivered)) for c in contract.columns}
    return frame.select(
        F.to_json(F.struct(*delivered.values())).alias(RECORD),
        F.col("_metadata.file_path").alias(SOURCE_FILE),
        *[column.cast("string").alias(name) for name, column in delivered.items()],
        F.lit(None).cast("string").alias(CORRUPT),
        F.lit(None).cast("string").alias(RECORD_BASE64),
    )
