"""`python -m bench.profile --rows 4M`: where the CPU of one scoring run goes, JVM included.

Builds a features table (as `python -m bench` does), registers the models, runs the floor
(d) once untimed, then runs each chosen variant once while:

- Java Flight Recorder samples the driver JVM (local mode: the executors run in it), started
  and stopped with `jcmd` (needs a JDK: `jcmd` and `jfr` on the PATH);
- the CPU time of every JVM thread and of the Python workers is read from /proc before and
  after.

Prints, per variant: wall seconds; CPU seconds by thread group (task threads, JIT compiler,
GC, the rest of the JVM, Python workers); and the task threads' samples by what they were
doing (Arrow to and from Python, Parquet statistics / dictionary / encoding, Delta
statistics, the MERGE's join, ...), each sample counted once under the first category of
`CATEGORIES` found anywhere in its stack. The recordings stay in `<work>/<variant>.jfr`.
bench/RESULTS.md, finding 12, came from this.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from pyspark.sql import SparkSession

from bench import models
from bench.memory import worker_pids
from bench.run import (
    SHAPES,
    SPARK_VARIANTS,
    Settings,
    bench_config,
    bench_session,
    download_bench_model,
    fresh_job,
    parse_sizes,
    write_bench_features,
)
from bench.tables import TABLES, bench_table
from bench.variants import Job, floor
from scoring.model.registry import mlflow_target

# (category, pattern searched in the whole stack); the first match wins, so specific ones first.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("Arrow batch size check", r"ArrowWriter\.sizeInBytes"),
    ("Parquet string statistics", r"BinaryStatistics\.updateStats"),
    ("Delta file statistics", r"DeltaTaskStatisticsTracker"),
    ("Parquet dictionary", r"DictionaryValuesWriter|FallbackValuesWriter"),
    (
        "Parquet encode and write",
        r"ParquetOutputWriter\.write|InternalParquetRecordWriter|ColumnChunkPageWriteStore",
    ),
    ("Arrow to Python", r"ArrowWriter\.write|ArrowWriter\.finish|MessageSerializer\.serialize"),
    ("Arrow from Python", r"ArrowStreamReader|ArrowColumnVector"),
    ("MERGE join", r"Join|HashedRelation"),
    ("sort", r"UnsafeExternalSorter|UnsafeInMemorySorter|RadixSort"),
    ("Parquet read", r"VectorizedParquetRecordReader"),
    ("shuffle", r"ShuffleWriter|ShuffleMapTask"),
)
THREAD_GROUPS: tuple[tuple[str, str], ...] = (
    ("JVM task threads", r"^Executor task"),
    ("JVM JIT compiler", r"CompilerThre"),
    ("JVM GC", r"^GC |^G1 |^GN "),
)


def parse_samples(text: str) -> list[tuple[str, list[str]]]:
    """(thread name, frames innermost first) of each sample in `jfr print` output."""
    samples = []
    for block in text.split("jdk.ExecutionSample {")[1:]:
        thread = re.search(r'sampledThread = "([^"]*)"', block)
        stack = (
            block.split("stackTrace = [", 1)[1].split("\n  ]", 1)[0]
            if "stackTrace" in block
            else ""
        )
        frames = [re.sub(r"\(.*", "", line.strip()) for line in stack.splitlines() if line.strip()]
        samples.append((thread.group(1) if thread else "", frames))
    return samples


def categorize(frames: Iterable[str]) -> str:
    """The first of `CATEGORIES` whose pattern matches a frame of the stack, else "other"."""
    stack = "\n".join(frames)
    return next((name for name, pattern in CATEGORIES if re.search(pattern, stack)), "other")


def task_breakdown(samples: list[tuple[str, list[str]]]) -> Counter[str]:
    """Samples of Spark's task threads by category."""
    return Counter(categorize(frames) for thread, frames in samples if "task launch" in thread)


def thread_group(name: str) -> str:
    """The group of a JVM thread, by its /proc name (truncated to 15 characters)."""
    return next(
        (group for group, pattern in THREAD_GROUPS if re.search(pattern, name)), "JVM other"
    )


def cpu_seconds(jvm_pid: int) -> dict[str, float]:
    """CPU seconds so far of every JVM thread group and of this driver's Python workers."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = defaultdict(float)
    for task in Path(f"/proc/{jvm_pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended while we looked
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[thread_group(name)] += (int(fields[11]) + int(fields[12])) / tick
    for pid in worker_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # the daemon's own time plus that of its workers that have ended (cutime, cstime)
        out["Python workers"] += sum(int(f) for f in fields[11:15]) / tick
    return out


def jvm_pid(spark: SparkSession) -> int:
    """The driver JVM's process id."""
    return int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())  # type: ignore[union-attr]


def _jcmd(pid: int, *args: str) -> None:
    subprocess.run(["jcmd", str(pid), *args], check=True, capture_output=True, text=True)


def profile(
    spark: SparkSession, job: Job, variant: str, recording: Path
) -> tuple[float, dict[str, float], Counter[str]]:
    """(wall seconds, CPU seconds by thread group, task samples by category) of one run."""
    pid = jvm_pid(spark)
    before = cpu_seconds(pid)
    _jcmd(pid, "JFR.start", "name=bench", "settings=profile", f"filename={recording}")
    started = time.perf_counter()
    SPARK_VARIANTS[variant](spark, job, f"bench-profile-{variant}-{time.time_ns()}")
    seconds = time.perf_counter() - started
    _jcmd(pid, "JFR.stop", "name=bench")
    after = cpu_seconds(pid)
    printed = subprocess.run(
        ["jfr", "print", "--events", "jdk.ExecutionSample", "--stack-depth", "256", str(recording)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    cpu = {group: after[group] - before.get(group, 0.0) for group in after}
    return seconds, cpu, task_breakdown(parse_samples(printed))


def report(variant: str, seconds: float, cpu: dict[str, float], tasks: Counter[str]) -> str:
    """One variant's result as Markdown."""
    lines = [f"### ({variant}) {seconds:.1f} s wall, {sum(cpu.values()):.1f} CPU-s", ""]
    lines += ["| thread group | CPU s |", "|---|---|"]
    by_cpu = sorted(cpu.items(), key=lambda item: -item[1])
    lines += [f"| {group} | {value:.1f} |" for group, value in by_cpu]
    total = sum(tasks.values()) or 1
    lines += ["", "| task threads were in | samples | share |", "|---|---|---|"]
    lines += [f"| {name} | {n} | {100 * n / total:.0f} % |" for name, n in tasks.most_common()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the table, profile each variant, print the tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--rows", default="4M", help="feature rows (default 4M)")
    parser.add_argument("--shape", default="few-large", choices=sorted(SHAPES))
    parser.add_argument("--model", default="tree", choices=sorted(models.MODELS))
    parser.add_argument("--table", default=models.DEMO, choices=TABLES)
    parser.add_argument("--variants", default="d,a,b", help="subset of a,n,b,d,r, in this order")
    parser.add_argument("--work", type=Path, default=Path("bench/.work/profile"))
    args = parser.parse_args(argv)
    chosen = [v for v in args.variants.split(",") if v]
    profiled = [v for v in SPARK_VARIANTS if v != "s"]  # (s) needs a second model
    if unknown := [v for v in chosen if v not in profiled]:
        known = ",".join(profiled)
        print(f"bench.profile: unknown variant(s) {unknown}; choose from {known}", file=sys.stderr)
        return 2
    if missing := [tool for tool in ("jcmd", "jfr") if shutil.which(tool) is None]:
        print(f"bench.profile: {missing} not on the PATH (a JDK's tools)", file=sys.stderr)
        return 2
    (rows,) = parse_sizes(args.rows)
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = bench_config(work)
    spark = bench_session(config)
    table = bench_table(args.table)
    usecase = table.usecase
    target = mlflow_target(config, usecase.name)
    settings = Settings((rows,), (args.shape,), (args.model,), 1, work, config.scoring.batch_size)
    features = write_bench_features(spark, config, table, rows, args.shape, settings.seed)
    uri = models.register_models(
        spark.read.format("delta").load(str(features.path)),
        usecase,
        target,
        settings.train_rows,
        settings.seed,
        table.name,
    )[args.model]
    model = download_bench_model(target, uri, usecase.model)

    def job(name: str) -> Job:
        return fresh_job(settings, usecase, name, features, target, model)

    # Starting the first recording makes the JVM recompile much of its code (tens of CPU
    # seconds of JIT). A background recording with the same settings, started before the
    # untimed warm-up and kept until the end, takes that cost out of the measured runs.
    _jcmd(jvm_pid(spark), "JFR.start", "name=background", "settings=profile")
    floor(spark, job("warmup"), "bench-profile-warmup")  # untimed: class loading, first JIT
    print(
        f"{rows:,} rows of {table.name}, {args.shape}, {args.model} model, one run each, "
        "after a warm-up (d)\n"
    )
    for variant in chosen:
        seconds, cpu, tasks = profile(spark, job(variant), variant, work / f"{variant}.jfr")
        print(report(variant, seconds, cpu, tasks), flush=True)
    _jcmd(jvm_pid(spark), "JFR.stop", "name=background")  # no file: discarded
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
