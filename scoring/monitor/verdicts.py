"""Drift verdicts: thresholds per metric (and per feature for PSI) turn values into statuses.

A metric's status is `alert` when |value| >= its alert threshold, `warn` when
|value| >= its warn threshold, else `ok`; a metric without thresholds (`null_rate`,
`row_count`) is always `ok`. The dataset-level row `__dataset__ / drifted_share` is the share
of input features whose PSI is at `alert`; it alerts when that share reaches
`dataset_drift_share`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from scoring.core.config import MonitorSettings
from scoring.monitor.binning import Counts
from scoring.monitor.metrics import Metric, compare, row_count

DATASET = "__dataset__"


@dataclass(frozen=True)
class Thresholds:
    """(warn, alert) per metric, PSI overrides per feature, and the dataset drift share."""

    metrics: Mapping[str, tuple[float, float]]
    psi_by_feature: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    dataset_drift_share: float = 0.3

    def of(self, feature: str, metric: str) -> tuple[float | None, float | None]:
        """(warn, alert) for one feature's metric; (None, None) when it has none."""
        if metric == "psi" and feature in self.psi_by_feature:
            return self.psi_by_feature[feature]
        return self.metrics.get(metric, (None, None))


class Verdict(NamedTuple):
    """A metric with its thresholds and status."""

    feature: str
    metric: str
    value: float
    threshold_warn: float | None
    threshold_alert: float | None
    status: str


def status_of(value: float, warn: float | None, alert: float | None) -> str:
    """`alert`, `warn` or `ok` for |value| against the thresholds."""
    if alert is not None and abs(value) >= alert:
        return "alert"
    if warn is not None and abs(value) >= warn:
        return "warn"
    return "ok"


def judge(metrics: Sequence[Metric], thresholds: Thresholds) -> list[Verdict]:
    """Each metric with its thresholds and status."""
    verdicts = []
    for m in metrics:
        warn, alert = thresholds.of(m.feature, m.metric)
        verdicts.append(Verdict(*m, warn, alert, status_of(m.value, warn, alert)))
    return verdicts


def dataset_drift(verdicts: Sequence[Verdict], inputs: Sequence[str], share: float) -> Verdict:
    """The `__dataset__ / drifted_share` verdict: the share of `inputs` whose PSI alerts."""
    psi = [v for v in verdicts if v.metric == "psi" and v.feature in set(inputs)]
    drifted = sum(v.status == "alert" for v in psi) / len(psi) if psi else 0.0
    status = "alert" if psi and drifted >= share else "ok"
    return Verdict(DATASET, "drifted_share", drifted, None, share, status)


def volume_metrics(reference_rows: int, current_rows: int, compare: bool) -> list[Metric]:
    """`__dataset__` rows: `row_count` of the current rows and, if `compare`, its change.

    `row_count_change` = current / reference - 1 (-0.5 is half the rows); it is only
    meaningful against a comparable slice (the previous date), not the training set.
    """
    metrics = [Metric(DATASET, "row_count", float(current_rows))]
    if compare and reference_rows > 0:
        metrics.append(Metric(DATASET, "row_count_change", current_rows / reference_rows - 1))
    return metrics


def thresholds_from(settings: MonitorSettings) -> Thresholds:
    """The plain thresholds of the `monitor` config section."""
    return Thresholds(
        metrics={
            "psi": (settings.psi_warn, settings.psi_alert),
            "ks": (settings.ks_warn, settings.ks_alert),
            "js_distance": (settings.js_warn, settings.js_alert),
            "null_rate_change": (settings.null_rate_warn, settings.null_rate_alert),
            "row_count_change": (settings.volume_change_warn, settings.volume_change_alert),
        },
        psi_by_feature={
            name: (o.psi_warn, o.psi_alert) for name, o in settings.feature_overrides.items()
        },
        dataset_drift_share=settings.dataset_drift_share,
    )


def comparison_verdicts(
    reference: Counts,
    current: Counts,
    numeric: Collection[str],
    inputs: Sequence[str],
    thresholds: Thresholds,
    epsilon: float,
    compare_volume: bool,
) -> list[Verdict]:
    """Every verdict of one comparison: features, the score, volume and dataset drift.

    The row count change is only judged against the previous date (`compare_volume`),
    since the training baseline spans many dates.
    """
    metrics = compare(reference, current, numeric, epsilon)
    metrics += volume_metrics(row_count(reference), row_count(current), compare_volume)
    verdicts = judge(metrics, thresholds)
    return [*verdicts, dataset_drift(verdicts, inputs, thresholds.dataset_drift_share)]
