"""Drift metrics from two sets of bucket counts (reference and current), per feature.

The counts are tiny (at most n_bins + 2 buckets per feature), so the arithmetic runs on the
driver; the pass over the rows that produced them ran in Spark (`scoring.monitor.binning.bucket_counts`).
With p and q the reference's and the current's share of rows per bucket:

- `psi` = sum over buckets of (q - p) * ln(q / p), with p and q floored at `epsilon`
  so an empty bucket stays finite (every bucket, the null bucket included);
- `ks` (numeric) = max over bin boundaries of |CDF_p - CDF_q|, over non-null values;
- `js_distance` (categorical) = sqrt(JSD), JSD = (KL(p||m) + KL(q||m)) / 2 in base 2,
  m = (p + q) / 2: 0 for equal distributions, 1 for disjoint ones;
- `null_rate` = q of the null bucket; `null_rate_change` = q - p of the null bucket.

A metric that is undefined (a side without rows, KS without non-null values) is left out.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import NamedTuple

from scoring.monitor.binning import NULL_BUCKET, Counts


class Metric(NamedTuple):
    """One metric value of one feature."""

    feature: str
    metric: str
    value: float


def compare(
    reference: Counts, current: Counts, numeric: Collection[str], epsilon: float
) -> list[Metric]:
    """Every metric of every feature present on both sides, in feature order."""
    metrics: list[Metric] = []
    for feature in sorted(set(reference) & set(current)):
        p, q = shares(reference[feature]), shares(current[feature])
        if p is None or q is None:
            continue
        metrics.append(Metric(feature, "psi", psi(p, q, epsilon)))
        if feature in numeric:
            value = ks(reference[feature], current[feature])
            if value is not None:
                metrics.append(Metric(feature, "ks", value))
        else:
            metrics.append(Metric(feature, "js_distance", js_distance(p, q)))
        null_p, null_q = p.get(NULL_BUCKET, 0.0), q.get(NULL_BUCKET, 0.0)
        metrics.append(Metric(feature, "null_rate", null_q))
        metrics.append(Metric(feature, "null_rate_change", null_q - null_p))
    return metrics


def shares(counts: Mapping[str, int]) -> dict[str, float] | None:
    """Each bucket's share of the rows; None when there are no rows."""
    total = sum(counts.values())
    if total == 0:
        return None
    return {bucket: n / total for bucket, n in counts.items()}


def psi(p: Mapping[str, float], q: Mapping[str, float], epsilon: float) -> float:
    """Population stability index over the union of buckets, shares floored at `epsilon`."""
    total = 0.0
    for bucket in set(p) | set(q):
        pb, qb = max(p.get(bucket, 0.0), epsilon), max(q.get(bucket, 0.0), epsilon)
        total += (qb - pb) * math.log(qb / pb)
    return total


def ks(reference: Mapping[str, int], current: Mapping[str, int]) -> float | None:
    """Two-sample KS statistic from binned counts: the largest CDF gap at a bin boundary.

    Buckets sort by their zero-padded bin index; the null bucket is left out.
    """
    p = shares({b: n for b, n in reference.items() if b != NULL_BUCKET})
    q = shares({b: n for b, n in current.items() if b != NULL_BUCKET})
    if p is None or q is None:
        return None
    gap, cdf_p, cdf_q = 0.0, 0.0, 0.0
    for bucket in sorted(set(p) | set(q)):
        cdf_p += p.get(bucket, 0.0)
        cdf_q += q.get(bucket, 0.0)
        gap = max(gap, abs(cdf_p - cdf_q))
    return gap


def js_distance(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen-Shannon distance in base 2 (the square root of the divergence), in [0, 1]."""
    divergence = 0.0
    for bucket in set(p) | set(q):
        pb, qb = p.get(bucket, 0.0), q.get(bucket, 0.0)
        m = (pb + qb) / 2
        divergence += _xlog2(pb, m) + _xlog2(qb, m)
    return math.sqrt(max(divergence / 2, 0.0))


def row_count(counts: Counts) -> int:
    """Rows of the frame the counts came from: every feature counts every row once."""
    return max((sum(buckets.values()) for buckets in counts.values()), default=0)


def _xlog2(x: float, m: float) -> float:
    """x * log2(x / m), with 0 * log(0) = 0."""
    return x * math.log2(x / m) if x > 0 else 0.0
