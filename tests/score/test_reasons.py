"""Reason codes end to end: the demo pipeline's scored rows carry `reasons` (source columns,
their values, TreeSHAP contributions), an existing table gets the column, and a model that
cannot be explained fails the run before anything is written."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

import mlflow
import numpy as np
import pandas as pd
import pytest
import shap
from pyspark.sql import types as T

from scoring.core import io
from scoring.core.config import Config
from scoring.core.errors import ModelError
from scoring.model.registry import configure_mlflow, mlflow_target
from scoring.runs.result import StepResult
from scoring.score.step import ScoreRequest, run_score
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR, churn_tables, make_config
from tests.model_fixtures import RUN_DATE, feature_row, register_custom_model

pytestmark = pytest.mark.slow
CHAMPION = "models:/scoring_churn@champion"
CHURN = load_usecase(CHURN_DIR)
TEXT_INPUTS = ("segment", "country")


def scoring_config(trained: Config, root) -> Config:
    return make_config(
        root,
        f"tables.features={churn_tables(trained)['features'].path}",
        f"mlflow.tracking_uri={trained.tracking_uri}",
        f"mlflow.artifact_root={trained.artifact_root}",
    )


def score(
    spark, config: Config, run_id: str, top_k: int, uri: str = CHAMPION, **spec
) -> StepResult:
    model = replace(CHURN.model, **spec)
    request = ScoreRequest(uri, model, "scoring_churn", CHURN.entity, reasons_top_k=top_k)
    target = mlflow_target(config, "churn")
    return run_score(spark, churn_tables(config), target, request, RUN_DATE, run_id, 16)


class Reasoned(NamedTuple):
    config: Config
    columns_before: list[str]
    result: StepResult


@pytest.fixture(scope="module")
def reasoned(spark, trained, tmp_path_factory):
    """RUN_DATE scored without reasons (the tables made without the column), then with 3."""
    config = scoring_config(trained, tmp_path_factory.mktemp("reasons") / "lake")
    score(spark, config, "score-plain", 0)
    before = io.read_table(spark, churn_tables(config)["scores"]).columns
    result = score(spark, config, "score-reasons", 3)
    return Reasoned(config, before, result)


def test_an_existing_table_gets_the_reasons_column_in_both_scored_tables(spark, reasoned):
    assert "reasons" not in reasoned.columns_before
    for table in ("scores", "scores_current"):
        schema = io.read_table(spark, churn_tables(reasoned.config)[table]).schema
        assert schema["reasons"].dataType == T.ArrayType(
            T.StructType(
                [
                    T.StructField("feature", T.StringType()),
                    T.StructField("value", T.StringType()),
                    T.StructField("contribution", T.DoubleType()),
                ]
            )
        )


def demo_inputs(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The demo model's inputs as it saw them in training: texts with NaN, numbers as doubles."""
    inputs = frame[names].copy()
    for name in names:
        if name in TEXT_INPUTS:
            inputs[name] = inputs[name].astype(object).where(inputs[name].notna(), np.nan)
        else:
            inputs[name] = inputs[name].astype("float64")
    return inputs


def shap_by_source(model: Any, inputs: pd.DataFrame) -> pd.DataFrame:
    """TreeSHAP of the demo's boosted trees on its prepared matrix, one-hot columns summed
    by hand under their text input (`categorical__segment_smb` belongs to `segment`)."""
    matrix = model[:-1].transform(inputs)
    values = shap.TreeExplainer(model[-1]).shap_values(np.asarray(matrix, dtype="float64"))
    names = [str(n).split("__", 1)[1] for n in model[:-1].get_feature_names_out()]
    sources = [next((t for t in TEXT_INPUTS if n.startswith(t + "_")), n) for n in names]
    return pd.DataFrame(values, columns=sources).T.groupby(level=0).sum().T


def test_each_row_carries_its_top_3_inputs_with_values_and_tree_shap_contributions(spark, reasoned):
    configure_mlflow(mlflow_target(reasoned.config, "churn"))
    model = mlflow.sklearn.load_model("models:/scoring_churn/1")
    rows = pd.DataFrame([feature_row(c, RUN_DATE) for c in range(40)])
    names = list(model.feature_names_in_)
    expected = shap_by_source(model, demo_inputs(rows, names))
    scored = io.read_table(spark, churn_tables(reasoned.config)["scores"])
    by_customer = {
        r.customer_id: r.reasons for r in scored.select("customer_id", "reasons").collect()
    }
    assert len(by_customer) == 40
    for position, row in rows.iterrows():
        reasons = by_customer[row["customer_id"]]
        assert 1 <= len(reasons) <= 3
        truth = expected.iloc[position]
        top = truth.abs().sort_values(ascending=False, kind="stable").index[: len(reasons)]
        assert [r.feature for r in reasons] == list(top)
        for reason in reasons:
            assert reason.contribution == pytest.approx(truth[reason.feature], abs=1e-9)
            value = row[reason.feature]
            assert reason.value == (None if pd.isna(value) else _as_text(value))


def test_with_reasons_on_compiled_trees_score_and_the_native_trees_explain(spark, reasoned):
    # scoring.compiled is auto by default: the scores come from the compiled library, the
    # reasons (checked against TreeSHAP above) from the native model loaded next to it.
    assert reasoned.result.details["compiled"]["champion"].startswith("compiled ")
    configure_mlflow(mlflow_target(reasoned.config, "churn"))
    model = mlflow.sklearn.load_model("models:/scoring_churn/1")
    rows = pd.DataFrame([feature_row(c, RUN_DATE) for c in range(40)])
    inputs = demo_inputs(rows, list(model.feature_names_in_))
    expected = dict(zip(rows["customer_id"], model.predict_proba(inputs)[:, 1], strict=True))
    scored = io.read_table(spark, churn_tables(reasoned.config)["scores"])
    actual = {r.customer_id: r.score for r in scored.select("customer_id", "score").collect()}
    assert actual == pytest.approx(expected, rel=0, abs=1e-12)


def _as_text(value: Any) -> str:
    """How Spark / Arrow write a features value as text: 35.5, 101, smb."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_scores_current_carries_the_same_reasons_as_the_slice(spark, reasoned):
    tables = churn_tables(reasoned.config)
    current = io.read_table(spark, tables["scores_current"]).select("customer_id", "reasons")
    scores = io.read_table(spark, tables["scores"]).select("customer_id", "reasons")
    assert sorted(current.collect()) == sorted(scores.collect())


def test_a_model_that_cannot_be_explained_fails_before_anything_is_written(
    spark, trained, tmp_path
):
    config = scoring_config(trained, tmp_path / "lake")
    version = register_custom_model(mlflow_target(config, "churn"), "custom_reasons")
    with pytest.raises(
        ModelError,
        match=rf"^models:/custom_reasons/{version}: .*custom python_function model.*"
        r"scoring\.reasons\.top_k",
    ):
        score(
            spark,
            config,
            "score-x",
            3,
            f"models:/custom_reasons/{version}",
            allow_pickled_code=True,
        )
    assert not io.table_exists(spark, churn_tables(config)["scores"])


def test_turning_reasons_off_again_rescores_with_null_reasons(spark, trained, tmp_path):
    config = scoring_config(trained, tmp_path / "lake")
    score(spark, config, "score-on", 2)
    score(spark, config, "score-off", 0)
    for table in ("scores", "scores_current"):
        rows = io.read_table(spark, churn_tables(config)[table]).select("run_id", "reasons")
        assert {(r.run_id, r.reasons) for r in rows.collect()} == {("score-off", None)}


def register_linear(
    config: Config, name: str, with_baseline: bool
) -> tuple[str, Any, pd.DataFrame]:
    """A logistic regression on two demo inputs, registered (skops) with or without a
    baseline of six rows; returns its version, the model and the baseline's inputs."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from scoring.model.registry import ensure_experiment
    from scoring.monitor.baseline import BASELINE_TAG, log_baseline, tag_version

    target = mlflow_target(config, "churn")
    frame = pd.DataFrame(
        {"tenure_days": [100.0, 110, 120, 130, 140, 150], "txn_count_30d": [0.0, 1, 2, 3, 4, 5]}
    )
    model = LogisticRegression().fit(frame, [1, 1, 0, 1, 0, 0])
    configure_mlflow(target)
    with mlflow.start_run(experiment_id=ensure_experiment(target)):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(frame, model.predict_proba(frame)),
            serialization_format="skops",
            registered_model_name=name,
            pip_requirements=["scikit-learn"],
        )
        uri = log_baseline(frame) if with_baseline else None
    version = str(info.registered_model_version)
    if uri is not None:
        tag_version(target, name, version, {BASELINE_TAG: uri})
    return version, model, frame


def test_a_linear_models_reasons_are_its_terms_from_the_baseline_means(spark, trained, tmp_path):
    config = scoring_config(trained, tmp_path / "lake")
    version, model, baseline = register_linear(config, "linear_reasons", with_baseline=True)
    score(spark, config, "score-lin", 2, f"models:/linear_reasons/{version}")
    rows = io.read_table(spark, churn_tables(config)["scores"]).select("customer_id", "reasons")
    got = {r.customer_id: r.reasons for r in rows.collect()}
    means = baseline.mean()
    for customer in (1, 2, 3, 4, 5):
        row = feature_row(customer, RUN_DATE)
        terms = {n: model.coef_[0][i] * (row[n] - means[n]) for i, n in enumerate(baseline)}
        expected = sorted(terms, key=lambda n: -abs(terms[n]))
        reasons = got[row["customer_id"]]
        assert [r.feature for r in reasons] == expected
        for reason in reasons:
            assert reason.contribution == pytest.approx(terms[reason.feature], abs=1e-9)
            assert reason.value == str(row[reason.feature])


def test_a_linear_model_without_a_baseline_is_refused_naming_scoring_baseline(
    spark, trained, tmp_path
):
    config = scoring_config(trained, tmp_path / "lake")
    version, _, _ = register_linear(config, "linear_no_baseline", with_baseline=False)
    with pytest.raises(
        ModelError, match=r"no 'baseline_uri' tag; record one with `scoring baseline.*top_k = 2"
    ):
        score(spark, config, "score-nb", 2, f"models:/linear_no_baseline/{version}")
    assert not io.table_exists(spark, churn_tables(config)["scores"])
