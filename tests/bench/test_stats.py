"""The statistics benchmark writes rows of the churn demo's scored tables, one per customer."""

from __future__ import annotations

from bench.stats import score_rows, write_settings
from bench.usecase import churn_usecase, scores_layout

LAYOUT = scores_layout(churn_usecase())


def test_score_rows_have_the_scores_layout_and_distinct_customers(spark):
    rows = score_rows(spark, LAYOUT, 12, 3)
    assert [(f.name, f.dataType) for f in rows.schema] == [
        (f.name, f.dataType) for f in LAYOUT.schema
    ]
    assert rows.rdd.getNumPartitions() == 3
    customers = sorted(r.customer_id for r in rows.select("customer_id").collect())
    assert customers == [f"C{i:010d}" for i in range(12)]
    scores = [r.score for r in rows.select("score").collect()]
    assert all(0 <= s < 1 for s in scores)


def test_the_settings_name_the_entity_key_and_turn_off_its_dictionary():
    settings = write_settings(LAYOUT)
    assert "Delta: customer_id,model_name,model_version" in settings
    name = "Delta: ours; Parquet: no string statistics, no customer_id dictionary"
    assert settings[name][1]["parquet.enable.dictionary#customer_id"] == "false"


def test_the_dictionary_rows_turn_it_off_for_score_and_for_every_column_on_our_write():
    settings = write_settings(LAYOUT)
    score = settings["Delta: ours; Parquet: no string statistics, no score dictionary; unsorted"]
    every = settings["Delta: ours; Parquet: no string statistics, no dictionary at all; unsorted"]
    ours = settings["Delta: ours; Parquet: no string statistics; unsorted (ours)"]
    assert score[1] == {**ours[1], "parquet.enable.dictionary#score": "false"}
    assert every[1] == {**ours[1], "parquet.enable.dictionary": "false"}
    assert score[0] == every[0] == ours[0]
