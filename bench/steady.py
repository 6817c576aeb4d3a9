"""The steady-state scenario (`--scenarios steady`): day 2 of a use case, into full tables.

The first-run scenario scores into empty tables; a daily job does not. Here every timed run
starts from the same prepared state: `scores` already holds `days` earlier dates, each a
slice of every entity of the features table, and `scores_current` holds the newest of them, MERGEd as the score step feeds it (the last two
dates are MERGEd, so it is the product of a MERGE that matched every row, as on any day
after the first, and the JVM has run that path before the first timed run). The run date's
features are then scored into that state: its `scores` slice is new and every row of
`scores_current` is matched by the MERGE.

The state is written once per features table (untimed) with the score step's own table specs,
lineage columns and Parquet settings and a constant score: the older dates in one append (one
commit; as many files per date as daily runs write, one per partition of the features), the
last two by the score step's own writer (`scoring.score.step.write_scores`: a slice
overwrite and a MERGE each). Each timed run gets its own copy (`clone_table`: the log
copied, data files hard-linked).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from bench.usecase import scores_layout
from scoring.core import io
from scoring.core.session import temporary_conf
from scoring.core.tables import TableRef, Tables
from scoring.model.registry import ResolvedModel
from scoring.model.tasks import output_fields
from scoring.score.step import write_scores
from scoring.score.tables import Lineage, with_lineage
from scoring.usecase import AS_OF_DATE, UseCase

HISTORY_DAYS = 30
#: The model whose slices fill the history (the MERGE and the slice overwrite of a later
#: run do not depend on which model scored earlier dates).
HISTORY_MODEL = ResolvedModel("models:/bench_history/1", "bench_history", "1", None, None)
#: The constant outputs of the history rows, by output column.
HISTORY_OUTPUTS = {"score": 0.5, "label": 0}


@dataclass(frozen=True)
class State:
    """A prepared `scores` and `scores_current` (Delta table folders) to copy from."""

    scores: Path
    current: Path


def history_dates(run_date: date, days: int) -> list[date]:
    """The `days` dates before `run_date`, oldest first."""
    return [run_date - timedelta(days=days - n) for n in range(days)]


def prepare_state(
    spark: SparkSession,
    features: TableRef,
    usecase: UseCase,
    run_date: date,
    days: int,
    folder: Path,
) -> State:
    """Write the state the steady runs start from into `folder` (replaced if it exists).

    Every entity of `features` on `run_date` gets a row in each of the `days` dates before
    it; the last two dates are MERGEd into `scores_current` (the newest wins).

    Raises:
        ValueError: `days` is below 1 (a state with no history is the first run's).
        DataError: `features` has no partition of `run_date`.
    """
    if days < 1:
        raise ValueError(f"bench.steady: the history needs at least one date, got {days}")
    shutil.rmtree(folder, ignore_errors=True)
    state = State(folder / "scores", folder / "scores_current")
    tables = Tables(
        usecase.name,
        {
            "features": features,
            "scores": TableRef("scores", path=str(state.scores)),
            "scores_current": TableRef("scores_current", path=str(state.current)),
        },
    )
    version = io.current_version(spark, features) or 0
    partition = io.read_partition(spark, features, usecase.features.as_of_column, run_date, version)
    keys = partition.select(*usecase.entity)
    layout = scores_layout(usecase)
    outputs = [
        F.lit(HISTORY_OUTPUTS[f.name]).cast(f.dataType).alias(f.name)
        for f in output_fields(usecase.model.task)
    ]
    dates = history_dates(run_date, days)
    older, merged = dates[:-2], dates[-2:]
    if older:
        spans = spark.createDataFrame([(day,) for day in older], f"{AS_OF_DATE} date")
        scored = keys.crossJoin(F.broadcast(spans)).select(*usecase.entity, AS_OF_DATE, *outputs)
        stamped = with_lineage(scored, _lineage(older[-1], version), layout)
        io.ensure_table(spark, tables["scores"], layout.table_spec(current=False))
        with temporary_conf(spark, layout.parquet_string_stats_off):
            io.write_delta(stamped, tables["scores"], "append", {"run_id": "bench-history"})
    for day in merged:
        scored = keys.select(*usecase.entity, F.lit(day).alias(AS_OF_DATE), *outputs)
        write_scores(
            spark,
            scored,
            tables,
            layout,
            (HISTORY_MODEL,),
            (_lineage(day, version),),
            day,
            batch_size=50_000,
        )
    return state


def _lineage(day: date, feature_version: int) -> Lineage:
    """The lineage of the history rows of `day`: the history model, scored that day."""
    return Lineage(
        HISTORY_MODEL.name,
        HISTORY_MODEL.version,
        None,
        feature_version,
        f"bench-history-{day.isoformat()}",
        datetime.combine(day, datetime.min.time(), UTC),
    )


def clone_table(source: Path, target: Path) -> None:
    """Copy the Delta table folder `source` to `target` (which must not exist).

    The transaction log is copied; data files are hard-linked (copied where the file system
    cannot link): Delta never rewrites a data file, every change adds files and a log entry,
    so the run on `target` leaves `source` as it was, and the copy costs no data I/O.
    """
    log = f"{os.sep}_delta_log{os.sep}"

    def link_or_copy(src: str, dst: str) -> None:
        if log not in src:
            with contextlib.suppress(OSError):
                os.link(src, dst)
                return
        shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy)
