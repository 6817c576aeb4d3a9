"""The `quality` step: realized and estimated (CBPE) quality of the model, to `model_quality`.

read  - `scores` of the model up to the run date (pinned version), the labels source's
        bronze table (the version the newest succeeded ingest left, as features and train
        pin it), the features table (pinned: which entities exist), and each scoring
        model version's baseline Parquet;
check - outcomes of an unknown entity (never in features), outside the task's classes
        (regression: not a finite number) or duplicated for one entity and date go to
        `quarantine` (source `quality:<labels source>`, one reason each), out of the metrics;
math  - ONE grouped pass over the scored rows left-joined with the outcomes, per (as-of date,
        model version) slice (`scoring.quality.metrics`), only the small groups collected;
write - `model_quality`: the estimated rows of the run date and the realized rows of every
        scored date up to it, replaced as a whole (rerun-idempotent; late outcomes update
        the date they belong to).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from scoring.core import io, sql
from scoring.core.config import QualitySettings
from scoring.core.contracts import load_contract, spark_schema
from scoring.core.errors import DataError
from scoring.core.tables import Tables
from scoring.ingest.records import conform
from scoring.model.tasks import BINARY, MULTICLASS, REGRESSION
from scoring.monitor.baseline import TARGET
from scoring.quality import metrics as m
from scoring.runs.result import StepResult
from scoring.usecase.spec import AS_OF_DATE, LabelsSpec

log = logging.getLogger(__name__)
#: The baseline Parquet's column with the held-out rows' observed outcome.
BASELINE_OUTCOME = TARGET
REALIZED, ESTIMATED = "realized", "estimated"
#: Quarantine reasons of outcomes (docs/monitoring.md#model-quality).
UNKNOWN_ENTITY, DUPLICATE, NOT_A_CLASS, NOT_FINITE = (
    "unknown_entity",
    "duplicate_outcome",
    "not_a_class",
    "not_finite",
)
_VERSION = "model_version"


@dataclass(frozen=True)
class QualityRequest:
    """Which model's quality to compute, and how the use case's tables are keyed."""

    usecase: str
    model_name: str
    entity: tuple[str, ...]
    task: str
    labels: LabelsSpec | None = None
    labels_columns: tuple[str, ...] = ()  # the labels source's contract columns
    positive_class: str = "1"
    threshold: float = 0.5
    model_version: str | None = None  # None: every version that scored
    # The version whose alerts count (the serving one): a shadow-scored challenger's rows are
    # written and judged too, but its alerts fail no run and retrain nothing (they are
    # counted apart, `shadow_alerts`). None: every version's count.
    serving_version: str | None = None


@dataclass(frozen=True)
class _Baseline:
    """A model version's metrics on its held-out baseline rows (None: no outcomes)."""

    values: Mapping[str, float] | None
    classes: tuple[str, ...] = ()


def run_quality(
    spark: SparkSession,
    tables: Tables,
    settings: QualitySettings,
    request: QualityRequest,
    baseline_path: Callable[[str], str | None],
    run_date: date,
    run_id: str,
) -> StepResult:
    """Compute and write the quality of every slice the model scored up to `run_date`.

    Args:
        baseline_path: model version -> local path of its baseline Parquet, or None when
            the version has none (its metrics are then not judged).

    Raises:
        DataError: the model scored nothing up to `run_date`, or `scores` does not exist.
            A run date without a scored slice (outcomes arriving on a day without scoring)
            gets no estimate, only the realized quality of the dates before it.
    """
    started = datetime.now(UTC)
    pinned = {name: io.required_version(spark, tables[name]) for name in ("scores", "features")}
    scores = io.read_table(spark, tables["scores"], pinned["scores"]).where(
        (F.col("model_name") == F.lit(request.model_name)) & (F.col(AS_OF_DATE) <= F.lit(run_date))
    )
    if request.model_version is not None:
        scores = scores.where(F.col(_VERSION) == F.lit(request.model_version))
    # The scored (date, version) slices and their row counts: one small row per slice.
    slices = {
        (r[AS_OF_DATE], r[_VERSION]): int(r["rows"])
        for r in scores.groupBy(AS_OF_DATE, _VERSION).agg(F.count(F.lit(1)).alias("rows")).collect()
    }
    if not slices:
        raise DataError(
            f"{tables['scores']}: no scores of model {request.model_name} up to as_of_date "
            f"{run_date}; run `scoring score` first"
        )
    if not any(day == run_date for day, _ in slices):
        log.info(
            "quality: model %s scored nothing on %s: no estimate for it; realized quality of "
            "the %d scored slice(s) before it",
            request.model_name,
            run_date,
            len(slices),
        )
    versions = sorted({v for _, v in slices})
    baselines = {v: _baseline(spark, request, settings, baseline_path, v) for v in versions}
    calibration = _calibration(request, baselines, settings)
    outcomes, quarantine, counts = _outcomes(spark, tables, request, scores, baselines, pinned)
    joined = _joined(scores, outcomes, request)
    computed = _slice_metrics(joined, request, settings, run_date)
    limits = {k: (v.warn, v.alert) for k, v in settings.thresholds.items()}
    rows = [
        _row(request, (day, version, kind), metric, value, baselines[version], limits, stats)
        | {"run_id": run_id, "computed_at": started}
        for (day, version, kind), (values, stats) in sorted(computed.items())
        for metric, value in sorted(values.items())
        if finite(value)
    ]
    written = _write(spark, tables, request, rows, quarantine, run_date, run_id, started, pinned)
    summary = _summarize(rows, run_date, request.model_name, request.serving_version)
    warnings = tuple(calibration)
    if summary["alerts"] or summary["warnings"]:
        # `runs` keeps the verdict beside the counts (its rows have no details column)
        warnings += (
            f"{summary['alerts']} quality alert(s), {summary['warnings']} warning(s); at "
            f"alert: {', '.join(summary['alerted_metrics']) or 'none'}",
        )
    return StepResult(
        step="quality",
        run_id=run_id,
        run_date=run_date,
        rows_in=sum(n for (day, _), n in slices.items() if day == run_date),
        rows_out=len(rows),
        rows_quarantined=counts.get("quarantined", 0),
        table_versions=written,
        details={
            "model_name": request.model_name,
            "model_versions": versions,
            "labelled_dates": sorted(
                str(day)
                for (day, _, kind), (_, st) in computed.items()
                if kind == REALIZED and st.labelled > 0
            ),
            "outcomes": counts,
            "calibration_ok": not calibration,
            "source_versions": pinned,
            **summary,
        },
        warnings=warnings,
    )


# --- baselines ------------------------------------------------------------------------------


def _baseline(
    spark: SparkSession,
    request: QualityRequest,
    settings: QualitySettings,
    baseline_path: Callable[[str], str | None],
    version: str,
) -> _Baseline:
    """The version's metrics on its held-out baseline rows, with the same code as the
    realized ones; none (logged) when it has no baseline or the baseline no outcomes."""
    path = baseline_path(version)
    if path is None:
        log.warning(
            "quality: model %s v%s has no baseline: no baseline values, thresholds not applied",
            request.model_name,
            version,
        )
        return _Baseline(None)
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the baseline Parquet ({exc})") from exc
    if BASELINE_OUTCOME not in frame.columns:
        log.warning(
            "quality: the baseline of model %s v%s has no '%s' column (recorded without "
            "outcomes): no baseline values, thresholds not applied, calibration not checked",
            request.model_name,
            version,
            BASELINE_OUTCOME,
        )
        return _Baseline(None)
    classes = tuple(sorted({_text(v) for v in frame[BASELINE_OUTCOME].dropna()}))
    columns = [c for c in ("score", "label", "prediction", "probabilities") if c in frame]
    small = frame[[*columns, BASELINE_OUTCOME]].copy()
    small[BASELINE_OUTCOME] = [None if pd.isna(v) else _text(v) for v in small[BASELINE_OUTCOME]]
    if request.task == MULTICLASS and "probabilities" not in small:
        small["probabilities"] = [{} for _ in range(len(small))]
    base = spark.createDataFrame(small).withColumn(_VERSION, F.lit(version))
    base = base.withColumn(AS_OF_DATE, F.lit(None).cast("date"))
    outcome = F.col(BASELINE_OUTCOME)
    if request.task == REGRESSION:
        outcome = outcome.cast("double")
    frame_in = _task_columns(base, request, outcome)
    computed = _task_metrics(frame_in, request, settings.score_bins)
    values = {metric: v for (_, _), (vals, _) in computed.items() for metric, v in vals.items()}
    if request.task == MULTICLASS and "probabilities" not in frame.columns:
        values.pop("log_loss", None)
    values.pop("coverage", None)
    return _Baseline(values, classes)


def _text(value: Any) -> str:
    """An outcome as text, as classes are compared: 1.0 -> "1", True -> "True"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _calibration(
    request: QualityRequest, baselines: Mapping[str, _Baseline], settings: QualitySettings
) -> list[str]:
    """A warning per binary model version whose baseline ECE is above the limit."""
    notes = []
    for version, baseline in sorted(baselines.items()):
        ece = (baseline.values or {}).get("ece")
        if request.task == BINARY and ece is not None and ece > settings.max_calibration_error:
            note = (
                f"model {request.model_name} v{version}: calibration error {ece:.3f} on its "
                f"baseline is above quality.max_calibration_error = "
                f"{settings.max_calibration_error:g}: the estimated metrics may not hold"
            )
            log.warning("quality: %s", note)
            notes.append(note)
    return notes


# --- outcomes ------------------------------------------------------------------------------


def _outcomes(
    spark: SparkSession,
    tables: Tables,
    request: QualityRequest,
    scores: DataFrame,
    baselines: Mapping[str, _Baseline],
    pinned: dict[str, int],
) -> tuple[DataFrame | None, DataFrame | None, dict[str, int]]:
    """The checked outcomes (entity, as_of_date, OUTCOME) and the rejected ones (as
    quarantine rows), or None and None when the use case declares no labels."""
    labels = request.labels
    if labels is None:
        return None, None, {}
    from scoring.runs.history import bronze_versions

    version = bronze_versions(spark, tables, request.usecase, [labels.source])[labels.source]
    if version is None:
        log.warning(
            "quality: %s does not exist yet: no outcomes have arrived",
            tables.bronze(labels.source),
        )
        return None, None, {"read": 0, "quarantined": 0}
    pinned[f"bronze_{labels.source}"] = version
    bronze = io.read_table(spark, tables.bronze(labels.source), version)
    entity = list(request.entity)
    known = (
        io.read_table(spark, tables["features"], pinned["features"])
        .select(*entity)
        .distinct()
        .withColumn("__known__", F.lit(True))
    )
    record = F.to_json(F.struct(*[F.col(c) for c in request.labels_columns]))
    checked = (
        bronze.select(
            *entity,
            F.col(labels.as_of).cast("date").alias(AS_OF_DATE),
            _outcome_text(bronze, labels.outcome).alias("__text__"),
            F.col("_delivery_date"),
            F.col("_source_file"),
            record.alias("__record__"),
        )
        .join(known, on=entity, how="left")
        .withColumn("__n__", F.count(F.lit(1)).over(Window.partitionBy(*entity, AS_OF_DATE)))
    )
    valid = _valid_outcome(F.col("__text__"), request, scores, baselines)
    reasons = F.filter(
        F.array(
            F.when(F.col("__known__").isNull(), F.lit(UNKNOWN_ENTITY)),
            F.when(F.col("__n__") > 1, F.lit(DUPLICATE)),
            F.when(~valid, F.lit(f"{_class_reason(request)}:{labels.outcome}")),
        ),
        lambda r: r.isNotNull(),
    )
    checked = checked.withColumn("__reasons__", reasons)
    bad = F.size("__reasons__") > 0
    totals = checked.agg(
        F.count(F.lit(1)).alias("read"), F.sum(bad.cast("long")).alias("quarantined")
    ).first()  # one row: the counts the step reports
    counts = {
        "read": int(totals["read"]) if totals else 0,
        "quarantined": int(totals["quarantined"] or 0) if totals else 0,
    }
    if counts["quarantined"]:
        log.warning(
            "quality: %d of %d outcomes of %s quarantined (source quality:%s)",
            counts["quarantined"],
            counts["read"],
            tables.bronze(labels.source),
            labels.source,
        )
    good = checked.where(~bad).select(*entity, AS_OF_DATE, F.col("__text__"))
    rejected = checked.where(bad).select(
        F.col("_delivery_date").alias("delivery_date"),
        F.lit(quarantine_source(labels.source)).alias("source"),
        F.col("_source_file").alias("source_file"),
        F.col("__record__").alias("record"),
        F.lit(None).cast("string").alias("record_base64"),
        F.col("__reasons__").alias("reasons"),
        F.lit(None).cast("string").alias("stored_record"),
    )
    return good, rejected, counts


def quarantine_source(source: str) -> str:
    """The quarantine `source` of outcomes `scoring quality` kept out: `quality:<source>`."""
    return f"quality:{source}"


def _outcome_text(bronze: DataFrame, column: str) -> Column:
    """The outcome as text, as classes are compared (a whole double as an integer: 1.0 -> 1)."""
    value = F.col(column)
    kind = bronze.schema[column].dataType
    if isinstance(kind, T.FloatType | T.DoubleType | T.DecimalType):
        whole = value == F.floor(value)
        return F.when(whole, value.cast("long").cast("string")).otherwise(value.cast("string"))
    return value.cast("string")


def _class_reason(request: QualityRequest) -> str:
    return NOT_FINITE if request.task == REGRESSION else NOT_A_CLASS


def _valid_outcome(
    text: Column, request: QualityRequest, scores: DataFrame, baselines: Mapping[str, _Baseline]
) -> Column:
    """Whether an outcome is one the task takes: a finite number (regression), one of the
    model's classes (multiclass: the classes of its probabilities; binary: the classes of
    its baseline outcomes and the positive class, else 0 / 1 for a 0 / 1 model)."""
    if request.task == REGRESSION:
        number = text.cast("double")
        return number.isNotNull() & ~F.isnan(number) & (F.abs(number) != F.lit(float("inf")))
    if request.task == MULTICLASS:
        keys = scores.select(F.explode(F.map_keys("probabilities")).alias("c")).distinct()
        classes = sorted(str(r["c"]) for r in keys.collect())  # the model's few classes
    else:
        classes = sorted({c for b in baselines.values() for c in b.classes})
        if not classes and request.positive_class in ("0", "1"):
            classes = ["0", "1"]
        if classes:
            classes = sorted({*classes, request.positive_class})
    if not classes:
        return text.isNotNull()
    return F.coalesce(text.isin(*classes), F.lit(False))


# --- metrics -------------------------------------------------------------------------------


def _task_columns(frame: DataFrame, request: QualityRequest, outcome: Column) -> DataFrame:
    """The columns `scoring.quality.metrics` reads, from the task's outputs and the outcome
    (text; regression: a number)."""
    keys = [F.col(AS_OF_DATE), F.col(_VERSION)]
    if request.task == BINARY:
        positive = F.when(outcome.isNull(), F.lit(None)).otherwise(
            (outcome == F.lit(request.positive_class)).cast("double")
        )
        return frame.select(*keys, F.col("score").alias(m.SCORE), positive.alias(m.OUTCOME))
    if request.task == REGRESSION:
        return frame.select(
            *keys, F.col("prediction").alias(m.PREDICTION), outcome.alias(m.OUTCOME)
        )
    return frame.select(
        *keys,
        F.col("label").alias(m.LABEL),
        F.col("probabilities").alias(m.PROBABILITIES),
        outcome.alias(m.OUTCOME),
    )


def _joined(scores: DataFrame, outcomes: DataFrame | None, request: QualityRequest) -> DataFrame:
    """The scored rows with their outcome (null: none yet), in the metrics' columns."""
    keys = [*request.entity, AS_OF_DATE]
    if outcomes is None:
        frame = scores.withColumn("__text__", F.lit(None).cast("string"))
    else:
        frame = scores.join(outcomes, on=keys, how="left")
    outcome = F.col("__text__")
    if request.task == REGRESSION:
        outcome = outcome.cast("double")
    return _task_columns(frame, request, outcome)


@dataclass(frozen=True)
class _Stats:
    rows: int
    labelled: int


def _task_metrics(
    frame: DataFrame, request: QualityRequest, n_bins: int, estimate_on: date | None = None
) -> dict[tuple[Any, str], tuple[dict[str, float], _Stats]]:
    """Per (date, version) slice: realized metrics (and, for binary slices of `estimate_on`,
    estimated ones under key version + '\\0estimated'), with their row counts."""
    by = [AS_OF_DATE, _VERSION]
    out: dict[tuple[Any, str], tuple[dict[str, float], _Stats]] = {}
    if request.task == BINARY:
        for (day, version), groups in m.binary_groups(frame, by, request.threshold, n_bins).items():
            stats = _Stats(sum(g.rows for g in groups), sum(g.labelled for g in groups))
            out[(day, version)] = (m.binary_realized(groups, n_bins), stats)
            if estimate_on is not None and day == estimate_on:
                estimated = m.binary_estimated(groups)
                out[(day, version + "\0" + ESTIMATED)] = (estimated, _Stats(stats.rows, stats.rows))
    elif request.task == REGRESSION:
        for (day, version), sums in m.regression_sums(frame, by).items():
            out[(day, version)] = (m.regression_realized(sums), _Stats(sums.rows, sums.labelled))
    else:
        for (day, version), cells in m.multiclass_cells(frame, by).items():
            rows = sum(c.rows for c in cells)
            labelled = sum(c.rows for c in cells if c.outcome is not None)
            out[(day, version)] = (m.multiclass_realized(cells), _Stats(rows, labelled))
    return out


def _slice_metrics(
    joined: DataFrame, request: QualityRequest, settings: QualitySettings, run_date: date
) -> dict[tuple[date, str, str], tuple[dict[str, float], _Stats]]:
    """(date, version, kind) -> metrics and counts, for every scored slice up to the date."""
    computed = _task_metrics(joined, request, settings.score_bins, estimate_on=run_date)
    out = {}
    for (day, key), value in computed.items():
        version, _, estimated = key.partition("\0")
        out[(day, version, ESTIMATED if estimated else REALIZED)] = value
    return out


def _row(
    request: QualityRequest,
    key: tuple[date, str, str],
    metric: str,
    value: float,
    baseline: _Baseline,
    limits: Mapping[str, tuple[float, float]],
    stats: _Stats,
) -> dict[str, Any]:
    """One model_quality row but its run_id and computed_at (a dict in contract order)."""
    day, version, kind = key
    base = (baseline.values or {}).get(metric)
    judged = m.judge(metric, value, base, limits)
    return {
        "usecase": request.usecase,
        "date": day,
        "model_name": request.model_name,
        "model_version": version,
        "kind": kind,
        "metric": metric,
        "value": float(value),
        "baseline_value": base,
        "threshold_warn": judged.threshold_warn,
        "threshold_alert": judged.threshold_alert,
        "status": judged.status,
        "rows": stats.rows,
        "labelled_rows": stats.labelled,
    }


# --- writing -------------------------------------------------------------------------------


def _write(
    spark: SparkSession,
    tables: Tables,
    request: QualityRequest,
    rows: list[dict[str, Any]],
    rejected: DataFrame | None,
    run_date: date,
    run_id: str,
    started: datetime,
    pinned: dict[str, int],
) -> dict[str, int]:
    """Replace the recomputed model_quality rows (and the step's quarantine rows); restore
    the quarantine when the model_quality write fails."""
    metadata = {
        "run_id": run_id,
        "usecase": request.usecase,
        "step": "quality",
        "model_name": request.model_name,
        "source_versions": pinned,
    }
    written: dict[str, int] = {}
    quarantine_ref = tables["quarantine"]
    before = io.current_version(spark, quarantine_ref)
    if rejected is not None and request.labels is not None:
        contract = load_contract("quarantine")
        io.ensure_table(spark, quarantine_ref, io.contract_spec(contract))
        before = io.current_version(spark, quarantine_ref)
        frame = rejected.select(
            *rejected.columns,
            F.lit(run_id).alias("run_id"),
            F.lit(started).cast("timestamp").alias("quarantined_at"),
        )
        frame = frame.transform(conform, contract)
        where = sql.predicate(("source", quarantine_source(request.labels.source)))
        io.write_delta(frame, quarantine_ref, "overwrite", metadata, where, contract.partition_by)
        # Delta commits nothing for an empty slice replacing nothing (no outcome ever bad)
        commit = io.own_commit(spark, quarantine_ref, run_id, after=before)
        if commit is not None:
            written["quarantine"] = int(commit["version"])
    try:
        contract = load_contract("model_quality")
        ref = tables["model_quality"]
        io.ensure_table(spark, ref, io.contract_spec(contract))
        frame = spark.createDataFrame([Row(**r) for r in rows], spark_schema(contract))
        where = _replaced(request, run_date)
        io.write_delta(frame, ref, "overwrite", metadata, where)
        written["model_quality"] = int(io.require_own_commit(spark, ref, run_id)["version"])
    except Exception:
        if "quarantine" in written:
            io.undo_own_commits(spark, quarantine_ref, before, run_id, "quality")
        raise
    return written


def _replaced(request: QualityRequest, run_date: date) -> str:
    """The rows a run recomputes: the model's realized rows up to the run date, its
    estimated rows of the run date (of one version when one was asked for)."""
    name = sql.predicate(("model_name", request.model_name))
    if request.model_version is not None:
        name += " AND " + sql.predicate(("model_version", request.model_version))
    day = sql.literal(run_date)
    realized = f"({sql.predicate(('kind', REALIZED))} AND {sql.identifier('date')} <= {day})"
    estimated = f"({sql.predicate(('kind', ESTIMATED), ('date', run_date))})"
    return f"{name} AND ({realized} OR {estimated})"


def current_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows a run's verdict counts: the estimated rows (of the run date) and the
    realized rows of the newest date with outcomes. Older dates are rewritten every run and
    stay in the table, but an old alert does not fail every later run."""
    labelled = [r["date"] for r in rows if r["kind"] == REALIZED and r["labelled_rows"] > 0]
    newest = max(labelled, default=None)
    return [r for r in rows if r["kind"] == ESTIMATED or r["date"] == newest]


def _summarize(
    rows: Sequence[dict[str, Any]], run_date: date, model: str, serving: str | None = None
) -> dict[str, Any]:
    """Log the current metrics at warn or alert; the counts the CLI, runs and Prometheus
    use (`current_rows`): of the `serving` version only when given (another version's
    alerts are `shadow_alerts`), else of every version."""
    everything = current_rows(rows)
    current = [r for r in everything if serving is None or str(r["model_version"]) == serving]
    shadow_alerts = sum(r["status"] == "alert" for r in everything) - sum(
        r["status"] == "alert" for r in current
    )
    for status, level in (("alert", logging.ERROR), ("warn", logging.WARNING)):
        hits = [r for r in current if r["status"] == status]
        if hits:
            log.log(
                level,
                "quality %s on %s (%s): %s",
                status,
                run_date,
                model,
                ", ".join(
                    f"{r['kind']} {r['metric']} {r['value']:.3g} of {r['date']} "
                    f"(v{r['model_version']}, baseline {r['baseline_value']:.3g})"
                    for r in hits
                ),
            )
    return {
        "shadow_alerts": shadow_alerts,
        "alerts": sum(r["status"] == "alert" for r in current),
        "warnings": sum(r["status"] == "warn" for r in current),
        "alerted_metrics": sorted(
            {f"{r['kind']} {r['metric']} {r['date']}" for r in current if r["status"] == "alert"}
        ),
        "newest_labelled_date": next(
            (str(r["date"]) for r in current if r["kind"] == REALIZED), None
        ),
    }


def finite(value: float) -> bool:
    """Whether a metric value can be written (NaN and infinities cannot)."""
    return not (math.isnan(value) or math.isinf(value))
