"""The error budget through the real UDF and Delta tables: a model that raises on one
customer, returns NaN for another and 1.5 for a third (tests.model_fixtures.FaultyModel).

One module fixture scores the date twice within budget (the rerun proves the score_errors
slice is replaced), then once over budget, then, after the bad customers left the features,
once more (the rerun empties the slice); the tests read what each run left."""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest

from scoring.core import io
from scoring.core.config import Config
from scoring.core.errors import ModelError
from scoring.core.tables import Tables
from scoring.model.registry import mlflow_target
from scoring.runs.result import StepResult
from scoring.score.step import ErrorBudget, ScoreRequest, run_score
from scoring.usecase.spec import ModelSpec
from tests.conftest import churn_tables, make_config
from tests.model_fixtures import (
    RUN_DATE,
    feature_row,
    features_frame,
    register_faulty_model,
    write_features,
)

pytestmark = pytest.mark.slow
NAME = "faulty_churn"
SPEC = ModelSpec(NAME, "champion", "binary", allow_pickled_code=True)
BAD = {
    "C003": "ValueError: cannot score tenure 103",
    "C005": "nan",
    "C007": "out_of_range: 1.5",
}


class Runs(NamedTuple):
    tables: Tables
    first: StepResult
    second: StepResult
    before_over: dict[str, int | None]  # table versions before the over-budget run
    scores_before_over: list[tuple]
    over: ModelError
    after_over: dict[str, int | None]
    scores_after_over: list[tuple]
    clean: StepResult  # the rerun after the bad customers left the features
    errors_after_clean: int


def versions(spark, tables: Tables) -> dict[str, int | None]:
    return {
        t: io.current_version(spark, tables[t])
        for t in ("scores", "scores_current", "score_errors")
    }


def score_rows(spark, tables: Tables) -> list[tuple]:
    frame = io.read_table(spark, tables["scores"]).select("customer_id", "score", "run_id")
    return sorted(tuple(r) for r in frame.collect())


@pytest.fixture(scope="module")
def runs(spark, trained: Config, tmp_path_factory) -> Runs:
    root = tmp_path_factory.mktemp("budget")
    config = make_config(
        root / "lake",
        f"mlflow.tracking_uri={trained.tracking_uri}",
        f"mlflow.artifact_root={trained.artifact_root}",
    )
    write_features(spark, config, [feature_row(c, RUN_DATE) for c in range(40)])
    target = mlflow_target(config, "churn")
    version = register_faulty_model(target, NAME)
    request = ScoreRequest(
        f"models:/{NAME}/{version}", SPEC, NAME, ("customer_id",), update_current=True
    )
    tables = churn_tables(config)

    def score(run_id: str, budget: ErrorBudget) -> StepResult:
        return run_score(spark, tables, target, request, RUN_DATE, run_id, 4, budget)

    within = ErrorBudget(max_rows=3, max_share=0.1)  # 3 of 40 rows: 7.5 %
    first = score("budget-1", within)
    second = score("budget-2", within)
    before = versions(spark, tables)
    rows = score_rows(spark, tables)
    with pytest.raises(ModelError) as over:
        score("budget-3", ErrorBudget(max_rows=2, max_share=0.5))
    after = versions(spark, tables)
    after_rows = score_rows(spark, tables)
    good = features_frame(
        spark, [feature_row(c, RUN_DATE) for c in range(40) if c not in (3, 5, 7)]
    )
    replace = f"as_of_date = '{RUN_DATE.isoformat()}'"
    io.write_delta(good, tables["features"], "overwrite", {"run_id": "f2"}, replace)
    clean = score("budget-4", ErrorBudget())
    left = io.read_table(spark, tables["score_errors"]).count()
    return Runs(tables, first, second, before, rows, over.value, after, after_rows, clean, left)


def test_scores_and_scores_current_lack_exactly_the_bad_rows(spark, runs):
    written = runs.second.table_versions  # what budget-2 committed (budget-4 came later)
    scores = io.read_table(spark, runs.tables["scores"], written["scores"])
    current = io.read_table(spark, runs.tables["scores_current"], written["scores_current"])
    assert {r.run_id for r in scores.collect()} == {"budget-2"}
    expected = {f"C{c:03d}" for c in range(40)} - set(BAD)
    assert {r.customer_id for r in scores.collect()} == expected
    assert {r.customer_id for r in current.collect()} == expected
    assert scores.where("isnan(score) OR score < 0 OR score > 1").count() == 0
    c001 = scores.where("customer_id = 'C001'").first()
    assert c001 is not None and c001.score == pytest.approx(1 / 3)  # the good rows of C003's batch


def test_score_errors_holds_exactly_the_bad_rows_with_key_error_and_inputs(spark, runs):
    version = runs.second.table_versions["score_errors"]
    rows = io.read_table(spark, runs.tables["score_errors"], version).collect()
    assert len(rows) == 3  # the rerun replaced the first run's slice
    by_key = {json.loads(r.entity_key)["customer_id"]: r for r in rows}
    assert {k: r.error for k, r in by_key.items()} == BAD
    for key, row in by_key.items():
        assert (row.as_of_date, row.model_name, row.model_version, row.run_id) == (
            RUN_DATE,
            NAME,
            "1",
            "budget-2",
        )
        assert json.loads(row.input_values)["tenure_days"] == 100 + int(key[1:])
        assert row.recorded_at is not None


def test_the_result_counts_the_bad_rows_and_warns(runs):
    result = runs.second
    assert (result.rows_in, result.rows_out, result.rows_quarantined) == (40, 37, 3)
    assert result.details["error_rows"] == 3
    assert "score_errors" in result.table_versions
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("3 of 40 rows could not be scored")


def test_over_budget_fails_in_one_line_naming_model_count_and_first_error(runs):
    message = str(runs.over)
    assert "\n" not in message
    assert message.startswith(f"models:/{NAME}/1: 3 of 40 rows of 2026-03-01 could not be scored")
    assert "(first error: ValueError: cannot score tenure 103)" in message
    assert message.endswith(
        "(scoring.max_error_rows=2, scoring.max_error_share=0.5); nothing was written "
        "(the scores write was undone)"
    )


def test_over_budget_leaves_every_table_as_it_was(spark, runs):
    after, before = runs.after_over, runs.before_over
    assert after["scores_current"] == before["scores_current"]
    assert after["score_errors"] == before["score_errors"]
    # The scores write was undone: one RESTORE commit, back to the same rows.
    scores = runs.tables["scores"]
    assert after["scores"] == before["scores"] + 2
    last = io.delta_table(spark, scores).history().where(f"version = {after['scores']}").first()
    assert last is not None and last.operation == "RESTORE"
    assert runs.scores_after_over == runs.scores_before_over


def test_a_rerun_without_bad_rows_empties_the_dates_score_errors_slice(runs):
    assert (runs.clean.rows_in, runs.clean.rows_out, runs.clean.rows_quarantined) == (37, 37, 0)
    assert runs.clean.warnings == ()
    assert "score_errors" in runs.clean.table_versions
    assert runs.errors_after_clean == 0
