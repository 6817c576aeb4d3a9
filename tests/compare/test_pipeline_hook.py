"""The pipeline's hook after score: compare only when shadow versions were scored; with
promotion.auto, promote the best version the rules allow, and only that one."""

from __future__ import annotations

from datetime import date

import pytest

from scoring.compare import promote as promotion
from scoring.compare.promote import Decision
from scoring.compare.rules import Check, Evidence
from scoring.runs import pipeline
from scoring.runs.result import StepResult
from scoring.runs.steps import StepRun
from tests.conftest import make_config

DAY = date(2026, 3, 5)


def _score(shadows) -> StepResult:
    details = {"model_version": "1"} | ({} if shadows is None else {"shadow_versions": shadows})
    return StepResult("score", "score-1", DAY, details=details)


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple] = []

    def compare(run, champion_uri=None, challenger_uri=None, run_id=None):
        seen.append(("compare", champion_uri))
        return StepResult("compare", "compare-1", DAY)

    def promote(run, request, run_id=None):
        seen.append(("promote", request.model_uri, request.alias, request.requested_by))
        return StepResult("promote", "promote-1", DAY)

    monkeypatch.setattr(pipeline.runner, "compare", compare)
    monkeypatch.setattr(pipeline.runner, "promote", promote)
    return seen


def _run(tmp_path, churn, *overrides) -> StepRun:
    config = make_config(tmp_path, *overrides)
    return StepRun(None, config, churn, DAY, "pipeline-7")  # type: ignore[arg-type]


@pytest.mark.parametrize("shadows", [None, {}])
def test_without_shadow_versions_nothing_is_compared(tmp_path, churn, calls, shadows):
    assert pipeline.compare_shadows(_run(tmp_path, churn), _score(shadows)) == []
    assert calls == []


def test_shadow_versions_are_compared_with_the_served_version_and_never_promoted_by_default(
    tmp_path, churn, calls
):
    done = pipeline.compare_shadows(_run(tmp_path, churn), _score({"challenger": "2"}))
    assert [r.step for r in done] == ["compare"]
    assert calls == [("compare", "models:/scoring_churn/1")]


def test_auto_promotion_promotes_the_best_version_the_rules_allow(
    tmp_path, churn, calls, monkeypatch
):
    # v2 gains 0.01, v3 0.03 but fails a rule, v4 0.02: v4 is promoted
    gains = {"2": (0.01, True), "3": (0.03, False), "4": (0.02, True)}

    def decide(spark, tables, target, request, rules, run_date):
        version = request.model_uri.rsplit("/", 1)[1]
        gain, passed = gains[version]
        evidence = Evidence("roc_auc", (DAY, DAY), ((DAY, 0.8, 0.8 + gain),))
        return Decision(version, "1", (Check("max_drop", passed, "..."),), evidence)

    monkeypatch.setattr(promotion, "decide", decide)
    run = _run(tmp_path, churn, "promotion.auto=true")
    shadows = {"challenger": "2", "other": "3", "third": "4"}
    done = pipeline.compare_shadows(run, _score(shadows))
    assert [r.step for r in done] == ["compare", "promote"]
    assert calls[1] == ("promote", "models:/scoring_churn/4", "champion", "pipeline pipeline-7")
