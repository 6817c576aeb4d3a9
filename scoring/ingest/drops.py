"""One source's delivery for one date: find its files, check their structure, check its records.

A delivery lives at `<raw_root>/<source>/<YYYY-MM-DD>/` (files matching the contract's
`file_glob`). Structural problems (no folder, no files, a CSV header without a contract
column) raise DataError before anything is read in bulk; record-level problems become
quarantine reasons (see `scoring.ingest.records`).
"""

from __future__ import annotations

import csv
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from scoring.core import io
from scoring.core.config import join_path
from scoring.core.contracts import Contract
from scoring.core.errors import DataError
from scoring.ingest.records import (
    CORRUPT,
    RECORD,
    SOURCE_FILE,
    mark_duplicates,
    parse_csv_lines,
    parse_json_lines,
    validate,
)


def delivery_files(
    spark: SparkSession, raw_root: str, source: str, contract: Contract, day: date
) -> list[str]:
    """The files of a source's delivery for `day`; DataError when folder or files are missing."""
    folder = join_path(raw_root, source, day.isoformat())
    files = io.list_files(spark, folder, contract.file_glob or "*")
    if files is None:
        raise DataError(f"{folder}: source folder for {source} on {day} is missing")
    if not files:
        raise DataError(f"{folder}: no file matching '{contract.file_glob}' for {source}")
    return files


def checked_records(spark: SparkSession, files: list[str], contract: Contract) -> DataFrame:
    """Every record of the files, typed and validated, with `_reasons` and `_status`.

    Lazy: nothing is read in bulk here. CSV headers are read (one line per file) and checked.
    """
    if contract.format == "csv":
        parsed = _parse_csv_files(spark, files, contract)
    elif contract.format == "jsonl":
        parsed = parse_json_lines(io.read_lines(spark, files), contract)
    elif contract.format == "parquet":
        parsed = _parse_parquet_files(spark, files, contract)
    else:
        raise DataError(f"{contract.path}: unsupported format '{contract.format}'")
    return parsed.transform(validate, contract).transform(mark_duplicates, contract)


def _parse_csv_files(spark: SparkSession, files: list[str], contract: Contract) -> DataFrame:
    """Parse CSV files, grouped by header so columns bind by name even if a file reorders them."""
    by_header: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for file in files:
        header_line, spark_path = _csv_header(spark, file)
        header = _header_columns(header_line, file, contract)
        by_header.setdefault(header, []).append((spark_path, header_line))
    lines = io.read_lines(spark, files)
    parts = []
    for header, members in by_header.items():
        is_member = F.col(SOURCE_FILE).isin(*[path for path, _ in members])
        is_header = F.col(RECORD).isin(*{line for _, line in members})
        parts.append(parse_csv_lines(lines.filter(is_member & ~is_header), contract, header))
    result = parts[0]
    for part in parts[1:]:
        result = result.unionByName(part)
    return result


def _csv_header(spark: SparkSession, file: str) -> tuple[str, str]:
    """The header line of a CSV file and Spark's name for the file; DataError when empty."""
    first = io.first_line(spark, file)
    if first is None:
        raise DataError(f"{file}: empty file, expected a CSV header line")
    return first


def _header_columns(header_line: str, file: str, contract: Contract) -> tuple[str, ...]:
    """The header's column names; DataError naming file and column when one is missing."""
    header = tuple(name.strip() for name in next(csv.reader([header_line])))
    missing = [name for name in contract.column_names if name not in header]
    if missing:
        raise DataError(
            f"{file}: CSV header lacks required column '{missing[0]}' of contract "
            f"'{contract.name}' (all missing: {missing}; header: {list(header)})"
        )
    return header


def _parse_parquet_files(spark: SparkSession, files: list[str], contract: Contract) -> DataFrame:
    """Parquet files as text columns, grouped by schema (files of one drop may differ)."""
    by_schema: dict[str, list[str]] = {}
    for file in files:
        schema = _parquet_schema(spark, file)
        missing = [name for name in contract.column_names if name not in schema.names]
        if missing:
            raise DataError(
                f"{file}: Parquet schema lacks required column '{missing[0]}' of contract "
                f"'{contract.name}' (all missing: {missing}; columns: {schema.names})"
            )
        by_schema.setdefault(schema.json(), []).append(file)
    parts = [_parquet_as_text(spark, group, contract) for group in by_schema.values()]
    result = parts[0]
    for part in parts[1:]:
        result = result.unionByName(part)
    return result


def _parquet_schema(spark: SparkSession, file: str) -> T.StructType:
    """A Parquet file's schema (its footer); DataError naming the file when it is not one."""
    try:
        return spark.read.parquet(file).schema
    except Exception as exc:  # Spark's error for a file that is not Parquet is a JVM trace
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{file}: not a readable Parquet file ({first[:200]})") from exc


def _parquet_as_text(spark: SparkSession, files: list[str], contract: Contract) -> DataFrame:
    """The contract's columns as text, the record as JSON, the file it came from."""
    frame = spark.read.parquet(*files)
    columns = list(contract.column_names)
    return frame.select(
        F.to_json(F.struct(*[F.col(c) for c in columns])).alias(RECORD),
        F.col("_metadata.file_path").alias(SOURCE_FILE),
        *[F.col(c).cast("string").alias(c) for c in columns],
        F.lit(None).cast("string").alias(CORRUPT),
    )
