"""The held-out split of a training date (scoring.train.holdout): by key, stable, usable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.model.tasks import Outputs
from scoring.train.holdout import holdout_mask, holdout_metrics, usable_split


def keys(n: int) -> pd.DataFrame:
    return pd.DataFrame({"policy_id": [f"P{i:05d}" for i in range(n)], "region": "north"})


def test_the_held_out_share_is_close_to_the_configured_one():
    held = holdout_mask(keys(20_000), 0.2, seed=7)
    # 20 000 independent draws at p = 0.2: standard deviation 0.0028.
    assert 0.19 <= held.mean() <= 0.21


def test_the_same_entities_are_held_out_whatever_the_row_order():
    frame = keys(500)
    held = set(frame["policy_id"][holdout_mask(frame, 0.3, seed=7)])
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert set(shuffled["policy_id"][holdout_mask(shuffled, 0.3, seed=7)]) == held


def test_another_seed_holds_out_other_entities_and_zero_holds_out_none():
    frame = keys(500)
    assert (holdout_mask(frame, 0.3, seed=7) != holdout_mask(frame, 0.3, seed=8)).any()
    assert not holdout_mask(frame, 0.0, seed=7).any()


def test_every_key_column_takes_part_in_the_choice():
    one = pd.DataFrame({"policy_id": ["P1"] * 400, "region": [f"R{i}" for i in range(400)]})
    held = holdout_mask(one, 0.5, seed=7)
    assert 0 < held.sum() < 400


@pytest.mark.parametrize(
    ("mask", "labels", "task", "reason"),
    [
        ([False, False, False], [0, 1, 0], "binary", "no entity falls in the held-out share"),
        ([True, True, True], [0, 1, 0], "binary", "every entity falls in the held-out share"),
        ([True, False, False], [1, 0, 0], "binary", "the training part would have a single class"),
        ([True, False, False], [1.5, 0.5, 0.5], "regression", None),
        ([True, False, False], [0, 1, 0], "binary", None),
    ],
)
def test_a_split_that_cannot_train_or_holds_nothing_out_is_refused(mask, labels, task, reason):
    assert usable_split(np.array(mask), pd.Series(labels), task) == reason


def test_held_out_binary_metrics_are_the_exact_ones():
    # Scores 0.1, 0.4, 0.35, 0.8 for outcomes 0, 0, 1, 1: of the 4 positive/negative pairs,
    # 3 are ordered right -> AUC 0.75. Brier: (0.01 + 0.16 + 0.4225 + 0.04) / 4 = 0.158125.
    outputs = Outputs({"score": np.array([0.1, 0.4, 0.35, 0.8])})
    metrics = holdout_metrics("binary", pd.Series(["0", "0", "1", "1"]), outputs, "1")
    assert metrics["holdout_roc_auc"] == pytest.approx(0.75)
    assert metrics["holdout_brier"] == pytest.approx(0.158125)
    expected_log_loss = -(np.log(0.9) + np.log(0.6) + np.log(0.35) + np.log(0.8)) / 4
    assert metrics["holdout_log_loss"] == pytest.approx(expected_log_loss)


def test_held_out_regression_metrics_are_the_exact_ones():
    outputs = Outputs({"prediction": np.array([1.0, 2.0, 5.0])})
    metrics = holdout_metrics("regression", pd.Series([2.0, 2.0, 3.0]), outputs, "1")
    # Errors -1, 0, 2: MAE 1, RMSE sqrt(5/3); mean 7/3, total SS 2/3 -> R² 1 - 5 / (2/3).
    assert metrics == pytest.approx(
        {"holdout_mae": 1.0, "holdout_rmse": np.sqrt(5 / 3), "holdout_r2": 1 - 5 / (2 / 3)}
    )
