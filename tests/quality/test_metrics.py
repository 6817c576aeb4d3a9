"""Quality metrics on tiny frames, against values computed by hand (written in the tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from scoring.quality.metrics import (
    LABEL,
    OUTCOME,
    PREDICTION,
    PROBABILITIES,
    SCORE,
    binary_estimated,
    binary_groups,
    binary_realized,
    judge,
    multiclass_cells,
    multiclass_realized,
    regression_realized,
    regression_sums,
)

BINS = 1000


def _binary(spark: SparkSession, scores: list[float], outcomes: list[float | None]):
    frame = spark.createDataFrame(
        [("s", s, None if o is None else float(o)) for s, o in zip(scores, outcomes, strict=True)],
        f"slice string, {SCORE} double, {OUTCOME} double",
    )
    return binary_groups(frame, ["slice"], 0.5, BINS)[("s",)]


def test_binary_realized_metrics_of_a_known_ordering(spark: SparkSession) -> None:
    groups = _binary(spark, [0.1, 0.4, 0.35, 0.8, 0.6], [0, 0, 1, 1, None])
    got = binary_realized(groups, BINS)
    # 3 of the 4 (positive, negative) pairs are ordered right
    assert got["roc_auc"] == pytest.approx(0.75)
    # from the top: 0.8 (P 1, R 0.5), 0.4 (miss), 0.35 (P 2/3, R 1)
    assert got["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert got["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert got["log_loss"] == pytest.approx(
        (0.1053605157 + 0.5108256238 + 1.0498221245 + 0.2231435513) / 4
    )
    # ECE bins 1, 4, 3, 8: |0.1-0| + |0.4-0| + |0.35-1| + |0.8-1|, over 4 labelled rows
    assert got["ece"] == pytest.approx(1.35 / 4)
    # at 0.5 only 0.8 is predicted positive (0.6 has no outcome)
    assert (got["tp"], got["fp"], got["tn"], got["fn"]) == (1, 0, 2, 1)
    assert got["precision"] == pytest.approx(1.0)
    assert got["recall"] == pytest.approx(0.5)
    assert got["f1"] == pytest.approx(2 / 3)
    assert got["accuracy"] == pytest.approx(0.75)
    assert got["positive_rate"] == pytest.approx(0.5)
    assert got["predicted_positive_rate"] == pytest.approx(0.25)
    assert got["coverage"] == pytest.approx(0.8)


def test_ties_within_a_bin_count_one_half(spark: SparkSession) -> None:
    groups = _binary(spark, [0.5011, 0.5013], [1, 0])
    assert binary_realized(groups, BINS)["roc_auc"] == pytest.approx(0.5)


def test_a_slice_without_outcomes_has_only_coverage_zero(spark: SparkSession) -> None:
    groups = _binary(spark, [0.2, 0.9], [None, None])
    assert binary_realized(groups, BINS) == {"coverage": 0.0}


def test_cbpe_two_rows_by_hand(spark: SparkSession) -> None:
    got = binary_estimated(_binary(spark, [0.2, 0.9], [None, None]))
    # expected confusion at 0.5: tp 0.9, fp 0.1, fn 0.2, tn 0.8
    assert got["tp"] == pytest.approx(0.9)
    assert got["fp"] == pytest.approx(0.1)
    assert got["fn"] == pytest.approx(0.2)
    assert got["tn"] == pytest.approx(0.8)
    assert got["precision"] == pytest.approx(0.9)
    assert got["recall"] == pytest.approx(0.9 / 1.1)
    assert got["f1"] == pytest.approx(1.8 / 2.1)
    assert got["accuracy"] == pytest.approx(0.85)
    assert got["positive_rate"] == pytest.approx(0.55)
    assert got["predicted_positive_rate"] == pytest.approx(0.5)
    # pairs: 0.2 x (0.8 / 2) + 0.9 x (0.8 + 0.1 / 2) = 0.845 of 1.1 x 0.9
    assert got["roc_auc"] == pytest.approx(0.845 / 0.99)


def test_cbpe_matches_realized_on_a_calibrated_model(spark: SparkSession) -> None:
    rng = np.random.default_rng(16)
    scores = rng.beta(2, 5, 40_000)
    outcomes = (rng.random(40_000) < scores).astype("float64")
    frame = spark.createDataFrame(pd.DataFrame({"slice": "s", SCORE: scores, OUTCOME: outcomes}))
    groups = binary_groups(frame, ["slice"], 0.5, BINS)[("s",)]
    realized, estimated = binary_realized(groups, BINS), binary_estimated(groups)
    # a perfectly calibrated model: ECE is sampling noise only
    assert realized["ece"] < 0.02
    for metric in ("roc_auc", "precision", "recall", "accuracy", "positive_rate"):
        assert estimated[metric] == pytest.approx(realized[metric], abs=0.015), metric


def test_regression_sums_by_hand(spark: SparkSession) -> None:
    frame = spark.createDataFrame(
        [("s", 1.0, 2.0), ("s", 2.0, 2.0), ("s", 3.0, 5.0), ("s", 4.0, None)],
        f"slice string, {PREDICTION} double, {OUTCOME} double",
    )
    got = regression_realized(regression_sums(frame, ["slice"])[("s",)])
    # errors -1, 0, -2; outcomes 2, 2, 5 (mean 3, SST 6)
    assert got["mae"] == pytest.approx(1.0)
    assert got["rmse"] == pytest.approx((5 / 3) ** 0.5)
    assert got["r2"] == pytest.approx(1 - 5 / 6)
    assert got["coverage"] == pytest.approx(0.75)


def test_multiclass_cells_by_hand(spark: SparkSession) -> None:
    rows = [
        ("s", "a", {"a": 0.7, "b": 0.2, "c": 0.1}, "a"),
        ("s", "a", {"a": 0.5, "b": 0.4, "c": 0.1}, "b"),
        ("s", "b", {"a": 0.2, "b": 0.6, "c": 0.2}, "b"),
        ("s", "c", {"a": 0.3, "b": 0.1, "c": 0.6}, "a"),
        ("s", "b", {"a": 0.3, "b": 0.6, "c": 0.1}, None),
    ]
    frame = spark.createDataFrame(
        rows, f"slice string, {LABEL} string, {PROBABILITIES} map<string,double>, {OUTCOME} string"
    )
    got = multiclass_realized(multiclass_cells(frame, ["slice"])[("s",)])
    assert got["accuracy"] == pytest.approx(0.5)
    # F1 a: 2/(2+1+1); b: 2/(2+0+1); c: 0
    assert got["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert got["log_loss"] == pytest.approx(
        (0.3566749439 + 0.9162907319 + 0.5108256238 + 1.2039728043) / 4
    )
    assert got["coverage"] == pytest.approx(0.8)


def test_judge_drops_and_rises_against_the_baseline() -> None:
    limits = {"roc_auc": (0.03, 0.05), "log_loss": (0.05, 0.1)}
    assert judge("roc_auc", 0.80, 0.80, limits).status == "ok"
    warn = judge("roc_auc", 0.765, 0.80, limits)
    assert (warn.status, warn.threshold_warn, warn.threshold_alert) == (
        "warn",
        pytest.approx(0.77),
        pytest.approx(0.75),
    )
    assert judge("roc_auc", 0.74, 0.80, limits).status == "alert"
    assert judge("log_loss", 0.46, 0.40, limits).status == "warn"
    assert judge("log_loss", 0.30, 0.40, limits).status == "ok"
    # no baseline, or a metric without thresholds: ok, no thresholds
    assert judge("roc_auc", 0.1, None, limits) == judge("coverage", 0.0, 1.0, limits)
    assert judge("roc_auc", 0.1, None, limits).threshold_warn is None
