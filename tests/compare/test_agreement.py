"""Champion vs challenger agreement on tiny frames, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from scoring.compare.agreement import agreement, paired

ENTITY = ("shop_id",)
BINARY_SCHEMA = "shop_id string, score double, label int"


def _binary(spark, scores: dict[str, float | None]):
    rows = [(s, p, None if p is None else int(p >= 0.5)) for s, p in scores.items()]
    return spark.createDataFrame(rows, BINARY_SCHEMA)


def _binary_metrics(spark, champion, challenger, n_bins=2):
    pair = paired(_binary(spark, champion), _binary(spark, challenger), ENTITY, "binary", 0.5)
    return agreement(pair, ENTITY, "binary", n_bins=n_bins, epsilon=0.0001)


def test_binary_agreement_matches_the_hand_computed_values(spark):
    # e6 has no champion score and e7 no challenger row: neither is compared.
    champion = {"e1": 0.1, "e2": 0.2, "e3": 0.3, "e4": 0.4, "e5": 0.9, "e6": None, "e7": 0.5}
    challenger = {"e1": 0.2, "e2": 0.1, "e3": 0.6, "e4": 0.6, "e5": 0.55, "e6": 0.3}
    got = _binary_metrics(spark, champion, challenger)

    assert got["rows_both"] == 5
    # ranks: champion 1..5; challenger e2 1, e1 2, e5 3, e3 / e4 tie at 4.5 each.
    # deviations (-2,-1,0,1,2) and (-1,-2,1.5,1.5,0): 5.5 / sqrt(10 * 9.5)
    assert got["spearman"] == pytest.approx(5.5 / math.sqrt(95))
    # k = ceil(5 / 10) = 1: champion's top is e5, challenger's e4 (tie broken by key)
    assert got["top_decile_overlap"] == 0.0
    # decisions at 0.5: champion only e5, challenger e3, e4, e5: two flips of five
    assert (got["flips"], got["flip_share"]) == (2.0, pytest.approx(0.4))
    # 2 bins cut at the champion's median 0.3: champion (3, 2) rows, challenger (2, 3)
    assert got["psi"] == pytest.approx(2 * 0.2 * math.log(1.5))
    assert got["ks"] == pytest.approx(0.2)
    assert "mean_abs_difference" not in got


def test_identical_outputs_agree_fully(spark):
    scores = {f"e{i:02d}": i / 20 for i in range(1, 12)}
    got = _binary_metrics(spark, scores, scores, n_bins=4)
    assert got["spearman"] == pytest.approx(1.0)
    assert got["top_decile_overlap"] == 1.0  # k = ceil(11 / 10) = 2, the same two rows
    assert (got["flips"], got["psi"], got["ks"]) == (0.0, 0.0, 0.0)


def test_no_common_rows_gives_only_the_row_count(spark):
    got = _binary_metrics(spark, {"e1": 0.1}, {"e2": 0.2})
    assert got == {"rows_both": 0.0}


def test_regression_compares_the_mean_absolute_difference_not_flips(spark):
    schema = "shop_id string, prediction double"
    champion = spark.createDataFrame([("a", 1.0), ("b", 2.0), ("c", 3.0)], schema)
    challenger = spark.createDataFrame([("a", 2.0), ("b", 2.0), ("c", 5.0)], schema)
    got = agreement(paired(champion, challenger, ENTITY, "regression", 0.5), ENTITY,
                    "regression", n_bins=2, epsilon=0.0001)  # fmt: skip
    assert got["mean_abs_difference"] == pytest.approx((1 + 0 + 2) / 3)
    assert "flips" not in got
    # ranks (1, 2, 3) and (1.5, 1.5, 3): deviations (-1, 0, 1), (-0.5, -0.5, 1): 1.5 / sqrt(2 * 1.5)
    assert got["spearman"] == pytest.approx(1.5 / math.sqrt(3))


def test_multiclass_flips_are_label_changes(spark):
    schema = "shop_id string, label string, score double"
    champion = spark.createDataFrame([("a", "x", 0.6), ("b", "y", 0.7), ("c", "z", 0.5)], schema)
    challenger = spark.createDataFrame([("a", "x", 0.8), ("b", "x", 0.4), ("c", "z", 0.9)], schema)
    got = agreement(paired(champion, challenger, ENTITY, "multiclass", 0.5), ENTITY,
                    "multiclass", n_bins=2, epsilon=0.0001)  # fmt: skip
    assert (got["flips"], got["flip_share"]) == (1.0, pytest.approx(1 / 3))
