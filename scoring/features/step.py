"""The features step: sources as known at D → the use case's feature code → `features`.

Each bronze table is read once at a pinned version (time travel) and handed on as known at
the end of D (`scoring.features.asof`); the versions are recorded in the commit's
userMetadata. The result is held to the features contract (columns and types, then nulls,
allowed values, ranges and a unique entity key, on a disk-cached copy so the feature code
runs once) and written as the `as_of_date = D` partition with replaceWhere: a rerun
replaces that date only, and nothing is written when a check fails.
"""

from __future__ import annotations

from datetime import date

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession

from scoring.core import io, sql
from scoring.core.contracts import Contract, spark_schema
from scoring.core.errors import DataError, UseCaseError
from scoring.core.tables import Tables, bronze_name
from scoring.features.asof import as_known_at, first_delivery
from scoring.features.build import (
    conform_features,
    features_table_spec,
    run_python,
    run_sql,
    source_views,
)
from scoring.features.checks import check_unique, check_violations, violation_metrics
from scoring.runs.result import StepResult
from scoring.usecase.code import load_function
from scoring.usecase.spec import AS_OF_DATE, UseCase


def run_features(
    spark: SparkSession, tables: Tables, usecase: UseCase, run_date: date, run_id: str
) -> StepResult:
    """Build and write the features of every entity as of the end of `run_date`.

    Raises:
        UseCaseError: the use case scores an existing table (nothing to build).
        DataError: a bronze table does not exist yet, or the result breaks the contract.
        UseCaseCodeError: the feature code raised or returned something else than a frame.
    """
    spec = usecase.features
    if spec.contract is None or spec.score_only:
        raise UseCaseError(
            f"{usecase.path}: features.table: use case '{usecase.name}' scores an existing "
            "table; there are no features to build"
        )
    pinned = _pinned_versions(spark, tables, usecase)
    sources = {}
    for name, source in usecase.sources.items():
        if bronze_name(name) not in pinned:  # an occasional source that never delivered
            sources[name] = spark.createDataFrame([], spark_schema(source.contract))
            continue
        bronze = io.read_table(spark, tables.bronze(name), pinned[bronze_name(name)])
        sources[name] = as_known_at(bronze, source, run_date, first_delivery(bronze))
    with source_views(sources):
        if spec.python is not None:
            build = load_function(usecase, spec.python)
            built = run_python(build, str(spec.python), sources, run_date)
        else:
            assert spec.sql is not None  # the use case loader guarantees one of the two
            built = run_sql(spark, spec.sql, run_date)
        rows = conform_features(built, spec.contract, usecase.entity, run_date, run_id)
        written = _checked_write(
            spark, rows, tables, spec.contract, usecase, run_date, pinned, run_id
        )
    return StepResult(
        step="features",
        run_id=run_id,
        run_date=run_date,
        rows_in=None,
        rows_out=written,
        table_versions={
            "features": io.require_own_commit(spark, tables["features"], run_id)["version"]
        },
        details={"source_versions": pinned},
    )


def _pinned_versions(spark: SparkSession, tables: Tables, usecase: UseCase) -> dict[str, int]:
    """Each bronze table's version as the newest succeeded ingest left it, pinned for the run
    (`scoring.runs.history.bronze_versions`); an occasional source without a table yet has
    none (its feature code gets an empty frame of the source's columns)."""
    from scoring.runs.history import bronze_versions

    pinned = {}
    for name, version in bronze_versions(spark, tables, usecase.name, usecase.sources).items():
        if version is None and usecase.sources[name].contract.schedule == "occasional":
            continue  # it has delivered nothing yet: its feature code gets no rows
        if version is None:
            raise DataError(
                f"{tables.bronze(name)}: table {bronze_name(name)} does not exist; run "
                "`scoring ingest` first"
            )
        pinned[bronze_name(name)] = version
    return pinned


def _checked_write(
    spark: SparkSession,
    rows: DataFrame,
    tables: Tables,
    contract: Contract,
    usecase: UseCase,
    run_date: date,
    pinned: dict[str, int],
    run_id: str,
) -> int:
    """Materialise the rows on disk, check them, then replace partition D; the row count."""
    observation = Observation("features")
    rows.persist(StorageLevel.DISK_ONLY)  # the feature code runs once, not per check
    try:
        rows.observe(observation, *violation_metrics(contract)).write.format("noop").mode(
            "overwrite"
        ).save()
        counts = observation.get
        check_violations(counts, contract)
        check_unique(rows, usecase.entity)
        ref = tables["features"]
        io.ensure_table(spark, ref, features_table_spec(contract, usecase.entity))
        metadata = {
            "run_id": run_id,
            "usecase": usecase.name,
            "step": "features",
            "as_of_date": run_date.isoformat(),
            "source_versions": pinned,
        }
        replace = sql.predicate((AS_OF_DATE, run_date))
        io.write_delta(rows, ref, "overwrite", metadata, replace, (AS_OF_DATE,))
    finally:
        rows.unpersist()
    return int(counts["rows"])
