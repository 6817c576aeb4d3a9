"""`python -m bench.write --rows 4M [--reps 3]`: what the score step's two writes cost, and
cheaper ways to make them (issue #18, part 2; bench/RESULTS.md, finding 15).

Times only the writes of `scoring.score.step.write_scores`, on score rows read from a Parquet
copy (no model runs, nothing generated while timed), in three scenarios:

- **first run**: `scores` and `scores_current` empty (what `make bench` measures);
- **day 2** (the daily steady state): `scores` holds `--history` earlier dates and yesterday,
  `scores_current` yesterday's row of every entity; today scores the same entities;
- **rerun**: day 2 after today's run, run again (same scores, a new run id and scored_at).

Options (each writes the `scores` slice by replaceWhere in one commit, as today):

- **a** today: read the slice back at its commit's version, MERGE it (`NEWER_SCORE`);
- **b** the MERGE's source is the commit's added Parquet files, read directly (no Delta
  snapshot of the new version; the partition value put back as a literal);
- **c** as a, with deletion vectors on `scores_current`;
- **d** as a, but a matched row is updated only when newer AND its date, outputs or model
  differ (a rerun's unchanged rows stay as they are);
- **e** `scoring.current_write: overwrite` (`scoring.score.current`): `scores_current`
  overwritten with the slice when one query finds every current row older than the slice's
  row of its entity (else a's MERGE);
- **f** as a, with Change Data Feed off on `scores_current`: not a candidate (the feed is
  promised to decision systems, docs/tables.md), it measures what the feed's change rows cost.

`--options` picks some of them (letters, default all); `--conf KEY=VALUE` (repeatable) sets a
Spark property around every timed write, to try a knob against the same options.

Tables are prepared (copied from a template, untimed) before every timed write; options
rotate between repetitions. Prints one Markdown table (median seconds of the whole write and
of its `scores_current` part, load average over the run) and what delta-rs makes of the
deletion-vector table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from bench.data import AS_OF
from bench.run import bench_config, bench_session, parse_conf, parse_sizes
from bench.usecase import churn_usecase, scores_layout
from scoring.core import io
from scoring.core.session import temporary_conf
from scoring.core.tables import TableRef
from scoring.score.current import OVERWRITE, feed_current
from scoring.score.tables import NEWER_SCORE, Lineage, ScoresLayout, slice_predicate, with_lineage
from scoring.usecase import AS_OF_DATE

MODEL, VERSION = "bench_tree", "1"
DV = "delta.enableDeletionVectors"
CDF = "delta.enableChangeDataFeed"
SCENARIOS = ("first run", "day 2", "rerun")


@dataclass(frozen=True)
class Write:
    """One timed write: the tables, today's stamped rows and the commit's metadata."""

    spark: SparkSession
    layout: ScoresLayout
    scores: TableRef
    current: TableRef
    rows: DataFrame
    run_date: date
    metadata: dict[str, Any]


def scored_rows(spark: SparkSession, layout: ScoresLayout, rows: int, seed: int) -> DataFrame:
    """`rows` entities' keys and a binary model's outputs (the seed varies the scores)."""
    entity = F.format_string("C%010d", F.col("id"))
    return spark.range(0, rows, 1, 4).select(
        *(entity.alias(key) for key in layout.keys),
        F.rand(seed).alias("score"),
        (F.rand(seed + 1) > 0.8).cast("int").alias("label"),
    )


def stamped(source: DataFrame, layout: ScoresLayout, day: date, run_id: str) -> DataFrame:
    """Today's rows of `source` as the score step writes them: date and lineage added."""
    lineage = Lineage(MODEL, VERSION, "0" * 32, 1, run_id, datetime.now(UTC))
    return with_lineage(source.withColumn(AS_OF_DATE, F.lit(day)), lineage, layout)


def write_slice(w: Write) -> dict[str, Any]:
    """Replace today's slice of `scores` (what write_scores does first); its commit."""
    before = io.current_version(w.spark, w.scores)
    predicate = slice_predicate(w.run_date, MODEL, VERSION)
    with temporary_conf(w.spark, w.layout.parquet_string_stats_off):
        io.write_delta(w.rows, w.scores, "overwrite", w.metadata, replace_where=predicate)
    return io.require_own_commit(w.spark, w.scores, str(w.metadata["run_id"]), after=before)


def read_back(w: Write, commit: dict[str, Any]) -> DataFrame:
    """The slice read back through Delta at the commit's version (options a, c, d, e)."""
    serving = slice_predicate(w.run_date, MODEL, VERSION)
    return io.read_table(w.spark, w.scores, commit["version"]).where(serving)


def added_files(w: Write, commit: dict[str, Any]) -> DataFrame:
    """The slice from the Parquet files the commit added (option b): the Delta log's `add`
    actions of that version, partition value put back, the table's columns in order."""
    assert w.scores.path is not None
    log = Path(w.scores.path) / "_delta_log" / f"{commit['version']:020d}.json"
    actions = [json.loads(line) for line in log.read_text().splitlines() if line]
    paths = [str(Path(w.scores.path) / a["add"]["path"]) for a in actions if "add" in a]
    schema = w.layout.schema
    in_files = T.StructType([f for f in schema.fields if f.name != AS_OF_DATE])
    files = w.spark.read.schema(in_files).parquet(*paths)
    serving = slice_predicate(w.run_date, MODEL, VERSION)
    return (
        files.withColumn(AS_OF_DATE, F.lit(w.run_date))
        .select(*(f.name for f in schema.fields))
        .where(serving)
    )


def merge(w: Write, source: DataFrame, changed_only: bool = False) -> None:
    """MERGE `source` into scores_current on the entity key (newer rows win); with
    `changed_only`, a newer row replaces only a row that differs in date, outputs or model."""
    condition = NEWER_SCORE
    if changed_only:
        compared = [AS_OF_DATE, "score", "label", "model_name", "model_version"]
        same = " AND ".join(f"s.{c} <=> t.{c}" for c in compared)
        condition = f"({NEWER_SCORE}) AND NOT ({same})"
    with temporary_conf(w.spark, w.layout.parquet_string_stats_off):
        io.merge_newer(w.spark, source, w.current, w.layout.keys, condition, w.metadata)


def option_a(w: Write) -> float:
    commit = write_slice(w)
    started = time.perf_counter()
    merge(w, read_back(w, commit))
    return time.perf_counter() - started


def option_b(w: Write) -> float:
    commit = write_slice(w)
    started = time.perf_counter()
    merge(w, added_files(w, commit))
    return time.perf_counter() - started


def option_d(w: Write) -> float:
    commit = write_slice(w)
    started = time.perf_counter()
    merge(w, read_back(w, commit), changed_only=True)
    return time.perf_counter() - started


def option_e(w: Write) -> float:
    commit = write_slice(w)
    started = time.perf_counter()
    source = read_back(w, commit)
    with temporary_conf(w.spark, w.layout.parquet_string_stats_off):
        feed_current(w.spark, source, w.current, w.layout.keys, w.metadata, OVERWRITE)
    return time.perf_counter() - started


OPTIONS: dict[str, Callable[[Write], float]] = {
    "a: read-back + MERGE (today)": option_a,
    "b: MERGE from the commit's files": option_b,
    "c: a + deletion vectors": option_a,
    "d: a, update changed rows only": option_d,
    "e: overwrite when the slice covers": option_e,
    "f: a without Change Data Feed": option_a,
}
PROPERTIES = {"c": {DV: "true"}, "f": {CDF: "false"}}


def prepare(
    spark: SparkSession, layout: ScoresLayout, source: DataFrame, args: Any, scenarios: list[str]
) -> Path:
    """Templates of both tables for each scenario under `work/templates/<scenario>`."""
    root = Path(args.work) / "templates"
    shutil.rmtree(root, ignore_errors=True)
    for scenario in scenarios:
        scores = TableRef("scores", path=str(root / scenario / "scores"))
        current = TableRef("scores_current", path=str(root / scenario / "scores_current"))
        io.ensure_table(spark, scores, layout.table_spec(current=False))
        io.ensure_table(spark, current, layout.table_spec(current=True))
        if scenario == "first run":
            continue
        for back in range(args.history + 1, 0, -1):
            day = AS_OF - timedelta(days=back)
            rows = stamped(scored_rows(spark, layout, args.rows_n, 100 + back), layout, day, "old")
            io.write_delta(rows, scores, "append", {"run_id": f"prep-{back}"})
        yesterday = io.read_table(spark, scores).where(
            F.col(AS_OF_DATE) == F.lit(AS_OF - timedelta(days=1))
        )
        io.write_delta(yesterday, current, "append", {"run_id": "prep-current"})
        if scenario == "rerun":
            w = Write(
                spark,
                layout,
                scores,
                current,
                stamped(source, layout, AS_OF, "first"),
                AS_OF,
                {"run_id": "first"},
            )
            option_a(w)
    return root


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, time every option in every scenario `--reps` times, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.write", description=__doc__)
    parser.add_argument("--rows", default="4M", help="entities (default 4M)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--history", type=int, default=2, help="earlier dates in scores")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated (default: all three)"
    )
    parser.add_argument(
        "--options", default="".join(n[0] for n in OPTIONS), help="letters (default: all)"
    )
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark property set around every timed write (repeatable)",
    )
    parser.add_argument("--work", type=Path, default=Path("bench/.work/write"))
    args = parser.parse_args(argv)
    try:
        conf = parse_conf(args.conf)
    except ValueError as exc:
        parser.error(str(exc))
    (args.rows_n,) = parse_sizes(args.rows)
    args.work = args.work.resolve()
    scenarios = [s.strip() for s in args.scenarios.split(",")]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"--scenarios: unknown {unknown}; choose from {', '.join(SCENARIOS)}")
    names = [n for n in OPTIONS if n[0] in args.options]
    if not names or set(args.options) - {n[0] for n in OPTIONS}:
        parser.error(
            f"--options: letters of {''.join(n[0] for n in OPTIONS)}, got {args.options!r}"
        )
    spark = bench_session(bench_config(args.work))
    layout = scores_layout(churn_usecase())
    source_path = str(args.work / "source.parquet")
    scored_rows(spark, layout, args.rows_n, 7).write.mode("overwrite").parquet(source_path)
    source = spark.read.parquet(source_path)
    templates = prepare(spark, layout, source, args, scenarios)
    seconds: dict[tuple[str, str], list[tuple[float, float]]] = {}
    loads: list[float] = []
    for rep in range(args.reps):
        for scenario in scenarios:
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                if scenario != "rerun" and name.startswith("d"):
                    continue  # d differs from a only where rows are unchanged: reruns
                # a new folder each time: Delta caches a table's log by its path
                shutil.rmtree(args.work / "run", ignore_errors=True)
                work = args.work / "run" / f"{rep}-{scenario}-{name[0]}".replace(" ", "-")
                shutil.copytree(templates / scenario, work)
                scores = TableRef("scores", path=str(work / "scores"))
                current = TableRef("scores_current", path=str(work / "scores_current"))
                if name[0] in PROPERTIES:
                    io.set_properties(spark, current, PROPERTIES[name[0]])
                run_id = f"bench-write-{rep}-{name[0]}"
                rows = stamped(source, layout, AS_OF, run_id)
                w = Write(spark, layout, scores, current, rows, AS_OF, {"run_id": run_id})
                loads.append(os.getloadavg()[0])
                with temporary_conf(spark, conf):
                    started = time.perf_counter()
                    merge_s = OPTIONS[name](w)
                    total = time.perf_counter() - started
                loads.append(os.getloadavg()[0])
                seconds.setdefault((scenario, name), []).append((total, merge_s))
                check_current(w, args.rows_n, name)
                if rep == 0:
                    report_commit(w)
                print(
                    f"rep {rep} {scenario:9} {name:38} {total:6.1f} s (current {merge_s:5.1f} s)",
                    flush=True,
                )
                if name.startswith("c") and scenario == "day 2" and rep == 0:
                    report_readers(current)
    print(
        f"\n{args.rows_n:,} entities, {args.reps} repetitions, options rotated, "
        f"load average (1 min) {min(loads):.1f}-{max(loads):.1f}"
        + (f", Spark properties {conf}" if conf else "")
    )
    print("| scenario | option | median s | scores_current part, median s | all s |")
    print("|---|---|---|---|---|")
    for (scenario, name), values in seconds.items():
        totals = [v[0] for v in values]
        parts = [v[1] for v in values]
        every = ", ".join(f"{t:.1f}" for t in totals)
        print(
            f"| {scenario} | {name} | {statistics.median(totals):.1f} | "
            f"{statistics.median(parts):.1f} | {every} |"
        )
    return 0


def check_current(w: Write, rows: int, name: str) -> None:
    """scores_current holds one row per entity, all of today (the guarantees an option keeps)."""
    frame = io.read_table(w.spark, w.current)
    got = frame.agg(
        F.count(F.lit(1)).alias("n"),
        F.countDistinct(*w.layout.keys).alias("keys"),
        F.min(AS_OF_DATE).alias("first"),
    ).first()
    assert got is not None
    if got["n"] != rows or got["keys"] != rows or got["first"] != AS_OF:
        raise RuntimeError(f"{name}: scores_current has {got}, expected {rows} rows of {AS_OF}")


METRICS = (
    "numTargetRowsUpdated",
    "numTargetRowsCopied",
    "numTargetFilesRemoved",
    "numTargetChangeFilesAdded",
    "numTargetDeletionVectorsAdded",
    "materializeSourceTimeMs",
    "scanTimeMs",
    "rewriteTimeMs",
)


def report_commit(w: Write) -> None:
    """The scores_current commit: MERGE metrics, and what its Change Data Feed says."""
    commit = io.last_commit(w.spark, w.current)
    metrics = {k: v for k, v in commit["operationMetrics"].items() if k in METRICS}
    detail = io.delta_table(w.spark, w.current).detail().first()
    if detail is None or (detail["properties"] or {}).get(CDF) != "true":
        print(f"  scores_current: {commit['operation']} {metrics} no change feed", flush=True)
        return
    changes = (
        w.spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", commit["version"])
        .option("endingVersion", commit["version"])
        .load(str(w.current.path))
        .groupBy("_change_type")
        .count()
        .collect()
    )
    feed = {row["_change_type"]: row["count"] for row in changes}
    print(f"  scores_current: {commit['operation']} {metrics} change feed {feed}", flush=True)


def report_readers(current: TableRef) -> None:
    """What delta-rs makes of scores_current with deletion vectors: protocol, row count."""
    from deltalake import DeltaTable

    table = DeltaTable(str(current.path))
    protocol = table.protocol()
    print(f"deletion vectors: protocol {protocol}", flush=True)
    try:
        count = table.to_pyarrow_dataset().count_rows()
        print(f"delta-rs reads it: {count:,} rows", flush=True)
    except Exception as exc:  # the reader's own refusal is the finding
        print(f"delta-rs refuses it: {type(exc).__name__}: {str(exc)[:300]}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
