"""`python -m bench.stats --rows 4M`: what file statistics cost when writing scores.

Writes the same `rows` score rows (the churn demo's `scores` layout, read from a Parquet copy
so that generating them is not timed) into a new Delta table per setting and repetition, with
Delta's file statistics on: every column (Delta's default, the first 32), the columns
`scoring.score.tables.ScoresLayout.scores_properties` keeps, and none
(`dataSkippingNumIndexedCols=0`, which still records numRecords); then ours with Parquet's own
row-group statistics also left out for the string columns (what
`scoring.score.step.write_scores` did, with `ScoresLayout.parquet_string_stats_off`), that
plus no dictionary for the entity key (`customer_id`), and that with at most one open file
per task (finding 27's setting, which opens the file and then sorts every following row),
and with no sort by the partition column (what `write_scores` does now: `WRITERS_CONF`); then
ours without Parquet's dictionary for `score`, and without any dictionary. Prints one
Markdown table (best and median seconds); the settings rotate between repetitions.
bench/RESULTS.md, findings 11, 12, 27, 28 and 29, came from this.
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
from pyspark.sql import types as T

from bench.data import AS_OF
from bench.run import bench_config, bench_session, parse_sizes
from bench.usecase import churn_usecase, scores_layout
from scoring.core import io
from scoring.core.session import temporary_conf
from scoring.core.tables import TableRef
from scoring.score.step import ONE_DATE_UNSORTED, WRITERS_CONF
from scoring.score.tables import Lineage, ScoresLayout, with_lineage
from scoring.usecase import AS_OF_DATE

STATS = "delta.dataSkippingStatsColumns"
# name -> (table properties, session settings during the write)
WriteSettings = dict[str, tuple[dict[str, str], dict[str, str]]]


def write_settings(layout: ScoresLayout) -> WriteSettings:
    """The settings timed, by name: Delta's statistics on which columns, Parquet's on strings."""
    ours = {STATS: layout.scores_properties[STATS]}
    no_strings = layout.parquet_string_stats_off
    keys = ", ".join(layout.keys)
    no_dictionary = {f"parquet.enable.dictionary#{key}": "false" for key in layout.keys}
    ours_unsorted = {WRITERS_CONF: ONE_DATE_UNSORTED}
    sorted_after_one = {WRITERS_CONF: "1"}
    return {
        "Delta: every column (Delta default)": ({}, {}),
        f"Delta: {ours[STATS]}": (ours, {}),
        "Delta: none (numRecords only)": ({"delta.dataSkippingNumIndexedCols": "0"}, {}),
        "Delta: ours; Parquet: no string statistics": (ours, no_strings),
        "Delta: ours; Parquet: no string statistics; at most 1 open file (sorted after it)": (
            ours,
            {**no_strings, **sorted_after_one},
        ),
        "Delta: ours; Parquet: no string statistics; unsorted (ours)": (
            ours,
            {**no_strings, **ours_unsorted},
        ),
        f"Delta: ours; Parquet: no string statistics, no {keys} dictionary": (
            ours,
            {**no_strings, **no_dictionary},
        ),
        "Delta: ours; Parquet: no string statistics, no score dictionary; unsorted": (
            ours,
            {**no_strings, **ours_unsorted, "parquet.enable.dictionary#score": "false"},
        ),
        "Delta: ours; Parquet: no string statistics, no dictionary at all; unsorted": (
            ours,
            {**no_strings, **ours_unsorted, "parquet.enable.dictionary": "false"},
        ),
    }


def score_rows(spark: SparkSession, layout: ScoresLayout, rows: int, files: int) -> DataFrame:
    """`rows` rows of the scored tables' `layout`: distinct entities, one run's lineage.

    Each entity key column holds `C` and the row number (`C0000000042`); the outputs are a
    binary classifier's (`score`, `label`).
    """
    entity = F.format_string("C%010d", F.col("id"))
    scored = spark.range(0, rows, 1, files).select(
        *(entity.alias(key) for key in layout.keys),
        F.lit(AS_OF).alias(AS_OF_DATE),
        F.rand(7).alias("score"),
        (F.rand(8) > 0.8).cast("int").alias("label"),
    )
    lineage = Lineage(
        "bench_tree", "1", "0123456789abcdef0123456789abcdef", 1, "bench-stats", datetime.now(UTC)
    )
    return with_lineage(scored, lineage, layout)


def timed_write(
    spark: SparkSession,
    source: DataFrame,
    ref: TableRef,
    schema: T.StructType,
    props: dict[str, str],
    conf: dict[str, str] | None = None,
) -> float:
    """Seconds to append `source` to a new table `ref` of `schema` and `props`, under `conf`."""
    assert ref.path is not None
    shutil.rmtree(ref.path, ignore_errors=True)
    io.ensure_table(spark, ref, io.TableSpec(schema, (AS_OF_DATE,), props))
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
    layout = scores_layout(churn_usecase())
    source_path = str(work / "source.parquet")
    score_rows(spark, layout, rows, 4).write.mode("overwrite").parquet(source_path)
    source = spark.read.parquet(source_path)
    settings = write_settings(layout)
    names = list(settings)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    warmup = TableRef("warmup", path=str(work / "warmup"))
    timed_write(spark, source, warmup, layout.schema, {})  # untimed
    for rep in range(args.reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            ref = TableRef("scores", path=str(work / "scores"))
            seconds[name].append(timed_write(spark, source, ref, layout.schema, *settings[name]))
    print(f"{rows:,} score rows, {args.reps} repetitions, settings rotated")
    print("| statistics on | best s | median s |\n|---|---|---|")
    for name in names:
        print(f"| {name} | {min(seconds[name]):.1f} | {statistics.median(seconds[name]):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
