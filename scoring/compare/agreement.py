"""How far two model versions agree on the rows both scored: DataFrame → a few numbers.

`paired` joins the champion's and the challenger's slice of one date on the entity key
(rows scored by both only) into `__a__` / `__b__` (the output compared: the binary score,
the multiclass predicted class's probability, the regression prediction) and `__da__` /
`__db__` (the decision: binary score >= threshold, the multiclass label; none for
regression). `agreement` then computes, in Spark:

- `psi`, `ks`: the monitor's formulas (`scoring.monitor.metrics`) over bins cut at the
  champion's quantiles (`monitor.n_bins`), the champion the reference;
- `spearman`: Pearson correlation of the two sides' average ranks (ties share their mean
  rank). The ranks come from a window ordered over the whole pair, which Spark runs in ONE
  partition: a sort of (key, two doubles) per row, fine at tens of millions of rows on one
  executor, not at billions (docs/promotion.md);
- `top_decile_overlap`: |top k by champion ∩ top k by challenger| / k, k = ceil(rows / 10),
  ties broken by the entity key;
- `flips`, `flip_share` (binary, multiclass): rows whose decision differs;
  `mean_abs_difference` (regression): mean |challenger - champion|;
- `rows_both`: the rows compared.

Only aggregates reach the driver: one row of sums, two small bucket count frames and the
quantile edges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from scoring.model.tasks import BINARY, MULTICLASS, REGRESSION
from scoring.monitor.binning import bucket_counts, build_bin_spec, collect_counts
from scoring.monitor.metrics import ks, psi, shares

A, B, DA, DB = "__a__", "__b__", "__da__", "__db__"
_OUTPUT = "output"
_RA, _RB, _TA, _TB = "__ra__", "__rb__", "__ta__", "__tb__"


def task_output(task: str) -> str:
    """The output column two versions are compared on (see the module docstring)."""
    return "prediction" if task == REGRESSION else "score"


def decision(task: str, threshold: float) -> Column | None:
    """A scored row's decision: binary 1 / 0 at `threshold`, the multiclass label; None for
    regression (no decision to flip)."""
    if task == BINARY:
        return (F.col("score") >= F.lit(threshold)).cast("int").cast("string")
    if task == MULTICLASS:
        return F.col("label").cast("string")
    return None


def paired(
    champion: DataFrame, challenger: DataFrame, entity: Sequence[str], task: str, threshold: float
) -> DataFrame:
    """The rows both slices scored with a usable output: entity, A, B, DA, DB."""
    output = task_output(task)
    chosen = decision(task, threshold)
    rule = chosen if chosen is not None else F.lit(None).cast("string")

    def side(frame: DataFrame, value: str, decided: str) -> DataFrame:
        number = F.col(output).cast("double")
        return frame.where(number.isNotNull() & ~F.isnan(number)).select(
            *entity, number.alias(value), rule.alias(decided)
        )

    return side(champion, A, DA).join(side(challenger, B, DB), on=list(entity), how="inner")


def _ranked(pair: DataFrame, entity: Sequence[str], value: str, rank: str, top: str) -> DataFrame:
    """`rank`: the average rank of `value` (1 = lowest); `top`: whether the row is in the
    top decile by `value` (ties broken by the entity key)."""
    order = Window.orderBy(F.col(value), *(F.col(c) for c in entity))
    everything = order.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    position, rows = "__position__", "__rows__"
    ties = Window.partitionBy(F.col(value))
    return (
        pair.withColumn(position, F.row_number().over(order))
        .withColumn(rows, F.count(F.lit(1)).over(everything))
        .withColumn(rank, F.avg(position).over(ties))
        .withColumn(top, F.col(position) > F.col(rows) - F.ceil(F.col(rows) / F.lit(10)))
        .drop(position, rows)
    )


def agreement(
    pair: DataFrame,
    entity: Sequence[str],
    task: str,
    n_bins: int,
    epsilon: float,
    relative_error: float = 0.0,
) -> dict[str, float]:
    """The agreement metrics of a `paired` frame (module docstring); a metric that is
    undefined (no rows, a constant side for Spearman) is left out."""
    ranked = pair.transform(_ranked, entity, A, _RA, _TA).transform(_ranked, entity, B, _RB, _TB)
    both_top = (F.col(_TA) & F.col(_TB)).cast("long")
    flip = (~F.col(DA).eqNullSafe(F.col(DB))).cast("long")
    sums = ranked.agg(
        F.count(F.lit(1)).alias("rows"),
        F.corr(_RA, _RB).alias("spearman"),
        F.sum(both_top).alias("both_top"),
        F.sum(flip).alias("flips"),
        F.avg(F.abs(F.col(B) - F.col(A))).alias("mad"),
    ).first()  # one row of sums
    rows = int(sums["rows"]) if sums is not None else 0
    values: dict[str, float] = {"rows_both": float(rows)}
    if sums is None or rows == 0:
        return values
    if sums["spearman"] is not None and not math.isnan(sums["spearman"]):
        values["spearman"] = float(sums["spearman"])
    values["top_decile_overlap"] = int(sums["both_top"]) / math.ceil(rows / 10)
    if task == REGRESSION:
        values["mean_abs_difference"] = float(sums["mad"])
    else:
        values["flips"] = float(sums["flips"])
        values["flip_share"] = int(sums["flips"]) / rows
    values.update(_distance(pair, n_bins, epsilon, relative_error))
    return values


def _distance(
    pair: DataFrame, n_bins: int, epsilon: float, relative_error: float
) -> dict[str, float]:
    """PSI and KS of the challenger's outputs against the champion's, in the champion's bins."""
    reference = pair.select(F.col(A).alias(_OUTPUT))
    current = pair.select(F.col(B).alias(_OUTPUT))
    spec = build_bin_spec(reference, [_OUTPUT], [], n_bins, relative_error)
    p_counts = collect_counts(bucket_counts(reference, spec)).get(_OUTPUT, {})
    q_counts = collect_counts(bucket_counts(current, spec)).get(_OUTPUT, {})
    p, q = shares(p_counts), shares(q_counts)
    out: dict[str, float] = {}
    if p is not None and q is not None:
        out["psi"] = psi(p, q, epsilon)
        distance = ks(p_counts, q_counts)
        if distance is not None:
            out["ks"] = distance
    return out
