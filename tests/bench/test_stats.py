"""The statistics benchmark writes rows of the `scores` contract, one per customer."""

from __future__ import annotations

from bench.stats import score_rows
from scoring.core.contracts import load_contract, spark_schema


def test_score_rows_have_the_scores_contract_and_distinct_customers(spark):
    rows = score_rows(spark, 12, 3)
    contract = spark_schema(load_contract("scores"))
    assert [(f.name, f.dataType) for f in rows.schema] == [(f.name, f.dataType) for f in contract]
    assert rows.rdd.getNumPartitions() == 3
    customers = sorted(r.customer_id for r in rows.select("customer_id").collect())
    assert customers == [f"C{i:010d}" for i in range(12)]
    scores = [r.score for r in rows.select("score").collect()]
    assert all(0 <= s < 1 for s in scores)
