"""One comparison's full set of drift verdicts: feature metrics, volume, dataset drift."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from scoring.config import MonitorSettings
from scoring.drift import Counts
from scoring.drift_math import compare, row_count
from scoring.drift_status import Thresholds, Verdict, dataset_drift, judge, volume_metrics


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
