"""Measure the demo model's quality on generated data: `python examples/churn/measure.py`.

Generates the demo's drops (the Makefile's DEMO_* defaults), builds the features of the
training date T = start - 30 and of every delivery day with features.py on Spark (the raw
files read straight, their valid records only, each as known at its date), fits train.py's
pipeline on 80 % of the customers of T (label: train.py's, no purchase in (T, T + 30]) and
prints, for the 20 % others, the held-out ROC AUC and the score quantiles; then, per
delivery day whose outcomes the generator delivered, the realized AUC over every customer
with an outcome (the drifted day(s) marked). Takes a few minutes on 2 cores
(docs/monitoring.md, "The demo's model quality", has the numbers).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scoring.core.config import load_config  # noqa: E402
from scoring.core.session import session_for  # noqa: E402
from scoring.features.asof import DELIVERY_DATE, SOURCE_FILE, as_known_at  # noqa: E402
from scoring.model.signature import bind_inputs, contract_inputs  # noqa: E402
from scoring.usecase import import_module, load_usecase  # noqa: E402

CHURN = load_usecase(ROOT / "examples" / "churn")
FEATURES = import_module(CHURN, "features")
TRAIN = import_module(CHURN, "train")
GENERATOR = import_module(CHURN, "generator")
HORIZON = datetime.timedelta(days=TRAIN.LABEL_HORIZON_DAYS)


def _valid(frame: DataFrame, source: str) -> DataFrame:
    """The records of a raw source that pass its contract's types, nulls and allowed values."""
    contract = CHURN.sources[source].contract
    columns = []
    ok = F.lit(True)
    for spec in contract.columns:
        typed = F.col(spec.name).try_cast(spec.spark_type)
        if spec.type == "timestamp":
            typed = F.try_to_timestamp(F.col(spec.name), F.lit("yyyy-MM-dd'T'HH:mm:ssX"))
        if not spec.nullable:
            ok &= typed.isNotNull()
        if spec.allowed:
            ok &= typed.isNull() | typed.cast("string").isin(*spec.allowed)
        columns.append(typed.alias(spec.name))
    file = F.input_file_name()
    delivered = F.to_date(F.regexp_extract(file, r"/(\d{4}-\d{2}-\d{2})/", 1))
    return frame.select(
        *columns, delivered.alias(DELIVERY_DATE), file.alias(SOURCE_FILE), ok.alias("_ok")
    ).where("_ok")


def _raw(spark: SparkSession, raw: Path) -> tuple[DataFrame, DataFrame]:
    text = {c.name: "string" for c in CHURN.sources["transactions"].contract.columns}
    schema = ", ".join(f"{name} {kind}" for name, kind in text.items())
    transactions = spark.read.schema(schema).json(str(raw / "transactions" / "*" / "*.jsonl"))
    customers = spark.read.option("header", True).csv(str(raw / "customers" / "*" / "*.csv"))
    tx = _valid(transactions, "transactions").dropDuplicates(["transaction_id"])
    return _valid(customers, "customers"), tx


def _features(
    customers: DataFrame, transactions: DataFrame, as_of: datetime.date, first: datetime.date
) -> pd.DataFrame:
    """features.py's rows of `as_of`, each source as the engine hands it (`as_known_at`; the
    drops of the first delivery day `first` are the initial load, known at earlier dates)."""
    known = {
        name: as_known_at(frame, CHURN.sources[name], as_of, first)
        for name, frame in (("customers", customers), ("transactions", transactions))
    }
    return FEATURES.build(known, as_of).toPandas().set_index("customer_id")


def _inputs(rows: pd.DataFrame) -> pd.DataFrame:
    assert CHURN.features.contract is not None
    return bind_inputs(
        rows.reset_index(), contract_inputs(CHURN.features.contract, ("customer_id",))
    )


def _quantiles(scores: np.ndarray) -> str:
    qs = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
    return ", ".join(f"q{round(q * 100)} {np.quantile(scores, q):.3f}" for q in qs)


def measure(options: argparse.Namespace) -> None:
    start = options.start
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder) / "raw"
        summary = GENERATOR.generate_demo_data(
            raw,
            customers=options.customers,
            days=options.days,
            seed=options.seed,
            start=start,
            history_days=options.history_days,
            drift_day=options.drift_day,
        )
        config = load_config("local", [f"storage.root={folder}/lake", "spark.shuffle_partitions=2"])
        spark = session_for(config)
        spark.sparkContext.setLogLevel("ERROR")
        customers, transactions = (f.cache() for f in _raw(spark, raw))
        train_date = start - HORIZON
        rows = _features(customers, transactions, train_date, start)
        later = _features(customers, transactions, start, start)
        labels = (later["txn_count_30d"] == 0).astype(int).reindex(rows.index).dropna()
        rows = rows.loc[labels.index]
        # 80 / 20 by a hash of the customer id: the same split on every run.
        held = np.array([zlib.crc32(c.encode()) % 5 == 0 for c in rows.index], dtype=bool)
        if not held.any():
            raise SystemExit(f"no customer with a label on {train_date}: {len(rows)} rows")
        model = TRAIN.fit(_inputs(rows[~held]), labels[~held], options.seed)
        scores = model.predict_proba(_inputs(rows[held]))[:, 1]
        print(f"training date {train_date}: {len(rows)} customers, churn rate {labels.mean():.3f}")
        auc = roc_auc_score(labels[held], scores)
        print(f"held-out (20 %, {held.sum()} customers): ROC AUC {auc:.3f}")
        print(f"held-out scores: {_quantiles(scores)}")
        outcomes = pd.read_csv(next((raw / "outcomes").glob("*/*.csv")), dtype=str)
        outcomes = outcomes[outcomes["churned"].isin(["0", "1"])]
        outcomes = outcomes.drop_duplicates(["customer_id", "as_of_date"], keep=False)
        for index in range(options.days):
            day = start + datetime.timedelta(days=index)
            rows = _features(customers, transactions, day, start)
            scores = model.predict_proba(_inputs(rows))[:, 1]
            drifted = options.drift_day is not None and index >= options.drift_day
            line = f"{day}{' (drifted)' if drifted else ''}: mean score {scores.mean():.3f}"
            known = outcomes[outcomes["as_of_date"] == day.isoformat()]
            if len(known):
                truth = known.set_index("customer_id")["churned"].astype(int)
                scored = pd.Series(scores, index=rows.index).reindex(truth.index)
                mask = scored.notna().to_numpy()
                line += (
                    f", churn rate {truth[mask].mean():.3f}, "
                    f"realized ROC AUC {roc_auc_score(truth[mask], scored[mask]):.3f}"
                )
            else:
                line += ", outcomes not arrived yet"
            print(line)
        print(f"outcomes arrive on {summary.arrival}")
        spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=datetime.date.fromisoformat, default="2026-03-01")
    parser.add_argument("--history-days", type=int, default=420)
    parser.add_argument("--drift-day", type=int, default=3)
    measure(parser.parse_args())


if __name__ == "__main__":
    main()
