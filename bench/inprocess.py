"""Variant (c), the single-machine limit: pyarrow read, the model's predict_proba, Parquet write.

Run as its own process (`python -m bench.inprocess ...`) so its peak memory is its own. It
reads the Parquet files of the features partition (the bench writes every table fresh, so
every file there is live in the Delta log), converts batches to pandas, binds the signature's
inputs, calls the pipeline's own `predict_proba` (scikit-learn/OpenMP use every core) and
writes the use case's entity key + score + label as Parquet (score and label by its model
spec: the positive class by value, the threshold). Prints one JSON line: seconds, predict
seconds, rows, peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from scoring.core.errors import ModelError
from scoring.model.loading import load_predictor
from scoring.model.predictors import EstimatorPredictor, from_probabilities
from scoring.model.signature import bind_inputs, model_inputs
from scoring.usecase import ModelSpec, load_usecase


def score_in_process(
    partition: Path,
    model_dir: Path,
    spec: ModelSpec,
    entity: tuple[str, ...],
    out: Path,
    batch_rows: int,
) -> dict[str, float]:
    """Score every row under `partition` into the Parquet file `out`; timings in seconds.

    Raises:
        ModelError: the model is not a scikit-learn-like classifier (it has no predict_proba
            to time on its own).
    """
    started = time.perf_counter()
    inputs = model_inputs(model_dir)
    predictor = load_predictor(model_dir, spec)
    if not isinstance(predictor, EstimatorPredictor):
        raise ModelError(f"{model_dir}: (c) times a scikit-learn classifier's predict_proba")
    model = predictor.model
    dataset = ds.dataset(partition, format="parquet")
    names = [*entity, *(i.name for i in inputs)]
    predict_seconds, rows, writer = 0.0, 0, None
    for table in _chunks(dataset, names, batch_rows):
        frame = table.to_pandas()
        bound = bind_inputs(frame, inputs)
        begin = time.perf_counter()
        proba = model.predict_proba(bound)
        predict_seconds += time.perf_counter() - begin
        outputs = from_probabilities(proba, model.classes_, spec)
        scored = pd.DataFrame(
            {**{key: frame[key] for key in entity}, **outputs.columns}, index=frame.index
        )
        table = pa.Table.from_pandas(scored, preserve_index=False)
        writer = writer or pq.ParquetWriter(out, table.schema)
        writer.write_table(table)
        rows += len(scored)
    if writer is not None:
        writer.close()
    return {
        "seconds": time.perf_counter() - started,
        "predict_seconds": predict_seconds,
        "rows": rows,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _chunks(dataset: ds.Dataset, names: list[str], rows: int) -> Iterator[pa.Table]:
    """Tables of about `rows` rows: small files are merged, so predict is called on big frames."""
    pending: list[pa.RecordBatch] = []
    for batch in dataset.to_batches(columns=names, batch_size=rows):
        pending.append(batch)
        if sum(b.num_rows for b in pending) >= rows:
            yield pa.Table.from_batches(pending)
            pending = []
    if pending:
        yield pa.Table.from_batches(pending)


def main() -> None:
    """Parse the arguments, score, print the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess")
    parser.add_argument("--partition", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--usecase", type=Path, required=True, help="use case folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch-rows", type=int, default=262_144)
    args = parser.parse_args()
    usecase = load_usecase(args.usecase)
    result = score_in_process(
        args.partition, args.model_dir, usecase.model, usecase.entity, args.out, args.batch_rows
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
