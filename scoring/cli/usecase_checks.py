"""`scoring doctor`'s checks of a use case: does it run, without running it on data?

- the feature code imports and, called on empty frames of each source's schema, returns
  every column of the features contract with a usable type (Spark only analyses the plan);
- the trainer's and the sample data's functions import;
- the model resolves in the registry, its signature's inputs are columns of the features,
  and it loads (trust rules included) as a model of the use case's task.

Each check is one line; the doctor prints them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from scoring.core.config import Config
from scoring.core.contracts import spark_schema
from scoring.core.errors import ModelNotFoundError, ScoringError
from scoring.features.build import (
    conform_features,
    features_schema,
    run_python,
    run_sql,
    source_views,
)
from scoring.usecase.code import load_function
from scoring.usecase.spec import CodeRef, UseCase

_CHECK_DATE = date(2000, 1, 1)


@dataclass(frozen=True)
class Check:
    """The outcome of one doctor check: ok, a warning, or failed."""

    name: str
    ok: bool
    detail: str
    warning: bool = False

    @property
    def label(self) -> str:
        """`ok`, `warn` or `FAILED`."""
        return "FAILED" if not self.ok else ("warn" if self.warning else "ok")


def usecase_checks(spark: SparkSession | None, config: Config, usecase: UseCase) -> list[Check]:
    """Every check of the use case (the feature check needs `spark`)."""
    sources = ", ".join(
        f"{n} ({s.contract.format}, {'event' if s.is_event else 'dimension'})"
        for n, s in usecase.sources.items()
    )
    summary = f"{usecase.name} at {usecase.folder}: entity {list(usecase.entity)}, " + (
        f"sources {sources}" if sources else f"features table {usecase.features.table}"
    )
    checks = [Check("use case", True, summary)]
    if spark is not None and not usecase.features.score_only:
        checks.append(_guarded("feature code", lambda: _feature_code(spark, usecase)))
    if usecase.train is not None:
        train = usecase.train
        checks.append(_guarded("trainer", lambda: _imports(usecase, [train.label, train.fit])))
    if usecase.sample_data is not None:
        sample = usecase.sample_data
        checks.append(_guarded("sample data", lambda: _imports(usecase, [sample])))
    checks.append(_model(config, usecase))
    return checks


def _guarded(name: str, body: Callable[[], str]) -> Check:
    """Run a check body; its text is the detail, a ScoringError its one-line failure."""
    try:
        return Check(name, True, body())
    except ScoringError as exc:
        return Check(name, False, str(exc))


def _feature_code(spark: SparkSession, usecase: UseCase) -> str:
    """Run the feature code on empty sources and hold the plan's columns to the contract."""
    spec = usecase.features
    assert spec.contract is not None
    empty = {
        name: spark.createDataFrame([], spark_schema(source.contract))
        for name, source in usecase.sources.items()
    }
    with source_views(empty):
        if spec.python is not None:
            built: DataFrame = run_python(
                load_function(usecase, spec.python), str(spec.python), empty, _CHECK_DATE
            )
            what = str(spec.python)
        else:
            assert spec.sql is not None
            built = run_sql(spark, spec.sql, _CHECK_DATE)
            what = str(spec.sql)
        conform_features(built, spec.contract, usecase.entity, _CHECK_DATE, "doctor")
    columns = len(features_schema(spec.contract, usecase.entity).fields)
    return f"{what} returns the {columns} columns of {spec.contract.path}"


def _imports(usecase: UseCase, refs: list[CodeRef]) -> str:
    for ref in refs:
        load_function(usecase, ref)
    return ", ".join(str(ref) for ref in refs) + " import"


def _model(config: Config, usecase: UseCase) -> Check:
    """The model resolves, binds to the features and loads as a model of the task."""
    from scoring.model.loading import load_predictor
    from scoring.model.registry import download_model, mlflow_target, resolve_model
    from scoring.model.signature import check_inputs, model_inputs
    from scoring.runs.steps import default_model

    uri = default_model(config, usecase)
    target = mlflow_target(config, usecase.name)
    try:
        model = resolve_model(target, uri)
    except ModelNotFoundError as exc:
        if usecase.train is not None:
            return Check(
                "model", True, f"{exc}; `scoring train` (or the pipeline) trains one", warning=True
            )
        return Check("model", False, f"{exc}; register one and record its baseline")
    except Exception as exc:  # the doctor reports every failure instead of raising
        return Check("model", False, f"{uri}: {type(exc).__name__}: {exc}")
    try:
        folder = download_model(target, model)
        inputs = model_inputs(folder)
        if usecase.features.contract is not None:
            fields = features_schema(usecase.features.contract, usecase.entity).fields
            check_inputs(T.StructType(list(fields)), inputs, str(usecase.features.contract.path))
        load_predictor(folder, usecase.model)
    except Exception as exc:  # the doctor reports every failure instead of raising
        return Check("model", False, f"{model.pinned_uri}: {exc}")
    return Check(
        "model",
        True,
        f"{uri} is {model.pinned_uri}: {len(inputs)} inputs bound, loads as a "
        f"{usecase.model.task} model",
    )
