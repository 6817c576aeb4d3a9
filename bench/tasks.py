"""`python -m bench.tasks --tasks 400 --reps 2`: what a Python UDF task costs to start.

PySpark's worker calls `importlib.invalidate_caches()` at every task; on Python 3.11 that
re-reads the directory of every zip on the worker's path (`pyspark.zip`, the `spark-core`
jar), and the score step's UDF makes it lazy (`scoring.core.worker`). Two modes, each in a
process and Spark session of its own (fresh Python workers), alternated `--reps` times: a
warm-up job starts the workers, then `--jobs` timed jobs of `--tasks` one-row tasks of an
Arrow UDF (`mapInArrow`, written to Spark's `noop` sink, so only the tasks are timed).
**eager**: the UDF passes its batch through, as any PySpark UDF does; **lazy**: it first
calls `lazy_zip_invalidation`, as the score step's UDF does. Prints one Markdown table: best
and median seconds per job and milliseconds per task. bench/RESULTS.md, finding 30.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from pyspark.sql import SparkSession

from bench.run import bench_config, bench_session

MODES = ("eager", "lazy")


def main(argv: list[str] | None = None) -> int:
    """Run each mode `--reps` times in its own process; print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.tasks", description=__doc__)
    parser.add_argument("--tasks", type=int, default=400, help="tasks per job (default 400)")
    parser.add_argument("--jobs", type=int, default=2, help="timed jobs per process (default 2)")
    parser.add_argument("--reps", type=int, default=2, help="processes per mode (default 2)")
    parser.add_argument("--work", type=Path, default=Path("bench/.work/tasks"))
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spark = bench_session(bench_config(args.work.resolve()))
        print(json.dumps(time_jobs(spark, args.child, args.tasks, args.jobs)))
        spark.stop()
        return 0
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.reps):
        for mode in MODES:
            command = [sys.executable, "-m", "bench.tasks", "--child", mode]
            command += ["--tasks", str(args.tasks), "--jobs", str(args.jobs)]
            command += ["--work", str(args.work)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            seconds[mode] += json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{args.tasks} one-row Arrow UDF tasks per job, {args.reps} processes per mode")
    print("| zip re-read | best s | median s | ms per task (median) |\n|---|---|---|---|")
    for mode in MODES:
        median = statistics.median(seconds[mode])
        print(
            f"| {mode} | {min(seconds[mode]):.1f} | {median:.1f} | "
            f"{1000 * median / args.tasks:.0f} |"
        )
    return 0


def time_jobs(spark: SparkSession, mode: str, tasks: int, jobs: int) -> list[float]:
    """Seconds of each of `jobs` jobs of `tasks` one-row UDF tasks, after a warm-up job."""
    lazy = mode == "lazy"

    def through(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        if lazy:
            from scoring.core.worker import lazy_zip_invalidation

            lazy_zip_invalidation()
        yield from batches

    frame = spark.range(0, tasks, 1, tasks)
    udf = frame.mapInArrow(through, frame.schema)  # type: ignore[arg-type]
    udf.write.format("noop").mode("overwrite").save()  # starts the workers, untimed
    seconds = []
    for _ in range(jobs):
        start = time.perf_counter()
        udf.write.format("noop").mode("overwrite").save()
        seconds.append(time.perf_counter() - start)
    return seconds


if __name__ == "__main__":
    raise SystemExit(main())
