"""Run steps from a Config and a UseCase: the one place that turns them into step arguments.

Every step run is recorded in the use case's `runs` table (succeeded, or failed with its
error), whether it is started on its own (`scoring score`) or by the pipeline. The steps
themselves (`run_ingest`, `run_score`, ...) take plain typed arguments and know nothing of
the configuration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING

from pyspark.sql import SparkSession

from scoring.core.config import Config
from scoring.core.errors import ModelNotFoundError
from scoring.core.logs import new_run_id
from scoring.core.tables import Tables, resolve_tables
from scoring.model.registry import MlflowTarget, default_model_uri, mlflow_target
from scoring.runs.result import StepResult
from scoring.usecase.spec import UseCase

if TYPE_CHECKING:
    from scoring.compare.promote import PromoteRequest
    from scoring.maintain.step import MaintainRequest
    from scoring.runs.retrain import Trigger
    from scoring.score.step import ScoreRequest
    from scoring.train.step import TrainSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepRun:
    """Who runs a step: the session, the configuration, the use case and the run date."""

    spark: SparkSession
    config: Config
    usecase: UseCase
    run_date: date
    pipeline_run_id: str | None = None

    @cached_property
    def tables(self) -> Tables:
        """The use case's tables (see `scoring.core.tables`)."""
        return usecase_tables(self.config, self.usecase)

    @property
    def target(self) -> MlflowTarget:
        """Where the use case's MLflow runs and models live."""
        return mlflow_target(self.config, self.usecase.name)

    @property
    def model_name(self) -> str:
        """The use case's registered model name (with the environment's prefix)."""
        return registered_name(self.config, self.usecase)

    def on(self, run_date: date) -> StepRun:
        """The same run for another date (the pipeline's training date)."""
        return StepRun(self.spark, self.config, self.usecase, run_date, self.pipeline_run_id)

    def recorded(self, step: str, body: Callable[[str], StepResult], run_id: str) -> StepResult:
        """Run `body(run_id)`, recording it in `runs` (also when it fails), with a log line
        when it starts and one when it ends."""
        from scoring.runs.history import record_step

        where = f"{step} {self.run_date} ({self.usecase.name})"
        log.info("%s: started", where)
        started = time.monotonic()
        try:
            with record_step(
                self.spark,
                self.tables["runs"],
                self.usecase.name,
                step,
                self.run_date,
                run_id,
                self.pipeline_run_id,
                self.config.runs,
            ) as record:
                record.result = replace(body(run_id), seconds=time.monotonic() - started)
        except Exception as exc:
            seconds = time.monotonic() - started
            log.error("%s: failed after %.1f s: %s: %s", where, seconds, type(exc).__name__, exc)
            raise
        log.info("%s: done: %s", where, record.result.summary())
        return record.result


def usecase_tables(config: Config, usecase: UseCase) -> Tables:
    """The tables of `usecase` in the environment `config` describes."""
    return resolve_tables(config, usecase.name, list(usecase.sources), usecase.features.table)


def registered_name(config: Config, usecase: UseCase) -> str:
    """The use case's model as the registry names it (`mlflow.model_name_prefix` + name)."""
    return config.registered_model_name(usecase.name, usecase.model.name)


def default_model(config: Config, usecase: UseCase) -> str:
    """`models:/<registered name>@<model.alias>`: what `score` uses without `--model`."""
    return default_model_uri(registered_name(config, usecase), usecase.model.alias)


def ingest(run: StepRun, run_id: str | None = None) -> StepResult:
    """Ingest the raw drops of the run date into bronze and quarantine."""
    from scoring.ingest.step import run_ingest

    config = run.config

    def body(rid: str) -> StepResult:
        return run_ingest(
            run.spark,
            run.tables,
            run.usecase.sources,
            raw_root=config.raw_root(run.usecase.name),
            settings=config.ingest,
            run_date=run.run_date,
            run_id=rid,
        )

    return run.recorded("ingest", body, run_id or new_run_id("ingest"))


def features(run: StepRun, run_id: str | None = None) -> StepResult:
    """Build the features as of the run date from the sources."""
    from scoring.features.step import run_features

    def body(rid: str) -> StepResult:
        return run_features(run.spark, run.tables, run.usecase, run.run_date, rid)

    return run.recorded("features", body, run_id or new_run_id("features"))


def train_settings(config: Config, alias: str) -> TrainSettings:
    """How a training run behaves: `alias` to set, the `training` config section."""
    from scoring.train.step import TrainSettings

    training = config.training
    return TrainSettings(alias, training.baseline_max_rows, training.seed, training.holdout_share)


def train(run: StepRun, alias: str, run_id: str | None = None) -> StepResult:
    """Run the use case's trainer on the features of the run date; point `alias` at it."""
    from scoring.train.step import run_train

    settings = train_settings(run.config, alias)

    def body(rid: str) -> StepResult:
        return run_train(
            run.spark,
            run.tables,
            run.target,
            run.usecase,
            run.model_name,
            run.run_date,
            rid,
            settings,
        )

    return run.recorded("train", body, run_id or new_run_id("train"))


def retrain(
    run: StepRun,
    triggers: Sequence[Trigger],
    built: list[StepResult],
    run_id: str | None = None,
) -> StepResult:
    """Retrain from monitoring (`scoring.runs.retrain`): on `triggers`, a new version under
    `retrain.alias` trained on D - train.horizon_days; the features it had to build first
    are appended to `built`."""
    from scoring.runs.retrain import RetrainRequest, run_retrain

    config = run.config
    request = RetrainRequest(
        registered_name=run.model_name,
        settings=config.retrain,
        training=train_settings(config, config.retrain.alias),
        triggers=tuple(triggers),
        pipeline_run_id=run.pipeline_run_id,
    )

    def build_features(day: date) -> StepResult:
        result = features(run.on(day))
        built.append(result)
        return result

    def body(rid: str) -> StepResult:
        return run_retrain(
            run.spark,
            run.tables,
            run.target,
            run.usecase,
            request,
            run.run_date,
            rid,
            build_features,
        )

    return run.recorded("retrain", body, run_id or new_run_id("retrain"))


def baseline(run: StepRun, model_uri: str | None, run_id: str | None = None) -> StepResult:
    """Record the monitoring baseline of a model version from the features of the run date."""
    from scoring.train.baseline import run_baseline

    uri = model_uri or default_model(run.config, run.usecase)
    training = run.config.training

    def body(rid: str) -> StepResult:
        return run_baseline(
            run.spark,
            run.tables,
            run.target,
            run.usecase,
            uri,
            run.run_date,
            rid,
            training.baseline_max_rows,
            training.seed,
        )

    return run.recorded("baseline", body, run_id or new_run_id("baseline"))


def score(
    run: StepRun,
    model_uri: str | None,
    run_id: str | None = None,
    update_current: bool | None = None,
    models: Sequence[str] | None = None,
) -> StepResult:
    """Score the features of the run date with `model_uri` (default: the use case's alias).

    `models` (`scoring score --models a,b`): the first is the model scored (as `model_uri`),
    the others its shadows, in the same pass; each an alias of the use case's registered
    model or a `models:/` URI. Without it, scoring the serving alias scores the use case's
    `model.shadow` aliases too (see `shadow_uris`).
    """
    from scoring.score.step import ErrorBudget, run_score

    if models:
        uris = [model_uri_of(run.config, run.usecase, m) for m in models]
        request = score_request(run.config, run.usecase, uris[0], update_current, uris[1:])
    else:
        request = score_request(run.config, run.usecase, model_uri, update_current)
    settings = run.config.scoring
    budget = ErrorBudget(settings.max_error_rows, settings.max_error_share)

    def body(rid: str) -> StepResult:
        return run_score(
            run.spark,
            run.tables,
            run.target,
            request,
            run.run_date,
            rid,
            settings.batch_size,
            budget,
        )

    return run.recorded("score", body, run_id or new_run_id("score"))


def model_uri_of(config: Config, usecase: UseCase, model: str) -> str:
    """`--models` item: a `models:/` URI as it is, else an alias of the use case's model."""
    if model.startswith("models:/"):
        return model
    return default_model_uri(registered_name(config, usecase), model)


def shadow_uris(config: Config, usecase: UseCase) -> tuple[str, ...]:
    """The use case's `model.shadow` aliases as model URIs of its registered model."""
    name = registered_name(config, usecase)
    return tuple(default_model_uri(name, alias) for alias in usecase.model.shadow)


def score_request(
    config: Config,
    usecase: UseCase,
    model_uri: str | None,
    update_current: bool | None = None,
    shadow: Sequence[str] | None = None,
) -> ScoreRequest:
    """What `score` (and `replay`) scores with: the model URI (default: the use case's alias),
    the use case's model, entity and as-of column, its code fingerprint, and the shadows.

    `shadow` None: the use case's `model.shadow` when the model is its serving alias (the
    default), none for any other model.
    """
    from scoring.score.step import ScoreRequest
    from scoring.usecase.fingerprint import code_fingerprint

    uri = model_uri or default_model(config, usecase)
    if shadow is None:
        shadow = shadow_uris(config, usecase) if uri == default_model(config, usecase) else ()
    return ScoreRequest(
        model_uri=uri,
        spec=usecase.model,
        registered_name=registered_name(config, usecase),
        entity=usecase.entity,
        as_of_column=usecase.features.as_of_column,
        update_current=update_current,
        usecase_code=code_fingerprint(usecase.folder),
        reasons_top_k=config.scoring.reasons.top_k,
        shadow=tuple(shadow),
        compiled=config.scoring.compiled,
        current_write=config.scoring.current_write,
    )


def monitor(run: StepRun, model_version: str | None, run_id: str | None = None) -> StepResult:
    """Drift of the model inputs and outputs of the run date vs baseline and previous date."""
    from functools import partial

    from scoring.monitor.baseline import download_baseline
    from scoring.monitor.step import MonitorRequest, run_monitor

    config, usecase = run.config, run.usecase
    name = run.model_name
    request = MonitorRequest(
        model_name=name,
        entity=usecase.entity,
        task=usecase.model.task,
        as_of_column=usecase.features.as_of_column,
        model_version=model_version,
    )
    baseline_path = partial(download_baseline, config.tracking_uri, config.registry_uri, name)

    def body(rid: str) -> StepResult:
        return run_monitor(
            run.spark, run.tables, config.monitor, request, baseline_path, run.run_date, rid
        )

    return run.recorded("monitor", body, run_id or new_run_id("monitor"))


def quality(run: StepRun, model_uri: str | None, run_id: str | None = None) -> StepResult:
    """Realized quality of every scored date up to the run date whose outcomes arrived, and
    the estimated (CBPE) quality of the run date, into `model_quality`."""
    from scoring.quality.step import QualityRequest, run_quality

    config, usecase = run.config, run.usecase
    labels = usecase.labels
    from scoring.model.registry import resolve_model

    version = None
    if model_uri is not None:
        version = str(resolve_model(run.target, model_uri).version)
    # The serving version's alerts are the run's; a shadow's are counted apart. No model at
    # the serving alias (moved away, or never set): every version's alerts count.
    serving = version
    if serving is None:
        try:
            serving = str(resolve_model(run.target, default_model(config, usecase)).version)
        except ModelNotFoundError:
            log.warning(
                "quality: no model at %s; every version's alerts count", usecase.model.alias
            )
    request = QualityRequest(
        usecase=usecase.name,
        model_name=run.model_name,
        entity=usecase.entity,
        task=usecase.model.task,
        labels=labels,
        labels_columns=(
            usecase.sources[labels.source].contract.column_names if labels is not None else ()
        ),
        positive_class=usecase.model.positive_class,
        threshold=usecase.model.threshold,
        model_version=version,
        serving_version=serving,
    )

    def body(rid: str) -> StepResult:
        return run_quality(
            run.spark,
            run.tables,
            config.quality,
            request,
            optional_baseline(config, run.model_name, "quality"),
            run.run_date,
            rid,
        )

    return run.recorded("quality", body, run_id or new_run_id("quality"))


def compare(
    run: StepRun,
    champion_uri: str | None = None,
    challenger_uri: str | None = None,
    run_id: str | None = None,
) -> StepResult:
    """Compare the champion (default: the serving alias) with each challenger version that
    scored the run date (or the one `challenger_uri` names), into `model_comparison`."""
    from scoring.compare.step import Binning, CompareRequest, run_compare
    from scoring.model.registry import resolve_model

    usecase, monitor = run.usecase, run.config.monitor
    champion = resolve_model(run.target, champion_uri or default_model(run.config, usecase))
    challengers: tuple[str, ...] = ()
    if challenger_uri is not None:
        challengers = (resolve_model(run.target, challenger_uri).version,)
    request = CompareRequest(
        usecase=usecase.name,
        model_name=run.model_name,
        entity=usecase.entity,
        task=usecase.model.task,
        champion_version=champion.version,
        challenger_versions=challengers,
        threshold=usecase.model.threshold,
    )
    binning = Binning(monitor.n_bins, monitor.epsilon, monitor.quantile_relative_error)

    def body(rid: str) -> StepResult:
        return run_compare(run.spark, run.tables, request, binning, run.run_date, rid)

    return run.recorded("compare", body, run_id or new_run_id("compare"))


def promote_request(
    run: StepRun,
    alias: str,
    model_uri: str,
    requested_by: str,
    force: bool = False,
    reason: str = "",
) -> PromoteRequest:
    """What `promote` is asked: the use case's model, its task, the alias and the version."""
    from scoring.compare.promote import PromoteRequest

    return PromoteRequest(
        usecase=run.usecase.name,
        model_name=run.model_name,
        task=run.usecase.model.task,
        alias=alias,
        model_uri=model_uri,
        requested_by=requested_by,
        force=force,
        reason=reason,
    )


def promote(run: StepRun, request: PromoteRequest, run_id: str | None = None) -> StepResult:
    """Move `request.alias` to the version when the promotion rules hold (or it is forced);
    a refusal is recorded in `runs` as a failed run naming each failed rule."""
    from scoring.compare.promote import run_promote

    def body(rid: str) -> StepResult:
        return run_promote(
            run.spark, run.tables, run.target, request, run.config.promotion, run.run_date, rid
        )

    return run.recorded("promote", body, run_id or new_run_id("promote"))


def optional_baseline(config: Config, name: str, step: str) -> Callable[[str], str | None]:
    """Model version -> its downloaded baseline Parquet, or None (logged) when it has none."""
    from scoring.core.errors import ModelError
    from scoring.monitor.baseline import download_baseline

    def baseline_path(version: str) -> str | None:
        try:
            return download_baseline(config.tracking_uri, config.registry_uri, name, version)
        except ModelError as exc:  # the step says so instead of failing
            log.warning("%s: no baseline: %s", step, exc)
            return None

    return baseline_path


def report(run: StepRun, run_id: str | None = None) -> StepResult:
    """Write the HTML monitoring report of the run date; its path is in `details["path"]`."""

    def body(rid: str) -> StepResult:
        path = write_report(run.spark, run.config, run.usecase, run.run_date)
        return StepResult(step="report", run_id=rid, run_date=run.run_date, details={"path": path})

    return run.recorded("report", body, run_id or new_run_id("report"))


def write_report(spark: SparkSession, config: Config, usecase: UseCase, run_date: date) -> str:
    """Write the HTML monitoring report of `run_date`; return its path."""
    from scoring.core.errors import ModelError
    from scoring.monitor.baseline import download_baseline
    from scoring.monitor.report import run_report

    name = registered_name(config, usecase)

    def baseline_path(version: str) -> str | None:
        try:
            return download_baseline(config.tracking_uri, config.registry_uri, name, version)
        except ModelError as exc:  # the page says so instead of failing
            log.warning("report: no baseline: %s", exc)
            return None

    tables = usecase_tables(config, usecase)
    return run_report(
        spark,
        tables,
        usecase,
        name,
        baseline_path,
        config.reports_dir(usecase.name),
        run_date,
        config.monitor.n_bins,
    )


def write_metrics_file(spark: SparkSession, config: Config, usecase: UseCase) -> None:
    """Rebuild the use case's Prometheus textfile from its `runs`, `drift_metrics` and
    `model_quality` tables."""
    from scoring.monitor.prometheus import write_prometheus

    tables = usecase_tables(config, usecase)
    write_prometheus(
        spark,
        usecase.name,
        tables["runs"],
        tables["drift_metrics"],
        config.prometheus_file(usecase.name),
        config.monitor.pushgateway_url,
        tables["model_quality"],
    )


def maintain(run: StepRun, request: MaintainRequest, run_id: str | None = None) -> StepResult:
    """Retention properties, OPTIMIZE and VACUUM of the use case's tables, then archival of
    processed raw drops (docs/operations.md#retention-and-maintenance).

    The request is checked first: a refused one (`--retain-hours` below the time-travel
    floor) raises ConfigError before anything is done or recorded. A dry run is not recorded
    in `runs` either: it writes nothing at all.
    """
    from scoring.maintain.step import plan_maintenance, run_maintain

    config = run.config
    plan = plan_maintenance(run.tables, config.storage.retention, request)

    def body(rid: str) -> StepResult:
        return run_maintain(
            run.spark,
            run.tables,
            plan,
            config.raw_root(run.usecase.name),
            list(run.usecase.sources),
            config.ingest,
            run.run_date,
            rid,
        )

    rid = run_id or new_run_id("maintain")
    if plan.dry_run:
        log.info("maintain %s (%s): dry run, nothing is changed", run.run_date, run.usecase.name)
        return body(rid)
    return run.recorded("maintain", body, rid)
