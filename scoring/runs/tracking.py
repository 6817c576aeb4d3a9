"""One MLflow run per pipeline run: the model version, table versions, step and drift metrics.

The run is named after the pipeline run id, tagged with the run date, the use case and the
model, and holds per step `<step>.rows_in` ... as metrics, `<step>.duration_seconds`, each
written table's version as `table_version.<table>` (a param: it is an identifier, not a
measurement), the monitor step's drift summary, every drift metric of the date as
`drift.<comparison>.<feature>.<metric>` with the rows themselves as the artifact
`drift/drift_metrics.json`, and the date's HTML report under `report/`: where a Databricks or
EMR user looks first.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoring.runs.result import StepResult

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from scoring.core.tables import TableRef

_COUNTS = ("rows_in", "rows_out", "rows_quarantined", "rows_deduplicated")


def run_metrics(results: Sequence[StepResult]) -> dict[str, float]:
    """Per-step counts, durations and drift numbers as flat MLflow metric names."""
    metrics: dict[str, float] = {}
    for result in results:
        for name in _COUNTS:
            value = getattr(result, name)
            if value is not None:
                metrics[f"{result.step}.{name}"] = float(value)
        if result.seconds is not None:
            metrics[f"{result.step}.duration_seconds"] = float(result.seconds)
        details = result.details
        for key in ("alerts", "warnings"):
            if isinstance(details.get(key), int | float):
                metrics[f"{result.step}.{key}"] = float(details[key])
        for comparison, share in dict(details.get("drifted_share") or {}).items():
            metrics[f"{result.step}.drifted_share.{comparison}"] = float(share)
    return metrics


def run_params(
    results: Sequence[StepResult], model_name: str | None, model_version: str | None
) -> dict[str, str]:
    """The model and every table version the steps wrote (the last writer of a table wins)."""
    params = {"model_name": model_name or "", "model_version": model_version or ""}
    for result in results:
        for table, version in result.table_versions.items():
            params[f"table_version.{table}"] = str(version)
    return {k: v for k, v in params.items() if v}


def log_pipeline_run(
    tracking_uri: str,
    experiment_id: str,
    pipeline_run_id: str,
    run_date: date | None,
    results: Sequence[StepResult],
    model_name: str | None = None,
    model_version: str | None = None,
    tags: Mapping[str, str] | None = None,
    failed: bool = False,
    drift: Sequence[Mapping[str, Any]] | None = None,
    files: Sequence[str] = (),
) -> str:
    """Log the pipeline run to MLflow in `experiment_id`; returns the MLflow run id.

    The experiment comes from `scoring.model.registry.ensure_experiment`, the same one training uses.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(tracking_uri=tracking_uri)
    all_tags = {
        "pipeline_run_id": pipeline_run_id,
        "run_date": run_date.isoformat() if run_date else "",
        "steps": ",".join(r.step for r in results),
        **(tags or {}),
    }
    run = client.create_run(experiment_id, run_name=pipeline_run_id)
    now = int(time.time() * 1000)
    metrics = {**run_metrics(results), **drift_metrics(drift or [])}
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, v, now, 0) for k, v in sorted(metrics.items())],
        params=[
            Param(k, v) for k, v in sorted(run_params(results, model_name, model_version).items())
        ],
        tags=[RunTag(k, v) for k, v in sorted(all_tags.items())],
    )
    with tempfile.TemporaryDirectory() as folder:
        if drift:
            path = Path(folder) / "drift_metrics.json"
            path.write_text(json.dumps(list(drift), default=str, indent=1), encoding="utf-8")
            client.log_artifact(run.info.run_id, str(path), "drift")
        for file in files:
            client.log_artifact(run.info.run_id, file, "report")
    client.set_terminated(run.info.run_id, "FAILED" if failed else "FINISHED")
    return str(run.info.run_id)


def drift_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """`drift.<comparison>.<feature>.<metric>` -> value, names cut to what MLflow accepts."""
    return {
        _metric_name(f"drift.{r['comparison']}.{r['feature']}.{r['metric']}"): float(r["value"])
        for r in rows
    }


def drift_artifacts(
    spark: SparkSession, ref: TableRef, run_date: date, model_name: str
) -> list[dict[str, Any]]:
    """The drift rows of one date and model (a small collect), or none without the table."""
    from pyspark.sql import functions as F

    from scoring.core import io

    if not io.table_exists(spark, ref):
        return []
    rows = io.read_table(spark, ref).where(
        (F.col("date") == F.lit(run_date)) & (F.col("model_name") == F.lit(model_name))
    )
    return [r.asDict() for r in rows.collect()]


def _metric_name(name: str) -> str:
    """MLflow metric names: letters, digits, `_ - . / ` and space; anything else becomes `_`."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name)
