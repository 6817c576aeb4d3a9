"""The held-out part of a training date: chosen by entity, scored, kept as the baseline.

A share of the labelled rows (`training.holdout_share`) never reaches the trainer: which
ones is decided by a seeded SHA-256 of the entity key, so the same entities are held out on
every retrain of the same data, whatever the row order, and on any machine. The model's
outputs on them, next to their observed outcome, are what the quality monitor compares later
dates with (scoring/quality): a baseline of training rows would flatter the model.

The split is skipped (every row trains, the baseline carries no outcome, a warning says so)
when it would leave nothing held out, or a classifier's training part with a single class:
tiny data sets, where a held-out estimate would be noise anyway.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from scoring.model.tasks import BINARY, MULTICLASS, Outputs

log = logging.getLogger(__name__)
_SCALE = float(2**64)


def holdout_mask(keys: pd.DataFrame, share: float, seed: int) -> np.ndarray:
    """True for the rows whose entity key falls in the held-out `share` (0..1).

    The fraction of a key is the first 8 bytes of SHA-256(seed, key values) over 2^64.
    """
    if share <= 0.0:
        return np.zeros(len(keys), dtype=bool)
    columns = [keys[c].astype(str).tolist() for c in keys.columns]
    fractions = np.fromiter(
        (_fraction(seed, values) for values in zip(*columns, strict=True)),
        dtype=np.float64,
        count=len(keys),
    )
    return fractions < share


def usable_split(mask: np.ndarray, labels: pd.Series, task: str) -> str | None:
    """Why the split cannot be used (None when it can): nothing held out, nothing left to
    train on, or a classifier's training part with fewer than two classes."""
    if not mask.any():
        return "no entity falls in the held-out share"
    if mask.all():
        return "every entity falls in the held-out share"
    if task in (BINARY, MULTICLASS) and labels[~mask].nunique() < 2:
        return "the training part would have a single class"
    return None


def holdout_metrics(
    task: str, outcome: pd.Series, outputs: Outputs, positive_class: str
) -> dict[str, float]:
    """Headline metrics of the held-out rows, logged to the training run for people.

    The monitor recomputes its own (binned, on Spark) from the baseline Parquet; these are
    scikit-learn's exact values: binary ROC AUC, log loss, Brier; multiclass accuracy;
    regression MAE, RMSE, R².
    """
    from sklearn import metrics

    if task == BINARY:
        actual = (outcome.astype(str) == positive_class).to_numpy().astype(int)
        score = np.asarray(outputs.columns["score"], dtype=np.float64)
        if len(np.unique(actual)) < 2:
            return {}  # AUC is undefined on one class; nothing honest to log
        return {
            "holdout_roc_auc": float(metrics.roc_auc_score(actual, score)),
            "holdout_log_loss": float(metrics.log_loss(actual, score, labels=[0, 1])),
            "holdout_brier": float(metrics.brier_score_loss(actual, score)),
        }
    if task == MULTICLASS:
        label = pd.Series(outputs.columns["label"]).astype(str).to_numpy()
        return {"holdout_accuracy": float(np.mean(label == outcome.astype(str).to_numpy()))}
    prediction = np.asarray(outputs.columns["prediction"], dtype=np.float64)
    actual_values = outcome.to_numpy(dtype=np.float64)
    return {
        "holdout_mae": float(metrics.mean_absolute_error(actual_values, prediction)),
        "holdout_rmse": float(np.sqrt(metrics.mean_squared_error(actual_values, prediction))),
        "holdout_r2": float(metrics.r2_score(actual_values, prediction)),
    }


def describe(metrics: Mapping[str, float], rows: int, trained: int) -> str:
    """One log line: how many rows were held out and what the model got on them."""
    shown = ", ".join(f"{name} {value:.4f}" for name, value in sorted(metrics.items()))
    return f"held out {rows} rows (trained on {trained}): {shown or 'no metric'}"


def _fraction(seed: int, values: Sequence[str]) -> float:
    digest = hashlib.sha256("\x1f".join([str(seed), *values]).encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE
