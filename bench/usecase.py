"""The use cases the benchmark stands in for: the churn demo (examples/churn) and a plain
all-float table (bench/floats, a score-only use case over a table the user keeps).

Each one's features contract and entity key give the synthetic features table's schema; its
model spec (binary task, positive class, threshold, trusted skops types) is how every variant
reads the bench's models; its entity key and task give the scored tables' layout.

Example:
    >>> usecase = churn_usecase()  # doctest: +SKIP
    >>> scores_layout(usecase).keys  # doctest: +SKIP
    ('customer_id',)
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import types as T

from scoring.core.contracts import Contract
from scoring.core.errors import UseCaseError
from scoring.features.build import features_schema
from scoring.model.tasks import BINARY
from scoring.score.tables import ScoresLayout
from scoring.usecase import AS_OF_DATE, FEATURE_RUN_ID, UseCase, load_usecase

CHURN_DIR = Path(__file__).resolve().parents[1] / "examples" / "churn"
FLOATS_DIR = Path(__file__).resolve().parent / "floats"


def churn_usecase(folder: Path = CHURN_DIR) -> UseCase:
    """The churn demo, loaded and checked to be what the bench measures.

    Raises:
        UseCaseError: the use case is not a binary classifier over a declared features
            contract (variants b and d and the synthetic table assume both).
    """
    return bench_usecase(folder)


def floats_usecase(folder: Path = FLOATS_DIR) -> UseCase:
    """The all-float use case (20 float64 features, score-only), checked like the demo."""
    return bench_usecase(folder)


def bench_usecase(folder: Path) -> UseCase:
    """A use case folder, loaded and checked to be what the bench measures.

    Raises:
        UseCaseError: the use case is not a binary classifier over a declared features
            contract (variants b and d and the synthetic tables assume both).
    """
    usecase = load_usecase(folder)
    if usecase.model.task != BINARY:
        raise UseCaseError(
            f"{usecase.path}: model.task: the bench compares binary classifiers, "
            f"not '{usecase.model.task}'"
        )
    features_contract(usecase)
    return usecase


def features_contract(usecase: UseCase) -> Contract:
    """The use case's features contract.

    Raises:
        UseCaseError: the use case declares none (a score-only table without a contract).
    """
    contract = usecase.features.contract
    if contract is None:
        raise UseCaseError(f"{usecase.path}: features.contract: the bench needs one")
    return contract


def features_table_schema(usecase: UseCase) -> T.StructType:
    """The features table's schema: entity, as_of_date, the contract's columns, and the run id
    the features step adds (not for a score-only use case: its table is the user's own,
    entity, date and features)."""
    contract = features_contract(usecase)
    schema = features_schema(contract, usecase.entity)
    if not usecase.features.score_only:
        return schema
    as_of = usecase.features.as_of_column
    by_name = {f.name: f for f in schema.fields if f.name != FEATURE_RUN_ID}
    date = T.StructField(as_of, by_name.pop(AS_OF_DATE).dataType, False)
    keys = [by_name.pop(k) for k in usecase.entity]
    return T.StructType([*keys, date, *by_name.values()])


def scores_layout(usecase: UseCase) -> ScoresLayout:
    """The layout of the use case's scored tables (entity typed as in the features table)."""
    schema = features_table_schema(usecase)
    return ScoresLayout(tuple(schema[key] for key in usecase.entity), usecase.model.task)
