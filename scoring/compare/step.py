"""The `compare` step: champion vs challenger versions of one date, to `model_comparison`.

read  - `scores` (pinned version) of the model on the run date: the champion's slice and
        each challenger's; `model_quality` (its current version, when it exists): the
        realized rows of both versions up to the run date;
math  - per (champion, challenger) pair, `scoring.compare.agreement` on the rows both
        scored; the realized metrics side by side where both versions have outcomes;
write - `model_comparison`: per pair, the agreement rows of the run date and the realized
        rows of every date up to it, replaced as a whole (rerun-idempotent; outcomes that
        arrive later fill in the dates they belong to).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from scoring.compare.agreement import agreement, paired
from scoring.core import io, sql
from scoring.core.contracts import load_contract, spark_schema
from scoring.core.errors import DataError
from scoring.core.tables import Tables
from scoring.quality.metrics import HIGHER_IS_BETTER, LOWER_IS_BETTER
from scoring.runs.result import StepResult
from scoring.usecase.spec import AS_OF_DATE

log = logging.getLogger(__name__)
AGREEMENT, REALIZED = "agreement", "realized"
_VERSION = "model_version"
#: The headline numbers of each pair the step's details (and `runs`) keep.
HEADLINE = (
    "rows_both",
    "psi",
    "ks",
    "spearman",
    "top_decile_overlap",
    "flip_share",
    "mean_abs_difference",
)


@dataclass(frozen=True)
class CompareRequest:
    """Which versions of the use case's model to compare, and how its scores are keyed."""

    usecase: str
    model_name: str
    entity: tuple[str, ...]
    task: str
    champion_version: str
    # Empty: every other version that scored the run date (the shadow versions).
    challenger_versions: tuple[str, ...] = ()
    threshold: float = 0.5


@dataclass(frozen=True)
class Binning:
    """How PSI and KS bin the outputs: the monitor's settings."""

    n_bins: int = 10
    epsilon: float = 0.0001
    relative_error: float = 0.0


def run_compare(
    spark: SparkSession,
    tables: Tables,
    request: CompareRequest,
    binning: Binning,
    run_date: date,
    run_id: str,
) -> StepResult:
    """Compare the champion with each challenger on `run_date`; write `model_comparison`.

    Raises:
        DataError: `scores` does not exist, the champion did not score the date, a named
            challenger did not, or no other version did (nothing to compare).
    """
    started = datetime.now(UTC)
    pinned = {"scores": io.required_version(spark, tables["scores"])}
    day = io.read_table(spark, tables["scores"], pinned["scores"]).where(
        (F.col("model_name") == F.lit(request.model_name)) & (F.col(AS_OF_DATE) == F.lit(run_date))
    )
    # The versions that scored the date and their row counts: one small row per version.
    counts = {
        str(r[_VERSION]): int(r["rows"])
        for r in day.groupBy(_VERSION).agg(F.count(F.lit(1)).alias("rows")).collect()
    }
    challengers = _challengers(request, counts, tables, run_date)
    quality = _realized_rows(spark, tables, request, run_date, pinned)
    rows: list[dict[str, Any]] = []
    pairs: dict[str, dict[str, Any]] = {}
    champion = day.where(F.col(_VERSION) == F.lit(request.champion_version))
    for version in challengers:
        pair = paired(
            champion,
            day.where(F.col(_VERSION) == F.lit(version)),
            request.entity,
            request.task,
            request.threshold,
        )
        values = agreement(
            pair,
            request.entity,
            request.task,
            binning.n_bins,
            binning.epsilon,
            binning.relative_error,
        )
        values["rows_champion"] = float(counts[request.champion_version])
        values["rows_challenger"] = float(counts[version])
        side_by_side = realized(quality, request.champion_version, version)
        rows += _agreement_rows(request, version, run_date, values)
        rows += [_row(request, version, d, m, v) for (d, m), v in sorted(side_by_side.items())]
        pairs[version] = {
            **{k: values[k] for k in HEADLINE if k in values},
            "realized_dates": sorted({str(d) for d, _ in side_by_side}),
        }
    stamp = {"run_id": run_id, "computed_at": started}
    version_written = _write(
        spark, tables, request, challengers, [r | stamp for r in rows], run_date, run_id, pinned
    )
    return StepResult(
        step="compare",
        run_id=run_id,
        run_date=run_date,
        rows_in=sum(int(p["rows_both"]) for p in pairs.values()),
        rows_out=len(rows),
        table_versions={"model_comparison": version_written},
        details={
            "model_name": request.model_name,
            "champion_version": request.champion_version,
            "challenger_versions": list(challengers),
            "pairs": pairs,
            "source_versions": pinned,
        },
    )


def _challengers(
    request: CompareRequest, counts: Mapping[str, int], tables: Tables, run_date: date
) -> tuple[str, ...]:
    """The challenger versions to compare: those named, else every other version of the date."""
    where = f"{tables['scores']}: as_of_date {run_date}, model {request.model_name}"
    scored = ", ".join(f"v{v}" for v in sorted(counts)) or "none"
    if request.champion_version not in counts:
        raise DataError(
            f"{where}: the champion v{request.champion_version} scored nothing (versions that "
            f"did: {scored}); score the date with it first"
        )
    if request.champion_version in request.challenger_versions:
        raise DataError(f"{where}: v{request.champion_version} is the champion, not a challenger")
    missing = [v for v in request.challenger_versions if v not in counts]
    if missing:
        raise DataError(
            f"{where}: challenger v{missing[0]} scored nothing (versions that did: {scored}); "
            "shadow-score it (model.shadow, scoring score --models) first"
        )
    others = tuple(sorted(v for v in counts if v != request.champion_version))
    challengers = request.challenger_versions or others
    if not challengers:
        raise DataError(
            f"{where}: only the champion v{request.champion_version} scored the date: no "
            "challenger to compare (name one in model.shadow, or scoring score --models)"
        )
    return challengers


def _realized_rows(
    spark: SparkSession,
    tables: Tables,
    request: CompareRequest,
    run_date: date,
    pinned: dict[str, int],
) -> list[dict[str, Any]]:
    """The model's realized model_quality rows with outcomes up to the run date (the table
    is itself an aggregate: a few dozen rows per date and version)."""
    ref = tables["model_quality"]
    version = io.current_version(spark, ref)
    if version is None:
        return []
    pinned["model_quality"] = version
    frame: DataFrame = io.read_table(spark, ref, version).where(
        (F.col("usecase") == F.lit(request.usecase))
        & (F.col("model_name") == F.lit(request.model_name))
        & (F.col("kind") == F.lit(REALIZED))
        & (F.col("date") <= F.lit(run_date))
        & (F.col("labelled_rows") > 0)
    )
    return [
        r.asDict()
        for r in frame.select("date", _VERSION, "metric", "value", "labelled_rows").collect()
    ]


def realized(
    quality: Sequence[Mapping[str, Any]], champion: str, challenger: str
) -> dict[tuple[date, str], tuple[float, float, int]]:
    """(date, metric) -> (champion value, challenger value, fewer labelled rows), for the
    dates and metrics both versions have realized rows of."""
    by: dict[tuple[date, str, str], Mapping[str, Any]] = {
        (r["date"], r["metric"], str(r[_VERSION])): r for r in quality
    }
    out = {}
    for (day, metric, version), mine in by.items():
        other = by.get((day, metric, challenger))
        if version == champion and other is not None:
            rows = min(int(mine["labelled_rows"]), int(other["labelled_rows"]))
            out[(day, metric)] = (float(mine["value"]), float(other["value"]), rows)
    return out


def _agreement_rows(
    request: CompareRequest, challenger: str, run_date: date, values: Mapping[str, float]
) -> list[dict[str, Any]]:
    rows = int(values["rows_both"])
    return [
        _base(request, challenger, run_date, AGREEMENT, metric)
        | {
            "value": float(value),
            "champion_value": None,
            "challenger_value": None,
            "higher_is_better": None,
            "rows": rows,
        }
        for metric, value in sorted(values.items())
    ]


def _row(
    request: CompareRequest,
    challenger: str,
    day: date,
    metric: str,
    values: tuple[float, float, int],
) -> dict[str, Any]:
    """One realized row: the two values, their difference (challenger - champion)."""
    champion_value, challenger_value, rows = values
    better = True if metric in HIGHER_IS_BETTER else False if metric in LOWER_IS_BETTER else None
    return _base(request, challenger, day, REALIZED, metric) | {
        "value": challenger_value - champion_value,
        "champion_value": champion_value,
        "challenger_value": challenger_value,
        "higher_is_better": better,
        "rows": rows,
    }


def _base(
    request: CompareRequest, challenger: str, day: date, kind: str, metric: str
) -> dict[str, Any]:
    return {
        "usecase": request.usecase,
        "date": day,
        "model_name": request.model_name,
        "champion_version": request.champion_version,
        "challenger_version": challenger,
        "kind": kind,
        "metric": metric,
    }


def replaced(request: CompareRequest, challengers: Sequence[str], run_date: date) -> str:
    """The rows a run recomputes: per pair, its agreement rows of the run date and its
    realized rows up to it."""
    day = sql.literal(run_date)
    agreement_rows = f"({sql.predicate(('kind', AGREEMENT), ('date', run_date))})"
    realized_rows = f"({sql.predicate(('kind', REALIZED))} AND {sql.identifier('date')} <= {day})"
    pairs = " OR ".join(
        f"({sql.predicate(('champion_version', request.champion_version), ('challenger_version', v))})"
        for v in challengers
    )
    name = sql.predicate(("usecase", request.usecase), ("model_name", request.model_name))
    return f"{name} AND ({pairs}) AND ({agreement_rows} OR {realized_rows})"


def _write(
    spark: SparkSession,
    tables: Tables,
    request: CompareRequest,
    challengers: Sequence[str],
    rows: list[dict[str, Any]],
    run_date: date,
    run_id: str,
    pinned: Mapping[str, int],
) -> int:
    """Replace the pairs' recomputed rows; return the version committed."""
    contract = load_contract("model_comparison")
    ref = tables["model_comparison"]
    io.ensure_table(spark, ref, io.contract_spec(contract))
    frame = spark.createDataFrame([Row(**r) for r in rows], spark_schema(contract))
    metadata = {
        "run_id": run_id,
        "usecase": request.usecase,
        "step": "compare",
        "model_name": request.model_name,
        "champion_version": request.champion_version,
        "challenger_versions": list(challengers),
        "source_versions": dict(pinned),
    }
    io.write_delta(frame, ref, "overwrite", metadata, replaced(request, challengers, run_date))
    return int(io.require_own_commit(spark, ref, run_id)["version"])
