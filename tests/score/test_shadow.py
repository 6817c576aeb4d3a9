"""Champion and challenger in one pass, through the real UDF, Delta tables and the CLI.

One module fixture copies the trained features and registry (so the aliases set here touch
no other test), registers a challenger (a logistic regression on two inputs, skops) as
version 2 of the demo's model and a faulty pyfunc, then scores RUN_DATE: once through
`scoring score --models champion,challenger,beta` (beta has no version), once per model
in separate runs into other tables, once more in one pass (the rerun), and once with the
faulty model as a shadow; the tests read what each left."""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import mlflow.sklearn
import pandas as pd
import pytest
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from scoring.cli.main import run
from scoring.core import io
from scoring.core.config import Config
from scoring.core.tables import Tables
from scoring.model.registry import MlflowTarget, ensure_experiment, mlflow_target
from scoring.runs.result import StepResult
from scoring.runs.steps import usecase_tables
from scoring.score import udf
from scoring.score.step import ScoreRequest, resolve_models, run_score
from scoring.score.udf import LOAD_LOG_ENV
from scoring.usecase import load_usecase
from tests.conftest import CHURN_DIR, make_config
from tests.helpers import assert_frames_equal
from tests.model_fixtures import RUN_DATE, feature_row, register_faulty_model

pytestmark = pytest.mark.slow
CHURN = load_usecase(CHURN_DIR)
NAME = "scoring_churn"
CHALLENGER_INPUTS = ["tenure_days", "txn_count_30d"]
COMPARED = ["customer_id", "as_of_date", "score", "label", "model_name", "model_version",
            "model_run_id", "feature_table_version"]  # fmt: skip


class Lake(NamedTuple):
    config: Config
    tables: Tables
    separate: Tables  # the same features scored by each model in its own run
    challenger: LogisticRegression
    cli: int  # the exit code of `scoring score --models champion,challenger,beta`
    log: list[str]
    rerun: StepResult
    rerun_deleted: int
    faulty: StepResult


def register_challenger(target: MlflowTarget) -> LogisticRegression:
    """Version 2 of the demo's model, alias challenger: fit on hand-made rows, skops."""
    inputs = pd.DataFrame(
        {"tenure_days": [100.0, 120.0, 140.0, 110.0], "txn_count_30d": [0.0, 5.0, 1.0, 3.0]}
    )
    model = LogisticRegression().fit(inputs, [1, 0, 1, 0])
    with mlflow.start_run(experiment_id=ensure_experiment(target)):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(inputs, model.predict_proba(inputs)),
            serialization_format="skops",
            registered_model_name=NAME,
            pip_requirements=["scikit-learn"],
        )
    client = MlflowClient(tracking_uri=target.tracking_uri, registry_uri=target.registry_uri)
    client.set_registered_model_alias(NAME, "challenger", str(info.registered_model_version))
    assert str(info.registered_model_version) == "2"
    return model


def copy_trained(trained: Config, root: Path) -> Config:
    """The trained features table and registry under `root` (artifacts stay where they are)."""
    config = make_config(root)
    source = usecase_tables(trained, CHURN)["features"].path
    shutil.copytree(str(source), str(usecase_tables(config, CHURN)["features"].path))
    shutil.copy(Path(trained.storage.root) / "mlflow.db", root / "mlflow.db")
    return config


def request(*uris: str, spec=CHURN.model) -> ScoreRequest:
    return ScoreRequest(uris[0], spec, NAME, CHURN.entity, shadow=tuple(uris[1:]))


@pytest.fixture(scope="module")
def lake(spark, trained, tmp_path_factory) -> Lake:
    root = tmp_path_factory.mktemp("shadow")
    config = copy_trained(trained, root / "lake")
    target = mlflow_target(config, CHURN.name)
    challenger = register_challenger(target)
    faulty = register_faulty_model(target, "faulty_shadow")
    tables = usecase_tables(config, CHURN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LOAD_LOG_ENV, str(root))
        patch.setattr(udf, "_SHIPPED", {})  # ship afresh: every worker loads and logs
        code = run(["score", "--usecase", str(CHURN_DIR), "--set", f"storage.root={root / 'lake'}",
                    "--set", "spark.shuffle_partitions=2", "--set", "scoring.batch_size=8",
                    "--run-date", RUN_DATE.isoformat(), "--models", "champion,challenger,beta"])  # fmt: skip
    log = (root / "model-loads.log").read_text().splitlines()
    separate = usecase_tables(make_config(root / "separate"), CHURN)
    separate = Tables(
        CHURN.name, {**{n: separate[n] for n in separate}, "features": tables["features"]}
    )
    for uri in (f"models:/{NAME}@champion", f"models:/{NAME}/2"):
        run_score(spark, separate, target, request(uri), RUN_DATE, f"alone-{uri[-1]}", 8)
    champion, shadow = f"models:/{NAME}@champion", f"models:/{NAME}@challenger"
    rerun = run_score(spark, tables, target, request(champion, shadow), RUN_DATE, "pass-2", 8)
    deleted = int(io.last_commit(spark, tables["scores"])["operationMetrics"]["numDeletedRows"])
    trusting = replace(CHURN.model, allow_pickled_code=True)  # the faulty model is a pyfunc
    faulty_uri = f"models:/faulty_shadow/{faulty}"
    faulty_run = run_score(
        spark, tables, target, request(champion, faulty_uri, spec=trusting), RUN_DATE, "pass-3", 8
    )
    return Lake(config, tables, separate, challenger, code, log, rerun, deleted, faulty_run)


def scores_of(spark, tables: Tables, version: str, run_id: str | None = None, at=None):
    """One model version's rows of `scores` (at table version `at`), of one run."""
    frame = io.read_table(spark, tables["scores"], at).where(f"model_version = '{version}'")
    if run_id is not None:
        frame = frame.where(f"run_id = '{run_id}'")
    return frame.select(*COMPARED)


def test_the_cli_scores_both_models_and_skips_the_alias_without_a_version(spark, lake):
    assert lake.cli == 0
    runs = io.read_table(spark, lake.tables["runs"]).where("step = 'score'").collect()
    first = next(r for r in runs if r.run_id.startswith("score-"))
    assert first.status == "succeeded"
    assert first.models == {"champion": f"models:/{NAME}/1", "challenger": f"models:/{NAME}/2"}


def test_one_pass_scores_equal_two_separate_runs_row_for_row(spark, lake):
    at = lake.rerun.table_versions["scores"]  # pass-3 replaced the champion's slice since
    for version in ("1", "2"):
        together = scores_of(spark, lake.tables, version, "pass-2", at)
        alone = scores_of(spark, lake.separate, version)
        assert together.count() == 40
        assert_frames_equal(together, alone)


def test_the_challengers_rows_are_its_own_scores(spark, lake):
    rows = pd.DataFrame([feature_row(c, RUN_DATE) for c in range(40)])
    inputs = rows[CHALLENGER_INPUTS].astype("float64")
    expected = dict(
        zip(rows["customer_id"], lake.challenger.predict_proba(inputs)[:, 1], strict=True)
    )
    actual = scores_of(spark, lake.tables, "2", "pass-2").collect()
    assert {r.customer_id: r.score for r in actual} == pytest.approx(expected, abs=1e-12)
    champion = {r.customer_id: r.score for r in scores_of(spark, lake.tables, "1").collect()}
    assert champion != {r.customer_id: r.score for r in actual}


def test_only_the_serving_models_slice_feeds_scores_current(spark, lake):
    current = io.read_table(spark, lake.tables["scores_current"]).collect()
    assert len(current) == 40
    assert {(r.model_name, r.model_version) for r in current} == {(NAME, "1")}


def test_each_model_is_loaded_once_per_worker_and_sees_every_batch(spark, lake):
    loads = Counter(
        (line.split()[1], line.split()[2]) for line in lake.log if line.startswith("load ")
    )
    assert set(loads.values()) == {1}
    assert {model for _, model in loads} == {f"{NAME}/1", f"{NAME}/2"}
    rows: Counter[str] = Counter()
    for line in lake.log:
        if line.startswith("batch "):
            rows[line.split()[3]] += int(line.split()[2])
    assert rows == {f"{NAME}/1": 40, f"{NAME}/2": 40}


def test_the_result_keeps_the_serving_model_and_names_each_shadow(lake):
    details = lake.rerun.details
    assert (details["model_uri"], details["model_version"]) == (f"models:/{NAME}/1", "1")
    assert details["shadow_versions"] == {"challenger": "2"}
    assert (lake.rerun.rows_in, lake.rerun.rows_out, lake.rerun.rows_quarantined) == (40, 40, 0)


def test_a_rerun_replaces_both_slices_in_one_commit(spark, lake):
    assert lake.rerun_deleted == 80  # the CLI run's two slices
    version = lake.rerun.table_versions["scores"]
    frame = io.read_table(spark, lake.tables["scores"], version)
    assert frame.count() == 80
    assert {r.run_id for r in frame.select("run_id").distinct().collect()} == {"pass-2"}
    history = io.delta_table(spark, lake.tables["scores"]).history()
    commit = history.where(f"version = {version}").first()
    assert commit is not None
    meta = io.user_metadata(commit.userMetadata)
    assert meta["model_version"] == "1"
    assert [m["model_pinned_uri"] for m in meta["models"]] == [
        f"models:/{NAME}/1",
        f"models:/{NAME}/2",
    ]


def test_a_shadow_over_budget_is_dropped_and_the_champions_scores_are_written(spark, lake):
    result = lake.faulty
    assert result.details["shadow_versions"] == {}
    assert result.details["shadow_dropped"] == {"models:/faulty_shadow/1": "1"}
    (warning,) = result.warnings
    assert warning.startswith("shadow models:/faulty_shadow/1 (models:/faulty_shadow/1): 3 of 40")
    assert warning.endswith("its slice of 2026-03-01 was dropped from scores, the serving "
                            "model's scores were written")  # fmt: skip
    scores = io.read_table(spark, lake.tables["scores"])
    by_model = {
        (r.model_name, r.model_version, r.run_id): r["count"]
        for r in scores.groupBy("model_name", "model_version", "run_id").count().collect()
    }
    assert by_model == {(NAME, "1", "pass-3"): 40, (NAME, "2", "pass-2"): 40}
    assert not io.table_exists(spark, lake.tables["score_errors"])


def test_a_shadow_alias_at_the_serving_version_or_without_one_is_skipped(lake, caplog):
    MlflowClient(tracking_uri=lake.config.tracking_uri).set_registered_model_alias(
        NAME, "same", "1"
    )
    target = mlflow_target(lake.config, CHURN.name)
    uris = [f"models:/{NAME}@{a}" for a in ("champion", "same", "beta", "challenger")]
    with caplog.at_level("INFO", logger="scoring.score.step"):
        models = resolve_models(target, request(*uris))
    assert [m.version for m in models] == ["1", "2"]
    messages = [r.getMessage() for r in caplog.records if r.name == "scoring.score.step"]
    assert any(m.startswith(f"shadow models:/{NAME}@same skipped: it is ") for m in messages)
    assert any(m.startswith(f"shadow models:/{NAME}@beta skipped: no version") for m in messages)


def test_a_replay_of_a_run_with_a_shadow_replays_its_serving_model(spark, lake):
    from scoring.runs.steps import score_request
    from scoring.score.replay import Selector, run_replay

    runs = io.read_table(spark, lake.tables["runs"]).where("step = 'score'").collect()
    (cli_run,) = [r.run_id for r in runs]
    result = run_replay(
        spark,
        lake.tables,
        mlflow_target(lake.config, CHURN.name),
        score_request(lake.config, CHURN, None),
        Selector(run_id=cli_run),
        8,
        "replay-1",
    )
    assert result.recorded.pinned_uri == f"models:/{NAME}/1"
    assert result.comparison.same and result.comparison.identical == 40
