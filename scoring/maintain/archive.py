"""Archival of processed raw drops: `<raw_root>/<source>/<YYYY-MM-DD>/` folders whose date's
ingest succeeded (per the `runs` table) and that are `ingest.raw_archive_after_days` old are
moved to `<raw_root>/_archive/<source>/<YYYY-MM-DD>/` or deleted (`ingest.raw_archive`).

A drop whose date has no succeeded ingest, or that is younger, is never touched; nor is
anything that is not a use case source's date folder. Everything goes through Hadoop's
FileSystem, so local paths, s3://, abfss:// and dbfs:/ behave the same (on object stores a
move is a copy and a delete). The ingest step reads only `<raw_root>/<source>/<date>/` of
the use case's sources, whose names start with a letter, so `_archive` is never a source.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from scoring.core import io
from scoring.core.config import join_path
from scoring.core.tables import TableRef

log = logging.getLogger(__name__)
ARCHIVE = "_archive"


@dataclass(frozen=True)
class ArchiveOutcome:
    """What archival did (or, in a dry run, would do) with the drops it looked at."""

    mode: str
    done: tuple[str, ...] = ()  # folders moved or deleted
    kept_not_ingested: tuple[str, ...] = ()  # old enough, but no succeeded ingest
    skipped: tuple[str, ...] = ()  # the archive already holds that source and date

    def summary(self) -> str:
        """One line for people."""
        verb = {"move": "moved to _archive", "delete": "deleted"}.get(self.mode, "kept")
        return (
            f"raw drops: {len(self.done)} {verb}, {len(self.kept_not_ingested)} old but never "
            f"ingested successfully (kept), {len(self.skipped)} already archived (kept)"
        )


def archive_drops(
    spark: SparkSession,
    raw_root: str,
    sources: Sequence[str],
    runs: TableRef,
    usecase: str,
    mode: str,
    after_days: int,
    today: date,
    dry_run: bool,
) -> ArchiveOutcome:
    """Move or delete the processed drops of `sources` dated `after_days` or more before
    `today` (module docstring); `mode` "keep" does nothing."""
    if mode == "keep":
        return ArchiveOutcome(mode)
    cutoff = today - timedelta(days=after_days)
    fs = _filesystem(spark, raw_root)
    candidates = [
        (source, day, folder)
        for source in sources
        for day, folder in _date_folders(spark, fs, join_path(raw_root, source))
        if day <= cutoff
    ]
    if not candidates:
        return ArchiveOutcome(mode)
    ingested = succeeded_ingest_dates(spark, runs, usecase, {day for _, day, _ in candidates})
    done, not_ingested, skipped = [], [], []
    for source, day, folder in candidates:
        if day not in ingested:
            not_ingested.append(folder)
            continue
        target = join_path(raw_root, ARCHIVE, source, day.isoformat())
        if mode == "move" and fs.exists(_path(spark, target)):
            log.warning("maintain: %s is already archived at %s; left in place", folder, target)
            skipped.append(folder)
            continue
        if not dry_run:
            _move_or_delete(spark, fs, folder, target, mode)
        log.info("maintain: %s %s", "would " + mode if dry_run else mode + "d", folder)
        done.append(folder)
    return ArchiveOutcome(mode, tuple(done), tuple(not_ingested), tuple(skipped))


def succeeded_ingest_dates(
    spark: SparkSession, runs: TableRef, usecase: str, days: set[date]
) -> set[date]:
    """Which of `days` have a succeeded ingest run of `usecase` in the `runs` table."""
    if not io.table_exists(spark, runs):
        return set()
    frame = (
        io.read_table(spark, runs)
        .where(F.col("usecase") == F.lit(usecase))
        .where((F.col("step") == "ingest") & (F.col("status") == "succeeded"))
        .where(F.col("run_date").isin(sorted(days)))
        .select("run_date")
        .distinct()
    )
    # At most one row per candidate date: a job-boundary collect.
    return {row["run_date"] for row in frame.collect()}


def _date_folders(spark: SparkSession, fs: Any, folder: str) -> list[tuple[date, str]]:
    """(date, path) of every `YYYY-MM-DD` folder directly in `folder`; none when missing."""
    root = _path(spark, folder)
    if not fs.exists(root):
        return []
    found = []
    for status in fs.listStatus(root) or []:
        if not status.isDirectory():
            continue
        name = str(status.getPath().getName())
        try:
            day = date.fromisoformat(name)
        except ValueError:
            continue
        if len(name) == 10:  # exactly YYYY-MM-DD, as the ingest step looks for it
            found.append((day, join_path(folder, name)))
    return sorted(found)


def _move_or_delete(spark: SparkSession, fs: Any, folder: str, target: str, mode: str) -> None:
    """Move `folder` to `target` (parents created) or delete it; fail naming it if refused."""
    source = _path(spark, folder)
    if mode == "delete":
        ok = fs.delete(source, True)
    else:
        destination = _path(spark, target)
        fs.mkdirs(destination.getParent())
        ok = fs.rename(source, destination)
    if not ok:
        raise OSError(f"{folder}: the file system refused to {mode} it (target {target})")


def _filesystem(spark: SparkSession, location: str) -> Any:
    """Hadoop's FileSystem of a location (local, s3a, abfss, dbfs, ...)."""
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    return _path(spark, location).getFileSystem(hadoop_conf)


def _path(spark: SparkSession, location: str) -> Any:
    jvm = spark.sparkContext._jvm
    assert jvm is not None  # a classic (non-Connect) session always has the JVM gateway
    return jvm.org.apache.hadoop.fs.Path(location)
