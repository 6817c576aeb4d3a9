"""Promotion on hand-built comparison tables and a sqlite registry: refused, then allowed,
then forced; bad requests named in one line."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import Row

from scoring.core import io
from scoring.core.contracts import load_contract, spark_schema
from scoring.core.errors import ModelNotFoundError, PromotionError
from scoring.runs import steps
from scoring.runs.steps import StepRun
from scoring.usecase import load_usecase
from tests.conftest import make_config
from tests.model_fixtures import register_custom_model
from tests.usecase.factory import write_usecase

pytestmark = pytest.mark.slow
DAY = date(2026, 3, 20)
AT = datetime(2026, 3, 20, 6, 0)
NAME = "tiny_model"


def _realized(day: date, champion: str, challenger: str, values: tuple[float, float]) -> Row:
    return Row(usecase="tiny", date=day, model_name=NAME, champion_version=champion,
               challenger_version=challenger, kind="realized", metric="roc_auc",
               value=values[1] - values[0], champion_value=values[0], challenger_value=values[1],
               higher_is_better=True, rows=500, run_id="compare-x", computed_at=AT)  # fmt: skip


def _comparison(spark, run: StepRun, rows: list[Row]) -> None:
    frame = spark.createDataFrame(rows, spark_schema(load_contract("model_comparison")))
    frame.write.format("delta").mode("overwrite").save(str(run.tables["model_comparison"].path))


def _drift_alert(spark, run: StepRun, day: date) -> None:
    row = Row(usecase="tiny", date=day, model_name=NAME, model_version="1", feature="visits",
              metric="psi", value=0.6, threshold_warn=0.1, threshold_alert=0.25, status="alert",
              comparison="baseline", reference_date=None, run_id="monitor-x")  # fmt: skip
    frame = spark.createDataFrame([row], spark_schema(load_contract("drift_metrics")))
    frame.write.format("delta").save(str(run.tables["drift_metrics"].path))


def _attempt(run: StepRun, label: str, version: str, force: bool = False):
    request = steps.promote_request(
        run, "champion", f"models:/{NAME}/{version}", "risk-officer", force, "quarterly review"
    )
    try:
        return steps.promote(run, request, f"promote-{label}")
    except (PromotionError, ModelNotFoundError) as exc:
        return exc


@pytest.fixture(scope="module")
def story(spark, tmp_path_factory):
    """Versions 1 (champion), 2 and 3; 2 refused, then allowed; 3 forced; bad requests."""
    root = tmp_path_factory.mktemp("promote")
    usecase = load_usecase(write_usecase(root / "usecase"))
    config = make_config(root / "lake", "promotion.min_dates=3")
    run = StepRun(spark, config, usecase, DAY)
    for _ in range(3):
        register_custom_model(run.target, NAME)
    client = MlflowClient(config.tracking_uri, config.registry_uri)
    client.set_registered_model_alias(NAME, "champion", "1")
    out = {"run": run, "client": client}
    # the pipeline's compare: champion (the alias) vs the version shadow-scored next to it
    scored = [(f"s{i}", DAY, p, int(p >= 0.5), NAME, v, AT)
              for v, ps in (("1", (0.2, 0.4, 0.7)), ("2", (0.3, 0.6, 0.8)))
              for i, p in enumerate(ps)]  # fmt: skip
    schema = "shop_id string, as_of_date date, score double, label int, model_name string, "
    schema += "model_version string, scored_at timestamp"
    spark.createDataFrame(scored, schema).write.format("delta").save(run.tables["scores"].path)
    out["compared"] = steps.compare(run, run_id="compare-1")
    # two dates, challenger 0.02 worse, a drift alert on one of them
    _comparison(spark, run, [_realized(DAY - timedelta(days=d), "1", "2", (0.80, 0.78))
                             for d in (1, 2)])  # fmt: skip
    _drift_alert(spark, run, DAY - timedelta(days=1))
    out["refused"] = _attempt(run, "refused", "2")
    out["after_refusal"] = str(client.get_model_version_by_alias(NAME, "champion").version)
    out["tags_after_refusal"] = dict(client.get_model_version(NAME, "2").tags)
    # three other dates, the challenger 0.0233 better on average, no drift alert on them
    later = [_realized(DAY - timedelta(days=d), "1", "2", (0.80, 0.80 + d / 100)) for d in (3, 4)]
    _comparison(spark, run, [*later, _realized(DAY, "1", "2", (0.80, 0.80))])
    out["allowed"] = _attempt(run, "allowed", "2")
    out["tags_2"] = dict(client.get_model_version(NAME, "2").tags)
    out["tags_1"] = dict(client.get_model_version(NAME, "1").tags)
    out["aliases_after_allowed"] = {
        a: str(client.get_model_version_by_alias(NAME, a).version)
        for a in ("champion", "previous_champion")
    }
    # version 3 was never compared with 2: only --force moves it
    out["unforced_3"] = _attempt(run, "unforced", "3")
    out["forced"] = _attempt(run, "forced", "3", force=True)
    out["tags_3"] = dict(client.get_model_version(NAME, "3").tags)
    out["history"] = json.loads(client.get_registered_model(NAME).tags["promotion.history"])
    out["same_alias"] = _attempt(run, "same", "3")
    out["unknown"] = _attempt(run, "unknown", "99")
    out["runs"] = {
        r["run_id"]: r.asDict()
        for r in io.read_table(spark, run.tables["runs"]).where("step != 'x'").collect()
    }
    return out


def test_compare_takes_the_alias_as_champion_and_the_other_version_of_the_date(story):
    details = story["compared"].details
    assert (details["champion_version"], details["challenger_versions"]) == ("1", ["2"])
    # s2 crosses 0.5 (0.4 -> 0.6): one flip of three rows; the order is the same on both sides
    pair = details["pairs"]["2"]
    assert (pair["rows_both"], pair["flip_share"], pair["spearman"]) == (3, pytest.approx(1 / 3),
                                                                          pytest.approx(1.0))  # fmt: skip
    recorded = story["runs"]["compare-1"]
    assert recorded["status"] == "succeeded"
    assert json.loads(recorded["details"])["pairs"]["2"]["rows_both"] == 3


def test_a_refusal_names_each_failed_rule_with_its_evidence_and_moves_nothing(story):
    refused = story["refused"]
    assert isinstance(refused, PromotionError)
    text = str(refused)
    assert "\n" not in text and text.endswith("nothing was moved")
    assert "min_dates: 2 date(s) with realized roc_auc for both in 2026-01-20..2026-03-20" in text
    assert "3 needed" in text
    assert (
        "max_drop: challenger roc_auc (higher is better) 0.02 worse than the champion's on "
        "average over 2 date(s) (means 0.78 vs 0.8); at most 0.005 worse allowed" in text
    )
    assert "block_on_drift_alert: drift alerts on the compared dates: 2026-03-19 visits psi" in text
    assert story["after_refusal"] == "1"
    assert not [k for k in story["tags_after_refusal"] if k.startswith("promotion.")]
    row = story["runs"]["promote-refused"]
    assert (row["status"], row["error"]) == ("failed", f"PromotionError: {refused}")


def test_an_allowed_promotion_moves_the_alias_and_keeps_the_old_champion_reachable(story):
    assert story["allowed"].details["decision"] == "promoted"
    assert story["aliases_after_allowed"] == {"champion": "2", "previous_champion": "1"}
    tags = story["tags_2"]
    assert (tags["promotion.decision"], tags["promotion.forced"]) == ("promoted", "false")
    assert (tags["promotion.requested_by"], tags["promotion.reason"]) == (
        "risk-officer", "quarterly review")  # fmt: skip
    assert (tags["promotion.alias"], tags["promotion.previous_version"]) == ("champion", "1")
    evidence = json.loads(tags["promotion.evidence"])
    assert evidence["dates"] == ["2026-03-16", "2026-03-17", "2026-03-20"]
    assert evidence["challenger_values"] == [0.84, 0.83, 0.8]
    assert json.loads(tags["promotion.rules"])["min_dates"] == 3
    assert story["tags_1"]["promotion.replaced_by"] == "2"


def test_promotion_runs_are_recorded_with_their_evidence(story):
    runs = story["runs"]
    details = json.loads(runs["promote-allowed"]["details"])
    assert (details["decision"], details["previous_version"]) == ("promoted", "1")
    assert [c["rule"] for c in details["evidence"]["checks"]] == [
        "min_dates", "max_drop", "block_on_drift_alert"]  # fmt: skip
    refused = runs["promote-unforced"]
    assert refused["status"] == "failed" and "comparison:" in refused["error"]


def test_a_forced_promotion_is_recorded_as_forced(story):
    assert isinstance(story["unforced_3"], PromotionError)
    assert "comparison: " in str(story["unforced_3"]) and "no row comparing version 3" in str(
        story["unforced_3"]
    )
    forced = story["forced"].details
    assert (forced["decision"], forced["forced"], forced["previous_version"]) == (
        "forced",
        True,
        "2",
    )
    tags = story["tags_3"]
    assert (tags["promotion.decision"], tags["promotion.forced"]) == ("forced", "true")
    assert [(h["version"], h["previous_version"], h["decision"]) for h in story["history"]] == [
        ("2", "1", "promoted"),
        ("3", "2", "forced"),
    ]


def test_bad_requests_are_one_line_errors(story):
    assert isinstance(story["same_alias"], PromotionError)
    assert str(story["same_alias"]) == (
        "alias 'champion' of tiny_model already points at version 3: nothing to promote"
    )
    assert isinstance(story["unknown"], ModelNotFoundError)
    assert "version 99" in str(story["unknown"]) and "\n" not in str(story["unknown"])


def test_the_command_refuses_an_unknown_version_in_one_line_before_any_session(story, capsys):
    from scoring import cli

    run = story["run"]
    code = cli.run(["promote", "--usecase", str(run.usecase.folder), "--set",
                    f"storage.root={run.config.storage.root}", "--to", "champion",
                    "--model", f"models:/{NAME}/99"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].startswith(
        "scoring promote: ModelNotFoundError: model URI 'models:/tiny_model/99'"
    )
