"""The `promote` step: move an alias to a version when the promotion rules hold, with a record.

read   - the registry: the candidate version and the version holding the alias now;
         `model_comparison` (the pair's realized rows of the window) and `drift_metrics`
         (alerts on those dates);
judge  - `scoring.compare.rules`; refused: PromotionError naming each failed rule and its
         evidence, nothing moved (`runs` records the refusal as a failed run);
record - allowed (or forced): `previous_<alias>` to the old holder, the alias to the
         candidate, the decision on the candidate's version tags (`promotion.*`), the old
         holder's `promotion.replaced_by`, and the registered model's `promotion.history`
         (JSON list, newest last); the StepResult's details carry the evidence to `runs`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from scoring.compare.rules import Check, Evidence, judge, metric_error
from scoring.core import io
from scoring.core.config import PromotionSettings
from scoring.core.errors import ConfigError, ModelNotFoundError, PromotionError
from scoring.core.tables import Tables
from scoring.model.registry import MlflowTarget, configure_mlflow, resolve_model
from scoring.runs.result import StepResult

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)
TAG = "promotion"
HISTORY_TAG = f"{TAG}.history"
#: MLflow's limit on a tag value (the sqlite and REST stores): longer history drops the oldest.
MAX_TAG_CHARS = 5000


@dataclass(frozen=True)
class PromoteRequest:
    """Who asks to move which alias of the use case's model to which version, and why."""

    usecase: str
    model_name: str
    task: str
    alias: str
    model_uri: str
    requested_by: str
    force: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    """The rules' verdict on one candidate, with everything it rests on."""

    version: str
    previous_version: str | None
    checks: tuple[Check, ...]
    evidence: Evidence | None
    rules: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.evidence is not None and all(c.passed for c in self.checks)

    def failures(self) -> str:
        """One line: each failed rule and its evidence."""
        return "; ".join(f"{c.rule}: {c.evidence}" for c in self.checks if not c.passed)

    def summary(self) -> dict[str, Any]:
        """The evidence as JSON-ready values (tags, runs)."""
        out: dict[str, Any] = {"checks": [asdict(c) for c in self.checks]}
        if self.evidence is not None:
            ev = self.evidence
            out |= {
                "metric": ev.metric,
                "higher_is_better": ev.higher_is_better,
                "window": [str(ev.window[0]), str(ev.window[1])],
                "dates": [str(d) for d, _, _ in ev.values],
                "champion_values": [round(c, 6) for _, c, _ in ev.values],
                "challenger_values": [round(c, 6) for _, _, c in ev.values],
                "drift_alerts": list(ev.drift_alerts[:20]),
            }
        return out


def decide(
    spark: SparkSession,
    tables: Tables,
    target: MlflowTarget,
    request: PromoteRequest,
    rules: PromotionSettings,
    run_date: date,
) -> Decision:
    """Judge the candidate of `request` against the alias's holder (reads only).

    Raises:
        ConfigError: `promotion.metric` is not a metric of the use case's task.
        ModelNotFoundError: the candidate is not in the registry.
        PromotionError: the URI names another model, or the alias already points at the
            candidate. Missing evidence (no comparison, no holder) is a failed check.
    """
    problem = metric_error(rules, request.task)
    if problem is not None:
        raise ConfigError(problem)
    candidate = resolve_model(target, request.model_uri)
    if candidate.name != request.model_name:
        raise PromotionError(
            f"{request.model_uri}: model '{candidate.name}' is not use case "
            f"{request.usecase}'s model '{request.model_name}'"
        )
    previous = holder(target, request.model_name, request.alias)
    if previous == candidate.version:
        raise PromotionError(
            f"alias '{request.alias}' of {request.model_name} already points at version "
            f"{candidate.version}: nothing to promote"
        )
    config = asdict(rules)
    if previous is None:
        check = Check("champion", False, f"alias '{request.alias}' points at no version yet")
        return Decision(candidate.version, None, (check,), None, config)
    evidence = gather(spark, tables, request, rules, previous, candidate.version, run_date)
    if evidence is None:
        check = Check(
            "comparison",
            False,
            f"{tables['model_comparison']} has no row comparing version {candidate.version} "
            f"with version {previous} at '{request.alias}': shadow-score it and run "
            "`scoring compare` first",
        )
        return Decision(candidate.version, previous, (check,), None, config)
    return Decision(candidate.version, previous, tuple(judge(rules, evidence)), evidence, config)


def holder(target: MlflowTarget, name: str, alias: str) -> str | None:
    """The version `alias` points at now, or None when it points at none."""
    try:
        return resolve_model(target, f"models:/{name}@{alias}").version
    except ModelNotFoundError:
        return None


def gather(
    spark: SparkSession,
    tables: Tables,
    request: PromoteRequest,
    rules: PromotionSettings,
    champion: str,
    challenger: str,
    run_date: date,
) -> Evidence | None:
    """The pair's realized rows of the window and the drift alerts on their dates (a few
    dozen rows of two aggregate tables reach the driver); None when model_comparison holds
    no row at all comparing the two versions."""
    ref = tables["model_comparison"]
    pair = (
        io.read_table(spark, ref).where(
            (F.col("usecase") == F.lit(request.usecase))
            & (F.col("model_name") == F.lit(request.model_name))
            & (F.col("champion_version") == F.lit(champion))
            & (F.col("challenger_version") == F.lit(challenger))
        )
        if io.table_exists(spark, ref)
        else None
    )
    if pair is None or pair.limit(1).count() == 0:  # one row at most: is there any
        return None
    start = run_date - timedelta(days=rules.window_days - 1)
    picked = pair.where(
        (F.col("kind") == F.lit("realized"))
        & (F.col("metric") == F.lit(rules.metric))
        & F.col("date").between(F.lit(start), F.lit(run_date))
    ).select("date", "champion_value", "challenger_value")
    values = tuple(
        sorted((r["date"], float(r[1]), float(r[2])) for r in picked.collect())
    )  # at most window_days rows
    alerts = _drift_alerts(spark, tables, request, [d for d, _, _ in values])
    return Evidence(rules.metric, (start, run_date), values, alerts)


def _drift_alerts(
    spark: SparkSession, tables: Tables, request: PromoteRequest, dates: list[date]
) -> tuple[str, ...]:
    ref = tables["drift_metrics"]
    if not dates or not io.table_exists(spark, ref):
        return ()
    alerts = (
        io.read_table(spark, ref)
        .where(
            (F.col("usecase") == F.lit(request.usecase))
            & (F.col("model_name") == F.lit(request.model_name))
            & (F.col("status") == F.lit("alert"))
            & F.col("date").isin(dates)
        )
        .select("date", "feature", "metric")
        .distinct()
        .orderBy("date", "feature", "metric")
        .limit(100)  # the evidence names a few; more add nothing
    )
    return tuple(f"{r['date']} {r['feature']} {r['metric']}" for r in alerts.collect())


def run_promote(
    spark: SparkSession,
    tables: Tables,
    target: MlflowTarget,
    request: PromoteRequest,
    rules: PromotionSettings,
    run_date: date,
    run_id: str,
) -> StepResult:
    """Judge, then move the alias and record the decision (module docstring).

    Raises:
        PromotionError: refused (a rule failed and no --force), naming each failed rule.
        Anything `decide` raises.
    """
    decision = decide(spark, tables, target, request, rules, run_date)
    where = f"promotion of {request.model_name} v{decision.version} to '{request.alias}'"
    if not decision.passed and not request.force:
        raise PromotionError(f"{where} refused: {decision.failures()}; nothing was moved")
    if not decision.passed:
        log.warning("%s forced past failed rules: %s", where, decision.failures())
    record = apply(target, request, decision, run_id)
    log.info("%s: %s (previous version %s)", where, record["decision"], decision.previous_version)
    return StepResult(step="promote", run_id=run_id, run_date=run_date, details=record)


def apply(
    target: MlflowTarget, request: PromoteRequest, decision: Decision, run_id: str
) -> dict[str, Any]:
    """Move the alias (keeping the old holder at `previous_<alias>`), then tag; the alias is
    put back when the tags cannot be written. Returns what was recorded."""
    client = configure_mlflow(target)
    name, alias, previous = request.model_name, request.alias, decision.previous_version
    record = {
        "decision": "promoted" if decision.passed else "forced",
        "alias": alias,
        "version": decision.version,
        "previous_version": previous,
        "forced": request.force,
        "requested_by": request.requested_by,
        "reason": request.reason,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
        "rules": dict(decision.rules),
        "evidence": decision.summary(),
    }
    if previous is not None:
        client.set_registered_model_alias(name, f"previous_{alias}", previous)
    client.set_registered_model_alias(name, alias, decision.version)
    try:
        _tag(client, name, record)
    except Exception:
        if previous is not None:
            client.set_registered_model_alias(name, alias, previous)
        else:
            client.delete_registered_model_alias(name, alias)
        raise
    return record


def _tag(client: MlflowClient, name: str, record: Mapping[str, Any]) -> None:
    """The decision on the version's tags, the old holder's, and the model's history."""
    version = str(record["version"])
    for key in ("decision", "alias", "previous_version", "forced", "requested_by", "reason",
                "at", "run_id"):  # fmt: skip
        value = record[key]
        text = str(value).lower() if isinstance(value, bool) else str(value or "")
        client.set_model_version_tag(name, version, f"{TAG}.{key}", text[:MAX_TAG_CHARS])
    for key in ("rules", "evidence"):
        text = json.dumps(record[key], sort_keys=True, default=str)
        client.set_model_version_tag(name, version, f"{TAG}.{key}", text[:MAX_TAG_CHARS])
    previous = record["previous_version"]
    if previous is not None:
        client.set_model_version_tag(name, str(previous), f"{TAG}.replaced_by", version)
        client.set_model_version_tag(name, str(previous), f"{TAG}.replaced_at", record["at"])
    entry = {k: record[k] for k in ("alias", "version", "previous_version", "decision",
                                    "forced", "requested_by", "at", "run_id")}  # fmt: skip
    history = [*alias_history(client, name), entry]
    while len(history) > 1 and len(json.dumps(history)) > MAX_TAG_CHARS:
        history.pop(0)  # the full record stays on the versions' tags and in `runs`
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))


def alias_history(client: MlflowClient, name: str) -> list[dict[str, Any]]:
    """The model's promotion history (`promotion.history` tag), oldest first."""
    text = (client.get_registered_model(name).tags or {}).get(HISTORY_TAG)
    return list(json.loads(text)) if text else []
