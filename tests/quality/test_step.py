"""The quality step on hand-made tables: realized, estimated, thresholds, quarantine, reruns."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from scoring.core import io
from scoring.core.config import QualitySettings
from scoring.core.errors import DataError, UseCaseError
from scoring.core.tables import Tables, resolve_tables
from scoring.quality.step import QualityRequest, run_quality
from scoring.runs import steps
from scoring.runs.steps import StepRun
from scoring.usecase import load_usecase
from scoring.usecase.spec import LabelsSpec
from tests.conftest import make_config
from tests.usecase.factory import usecase_doc, write_usecase

DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 2)
AT = datetime(2026, 3, 2, 6, 0)
LABELS = LabelsSpec("outcomes", "as_of_date", "churned")
BINARY = QualityRequest(
    usecase="tiny",
    model_name="m",
    entity=("shop_id",),
    task="binary",
    labels=LABELS,
    labels_columns=("shop_id", "as_of_date", "churned"),
)
SCORES = {
    DAY1: {"s1": 0.9, "s2": 0.8, "s3": 0.3, "s4": 0.1},
    DAY2: {"s1": 0.7, "s2": 0.2, "s3": 0.6, "s4": 0.4},
}


def _tables(spark: SparkSession, root: Path, sources: list[str]) -> tuple[Tables, QualitySettings]:
    config = make_config(root)
    return resolve_tables(config, "tiny", sources), config.quality


def _save(spark: SparkSession, rows: list[tuple], schema: str, path: object, mode: str) -> None:
    spark.createDataFrame(rows, schema).write.format("delta").mode(mode).save(str(path))


def _binary_tables(
    spark: SparkSession, root: Path, model: str = "m"
) -> tuple[Tables, QualitySettings]:
    tables, settings = _tables(spark, root, ["outcomes"])
    shops = [(s, d) for d in (DAY1, DAY2) for s in ("s1", "s2", "s3", "s4")]
    _save(spark, shops, "shop_id string, as_of_date date", tables["features"].path, "overwrite")
    scored = [
        (s, d, p, int(p >= 0.5), model, "1", AT) for d, by in SCORES.items() for s, p in by.items()
    ]
    schema = (
        "shop_id string, as_of_date date, score double, label int, model_name string, "
        "model_version string, scored_at timestamp"
    )
    _save(spark, scored, schema, tables["scores"].path, "overwrite")
    return tables, settings


OUTCOMES = "shop_id string, as_of_date date, churned int, _delivery_date date, _source_file string"


def _deliver(spark: SparkSession, tables: Tables, rows: list[tuple], day: date, mode: str):
    full = [(*r, day, f"/raw/outcomes/{day}/o.csv") for r in rows]
    _save(spark, full, OUTCOMES, tables.bronze("outcomes").path, mode)


def _baseline(folder: Path, with_outcome: bool = True) -> str:
    frame = pd.DataFrame({"shop_id": ["b1", "b2", "b3", "b4"], "score": [0.9, 0.8, 0.2, 0.1]})
    frame["label"] = (frame["score"] >= 0.5).astype(int)
    if with_outcome:
        frame["__outcome__"] = [1, 1, 0, 0]
    path = folder / "baseline.parquet"
    frame.to_parquet(path)
    return str(path)


def _metrics(spark: SparkSession, tables: Tables) -> dict[tuple, dict]:
    rows = io.read_table(spark, tables["model_quality"]).collect()
    got = {(r["date"], r["kind"], r["metric"]): r.asDict() for r in rows}
    assert len(got) == len(rows), "one row per (date, kind, metric)"
    return got


def test_realized_estimated_thresholds_and_bad_outcomes(spark, tmp_path):
    tables, settings = _binary_tables(spark, tmp_path / "lake")
    # DAY1: s1 churned, s2 not, s3 churned, s4 not known; zz is no shop; s4's 7 is no class
    _deliver(spark, tables, [("s1", DAY1, 1), ("s2", DAY1, 0), ("s3", DAY1, 1),
                             ("zz", DAY1, 0), ("s4", DAY1, 7)], DAY2, "overwrite")  # fmt: skip
    baseline = _baseline(tmp_path)
    result = run_quality(spark, tables, settings, BINARY, lambda v: baseline, DAY2, "quality-1")

    got = _metrics(spark, tables)
    day1 = {m: r for (d, k, m), r in got.items() if d == DAY1 and k == "realized"}
    # positives 0.9, 0.3 vs negative 0.8: one pair of two ordered right
    assert day1["roc_auc"]["value"] == pytest.approx(0.5)
    assert day1["coverage"]["value"] == pytest.approx(0.75)
    assert (day1["coverage"]["rows"], day1["coverage"]["labelled_rows"]) == (4, 3)
    assert day1["precision"]["value"] == pytest.approx(0.5)  # s1 right, s2 wrong at 0.5
    assert day1["recall"]["value"] == pytest.approx(0.5)  # s3 missed
    # the baseline orders its rows perfectly: AUC 1.0, thresholds 0.97 / 0.95
    auc = day1["roc_auc"]
    assert (auc["baseline_value"], auc["status"]) == (pytest.approx(1.0), "alert")
    assert (auc["threshold_warn"], auc["threshold_alert"]) == (
        pytest.approx(0.97),
        pytest.approx(0.95),
    )
    assert day1["coverage"]["threshold_warn"] is None and day1["coverage"]["status"] == "ok"
    # DAY2 has no outcome yet: coverage 0 and nothing else realized; estimated only for DAY2
    assert [m for (d, k, m) in got if d == DAY2 and k == "realized"] == ["coverage"]
    assert got[(DAY2, "realized", "coverage")]["value"] == 0.0
    assert not [k for k in got if k[0] == DAY1 and k[1] == "estimated"]
    assert got[(DAY2, "estimated", "positive_rate")]["value"] == pytest.approx(1.9 / 4)
    # expected tp at 0.5: 0.7 + 0.6; fp: 0.3 + 0.4
    assert got[(DAY2, "estimated", "tp")]["value"] == pytest.approx(1.3)
    assert got[(DAY2, "estimated", "precision")]["value"] == pytest.approx(1.3 / 2)
    assert got[(DAY2, "estimated", "tp")]["labelled_rows"] == 4
    # bad outcomes quarantined, one reason each, counted
    assert result.rows_quarantined == 2
    bad = io.read_table(spark, tables["quarantine"]).collect()
    assert sorted((r["source"], tuple(r["reasons"]), r["delivery_date"]) for r in bad) == [
        ("quality:outcomes", ("not_a_class:churned",), DAY2),
        ("quality:outcomes", ("unknown_entity",), DAY2),
    ]
    assert any('"shop_id":"zz"' in r["record"] for r in bad)
    # baseline ECE (0.1 + 0.2 + 0.2 + 0.1) / 4 = 0.15 is above 0.05: the estimate may not hold
    assert result.details["calibration_ok"] is False
    assert "calibration error 0.150" in result.warnings[0]
    assert result.details["alerts"] >= 1
    assert "realized roc_auc 2026-03-01" in result.details["alerted_metrics"]
    assert "quality alert(s)" in result.warnings[-1]  # what `runs` keeps of the verdict
    assert result.details["labelled_dates"] == ["2026-03-01"]

    # a second delivery: DAY2 outcomes, s3 twice (both quarantined); rerun DAY2
    _deliver(spark, tables, [("s1", DAY2, 1), ("s2", DAY2, 0), ("s3", DAY2, 1),
                             ("s3", DAY2, 0)], DAY2 + (DAY2 - DAY1), "append")  # fmt: skip
    again = run_quality(spark, tables, settings, BINARY, lambda v: baseline, DAY2, "quality-2")
    got = _metrics(spark, tables)
    assert got[(DAY2, "realized", "coverage")]["value"] == pytest.approx(0.5)
    assert got[(DAY2, "realized", "accuracy")]["value"] == pytest.approx(1.0)
    assert got[(DAY1, "realized", "roc_auc")]["run_id"] == "quality-2"
    assert again.rows_quarantined == 4
    reasons = sorted(
        tuple(r["reasons"]) for r in io.read_table(spark, tables["quarantine"]).collect()
    )
    assert reasons.count(("duplicate_outcome",)) == 2 and len(reasons) == 4
    # the rerun replaced DAY1's rows (one per date, kind and metric: `_metrics` checks it)
    assert io.read_table(spark, tables["quarantine"]).count() == 4


def test_a_baseline_without_outcomes_is_not_judged_and_no_scores_is_an_error(spark, tmp_path):
    tables, settings = _binary_tables(spark, tmp_path / "lake")
    no_outcomes = _baseline(tmp_path, with_outcome=False)
    request = QualityRequest("tiny", "m", ("shop_id",), "binary")  # no labels: estimated only
    result = run_quality(spark, tables, settings, request, lambda v: no_outcomes, DAY1, "q-1")
    got = _metrics(spark, tables)
    assert got[(DAY1, "estimated", "roc_auc")]["baseline_value"] is None
    assert {r["status"] for r in got.values()} == {"ok"}
    assert result.details["calibration_ok"] is True
    with pytest.raises(DataError, match=r"no scores of model m up to as_of_date 2026-02-01"):
        run_quality(spark, tables, settings, request, lambda v: None, date(2026, 2, 1), "q-2")
    # a day without scoring (outcomes arriving later): no estimate of its own, and the
    # estimates of the scored dates stay as they were
    later = run_quality(
        spark, tables, settings, request, lambda v: no_outcomes, date(2026, 4, 3), "q-3"
    )
    assert later.rows_in == 0
    again = _metrics(spark, tables)
    assert {day for day, kind, _ in again if kind == "estimated"} == {DAY1}
    assert date(2026, 4, 3) not in {day for day, _, _ in again}
    assert again[(DAY1, "estimated", "roc_auc")]["run_id"] == "q-1"


def test_regression_with_a_composite_key(spark, tmp_path):
    tables, settings = _tables(spark, tmp_path / "lake", ["claims"])
    keys = [("i1", 1), ("i1", 2), ("i2", 1), ("i2", 2)]
    _save(spark, [(i, p, DAY1) for i, p in keys],
          "insurer_id string, policy_no int, as_of_date date", tables["features"].path,
          "overwrite")  # fmt: skip
    predictions = [1.0, 2.0, 3.0, 4.0]
    _save(
        spark,
        [(i, p, DAY1, y, "c", "3", AT) for (i, p), y in zip(keys, predictions, strict=True)],
        "insurer_id string, policy_no int, as_of_date date, prediction double, "
        "model_name string, model_version string, scored_at timestamp",
        tables["scores"].path,
        "overwrite",
    )
    # policy i1/2 of i2 is another insurer's number: (i2, 1) has a NaN cost
    outcomes = [("i1", 1, DAY1, 2.0), ("i1", 2, DAY1, 2.0), ("i2", 1, DAY1, float("nan")),
                ("i2", 2, DAY1, 5.0)]  # fmt: skip
    _save(
        spark,
        [(*o, DAY1, "/raw/c.csv") for o in outcomes],
        "insurer_id string, policy_no int, as_of date, cost double, _delivery_date date, "
        "_source_file string",
        tables.bronze("claims").path,
        "overwrite",
    )
    request = QualityRequest(
        "tiny",
        "c",
        ("insurer_id", "policy_no"),
        "regression",
        labels=LabelsSpec("claims", "as_of", "cost"),
        labels_columns=("insurer_id", "policy_no", "as_of", "cost"),
    )
    result = run_quality(spark, tables, settings, request, lambda v: None, DAY1, "q-r")
    got = {m: r for (_, _, m), r in _metrics(spark, tables).items()}
    # predictions 1, 2, 4 vs outcomes 2, 2, 5: errors -1, 0, -1; outcomes' SST 6
    assert got["mae"]["value"] == pytest.approx(2 / 3)
    assert got["rmse"]["value"] == pytest.approx((2 / 3) ** 0.5)
    assert got["r2"]["value"] == pytest.approx(1 - 2 / 6)
    assert got["coverage"]["value"] == pytest.approx(0.75)
    assert got["mae"]["baseline_value"] is None
    assert result.rows_quarantined == 1
    (bad,) = io.read_table(spark, tables["quarantine"]).collect()
    assert list(bad["reasons"]) == ["not_finite:cost"]


def test_multiclass_outcomes_outside_the_models_classes_are_quarantined(spark, tmp_path):
    tables, settings = _tables(spark, tmp_path / "lake", ["outcomes"])
    shops = ["s1", "s2", "s3", "s4"]
    _save(spark, [(s, DAY1) for s in shops], "shop_id string, as_of_date date",
          tables["features"].path, "overwrite")  # fmt: skip
    probabilities = [
        ("s1", "a", {"a": 0.7, "b": 0.2, "c": 0.1}),
        ("s2", "a", {"a": 0.5, "b": 0.4, "c": 0.1}),
        ("s3", "b", {"a": 0.2, "b": 0.6, "c": 0.2}),
        ("s4", "c", {"a": 0.3, "b": 0.1, "c": 0.6}),
    ]
    _save(
        spark,
        [(s, DAY1, label, max(p.values()), p, "k", "2", AT) for s, label, p in probabilities],
        "shop_id string, as_of_date date, label string, score double, "
        "probabilities map<string,double>, model_name string, model_version string, "
        "scored_at timestamp",
        tables["scores"].path,
        "overwrite",
    )
    _save(
        spark,
        [(s, DAY1, o, DAY1, "/raw/o.csv") for s, o in
         [("s1", "a"), ("s2", "b"), ("s3", "b"), ("s4", "z")]],
        "shop_id string, as_of_date date, kind string, _delivery_date date, _source_file string",
        tables.bronze("outcomes").path,
        "overwrite",
    )  # fmt: skip
    request = QualityRequest(
        "tiny",
        "k",
        ("shop_id",),
        "multiclass",
        labels=LabelsSpec("outcomes", "as_of_date", "kind"),
        labels_columns=("shop_id", "as_of_date", "kind"),
    )
    result = run_quality(spark, tables, settings, request, lambda v: None, DAY1, "q-m")
    got = {m: r["value"] for (_, _, m), r in _metrics(spark, tables).items()}
    # s4's "z" is no class of the model: s1 right, s2 wrong, s3 right
    assert got["accuracy"] == pytest.approx(2 / 3)
    # F1 a: 2/(2+1+0); b: 2/(2+0+1)
    assert got["macro_f1"] == pytest.approx(2 / 3)
    assert got["log_loss"] == pytest.approx((0.3566749439 + 0.9162907319 + 0.5108256238) / 3)
    assert got["coverage"] == pytest.approx(0.75)
    assert result.rows_quarantined == 1
    (bad,) = io.read_table(spark, tables["quarantine"]).collect()
    assert list(bad["reasons"]) == ["not_a_class:kind"]


OUTCOMES_CONTRACT = """\
name: outcomes
kind: raw_source
description: Churn outcomes.
format: csv
file_glob: "outcomes_*.csv"
keys: [shop_id, as_of_date]
columns:
  - {name: shop_id, type: string, nullable: false, description: s}
  - {name: as_of_date, type: date, nullable: false, description: d}
  - {name: churned, type: int, nullable: true, description: c}
"""


def _usecase(folder: Path, labels: dict[str, str]) -> Path:
    doc = usecase_doc(
        sources={"visits": "contracts/visits.yaml", "outcomes": "contracts/outcomes.yaml"},
        labels=labels,
    )
    return write_usecase(folder, doc, {"contracts/outcomes.yaml": OUTCOMES_CONTRACT})


def test_labels_keys_are_checked_naming_the_key(tmp_path):
    good = {"source": "outcomes", "as_of": "as_of_date", "outcome": "churned"}
    assert load_usecase(_usecase(tmp_path / "ok", good)).labels == LabelsSpec(**good)
    with pytest.raises(
        UseCaseError, match=r"usecase.yaml: labels.source: 'visitz' is not a source"
    ):
        load_usecase(_usecase(tmp_path / "a", {**good, "source": "visitz"}))
    with pytest.raises(UseCaseError, match=r"labels.outcome: 'label' is not a column of source"):
        load_usecase(_usecase(tmp_path / "b", {**good, "outcome": "label"}))


def test_the_step_is_recorded_in_runs_without_a_registry(spark, tmp_path):
    root = tmp_path / "lake"
    tables, _ = _binary_tables(spark, root, model="tiny_model")
    _deliver(spark, tables, [("s1", DAY1, 1), ("s2", DAY1, 0)], DAY2, "overwrite")
    usecase = load_usecase(
        _usecase(
            tmp_path / "uc", {"source": "outcomes", "as_of": "as_of_date", "outcome": "churned"}
        )
    )
    result = steps.quality(StepRun(spark, make_config(root), usecase, DAY2), None, "quality-r")
    assert result.details["model_versions"] == ["1"]
    (run,) = io.read_table(spark, tables["runs"]).where("step = 'quality'").collect()
    assert (run["status"], run["run_id"], run["rows_in"]) == ("succeeded", "quality-r", 4)
    got = _metrics(spark, tables)
    # no registry, so no baseline: nothing judged
    assert got[(DAY1, "realized", "roc_auc")]["baseline_value"] is None
    assert got[(DAY1, "realized", "roc_auc")]["value"] == pytest.approx(1.0)
