"""Quality metrics from small aggregates: one grouped Spark pass, then plain Python.

Binary: the scored rows are grouped by (fine score bin, score >= threshold) per slice; each
group holds rows, the sum of scores, labelled rows, their sum of scores, positives, and the
sums of log loss and Brier terms. Only these groups (at most 2 x `n_bins` per slice) are
collected. From them:
- ROC AUC: groups ordered by score; a positive counts every negative of a lower group and
  half of the negatives of its own group (ties within a group count one half);
- PR AUC: average precision, sum over groups (highest first) of precision x recall gain;
- log loss, Brier: the sums over labelled rows / labelled rows;
- ECE: 10 equal-width score bins, sum of |mean score - positive share| weighted by rows;
- the confusion matrix at the model's threshold: precision, recall, F1, accuracy;
- CBPE (`estimated`): the same groups with the probabilities taken as the outcome's
  expectation (a group's expected positives = its sum of scores).
Regression and multiclass aggregate plain sums (per (predicted, observed) class for
multiclass). Formulas in docs/monitoring.md#model-quality.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

#: The columns the aggregations read: the positive-class score (binary), the prediction
#: (regression) or label + probabilities (multiclass), and the outcome (null: not known yet).
SCORE, OUTCOME = "__score__", "__outcome__"
PREDICTION, LABEL, PROBABILITIES = "__prediction__", "__label__", "__probabilities__"
ECE_BINS = 10
_EPS = 1e-15
#: Metrics that get worse when they fall (the others, when they rise); see `direction`.
HIGHER_IS_BETTER = frozenset(
    {"roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy", "macro_f1", "r2"}
)
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece", "mae", "rmse"})


@dataclass(frozen=True)
class ScoreGroup:
    """One (score bin, above threshold) group of a binary slice."""

    bin: int
    above: bool
    rows: int
    score_sum: float
    labelled: int = 0
    labelled_score_sum: float = 0.0
    positives: int = 0
    log_loss_sum: float = 0.0
    brier_sum: float = 0.0


def binary_groups(
    frame: DataFrame, by: Sequence[str], threshold: float, n_bins: int
) -> dict[tuple[Any, ...], list[ScoreGroup]]:
    """Per slice (`by` values), the score groups of `frame` (columns SCORE, OUTCOME 0/1/null).

    One grouped pass; the collected rows are at most 2 x n_bins per slice."""
    score = F.col(SCORE)
    outcome = F.col(OUTCOME).cast("double")
    labelled = outcome.isNotNull()
    clipped = F.least(F.greatest(score, F.lit(_EPS)), F.lit(1 - _EPS))
    log_loss = -(outcome * F.log(clipped) + (1 - outcome) * F.log(1 - clipped))
    rows = (
        frame.where(score.isNotNull())
        .groupBy(
            *by,
            F.least(F.floor(score * n_bins), F.lit(n_bins - 1)).cast("int").alias("bin"),
            (score >= F.lit(threshold)).alias("above"),
        )
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum(score).alias("score_sum"),
            F.count(outcome).alias("labelled"),
            F.sum(F.when(labelled, score)).alias("labelled_score_sum"),
            F.sum(outcome).alias("positives"),
            F.sum(log_loss).alias("log_loss_sum"),
            F.sum(F.pow(score - outcome, 2)).alias("brier_sum"),
        )
        .collect()  # tiny: at most 2 x n_bins rows per slice
    )
    groups: dict[tuple[Any, ...], list[ScoreGroup]] = {}
    for row in rows:
        groups.setdefault(tuple(row[c] for c in by), []).append(
            ScoreGroup(
                bin=int(row["bin"]),
                above=bool(row["above"]),
                rows=int(row["rows"]),
                score_sum=float(row["score_sum"]),
                labelled=int(row["labelled"]),
                labelled_score_sum=float(row["labelled_score_sum"] or 0.0),
                positives=int(row["positives"] or 0),
                log_loss_sum=float(row["log_loss_sum"] or 0.0),
                brier_sum=float(row["brier_sum"] or 0.0),
            )
        )
    return groups


def _ordered(groups: Sequence[ScoreGroup]) -> list[ScoreGroup]:
    """Groups from the lowest scores to the highest."""
    return sorted(groups, key=lambda g: (g.bin, g.above))


def roc_auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """AUC from positive / negative counts per group, groups ordered by ascending score;
    ties within a group count one half. None without positives or without negatives."""
    total_pos, total_neg = sum(positives), sum(negatives)
    if total_pos <= 0 or total_neg <= 0:
        return None
    below, pairs = 0.0, 0.0
    for pos, neg in zip(positives, negatives, strict=True):
        pairs += pos * (below + 0.5 * neg)
        below += neg
    return pairs / (total_pos * total_neg)


def average_precision(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """PR AUC as average precision: from the highest group down, precision at each cut
    times the recall it adds. None without positives."""
    total_pos = sum(positives)
    if total_pos <= 0:
        return None
    tp, fp, area = 0.0, 0.0, 0.0
    for pos, neg in zip(reversed(positives), reversed(negatives), strict=True):
        tp, fp = tp + pos, fp + neg
        if pos > 0:
            area += (tp / (tp + fp)) * (pos / total_pos)
    return area


def expected_calibration_error(groups: Sequence[ScoreGroup], n_bins: int) -> float | None:
    """ECE over labelled rows: 10 equal-width score bins (fine bin b -> b x 10 // n_bins),
    sum of |mean score - positive share| weighted by the bin's share of labelled rows."""
    labelled = sum(g.labelled for g in groups)
    if labelled == 0:
        return None
    bins: dict[int, list[float]] = {}
    for g in groups:
        acc = bins.setdefault(g.bin * ECE_BINS // n_bins, [0.0, 0.0, 0.0])
        acc[0] += g.labelled
        acc[1] += g.labelled_score_sum
        acc[2] += g.positives
    return sum(abs(s - p) / labelled for n, s, p in bins.values() if n > 0)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _confusion_metrics(tp: float, fp: float, tn: float, fn: float) -> dict[str, float | None]:
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
    }


def binary_realized(groups: Sequence[ScoreGroup], n_bins: int) -> dict[str, float]:
    """Realized binary metrics of a slice: only `coverage` (0) when no row is labelled."""
    rows = sum(g.rows for g in groups)
    labelled = sum(g.labelled for g in groups)
    if labelled == 0:
        return {"coverage": 0.0}
    ordered = _ordered(groups)
    values: dict[str, float | None] = {
        **_counted_metrics(groups, lambda g: g.positives, lambda g: g.labelled),
        "pr_auc": average_precision(
            [float(g.positives) for g in ordered],
            [float(g.labelled - g.positives) for g in ordered],
        ),
        "log_loss": sum(g.log_loss_sum for g in groups) / labelled,
        "brier": sum(g.brier_sum for g in groups) / labelled,
        "ece": expected_calibration_error(groups, n_bins),
        "coverage": labelled / rows,
    }
    return {k: v for k, v in values.items() if v is not None}


def binary_estimated(groups: Sequence[ScoreGroup]) -> dict[str, float]:
    """CBPE: the metrics expected if the scores are calibrated probabilities (a group of
    n rows with score sum s holds s positives and n - s negatives, in expectation)."""
    if sum(g.rows for g in groups) == 0:
        return {}
    values = _counted_metrics(groups, lambda g: g.score_sum, lambda g: g.rows)
    return {k: v for k, v in values.items() if v is not None}


def _counted_metrics(
    groups: Sequence[ScoreGroup],
    positives: Callable[[ScoreGroup], float],
    rows: Callable[[ScoreGroup], float],
) -> dict[str, float | None]:
    """ROC AUC, the confusion matrix at the threshold and the rates, from each group's
    positives and rows: observed (realized) or expected (CBPE) counts alike."""
    pos = [float(positives(g)) for g in _ordered(groups)]
    neg = [float(rows(g) - positives(g)) for g in _ordered(groups)]
    tp = float(sum(positives(g) for g in groups if g.above))
    fp = float(sum(rows(g) - positives(g) for g in groups if g.above))
    fn = float(sum(positives(g) for g in groups if not g.above))
    tn = float(sum(rows(g) - positives(g) for g in groups if not g.above))
    total = tp + fp + fn + tn
    return {
        "roc_auc": roc_auc(pos, neg),
        **_confusion_metrics(tp, fp, tn, fn),
        "positive_rate": (tp + fn) / total,
        "predicted_positive_rate": (tp + fp) / total,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


@dataclass(frozen=True)
class RegressionSums:
    """The sums of a regression slice."""

    rows: int
    labelled: int
    abs_error_sum: float = 0.0
    sq_error_sum: float = 0.0
    outcome_var_pop: float = 0.0


def regression_sums(frame: DataFrame, by: Sequence[str]) -> dict[tuple[Any, ...], RegressionSums]:
    """Per slice, the sums of `frame` (columns PREDICTION, OUTCOME double or null)."""
    error = F.col(PREDICTION) - F.col(OUTCOME).cast("double")
    rows = (
        frame.where(F.col(PREDICTION).isNotNull())
        .groupBy(*by)
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count(F.col(OUTCOME)).alias("labelled"),
            F.sum(F.abs(error)).alias("abs_error_sum"),
            F.sum(F.pow(error, 2)).alias("sq_error_sum"),
            F.var_pop(F.col(OUTCOME).cast("double")).alias("outcome_var_pop"),
        )
        .collect()  # one row per slice
    )
    return {
        tuple(r[c] for c in by): RegressionSums(
            rows=int(r["rows"]),
            labelled=int(r["labelled"]),
            abs_error_sum=float(r["abs_error_sum"] or 0.0),
            sq_error_sum=float(r["sq_error_sum"] or 0.0),
            outcome_var_pop=float(r["outcome_var_pop"] or 0.0),
        )
        for r in rows
    }


def regression_realized(sums: RegressionSums) -> dict[str, float]:
    """MAE, RMSE, R² (1 - SSE / SST; left out when the outcomes do not vary) and coverage."""
    n = sums.labelled
    if n == 0:
        return {"coverage": 0.0}
    values = {
        "mae": sums.abs_error_sum / n,
        "rmse": math.sqrt(sums.sq_error_sum / n),
        "coverage": n / sums.rows,
    }
    total = sums.outcome_var_pop * n
    if total > 0:
        values["r2"] = 1 - sums.sq_error_sum / total
    return values


@dataclass(frozen=True)
class ClassCell:
    """Rows predicted `label` whose outcome is `outcome` (None: not known yet)."""

    label: str | None
    outcome: str | None
    rows: int
    log_loss_sum: float = 0.0


def multiclass_cells(frame: DataFrame, by: Sequence[str]) -> dict[tuple[Any, ...], list[ClassCell]]:
    """Per slice, the (predicted, observed) cells of `frame` (LABEL, PROBABILITIES map of
    class -> probability, OUTCOME text or null): at most classes² + classes rows a slice."""
    p = F.coalesce(F.element_at(F.col(PROBABILITIES), F.col(OUTCOME)), F.lit(0.0))
    loss = -F.log(F.greatest(p, F.lit(_EPS)))
    rows = (
        frame.where(F.col(LABEL).isNotNull())
        .groupBy(*by, F.col(LABEL).alias("label"), F.col(OUTCOME).alias("outcome"))
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum(F.when(F.col(OUTCOME).isNotNull(), loss)).alias("log_loss_sum"),
        )
        .collect()  # tiny: the confusion matrix of each slice
    )
    cells: dict[tuple[Any, ...], list[ClassCell]] = {}
    for r in rows:
        cells.setdefault(tuple(r[c] for c in by), []).append(
            ClassCell(r["label"], r["outcome"], int(r["rows"]), float(r["log_loss_sum"] or 0.0))
        )
    return cells


def multiclass_realized(cells: Sequence[ClassCell]) -> dict[str, float]:
    """Accuracy, macro F1 (over the classes predicted or observed), log loss, coverage."""
    rows = sum(c.rows for c in cells)
    known = [c for c in cells if c.outcome is not None]
    labelled = sum(c.rows for c in known)
    if labelled == 0:
        return {"coverage": 0.0}
    classes = {c.label for c in known} | {c.outcome for c in known}
    f1s = []
    for cls in classes:
        tp = sum(c.rows for c in known if c.label == cls and c.outcome == cls)
        fp = sum(c.rows for c in known if c.label == cls and c.outcome != cls)
        fn = sum(c.rows for c in known if c.label != cls and c.outcome == cls)
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return {
        "accuracy": sum(c.rows for c in known if c.label == c.outcome) / labelled,
        "macro_f1": sum(f1s) / len(f1s),
        "log_loss": sum(c.log_loss_sum for c in known) / labelled,
        "coverage": labelled / rows,
    }


def direction(metric: str) -> int:
    """+1 when a rise is the bad move (losses, errors), -1 when a fall is, 0: no threshold."""
    if metric in LOWER_IS_BETTER:
        return 1
    if metric in HIGHER_IS_BETTER:
        return -1
    return 0


@dataclass(frozen=True)
class Judged:
    """A metric's thresholds (absolute values) and status against its baseline."""

    threshold_warn: float | None
    threshold_alert: float | None
    status: str


def judge(
    metric: str, value: float, baseline: float | None, limits: Mapping[str, tuple[float, float]]
) -> Judged:
    """Status of `value`: `alert` / `warn` once it moved the bad way from `baseline` by the
    configured (warn, alert) amounts; no thresholds without a baseline or a limit."""
    sign = direction(metric)
    if baseline is None or metric not in limits or sign == 0:
        return Judged(None, None, "ok")
    warn, alert = limits[metric]
    warn_at, alert_at = baseline + sign * warn, baseline + sign * alert
    if sign * (value - alert_at) >= 0:
        status = "alert"
    elif sign * (value - warn_at) >= 0:
        status = "warn"
    else:
        status = "ok"
    return Judged(warn_at, alert_at, status)
