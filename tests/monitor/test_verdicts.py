from __future__ import annotations

import pytest

from scoring.monitor.metrics import Metric
from scoring.monitor.verdicts import Thresholds, Verdict, dataset_drift, judge, volume_metrics

THRESHOLDS = Thresholds(
    metrics={"psi": (0.1, 0.25), "null_rate_change": (0.05, 0.1)},
    psi_by_feature={"noisy": (0.5, 1.0)},
    dataset_drift_share=0.5,
)


def test_a_shifted_feature_alerts_a_mild_one_warns_and_a_stable_one_is_ok():
    metrics = [Metric("x", "psi", 0.4), Metric("y", "psi", 0.12), Metric("z", "psi", 0.01)]
    assert [v.status for v in judge(metrics, THRESHOLDS)] == ["alert", "warn", "ok"]


def test_a_feature_override_replaces_the_psi_thresholds():
    (verdict,) = judge([Metric("noisy", "psi", 0.4)], THRESHOLDS)
    assert verdict == Verdict("noisy", "psi", 0.4, 0.5, 1.0, "ok")


def test_a_negative_change_is_judged_by_its_size():
    (verdict,) = judge([Metric("x", "null_rate_change", -0.2)], THRESHOLDS)
    assert verdict.status == "alert"


def test_a_metric_without_thresholds_is_ok():
    (verdict,) = judge([Metric("x", "null_rate", 0.9)], THRESHOLDS)
    assert verdict == Verdict("x", "null_rate", 0.9, None, None, "ok")


def test_dataset_drifts_when_the_share_of_alerting_inputs_reaches_the_threshold():
    verdicts = judge(
        [Metric("a", "psi", 0.3), Metric("b", "psi", 0.0), Metric("score", "psi", 0.9)],
        THRESHOLDS,
    )
    drift = dataset_drift(verdicts, inputs=["a", "b"], share=0.5)
    assert drift == Verdict("__dataset__", "drifted_share", 0.5, None, 0.5, "alert")


def test_dataset_does_not_drift_below_the_share():
    verdicts = judge([Metric("a", "psi", 0.3), Metric("b", "psi", 0.0)], THRESHOLDS)
    assert dataset_drift(verdicts, inputs=["a", "b"], share=0.6).status == "ok"


def test_volume_change_is_relative_to_the_reference_rows():
    count, change = volume_metrics(200, 150, compare=True)
    assert count == Metric("__dataset__", "row_count", 150.0)
    assert (change.metric, change.value) == ("row_count_change", pytest.approx(150 / 200 - 1))


def test_volume_against_the_baseline_reports_the_count_only():
    assert volume_metrics(200, 150, compare=False) == [Metric("__dataset__", "row_count", 150.0)]
