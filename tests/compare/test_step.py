"""The compare step on hand-built scores and model_quality tables: rows, reruns, bad input."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import Row

from scoring.compare.step import Binning, CompareRequest, run_compare
from scoring.core import io
from scoring.core.contracts import load_contract, spark_schema
from scoring.core.errors import DataError
from scoring.core.tables import resolve_tables
from tests.conftest import make_config

pytestmark = pytest.mark.slow
DAY0, DAY = date(2026, 3, 1), date(2026, 3, 2)
AT = datetime(2026, 3, 2, 6, 0)
REQUEST = CompareRequest(
    usecase="tiny", model_name="m", entity=("shop_id",), task="binary", champion_version="1"
)
BINNING = Binning(n_bins=2, epsilon=0.0001)
SCORES = "shop_id string, as_of_date date, score double, label int, model_name string, "
SCORES += "model_version string, scored_at timestamp"


def _scored(model: str, version: str, day: date, scores: list[float]) -> list[tuple]:
    return [(f"s{i + 1}", day, p, int(p >= 0.5), model, version, AT) for i, p in enumerate(scores)]


def _quality(day: date, version: str, metric: str, value: float, labelled: int) -> Row:
    return Row(usecase="tiny", date=day, model_name="m", model_version=version, kind="realized",
               metric=metric, value=value, baseline_value=None, threshold_warn=None,
               threshold_alert=None, status="ok", rows=100, labelled_rows=labelled,
               run_id="quality-1", computed_at=AT)  # fmt: skip


@pytest.fixture(scope="module")
def tables(spark, tmp_path_factory):
    """Shared by the module's tests: each one that writes replaces the rows it checks."""
    tables = resolve_tables(make_config(tmp_path_factory.mktemp("compare")), "tiny", [])
    rows = [
        *_scored("m", "1", DAY, [0.1, 0.2, 0.3, 0.9]),
        *_scored("m", "2", DAY, [0.2, 0.1, 0.6, 0.8]),
        *_scored("m", "1", DAY0, [0.5, 0.5, 0.5, 0.5]),  # another date
        *_scored("other", "9", DAY, [0.9, 0.9, 0.9, 0.9]),  # another model
    ]
    spark.createDataFrame(rows, SCORES).write.format("delta").save(str(tables["scores"].path))
    quality = [
        _quality(DAY0, "1", "roc_auc", 0.80, 100),
        _quality(DAY0, "2", "roc_auc", 0.83, 90),
        _quality(DAY0, "1", "log_loss", 0.50, 100),
        _quality(DAY0, "2", "log_loss", 0.45, 90),
        _quality(DAY, "1", "roc_auc", 0.79, 100),  # the challenger has none on DAY
        _quality(DAY, "1", "coverage", 0.0, 0),  # no outcomes yet: not compared
        _quality(DAY, "2", "coverage", 0.0, 0),
    ]
    schema = spark_schema(load_contract("model_quality"))
    frame = spark.createDataFrame(quality, schema)
    frame.write.format("delta").save(str(tables["model_quality"].path))
    return tables


def _written(spark, tables) -> dict[tuple, dict]:
    rows = io.read_table(spark, tables["model_comparison"]).collect()
    got = {(r["date"], r["kind"], r["metric"]): r.asDict() for r in rows}
    assert len(got) == len(rows), "one row per (date, kind, metric) of the one pair"
    return got


def test_compare_writes_agreement_of_the_date_and_realized_metrics_side_by_side(spark, tables):
    result = run_compare(spark, tables, REQUEST, BINNING, DAY, "compare-1")

    got = _written(spark, tables)
    assert {(r["champion_version"], r["challenger_version"]) for r in got.values()} == {("1", "2")}
    agreement = {m: r for (d, k, m), r in got.items() if k == "agreement"}
    assert {r["date"] for r in agreement.values()} == {DAY}
    assert sorted(agreement) == ["flip_share", "flips", "ks", "psi", "rows_both",
                                 "rows_challenger", "rows_champion", "spearman",
                                 "top_decile_overlap"]  # fmt: skip
    # only s3 changes side at 0.5 (0.3 -> 0.6); s4 is positive for both
    assert (agreement["flips"]["value"], agreement["flip_share"]["value"]) == (1.0, 0.25)
    assert agreement["rows_both"]["value"] == 4 and agreement["flips"]["rows"] == 4
    # ranks (1, 2, 3, 4) and (2, 1, 3, 4): 1 - 6 * (1 + 1) / (4 * 15) = 0.8
    assert agreement["spearman"]["value"] == pytest.approx(0.8)
    assert agreement["psi"]["champion_value"] is None
    # realized: DAY0 only (the challenger has no roc_auc of DAY, coverage has no outcomes)
    auc = got[(DAY0, "realized", "roc_auc")]
    assert (auc["champion_value"], auc["challenger_value"]) == (0.80, 0.83)
    assert (auc["value"], auc["higher_is_better"], auc["rows"]) == (pytest.approx(0.03), True, 90)
    loss = got[(DAY0, "realized", "log_loss")]
    assert (loss["value"], loss["higher_is_better"]) == (pytest.approx(-0.05), False)
    assert not [k for k in got if k[1] == "realized" and k[0] == DAY]
    assert result.table_versions == {
        "model_comparison": io.current_version(spark, tables["model_comparison"])
    }
    assert result.details["challenger_versions"] == ["2"]
    assert result.details["pairs"]["2"]["realized_dates"] == ["2026-03-01"]
    assert result.rows_in == 4


def test_a_rerun_replaces_the_pairs_rows(spark, tables):
    run_compare(spark, tables, REQUEST, BINNING, DAY, "compare-1")
    first = _written(spark, tables)
    run_compare(spark, tables, REQUEST, BINNING, DAY, "compare-2")
    second = _written(spark, tables)
    assert second.keys() == first.keys()
    assert {r["run_id"] for r in second.values()} == {"compare-2"}


@pytest.mark.parametrize(
    ("champion", "challengers", "message"),
    [
        ("5", (), "the champion v5 scored nothing"),
        ("1", ("7",), "challenger v7 scored nothing"),
        ("1", ("1",), "v1 is the champion, not a challenger"),
    ],
)
def test_versions_that_did_not_score_the_date_are_named(
    spark, tables, champion, challengers, message
):
    request = CompareRequest("tiny", "m", ("shop_id",), "binary", champion, challengers)
    before = io.current_version(spark, tables["model_comparison"])
    with pytest.raises(DataError, match=message):
        run_compare(spark, tables, request, BINNING, DAY, "compare-bad")
    assert io.current_version(spark, tables["model_comparison"]) == before


def test_a_date_only_the_champion_scored_has_nothing_to_compare(spark, tables):
    with pytest.raises(DataError, match="only the champion v1 scored the date"):
        run_compare(spark, tables, REQUEST, BINNING, DAY0, "compare-1")
