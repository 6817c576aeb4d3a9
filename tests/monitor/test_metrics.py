from __future__ import annotations

import math

import pytest

from scoring.monitor.metrics import compare, js_distance, ks, psi, row_count, shares

EPS = 1e-4
# reference bins (<=1, (1,2], >2, null): 2, 1, 1, 0 of 4 rows
REFERENCE = {"x": {"000": 2, "001": 1, "002": 1}}


def test_psi_matches_the_hand_computed_value_with_epsilon_for_the_empty_bin():
    # current: 0, 2, 2 of 4 -> the empty first bin counts as epsilon
    expected = (
        (EPS - 0.5) * math.log(EPS / 0.5)
        + (0.5 - 0.25) * math.log(0.5 / 0.25)
        + (0.5 - 0.25) * math.log(0.5 / 0.25)
    )
    assert psi({"000": 0.5, "001": 0.25, "002": 0.25}, {"001": 0.5, "002": 0.5}, EPS) == (
        pytest.approx(expected)
    )


def test_psi_of_equal_shares_is_zero():
    assert psi({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}, EPS) == 0.0


def test_ks_is_the_largest_gap_between_the_binned_cdfs():
    # CDFs at the bin boundaries: reference 0.5, 0.75, 1.0; current 0.0, 0.5, 1.0
    assert ks({"000": 2, "001": 1, "002": 1}, {"001": 2, "002": 2}) == pytest.approx(0.5)


def test_ks_ignores_the_null_bucket():
    # non-null reference 1 | 1 -> CDF 0.5, 1.0; non-null current 1 | 0 -> CDF 1.0, 1.0
    assert ks({"000": 1, "001": 1}, {"000": 1, "__null__": 5}) == pytest.approx(0.5)


def test_ks_is_undefined_without_non_null_values():
    assert ks({"000": 1}, {"__null__": 3}) is None


def test_js_distance_matches_the_hand_computed_value_in_base_2():
    p = {"DE": 0.5, "FR": 0.25, "__null__": 0.25}
    q = {"DE": 0.25, "__unseen__": 0.5, "__null__": 0.25}
    # m = (p + q) / 2: DE 0.375, FR 0.125, unseen 0.25, null 0.25
    jsd = 0.5 * (0.5 * math.log2(0.5 / 0.375) + 0.25 * math.log2(0.25 / 0.125)) + 0.5 * (
        0.25 * math.log2(0.25 / 0.375) + 0.5 * math.log2(0.5 / 0.25)
    )
    assert js_distance(p, q) == pytest.approx(math.sqrt(jsd))


def test_js_distance_of_disjoint_categories_is_one():
    assert js_distance({"a": 1.0}, {"b": 1.0}) == pytest.approx(1.0)


def test_categorical_comparison_counts_unseen_categories_and_reports_js_not_ks():
    reference = {"country": {"DE": 2, "FR": 1, "__null__": 1}}
    current = {"country": {"DE": 1, "__unseen__": 2, "__null__": 1}}
    psi_value = (
        (0.25 - 0.5) * math.log(0.25 / 0.5)
        + (EPS - 0.25) * math.log(EPS / 0.25)
        + (0.5 - EPS) * math.log(0.5 / EPS)
    )
    got = {m.metric: m.value for m in compare(reference, current, numeric=(), epsilon=EPS)}
    assert set(got) == {"psi", "js_distance", "null_rate", "null_rate_change"}
    assert got["psi"] == pytest.approx(psi_value)


def test_numeric_comparison_reports_psi_ks_and_the_null_rate_change():
    current = {"x": {"000": 1, "001": 1, "__null__": 2}}
    metrics = compare(REFERENCE, current, numeric={"x"}, epsilon=EPS)
    assert [(m.feature, m.metric) for m in metrics] == [
        ("x", "psi"),
        ("x", "ks"),
        ("x", "null_rate"),
        ("x", "null_rate_change"),
    ]
    assert {m.metric: m.value for m in metrics} == pytest.approx(
        {
            "psi": (0.25 - 0.5) * math.log(0.25 / 0.5)
            + (0.25 - 0.25) * math.log(0.25 / 0.25)
            + (EPS - 0.25) * math.log(EPS / 0.25)
            + (0.5 - EPS) * math.log(0.5 / EPS),
            # non-null CDFs: reference 0.5, 0.75, 1.0; current 0.5, 1.0, 1.0
            "ks": 0.25,
            "null_rate": 0.5,
            "null_rate_change": 0.5 - 0.0,
        }
    )


def test_a_side_without_rows_has_no_metrics():
    assert compare(REFERENCE, {"x": {}}, numeric={"x"}, epsilon=EPS) == []
    assert shares({}) is None


def test_row_count_is_the_rows_of_one_feature_not_the_sum_over_features():
    assert row_count({"x": {"000": 3, "__null__": 1}, "y": {"a": 4}}) == 4
