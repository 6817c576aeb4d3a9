"""Retraining from monitoring: the demo's drifted day trains a challenger, the champion stays.

One small demo lakehouse (module fixture): 250 customers, two daily drops, the second
drifted; the pipeline runs both dates with `retrain.on: [drift]` (the demo's own
usecase.yaml setting, merged as the CLI merges it). The first date trains the champion on
D - 30; the drifted day retrains a challenger on its D - 30. The alerts of a third date
(inside the cooldown, or with a failing trainer) are handed to the retrain directly.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from scoring import cli
from scoring.cli.preflight import check_config
from scoring.core import io
from scoring.core.config import load_config
from scoring.core.errors import ConfigError, DataError, UseCaseError
from scoring.model.registry import mlflow_target, resolve_model
from scoring.monitor.baseline import BASELINE_TAG, download_baseline
from scoring.runs import retrain as retraining
from scoring.runs.pipeline import PipelineOptions, retrain_on_alerts, run_pipeline
from scoring.runs.result import StepResult
from scoring.runs.steps import StepRun
from scoring.runs.summary import retrain_failed, verdict
from scoring.usecase import import_module, load_usecase
from tests.conftest import CHURN_DIR, churn_tables, make_config
from tests.usecase.factory import usecase_doc, write_usecase

CHURN = load_usecase(CHURN_DIR)
DAY = date(2026, 3, 1)
DRIFTED_DAY = date(2026, 3, 2)
NEXT_DAY = date(2026, 3, 3)  # an alert inside the cooldown
MODEL = "scoring_churn"


def demo_config(root: Path, *overrides: str):
    """The local configuration with the demo's usecase.yaml sections merged as the CLI does."""
    layers = [(str(CHURN.path), {"retrain": dict(CHURN.retrain)})]
    base = [f"storage.root={root}", "spark.shuffle_partitions=2", *overrides]
    return load_config("local", base, layers=layers)


@pytest.fixture(scope="module")
def lakehouse(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("retrain") / "lakehouse"
    config = demo_config(root)
    import_module(CHURN, "generator").generate_demo_data(
        Path(config.raw_root("churn")),
        customers=250,
        days=2,
        seed=5,
        start=DAY,
        history_days=60,
        drift_day=1,
    )
    results = {
        DAY: run_pipeline(spark, config, CHURN, DAY, "R1", PipelineOptions(train_if_missing=True)),
        DRIFTED_DAY: run_pipeline(
            spark, config, CHURN, DRIFTED_DAY, "R2", PipelineOptions(report=True)
        ),
    }
    return config, results


def retrain_rows(spark, config, day):
    runs = io.read_table(spark, churn_tables(config)["runs"])
    return runs.where((F.col("step") == "retrain") & (F.col("run_date") == day)).collect()


@pytest.mark.slow
def test_the_drifted_day_registers_a_challenger_with_its_baseline_and_keeps_the_champion(
    lakehouse,
):
    config, results = lakehouse
    target = mlflow_target(config, "churn")
    champion = resolve_model(target, f"models:/{MODEL}@champion")
    challenger = resolve_model(target, f"models:/{MODEL}@challenger")
    assert champion.version == "1" and champion.tags["run_date"] == "2026-01-30"
    assert challenger.version == "2"
    # trained on D - 30, the newest date whose churn is known on the drifted day
    assert challenger.tags["run_date"] == "2026-01-31"
    assert challenger.tags[retraining.RETRAINED_ON] == "2026-03-02"
    assert challenger.tags[retraining.RETRAIN_PIPELINE] == "R2"
    assert "drift alert(s) on 2026-03-02" in challenger.tags[retraining.RETRAIN_REASON]
    assert "segment" in challenger.tags[retraining.RETRAIN_REASON]
    assert BASELINE_TAG in challenger.tags
    baseline = Path(download_baseline(config.tracking_uri, config.registry_uri, MODEL, "2"))
    assert baseline.is_file()
    (retrained,) = [r for r in results[DRIFTED_DAY] if r.step == "retrain"]
    assert retrained.details["retrained_version"] == "2"
    assert retrained.details["champion_version"] == "1"
    assert set(retrained.details["holdout"]) == {"roc_auc", "log_loss", "brier"}
    assert set(retrained.details["champion_holdout"]) == {"roc_auc", "log_loss", "brier"}


@pytest.mark.slow
def test_the_retrain_builds_its_training_date_and_scores_stay_with_the_champion(spark, lakehouse):
    config, results = lakehouse
    steps = [(r.step, r.run_date) for r in results[DRIFTED_DAY]]
    assert steps[-3:] == [
        ("features", date(2026, 1, 31)),  # missing: built before training
        ("retrain", DRIFTED_DAY),
        ("report", DRIFTED_DAY),
    ]
    scores = io.read_table(spark, churn_tables(config)["scores"])
    versions = {
        (r["as_of_date"], r["model_version"])
        for r in scores.select("as_of_date", "model_version").distinct().collect()
    }
    assert versions == {(DAY, "1"), (DRIFTED_DAY, "1")}


@pytest.mark.slow
def test_runs_and_the_report_say_what_was_retrained_and_why(spark, lakehouse):
    config, _ = lakehouse
    (row,) = retrain_rows(spark, config, DRIFTED_DAY)
    assert row["status"] == "succeeded" and row["pipeline_run_id"] == "R2"
    (note,) = row["warnings"]
    assert note.startswith("retrained challenger v2 on the features of 2026-01-31 because "), note
    assert "drift alert(s) on 2026-03-02 (" in note and "segment" in note
    assert "roc_auc " in note and "(serving v1: " in note
    assert note.endswith("not promoted: the serving alias champion stays on v1")
    page = Path(config.reports_dir("churn"), "report_2026-03-02.html").read_text()
    verdict_html = page.split('<p id="verdict"', 1)[1].split("</p>", 1)[0]
    assert "Retrained challenger v2 on the features of 2026-01-31" in verdict_html
    assert (
        "retrained challenger v2 on the features of 2026-01-31 because"
        in page.split('<h2 id="runs">', 1)[1]
    )


@pytest.mark.slow
def test_a_second_alert_inside_the_cooldown_does_not_retrain(spark, lakehouse):
    config, _ = lakehouse
    alert = StepResult(
        "monitor", "m", NEXT_DAY, details={"alerts": 2, "alerted_features": ["segment"]}
    )
    results = retrain_on_alerts(StepRun(spark, config, CHURN, NEXT_DAY, "R3"), [alert])
    assert [r.step for r in results] == ["retrain"]  # nothing built, nothing trained
    (row,) = retrain_rows(spark, config, NEXT_DAY)
    assert row["status"] == "succeeded"
    assert row["warnings"] == [
        "not retrained despite 2 drift alert(s) on 2026-03-03 (segment): challenger v2 was "
        "retrained on 2026-03-02, 1 day(s) before 2026-03-03 (retrain.cooldown_days = 7)"
    ]
    target = mlflow_target(config, "churn")
    assert resolve_model(target, f"models:/{MODEL}@challenger").version == "2"
    assert "not retrained on 2026-03-03" in verdict(results)


@pytest.mark.slow
def test_a_failed_retrain_is_recorded_and_leaves_the_dates_tables_alone(
    spark, lakehouse, monkeypatch
):
    config, _ = lakehouse
    config = demo_config(Path(config.storage.root), "retrain.cooldown_days=0")
    tables = churn_tables(config)
    before = io.current_version(spark, tables["scores"])

    def broken(*args, **kwargs):
        raise DataError("features: no label")

    monkeypatch.setattr(retraining, "run_train", broken)
    alert = StepResult("monitor", "m", NEXT_DAY, details={"alerts": 1, "alerted_features": ["x"]})
    run = StepRun(spark, config, CHURN, NEXT_DAY, "R4")
    *built, failed_result = retrain_on_alerts(run, [alert])
    # its training date (D - 30) had no features yet: built (and kept) before training failed
    assert [(r.step, r.run_date) for r in built] == [("features", date(2026, 2, 1))]
    assert failed_result.step == "retrain"
    assert failed_result.details["failed"] == "DataError: features: no label"
    assert retrain_failed([*built, failed_result]) == [failed_result]
    failed = [r for r in retrain_rows(spark, config, NEXT_DAY) if r["pipeline_run_id"] == "R4"]
    assert [(r["status"], r["error"]) for r in failed] == [
        ("failed", "DataError: features: no label")
    ]
    assert io.current_version(spark, tables["scores"]) == before
    target = mlflow_target(config, "churn")
    assert resolve_model(target, f"models:/{MODEL}@challenger").version == "2"


def monitor(alerts: int, features=()) -> StepResult:
    details = {"alerts": alerts, "alerted_features": list(features), "dataset_drift": False}
    return StepResult("monitor", "m", DRIFTED_DAY, details=details)


def quality(alerts: int) -> StepResult:
    details = {"alerts": alerts, "alerted_metrics": ["realized roc_auc 2026-03-01"]}
    return StepResult("quality", "q", DRIFTED_DAY, details=details)


def test_only_alerts_of_an_enabled_kind_trigger_a_retrain():
    steps = [monitor(2, ["segment"]), quality(1)]
    assert retraining.fired(steps, ()) == []
    assert [t.describe() for t in retraining.fired(steps, ("drift",))] == [
        "2 drift alert(s) on 2026-03-02 (segment)"
    ]
    assert [t.kind for t in retraining.fired(steps, ("quality", "drift"))] == ["drift", "quality"]
    assert retraining.fired([monitor(0), quality(0)], ("drift", "quality")) == []


def test_no_alert_or_retrain_off_adds_no_step_and_touches_nothing(spark, tmp_path):
    # Nothing fired: no retrain step, not even a runs table (nothing is read or written).
    off = make_config(tmp_path / "off")  # conf/base.yaml: retrain.on is []
    assert off.retrain.on == ()
    on = demo_config(tmp_path / "on")
    assert retrain_on_alerts(StepRun(spark, on, CHURN, DAY), [monitor(0), quality(3)]) == []
    assert not io.table_exists(spark, churn_tables(on)["runs"])


def test_a_bad_retrain_key_is_one_line_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"^--set: retrain\.on: expected distinct values of "):
        make_config(tmp_path, "retrain.on=[drfit]")
    with pytest.raises(ConfigError, match=r"^--set: retrain\.cooldown_days: expected a value >= 0"):
        make_config(tmp_path, "retrain.cooldown_days=-1")
    with pytest.raises(ConfigError, match=r"retrain\.alias: 'latest' is not an alias MLflow"):
        make_config(tmp_path, "retrain.alias=latest")
    serving = make_config(tmp_path, "retrain.alias=champion")
    with pytest.raises(ConfigError) as error:
        check_config(serving, CHURN)
    assert str(error.value) == (
        f"{CHURN.path}: retrain.alias: 'champion' is the serving alias (model.alias); a "
        "retrained version must go to another alias (e.g. challenger) and be promoted by "
        "`scoring promote`"
    )


def test_the_serving_alias_as_retrain_alias_stops_the_cli_before_anything_with_exit_2(
    tmp_path, capsys
):
    doc = usecase_doc(retrain={"on": ["drift"], "alias": "champion"})
    folder = write_usecase(tmp_path / "uc", doc)
    lake = tmp_path / "lake"
    code = cli.run(["ingest", "--usecase", str(folder), "--run-date", "2026-03-01",
                    "--set", f"storage.root={lake}"])  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"scoring: config error: {folder}/usecase.yaml: retrain.alias: 'champion' is the serving "
        "alias (model.alias); a retrained version must go to another alias (e.g. challenger) "
        "and be promoted by `scoring promote`"
    ]
    assert not lake.exists()


def test_usecase_yaml_takes_a_bare_on_key_and_refuses_unknown_ones(tmp_path):
    folder = write_usecase(tmp_path / "ok", usecase_doc())
    text = (folder / "usecase.yaml").read_text() + "retrain:\n  on: [quality]\n  cooldown_days: 3\n"
    (folder / "usecase.yaml").write_text(text)
    assert load_usecase(folder).retrain == {"on": ["quality"], "cooldown_days": 3}
    bad = write_usecase(tmp_path / "bad", usecase_doc(retrain={"on": ["drift"], "cooldown": 3}))
    with pytest.raises(UseCaseError, match=r"usecase\.yaml: retrain\.cooldown: unknown key"):
        load_usecase(bad)
    assert CHURN.retrain == {"on": ["drift"]}
    assert demo_config(tmp_path / "lake").retrain.on == ("drift",)


def test_a_retrain_row_is_read_back_by_the_runs_summary_verdict():
    retrained = StepResult(
        "retrain",
        "r",
        DRIFTED_DAY,
        details={"retrained": True, "alias": "challenger", "retrained_version": "2"},
    )
    assert verdict([monitor(1, ["segment"]), retrained]) == (
        "verdict: ALERT: drift alert on 2026-03-02 (segment); retrained challenger v2 on "
        "2026-03-02 (not promoted)"
    )
    assert retrain_failed([retrained]) == []
