"""Configuration: `conf/base.yaml` + `conf/<env>.yaml` + `--set` overrides + `${env:VAR}`.

The merged document is parsed once, at the job boundary, into frozen dataclasses; library
functions then take the plain typed values they need. Every key the code reads is declared
in `conf/base.yaml`; an unknown key, a missing key or a bad value raises ConfigError with a
one-line message naming the key and the file (or `--set`) it came from.

Locations that differ per use case are templates: `{usecase}` in `storage.raw_root`,
`storage.catalog_schema`, `tables.*`, `mlflow.experiment`, `mlflow.model_name_prefix`,
`monitor.prometheus_file` and `monitor.reports_dir` is replaced by the use case's name
(`scoring.core.tables` resolves the tables).

Example:
    >>> config = load_config("local", overrides=["spark.shuffle_partitions=2"])
    >>> config.spark.shuffle_partitions
    2
    >>> config.raw_root("claims")  # doctest: +SKIP
    '/abs/path/lakehouse/claims/raw'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scoring.core.config_parse import build_section, deep_merge, interpolate, parse_override
from scoring.core.errors import ConfigError
from scoring.core.mlflow_uris import Role, check_uri
from scoring.core.resources import resource_dir
from scoring.core.yamlfile import read_mapping

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class SparkSettings:
    """How the SparkSession is built (see `scoring.core.session.build_session`)."""

    platform: Literal["local", "databricks", "emr"]
    master: str | None
    app_name: str
    shuffle_partitions: int = field(metadata={"min": 1})
    jars_dir: str | None
    ui_enabled: bool
    log_level: Literal["ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"]
    conf: Mapping[str, str]


@dataclass(frozen=True)
class RetentionDays:
    """How long a table keeps its history: Delta log entries and the files later commits
    removed (`delta.logRetentionDuration`, `delta.deletedFileRetentionDuration`), in days."""

    log_days: int = field(metadata={"min": 1})
    deleted_file_days: int = field(metadata={"min": 1})


@dataclass(frozen=True)
class RetentionSettings:
    """Per-table retention and the time-travel floor (see `scoring.maintain`)."""

    # No table may keep less history than this: replay and pinned lineage time-travel to
    # versions this old. At least 7 days, Delta's own VACUUM safety limit.
    min_time_travel_days: int = field(metadata={"min": 7})
    default: RetentionDays
    # Logical table name -> its own retention (checked against the use case's tables).
    tables: Mapping[str, RetentionDays]

    def for_table(self, logical: str) -> RetentionDays:
        """The retention of one logical table: its override, else the default."""
        return self.tables.get(logical, self.default)

    def key(self, logical: str) -> str:
        """The config key a table's retention comes from (for error messages)."""
        if logical in self.tables:
            return f"storage.retention.tables.{logical}"
        return "storage.retention.default"


@dataclass(frozen=True)
class StorageSettings:
    """Where local tables and raw drops live (see `scoring.core.tables`)."""

    root: str
    raw_root: str | None
    catalog_schema: str | None
    retention: RetentionSettings


@dataclass(frozen=True)
class MlflowSettings:
    """The MLflow tracking server and model registry."""

    tracking_uri: str | None
    registry_uri: str | None
    artifact_root: str | None
    experiment: str
    model_name_prefix: str | None
    # Bound every HTTP call to the tracking server / registry (MLflow's own settings).
    request_timeout_seconds: int = field(metadata={"min": 1})
    request_max_retries: int = field(metadata={"min": 0, "max": 10})


@dataclass(frozen=True)
class ReasonsSettings:
    """Reason codes per scored row (`scoring.model.reasons`); top_k 0 turns them off."""

    top_k: int = field(metadata={"min": 0})


@dataclass(frozen=True)
class ScoringSettings:
    """How `scoring score` applies a model (see `scoring.score.step`)."""

    batch_size: int = field(metadata={"min": 1})
    # The error budget (docs/scoring.md): the step fails past either; 0: any bad row fails.
    max_error_rows: int = field(metadata={"min": 0})
    max_error_share: float = field(metadata={"min": 0.0, "max": 1.0})
    reasons: ReasonsSettings
    # Compiled tree inference behind a parity gate (`scoring.model.compiled`); off: native.
    compiled: Literal["auto", "off"]
    # How the serving slice feeds scores_current (`scoring.score.current`): merge (the
    # change feed records updates) or overwrite when the slice covers the table.
    current_write: Literal["merge", "overwrite"]


@dataclass(frozen=True)
class TrainingSettings:
    """How `scoring train` and `scoring baseline` sample the monitoring baseline."""

    baseline_max_rows: int = field(metadata={"min": 1})
    seed: int
    # Share of the entities kept out of training; the baseline is drawn from them.
    holdout_share: float = field(metadata={"min": 0.0, "max": 0.9})


@dataclass(frozen=True)
class LoggingSettings:
    """Log level and format."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    json: bool


@dataclass(frozen=True)
class IngestSettings:
    """How `scoring ingest` treats a delivery (see docs/ingest-and-features.md)."""

    # Fail the run when more than this share of one source's records is quarantined.
    max_quarantine_share: float = field(metadata={"min": 0.0, "max": 1.0})
    # A file in a drop folder that the source's contract does not take: fail, or warn.
    unexpected_files: Literal["error", "warn"]
    # A version or event time later than the end of the delivery date plus this is future.
    future_tolerance_hours: float = field(metadata={"min": 0.0})
    # What `scoring maintain` does with a drop folder whose ingest succeeded, once it is
    # raw_archive_after_days old: keep it, move it under <raw_root>/_archive/, or delete it.
    raw_archive: Literal["keep", "move", "delete"] = "keep"
    raw_archive_after_days: int = field(default=90, metadata={"min": 1})


@dataclass(frozen=True)
class RunsSettings:
    """How step runs claim, and how a killed run is told from a live one (conf/base.yaml)."""

    heartbeat_seconds: float = field(metadata={"min": 1.0})
    stale_after_seconds: float = field(metadata={"min": 2.0})


@dataclass(frozen=True)
class PsiOverride:
    """PSI thresholds for one feature, replacing monitor.psi_warn / psi_alert for it."""

    psi_warn: float = field(metadata={"min": 0})
    psi_alert: float = field(metadata={"min": 0})


@dataclass(frozen=True)
class MonitorSettings:
    """Drift monitoring: binning, thresholds (warn, alert) per metric, outputs."""

    n_bins: int = field(metadata={"min": 2, "max": 100})
    epsilon: float = field(metadata={"min": 0})
    quantile_relative_error: float = field(metadata={"min": 0, "max": 1})
    psi_warn: float = field(metadata={"min": 0})
    psi_alert: float = field(metadata={"min": 0})
    ks_warn: float = field(metadata={"min": 0, "max": 1})
    ks_alert: float = field(metadata={"min": 0, "max": 1})
    js_warn: float = field(metadata={"min": 0, "max": 1})
    js_alert: float = field(metadata={"min": 0, "max": 1})
    null_rate_warn: float = field(metadata={"min": 0, "max": 1})
    null_rate_alert: float = field(metadata={"min": 0, "max": 1})
    volume_change_warn: float = field(metadata={"min": 0})
    volume_change_alert: float = field(metadata={"min": 0})
    dataset_drift_share: float = field(metadata={"min": 0, "max": 1})
    feature_overrides: Mapping[str, PsiOverride]
    prometheus_file: str | None
    pushgateway_url: str | None
    reports_dir: str | None


@dataclass(frozen=True)
class MetricLimits:
    """How far a quality metric may move the bad way from its baseline value: warn, alert."""

    warn: float = field(metadata={"min": 0})
    alert: float = field(metadata={"min": 0})


@dataclass(frozen=True)
class QualitySettings:
    """Model quality (`scoring quality`): binning, the calibration check, thresholds."""

    # Fine bins of the positive-class score (a multiple of 10: ECE uses 10 of them).
    score_bins: int = field(metadata={"min": 10, "max": 100000})
    # Baseline ECE above this: the CBPE estimate may not hold (a warning, a runs note).
    max_calibration_error: float = field(metadata={"min": 0, "max": 1})
    # Metric -> absolute moves from the baseline value (drops of AUC, rises of log loss).
    thresholds: Mapping[str, MetricLimits]


#: The alerts `retrain.on` may name: drift (the monitor step), quality (the quality step).
RETRAIN_TRIGGERS = ("drift", "quality")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class RetrainSettings:
    """Retraining from monitoring (docs/monitoring.md#retraining-from-monitoring): which
    alerts of a pipeline date retrain, the alias the new version gets, the cooldown."""

    # Kinds of alert that retrain: drift, quality; empty: never (the default).
    on: tuple[str, ...]
    # The alias the retrained version gets; never the serving alias (usecase model.alias).
    alias: str
    # No retrain while the alias holds a version retrained less than this many days before.
    cooldown_days: int = field(metadata={"min": 0})


@dataclass(frozen=True)
class PromotionSettings:
    """The rules `scoring promote` holds a challenger to (docs/promotion.md)."""

    # A realized metric of model_quality; its direction is fixed (QUALITY_METRICS).
    metric: str
    # How much worse than the champion, in the metric's bad direction, is still allowed.
    max_drop: float = field(metadata={"min": 0})
    # mean: the mean per-date difference holds; every: each date's does.
    aggregate: Literal["mean", "every"]
    min_dates: int = field(metadata={"min": 1})
    window_days: int = field(metadata={"min": 1})
    block_on_drift_alert: bool
    # The pipeline promotes a shadow version itself when the rules hold.
    auto: bool


@dataclass(frozen=True)
class Config:
    """The whole configuration of one job run, with local folders made absolute."""

    env: str
    spark: SparkSettings
    storage: StorageSettings
    tables: Mapping[str, str]
    mlflow: MlflowSettings
    scoring: ScoringSettings
    training: TrainingSettings
    logging: LoggingSettings
    ingest: IngestSettings
    monitor: MonitorSettings
    runs: RunsSettings
    quality: QualitySettings
    retrain: RetrainSettings
    promotion: PromotionSettings
    sources: tuple[str, ...] = ()

    def raw_root(self, usecase: str) -> str:
        """The folder of a use case's raw drops: `<raw_root>/<source>/<YYYY-MM-DD>/`."""
        if self.storage.raw_root:
            return for_usecase(self.storage.raw_root, usecase)
        return join_path(self.storage.root, usecase, "raw")

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI; a sqlite file under storage.root by default."""
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return "sqlite:///" + join_path(self.storage.root, "mlflow.db")

    @property
    def registry_uri(self) -> str:
        """The MLflow registry URI; the tracking URI by default."""
        return self.mlflow.registry_uri or self.tracking_uri

    @property
    def artifact_root(self) -> str:
        """Where MLflow stores run artifacts for experiments this project creates."""
        return self.mlflow.artifact_root or join_path(self.storage.root, "mlartifacts")

    def experiment(self, usecase: str) -> str:
        """The MLflow experiment of a use case's runs (`mlflow.experiment`, templated)."""
        return for_usecase(self.mlflow.experiment, usecase)

    def registered_model_name(self, usecase: str, model_name: str) -> str:
        """The registry name of a use case's model: `mlflow.model_name_prefix` + its name."""
        return for_usecase(self.mlflow.model_name_prefix or "", usecase) + model_name

    def prometheus_file(self, usecase: str) -> str:
        """The Prometheus textfile; `<storage.root>/metrics/<usecase>.prom` by default."""
        if self.monitor.prometheus_file:
            return for_usecase(self.monitor.prometheus_file, usecase)
        return join_path(self.storage.root, "metrics", f"{usecase}.prom")

    def reports_dir(self, usecase: str) -> str:
        """The folder of HTML reports; `<storage.root>/<usecase>/reports` by default."""
        if self.monitor.reports_dir:
            return for_usecase(self.monitor.reports_dir, usecase)
        return join_path(self.storage.root, usecase, "reports")


def for_usecase(template: str, usecase: str) -> str:
    """`template` with every `{usecase}` replaced by the use case's name."""
    return template.replace("{usecase}", usecase)


def join_path(base: str, *parts: str) -> str:
    """Join path parts under a local folder or a URI (`s3://bucket/x`), without normalising."""
    return "/".join([base.rstrip("/"), *parts])


def load_config(
    env: str,
    overrides: Sequence[str] = (),
    conf_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    layers: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> Config:
    """Load, merge, override, interpolate and validate the configuration of `env`.

    Args:
        env: the environment; `conf/<env>.yaml` must exist.
        overrides: `dotted.key=value` strings; values are parsed as YAML scalars.
        conf_dir: the folder with `base.yaml`; defaults to the packaged `conf/`.
        environ: the variables `${env:VAR}` reads; defaults to `os.environ`.
        layers: (origin, document) pairs merged after the environment's file and before
            `overrides`, e.g. a use case's `monitor` section as `{"monitor": {...}}`.

    Raises:
        ConfigError: one line naming the key and its source file (or `--set`).
    """
    folder = Path(conf_dir) if conf_dir else resource_dir("conf")
    base_path, env_path = folder / "base.yaml", folder / f"{env}.yaml"
    if not env_path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml") if p.stem != "base")
        raise ConfigError(f"{env_path}: no such environment '{env}' (known: {known})")
    merged: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    for path in (base_path, env_path):
        data = read_mapping(path, ConfigError, "configuration file not found", empty_ok=True)
        deep_merge(merged, data, str(path), provenance)
    for origin, document in layers:
        deep_merge(merged, document, origin, provenance)
    for override in overrides:
        deep_merge(merged, parse_override(override), "--set", provenance)
    resolved = interpolate(merged, provenance, os.environ if environ is None else environ)
    settings = {
        name: build_section(cls, resolved.get(name), name, provenance)
        for name, cls in _SECTIONS.items()
    }
    _check_mlflow_uris(settings["mlflow"], provenance)
    unknown = sorted(set(resolved) - set(_SECTIONS))
    if unknown:
        key = unknown[0]
        raise ConfigError(
            f"{provenance.get(key, '?')}: unknown key '{key}' (known sections: {list(_SECTIONS)})"
        )
    config = Config(env=env, sources=(str(base_path), str(env_path)), **settings)
    runs = config.runs
    if runs.stale_after_seconds < 2 * runs.heartbeat_seconds:
        key = "runs.stale_after_seconds"
        raise ConfigError(
            f"{provenance.get(key, '?')}: {key} = {runs.stale_after_seconds:g} must be at least "
            f"twice runs.heartbeat_seconds = {runs.heartbeat_seconds:g}, or a live run would be "
            "taken for a killed one"
        )
    _check_retention(config.storage.retention, provenance)
    _check_quality(config.quality, provenance)
    _check_retrain(config.retrain, provenance)
    _check_promotion(config.promotion, provenance)
    return _absolutise(config)


def _check_retention(retention: RetentionSettings, provenance: Mapping[str, str]) -> None:
    """Every configured retention at least the time-travel floor; else the key is named."""
    floor = retention.min_time_travel_days
    entries = [("storage.retention.default", retention.default)] + [
        (f"storage.retention.tables.{name}", days) for name, days in retention.tables.items()
    ]
    for prefix, days in entries:
        for name in ("log_days", "deleted_file_days"):
            value = getattr(days, name)
            if value < floor:
                key = f"{prefix}.{name}"
                raise ConfigError(
                    f"{provenance.get(key, '?')}: {key} = {value} is below "
                    f"storage.retention.min_time_travel_days = {floor}: replay and pinned "
                    "lineage time-travel that far back; raise it, or lower the floor knowingly"
                )


#: The metrics `quality.thresholds` may name (scoring.quality.metrics: a fall or a rise).
QUALITY_METRICS = (
    "roc_auc",
    "pr_auc",
    "precision",
    "recall",
    "f1",
    "accuracy",
    "macro_f1",
    "r2",
    "log_loss",
    "brier",
    "ece",
    "mae",
    "rmse",
)


def _check_quality(quality: QualitySettings, provenance: Mapping[str, str]) -> None:
    """Score bins a multiple of 10; thresholds of known metrics, warn at most alert."""
    if quality.score_bins % 10:
        key = "quality.score_bins"
        raise ConfigError(
            f"{provenance.get(key, '?')}: {key} = {quality.score_bins} must be a multiple of 10 "
            "(the calibration error uses 10 equal-width bins)"
        )
    for metric, limits in quality.thresholds.items():
        key = f"quality.thresholds.{metric}"
        if metric not in QUALITY_METRICS:
            raise ConfigError(
                f"{provenance.get(key, '?')}: {key}: unknown metric (known: "
                f"{', '.join(QUALITY_METRICS)})"
            )
        if limits.warn > limits.alert:
            raise ConfigError(
                f"{provenance.get(key, '?')}: {key}: warn {limits.warn:g} is above alert "
                f"{limits.alert:g}"
            )


def _check_retrain(retrain: RetrainSettings, provenance: Mapping[str, str]) -> None:
    """Known, distinct triggers; an alias MLflow accepts (the serving alias is refused where
    the use case is known: `check_retrain_alias`)."""
    key = "retrain.on"
    unknown = [kind for kind in retrain.on if kind not in RETRAIN_TRIGGERS]
    if unknown or len(set(retrain.on)) != len(retrain.on):
        raise ConfigError(
            f"{provenance.get(key, '?')}: {key}: expected distinct values of "
            f"{list(RETRAIN_TRIGGERS)}, got {list(retrain.on)}"
        )
    key = "retrain.alias"
    if not _ALIAS.match(retrain.alias) or retrain.alias == "latest":
        raise ConfigError(
            f"{provenance.get(key, '?')}: {key}: '{retrain.alias}' is not an alias MLflow "
            "accepts (a letter, then letters, digits, _ or -; not 'latest')"
        )


def check_retrain_alias(retrain: RetrainSettings, serving_alias: str, where: str) -> None:
    """The retrained version's alias is not the serving one: a retrain never promotes.

    Raises:
        ConfigError: naming `retrain.alias` and the use case file (`where`).
    """
    if retrain.alias == serving_alias:
        raise ConfigError(
            f"{where}: retrain.alias: '{retrain.alias}' is the serving alias (model.alias); a "
            "retrained version must go to another alias (e.g. challenger) and be promoted "
            "by `scoring promote`"
        )


def _check_promotion(promotion: PromotionSettings, provenance: Mapping[str, str]) -> None:
    """A metric with a direction; no more dates asked for than the window holds."""
    key = "promotion.metric"
    if promotion.metric not in QUALITY_METRICS:
        raise ConfigError(
            f"{provenance.get(key, '?')}: {key}: '{promotion.metric}' is not a realized quality "
            f"metric with a direction (known: {', '.join(QUALITY_METRICS)})"
        )
    if promotion.min_dates > promotion.window_days:
        key = "promotion.min_dates"
        raise ConfigError(
            f"{provenance.get(key, '?')}: {key} = {promotion.min_dates} is more than "
            f"promotion.window_days = {promotion.window_days}: no window could hold them"
        )


_SECTIONS: dict[str, Any] = {
    "spark": SparkSettings,
    "storage": StorageSettings,
    "tables": Mapping[str, str],
    "mlflow": MlflowSettings,
    "scoring": ScoringSettings,
    "training": TrainingSettings,
    "logging": LoggingSettings,
    "ingest": IngestSettings,
    "monitor": MonitorSettings,
    "runs": RunsSettings,
    "quality": QualitySettings,
    "retrain": RetrainSettings,
    "promotion": PromotionSettings,
}


def _check_mlflow_uris(settings: MlflowSettings, provenance: Mapping[str, str]) -> None:
    """The tracking and registry URIs have a scheme MLflow accepts and its form."""
    uris: tuple[tuple[Role, str | None], ...] = (
        ("tracking", settings.tracking_uri),
        ("registry", settings.registry_uri),
    )
    for role, uri in uris:
        key = f"mlflow.{role}_uri"
        if uri is not None:
            check_uri(uri, key, role, provenance.get(key, "?"))


def _absolutise(config: Config) -> Config:
    """Make local folders absolute, so Spark, MLflow and the user see the same paths."""
    from dataclasses import replace

    storage = replace(
        config.storage,
        root=_absolute(config.storage.root),
        raw_root=_absolute(config.storage.raw_root) if config.storage.raw_root else None,
    )
    jars = config.spark.jars_dir
    spark = replace(config.spark, jars_dir=_absolute(jars) if jars else None)
    monitor = replace(
        config.monitor,
        prometheus_file=_absolute_or_none(config.monitor.prometheus_file),
        reports_dir=_absolute_or_none(config.monitor.reports_dir),
    )
    return replace(config, storage=storage, spark=spark, monitor=monitor)


def _absolute_or_none(location: str | None) -> str | None:
    """`_absolute` of a location that may be unset."""
    return _absolute(location) if location else None


def _absolute(location: str) -> str:
    """An absolute local path, or the URI unchanged (`s3://...`, `dbfs:/...`)."""
    if _URI.match(location):
        return location
    return str(Path(location).expanduser().absolute())
