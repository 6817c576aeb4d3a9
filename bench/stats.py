"""`python -m bench.stats --rows 4M`: what file statistics cost when writing scores.

Writes the same `rows` score rows (the `scores` contract, read from a Parquet copy so that
generating them is not timed) into a new Delta table per setting and repetition, with
Delta's file statistics on: every column (Delta's default, the first 32), the columns
`scoring.scores.SCORES_PROPERTIES` keeps, and none (`dataSkippingNumIndexedCols=0`, which
still records numRecords); then ours with Parquet's own row-group statistics also left out
for the string columns (what `scoring.score.write_scores` does, with
`scoring.scores.PARQUET_STRING_STATS_OFF`), and that plus no dictionary for `customer_id`.
Prints one Markdown table (best and median seconds); the settings rotate between
repetitions. bench/RESULTS.md, findings 11 and 12, came from this.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bench.data import AS_OF
from bench.run import bench_config, bench_session, parse_sizes
from scoring.core import io
from scoring.core.tables import TableRef
from scoring.core.contracts import load_contract, spark_schema
from scoring.score.tables import PARQUET_STRING_STATS_OFF, SCORES_PROPERTIES, Lineage, with_lineage
from scoring.core.session import temporary_conf

STATS = "delta.dataSkippingStatsColumns"
OURS = {STATS: SCORES_PROPERTIES[STATS]}
NO_DICTIONARY = {"parquet.enable.dictionary#customer_id": "false"}
# name -> (table properties, session settings during the write)
SETTINGS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "Delta: every column (Delta default)": ({}, {}),
    f"Delta: {SCORES_PROPERTIES[STATS]}": (OURS, {}),
    "Delta: none (numRecords only)": ({"delta.dataSkippingNumIndexedCols": "0"}, {}),
    "Delta: ours; Parquet: no string statistics (ours)": (OURS, PARQUET_STRING_STATS_OFF),
    "Delta: ours; Parquet: no string statistics, no customer_id dictionary": (
        OURS,
        {**PARQUET_STRING_STATS_OFF, **NO_DICTIONARY},
    ),
}


def score_rows(spark: SparkSession, rows: int, files: int) -> DataFrame:
    """`rows` rows in the `scores` contract: distinct customers, one run's lineage."""
    scored = spark.range(0, rows, 1, files).select(
        F.format_string("C%010d", F.col("id")).alias("customer_id"),
        F.lit(AS_OF).alias("as_of_date"),
        F.rand(7).alias("score"),
        (F.rand(8) > 0.8).cast("int").alias("label"),
    )
    lineage = Lineage(
        "bench_tree", "1", "0123456789abcdef0123456789abcdef", 1, "bench-stats", datetime.now(UTC)
    )
    return with_lineage(scored, lineage)


def timed_write(
    spark: SparkSession,
    source: DataFrame,
    ref: TableRef,
    props: dict[str, str],
    conf: dict[str, str] | None = None,
) -> float:
    """Seconds to append `source` to a new table `ref` created with `props`, under `conf`."""
    assert ref.path is not None
    shutil.rmtree(ref.path, ignore_errors=True)
    schema = spark_schema(load_contract("scores"))
    io.ensure_table(spark, ref, schema, ("as_of_date",), props)
    with temporary_conf(spark, conf or {}):
        started = time.perf_counter()
        io.write_delta(source, ref, "append", {"run_id": "bench-stats"})
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, time every setting `--reps` times, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.stats", description=__doc__)
    parser.add_argument("--rows", default="4M", help="score rows (default 4M)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--work", type=Path, default=Path("bench/.work/stats"))
    args = parser.parse_args(argv)
    (rows,) = parse_sizes(args.rows)
    work = args.work.resolve()
    spark = bench_session(bench_config(work))
    source_path = str(work / "source.parquet")
    score_rows(spark, rows, 4).write.mode("overwrite").parquet(source_path)
    source = spark.read.parquet(source_path)
    names = list(SETTINGS)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    timed_write(spark, source, TableRef("warmup", path=str(work / "warmup")), {})  # untimed
    for rep in range(args.reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            ref = TableRef("scores", path=str(work / "scores"))
            seconds[name].append(timed_write(spark, source, ref, *SETTINGS[name]))
    print(f"{rows:,} score rows, {args.reps} repetitions, settings rotated")
    print("| statistics on | best s | median s |\n|---|---|---|")
    for name in names:
        print(f"| {name} | {min(seconds[name]):.1f} | {statistics.median(seconds[name]):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
