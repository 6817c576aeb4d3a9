"""All reading and writing of Delta tables, by path or by catalog name.

A step reads with `read_table`, transforms with pure functions, and writes with
`write_delta` (or a MERGE built on `delta_table`) inside `commit_metadata`, so every commit
carries the run's lineage as JSON `userMetadata`.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal

from delta.exceptions import DeltaConcurrentModificationException
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

import scoring
from scoring.core import sql
from scoring.core.contracts import Contract, column_comments, spark_schema
from scoring.core.errors import ConflictError, DataError
from scoring.core.tables import TableRef

log = logging.getLogger(__name__)

# Tables stay readable by non-Spark readers (delta-rs, Trino): no deletion vectors.
DEFAULT_PROPERTIES: Mapping[str, str] = {"delta.enableDeletionVectors": "false"}
_USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
#: How many of a table's newest commits `own_commit` looks through.
_OWN_COMMIT_DEPTH = 100


def read_table(spark: SparkSession, ref: TableRef, version: int | None = None) -> DataFrame:
    """Read a Delta table, optionally as of `version` (time travel)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    if ref.catalog_name:
        if version is None:
            return spark.read.table(ref.catalog_name)
        return spark.sql(f"SELECT * FROM {quoted(ref.catalog_name)} VERSION AS OF {int(version)}")
    return reader.load(ref.path)


def quoted(catalog_name: str) -> str:
    """A catalog name safe to put in SQL: each part back-quoted (`a`.`b`.`c`)."""
    return ".".join(f"`{part.replace('`', '``')}`" for part in catalog_name.split("."))


def delta_table(spark: SparkSession, ref: TableRef) -> DeltaTable:
    """The DeltaTable handle of an existing table (for MERGE, history, vacuum)."""
    if ref.catalog_name:
        return DeltaTable.forName(spark, ref.catalog_name)
    return DeltaTable.forPath(spark, str(ref.path))


def table_exists(spark: SparkSession, ref: TableRef) -> bool:
    """Whether the Delta table exists (a path with a `_delta_log`, or a catalog table)."""
    if ref.catalog_name:
        return bool(spark.catalog.tableExists(ref.catalog_name))
    return bool(DeltaTable.isDeltaTable(spark, str(ref.path)))


def current_version(spark: SparkSession, ref: TableRef) -> int | None:
    """The table's latest version, or None when it does not exist yet."""
    if not table_exists(spark, ref):
        return None
    last = delta_table(spark, ref).history(1).select("version").first()
    return int(last["version"]) if last is not None else None


def required_version(spark: SparkSession, ref: TableRef) -> int:
    """The table's latest version, pinned for a run that reads what `scoring score` wrote.

    Raises:
        DataError: `<ref>: table does not exist; run `scoring score` first`.
    """
    version = current_version(spark, ref)
    if version is None:
        raise DataError(f"{ref}: table does not exist; run `scoring score` first")
    return version


def last_commit(spark: SparkSession, ref: TableRef) -> dict[str, Any]:
    """The table's newest commit, whoever made it: version, operation, operationMetrics and
    parsed userMetadata. A step reports its own commit with `own_commit`."""
    row = delta_table(spark, ref).history(1).first()
    if row is None:
        raise ValueError(f"{ref}: table has no commits")
    return {
        "version": int(row["version"]),
        "operation": row["operation"],
        "operationMetrics": dict(row["operationMetrics"] or {}),
        "userMetadata": user_metadata(row["userMetadata"]) or None,
    }


def commits(spark: SparkSession, ref: TableRef, after: int | None = None) -> list[dict[str, Any]]:
    """The table's commits after version `after` among its newest `_OWN_COMMIT_DEPTH`,
    oldest first: version, operation, operationMetrics and parsed userMetadata (rows of the
    Delta log, not data)."""
    history = delta_table(spark, ref).history(_OWN_COMMIT_DEPTH)
    if after is not None:
        history = history.where(F.col("version") > F.lit(after))
    rows = history.select("version", "operation", "operationMetrics", "userMetadata").collect()
    return [
        {
            "version": int(row["version"]),
            "operation": row["operation"],
            "operationMetrics": dict(row["operationMetrics"] or {}),
            "userMetadata": user_metadata(row["userMetadata"]),
        }
        for row in sorted(rows, key=lambda r: int(r["version"]))
    ]


def own_commits(
    spark: SparkSession, ref: TableRef, run_id: str, after: int | None = None
) -> list[dict[str, Any]]:
    """This run's commits (stamped with its `run_id`) after version `after`, oldest first."""
    return [c for c in commits(spark, ref, after) if c["userMetadata"].get("run_id") == run_id]


def own_commit(
    spark: SparkSession, ref: TableRef, run_id: str, after: int | None = None
) -> dict[str, Any] | None:
    """The newest commit stamped with this run's `run_id` (newer than version `after`), or
    None when the run made none.

    Not simply the table's newest commit, which may be another writer's: the versions and
    metrics a step reports are those of its own commit.
    """
    mine = own_commits(spark, ref, run_id, after)
    return mine[-1] if mine else None


def user_metadata(text: str | None) -> dict[str, Any]:
    """A commit's userMetadata as a dict (empty when absent or not ours)."""
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def require_own_commit(
    spark: SparkSession, ref: TableRef, run_id: str, after: int | None = None
) -> dict[str, Any]:
    """`own_commit`, for a write that must have committed."""
    commit = own_commit(spark, ref, run_id, after)
    if commit is None:
        raise RuntimeError(f"{ref}: no commit of run {run_id} in its history")
    return commit


@dataclass(frozen=True)
class TableSpec:
    """What a table is created with: schema, partitioning, properties and its descriptions.

    The descriptions become the table's and the columns' comments (in `DESCRIBE TABLE`, Unity
    Catalog, Glue and the Delta log that delta-rs and Trino read); the properties are also
    enforced on a table that exists already.
    """

    schema: T.StructType
    partition_by: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None
    comments: Mapping[str, str] = field(default_factory=dict)


def contract_spec(contract: Contract, properties: Mapping[str, str] | None = None) -> TableSpec:
    """The TableSpec of an engine table described wholly by one contract."""
    return TableSpec(
        spark_schema(contract),
        contract.partition_by,
        dict(properties or {}),
        contract.description,
        column_comments(contract),
    )


def ensure_table(spark: SparkSession, ref: TableRef, spec: TableSpec) -> None:
    """Create the table as `spec` says unless it exists. An existing table is brought up to
    `spec` without rewriting data: declared properties it lacks or has another value for are
    set, nullable columns it lacks are added, and columns `spec` makes nullable lose their
    NOT NULL (an engine table of an older release keeps working). The properties the
    configuration puts on `ref` (retention) are set too."""
    wanted = {**DEFAULT_PROPERTIES, **spec.properties, **dict(ref.properties)}
    if table_exists(spark, ref):
        _upgrade_schema(spark, ref, spec)
        set_properties(spark, ref, wanted)
        return
    builder = DeltaTable.createIfNotExists(spark)
    builder = (
        builder.tableName(ref.catalog_name) if ref.catalog_name else builder.location(str(ref.path))
    )
    for column in spec.schema.fields:
        builder = builder.addColumn(
            column.name, column.dataType, column.nullable, comment=spec.comments.get(column.name)
        )
    if spec.partition_by:
        builder = builder.partitionedBy(*spec.partition_by)
    if spec.description:
        builder = builder.comment(spec.description)
    for key, value in wanted.items():
        builder = builder.property(key, value)
    builder.execute()


def _upgrade_schema(spark: SparkSession, ref: TableRef, spec: TableSpec) -> None:
    """ALTER TABLE ADD COLUMNS / DROP NOT NULL where the table lags behind `spec`."""
    current = {f.name: f for f in delta_table(spark, ref).toDF().schema.fields}
    name = sql_name(ref)
    added = [f for f in spec.schema.fields if f.name not in current]
    if added:
        required = [f.name for f in added if not f.nullable]
        if required:
            raise DataError(
                f"{ref}: column(s) {required} are required but the existing table lacks them; "
                "an engine upgrade cannot fill them"
            )
        columns = ", ".join(
            f"{sql.identifier(f.name)} {f.dataType.simpleString()}"
            + (f" COMMENT {sql.literal(spec.comments[f.name])}" if f.name in spec.comments else "")
            for f in added
        )
        spark.sql(f"ALTER TABLE {name} ADD COLUMNS ({columns})")
    for field_ in spec.schema.fields:
        existing = current.get(field_.name)
        if existing is not None and field_.nullable and not existing.nullable:
            spark.sql(
                f"ALTER TABLE {name} ALTER COLUMN {sql.identifier(field_.name)} DROP NOT NULL"
            )


def set_properties(spark: SparkSession, ref: TableRef, wanted: Mapping[str, str]) -> None:
    """ALTER TABLE SET TBLPROPERTIES for the properties that differ from `wanted`."""
    detail = delta_table(spark, ref).detail().first()
    current = dict(detail["properties"] or {}) if detail is not None else {}
    missing = {k: v for k, v in wanted.items() if current.get(k) != v}
    if missing:
        pairs = ", ".join(
            f"{sql.literal(k)} = {sql.literal(v)}" for k, v in sorted(missing.items())
        )
        spark.sql(f"ALTER TABLE {sql_name(ref)} SET TBLPROPERTIES ({pairs})")


def sql_name(ref: TableRef) -> str:
    """The table as SQL names it: its quoted catalog name, or delta.`<path>`."""
    if ref.catalog_name:
        return quoted(ref.catalog_name)
    return f"delta.{sql.identifier(str(ref.path))}"


def write_delta(
    df: DataFrame,
    ref: TableRef,
    mode: Literal["append", "overwrite"],
    metadata: Mapping[str, Any],
    replace_where: str | None = None,
    partition_by: tuple[str, ...] = (),
) -> None:
    """Append or overwrite (all, or the slice `replace_where`), stamping `metadata` on the commit."""
    writer = df.write.format("delta").mode(mode).option("userMetadata", to_json(metadata))
    if replace_where is not None:
        writer = writer.option("replaceWhere", replace_where)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    with named_conflicts(ref, f"{mode} write"):
        if ref.catalog_name:
            writer.saveAsTable(ref.catalog_name)
        else:
            writer.save(str(ref.path))


@contextmanager
def named_conflicts(ref: TableRef, action: str) -> Iterator[None]:
    """Turn Delta's refusal of a commit (another writer committed something this one
    conflicts with) into a one-line ConflictError naming the table."""
    try:
        yield
    except DeltaConcurrentModificationException as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConflictError(
            f"{ref}: this run's {action} conflicts with a commit another run made meanwhile "
            f"({type(exc).__name__}: {reason[:200]}); rerun once the other run has ended"
        ) from exc


@contextmanager
def commit_metadata(spark: SparkSession, metadata: Mapping[str, Any]) -> Iterator[None]:
    """Stamp every Delta commit made inside the block (MERGE, DELETE, ...) with `metadata`."""
    previous = spark.conf.get(_USER_METADATA_CONF, None)
    spark.conf.set(_USER_METADATA_CONF, to_json(metadata))
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(_USER_METADATA_CONF)
        else:
            spark.conf.set(_USER_METADATA_CONF, previous)


def to_json(metadata: Mapping[str, Any]) -> str:
    """Commit metadata as compact, key-sorted JSON, with the code version always included."""
    return json.dumps({"code_version": code_version(), **metadata}, sort_keys=True, default=str)


@cache
def code_version() -> str:
    """The package version, plus the git commit when running from a source checkout."""
    source_root = Path(scoring.__file__).resolve().parent.parent
    if not (source_root / ".git").exists():
        return scoring.__version__
    try:
        sha = subprocess.run(
            ["git", "-C", str(source_root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return scoring.__version__
    return f"{scoring.__version__}+g{sha}" if sha else scoring.__version__


def restore(spark: SparkSession, ref: TableRef, version: int) -> None:
    """Put the table back to `version` (a new commit); used to undo a step that failed late."""
    with named_conflicts(ref, f"RESTORE to version {version}"):
        delta_table(spark, ref).restoreToVersion(version)


def list_files(spark: SparkSession, folder: str) -> list[str] | None:
    """Every file directly in `folder`, sorted by path; None when the folder is missing.

    Names starting with `.` or `_` are left out (Hadoop's hidden files: `_SUCCESS`, a
    writer's `.partial`). Goes through Hadoop's FileSystem, so local paths, s3:// and dbfs:/
    all work; a local path comes back as a `file:` URI.
    """
    jvm = spark.sparkContext._jvm
    assert jvm is not None  # a classic (non-Connect) session always has the JVM gateway
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    root = jvm.org.apache.hadoop.fs.Path(folder)
    fs = root.getFileSystem(hadoop_conf)
    if not fs.exists(root) or not fs.getFileStatus(root).isDirectory():
        return None
    statuses = fs.listStatus(root)
    names = [str(s.getPath().toString()) for s in statuses or [] if s.isFile()]
    return sorted(n for n in names if not n.rsplit("/", 1)[-1].startswith((".", "_")))


def head_bytes(spark: SparkSession, file: str, size: int) -> bytes:
    """The first `size` bytes of a file (fewer when it is shorter), through Hadoop's
    FileSystem: enough to tell gzip from text, or Parquet from anything else."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(file)
    stream = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(path)
    try:
        # A returned byte[] crosses py4j as bytes (an array passed in would be a copy).
        return bytes(stream.readNBytes(size))
    finally:
        stream.close()


def read_lines(spark: SparkSession, files: list[str]) -> DataFrame:
    """The non-blank lines of text files: `_record` (the line as delivered), `_source_file`.

    Underscored names, so a contract column may be called `value`.
    """
    return (
        spark.read.text(files)
        .select(F.col("value").alias("_record"), F.col("_metadata.file_path").alias("_source_file"))
        .filter(F.trim("_record") != "")
    )


def first_line(spark: SparkSession, file: str, encoding: str = "utf-8") -> tuple[str, str] | None:
    """(first line, the path as `_metadata.file_path` names it) of a file; None when empty.

    Reads one line only (a tiny driver action), e.g. a CSV header, decoded as `encoding`.
    """
    value = F.col("value")
    if encoding != "utf-8":
        value = F.decode(value.cast("binary"), encoding)
    row = spark.read.text(file).select(value, F.col("_metadata.file_path")).first()
    return (str(row[0]), str(row[1])) if row is not None else None


def merge_rows(
    spark: SparkSession,
    ref: TableRef,
    source: DataFrame,
    matched: str,
    columns: Mapping[str, str],
    update_when: str,
    metadata: Mapping[str, Any],
) -> dict[str, int] | None:
    """MERGE `source` into the table: where `matched` holds and `update_when` too, update the
    row; where nothing matches, insert it. `columns` maps each target column to its source
    expression (the source may carry more columns, e.g. flags).

    `matched` and `update_when` are SQL conditions over the aliases `t` (target) and `s`
    (source). Returns the commit's numSourceRows, numTargetRowsInserted and
    numTargetRowsUpdated, or None when Delta made no commit (nothing to insert or update).
    """
    before = current_version(spark, ref)
    merge = delta_table(spark, ref).alias("t").merge(source.alias("s"), matched)
    merge = merge.whenMatchedUpdate(condition=update_when, set=dict(columns))
    with commit_metadata(spark, metadata), named_conflicts(ref, "MERGE"):
        merge.whenNotMatchedInsert(values=dict(columns)).execute()
    commit = own_commit(spark, ref, str(metadata["run_id"]), after=before)
    if commit is None:
        return None
    if commit["operation"] != "MERGE":
        raise RuntimeError(f"{ref}: expected a MERGE commit, found {commit['operation']}")
    metrics = commit["operationMetrics"]
    names = ("numSourceRows", "numTargetRowsInserted", "numTargetRowsUpdated")
    return {name: int(metrics.get(name, 0)) for name in names}


def merge_newer(
    spark: SparkSession,
    source: DataFrame,
    ref: TableRef,
    keys: tuple[str, ...],
    newer: str,
    metadata: Mapping[str, Any],
) -> None:
    """MERGE `source` into `ref` on `keys`: insert new keys, update rows where `newer` holds.

    `newer` is a SQL condition over the aliases `t` (target) and `s` (source); `source` must
    hold one row per key. The commit is stamped with `metadata`.
    """
    on = sql.join_condition(keys)
    with commit_metadata(spark, metadata), named_conflicts(ref, "MERGE"):
        (
            delta_table(spark, ref)
            .alias("t")
            .merge(source.alias("s"), on)
            .whenMatchedUpdateAll(condition=newer)
            .whenNotMatchedInsertAll()
            .execute()
        )


def read_partition(
    spark: SparkSession, ref: TableRef, column: str, value: date, version: int
) -> DataFrame:
    """The rows of one date partition at a pinned table version.

    Raises:
        DataError: the partition has no rows at that version (checked with a one-row probe,
            so a step fails before it writes anything).
    """
    frame = read_table(spark, ref, version).where(F.col(column) == F.lit(value))
    if not frame.select(F.lit(1)).head(1):
        raise DataError(
            f"{ref}: no partition {column}={value.isoformat()} (table version {version})"
        )
    return frame


def other_writers(spark: SparkSession, ref: TableRef, run_id: str, since: int) -> list[str]:
    """The run ids of other runs' commits after version `since` (table maintenance without
    a run id, e.g. a property change, does not count): a rollback must not restore over them."""
    others = {c["userMetadata"].get("run_id") for c in commits(spark, ref, since)}
    return sorted(str(r) for r in others - {None, run_id})


def undo_own_commits(
    spark: SparkSession, ref: TableRef, before: int | None, run_id: str, step: str
) -> bool:
    """Restore `ref` to version `before` when this run committed to it since; never over
    another run's commit (a RESTORE would erase it: named in the log instead, and the date's
    rerun settles it). Whether the table is as it was at `before`."""
    if before is None or current_version(spark, ref) == before:
        return True
    others = other_writers(spark, ref, run_id, before)
    if others:
        log.error(
            "%s failed: %s not restored to version %s: run(s) %s committed to it since; "
            "rerun the date to settle it",
            step,
            ref,
            before,
            ", ".join(others),
        )
        return False
    log.warning("%s failed: restoring %s to version %s", step, ref, before)
    restore(spark, ref, before)
    return True
