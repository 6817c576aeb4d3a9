"""The features step: bronze at pinned versions -> point-in-time features -> `features`.

The bronze versions are read once and pinned (time travel), so the versions recorded in
the commit's userMetadata are exactly the data the features were built from. The step
writes one `as_of_date` partition with replaceWhere: a rerun replaces that date only.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Observation, SparkSession
from pyspark.sql import functions as F

from scoring import io
from scoring.config import TableRef
from scoring.contracts import load_contract, spark_schema
from scoring.errors import DataError
from scoring.features import build_features
from scoring.steps import StepResult


def run_features(
    spark: SparkSession,
    *,
    customers: TableRef,
    transactions: TableRef,
    features: TableRef,
    run_date: date,
    run_id: str,
) -> StepResult:
    """Build and write the features of every customer as of the end of `run_date`.

    Raises:
        DataError: a bronze table does not exist yet (run `scoring ingest` first).
    """
    versions = {"bronze_customers": customers, "bronze_transactions": transactions}
    pinned = {}
    for name, ref in versions.items():
        version = io.current_version(spark, ref)
        if version is None:
            raise DataError(f"{ref}: table {name} does not exist; run `scoring ingest` first")
        pinned[name] = version
    rows = build_features(
        io.read_table(spark, customers, pinned["bronze_customers"]),
        io.read_table(spark, transactions, pinned["bronze_transactions"]),
        run_date,
        run_id,
    )
    contract = load_contract("features")
    io.ensure_table(spark, features, spark_schema(contract), contract.partition_by)
    observation = Observation("features")
    metadata = {
        "run_id": run_id,
        "step": "features",
        "as_of_date": run_date.isoformat(),
        "source_versions": pinned,
    }
    io.write_delta(
        rows.observe(observation, F.count(F.lit(1)).alias("rows")),
        features,
        "overwrite",
        metadata,
        replace_where=f"as_of_date = '{run_date.isoformat()}'",
        partition_by=contract.partition_by,
    )
    written = int(observation.get["rows"])
    return StepResult(
        step="features",
        run_id=run_id,
        run_date=run_date,
        rows_in=None,
        rows_out=written,
        table_versions={"features": io.last_commit(spark, features)["version"]},
        details={"source_versions": pinned},
    )
