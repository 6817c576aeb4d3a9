"""The `promotion:` section: defaults, checks naming the key, the per use case override."""

from __future__ import annotations

import pytest

from scoring.compare.rules import metric_error
from scoring.core.config import load_config
from scoring.core.errors import ConfigError


def test_the_defaults_never_promote_on_their_own():
    rules = load_config("local").promotion
    assert (rules.metric, rules.max_drop, rules.aggregate) == ("roc_auc", 0.005, "mean")
    assert (rules.min_dates, rules.window_days, rules.block_on_drift_alert) == (14, 60, True)
    assert rules.auto is False


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("promotion.metric=coverage", "promotion.metric: 'coverage' is not a realized quality"),
        ("promotion.min_dates=61", "promotion.min_dates = 61 is more than promotion.window_days"),
        ("promotion.aggregate=median", "promotion.aggregate: expected one of"),
        ("promotion.max_drop=-1", "promotion.max_drop: expected a value >= 0"),
    ],
)
def test_bad_rules_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("local", [override])


def test_a_use_case_section_overrides_the_rules():
    layer = ("usecase.yaml", {"promotion": {"metric": "rmse", "max_drop": 0.5}})
    rules = load_config("local", layers=[layer]).promotion
    assert (rules.metric, rules.max_drop, rules.min_dates) == ("rmse", 0.5, 14)


def test_a_metric_of_another_task_is_refused_with_the_ones_that_fit():
    rules = load_config("local").promotion
    assert metric_error(rules, "binary") is None
    assert metric_error(rules, "regression") == (
        "promotion.metric: 'roc_auc' is not a realized metric of a regression model (one of: "
        "mae, rmse, r2); set it in usecase.yaml promotion:"
    )


def test_who_asks_is_the_option_then_the_variable_then_the_os_user(monkeypatch):
    import getpass

    from scoring.cli.commands import requested_by

    monkeypatch.setenv("SCORING_REQUESTED_BY", "change-board")
    assert (requested_by("alice"), requested_by(None)) == ("alice", "change-board")
    monkeypatch.delenv("SCORING_REQUESTED_BY")
    assert requested_by(None) == getpass.getuser()
