"""A use case's feature code run on the sources as known at D, and its result held to the contract.

Python: `build(sources: Mapping[str, DataFrame], as_of: date) -> DataFrame`.
SQL: a query where each source is a temporary view of its name and `:as_of` a named
parameter (a DATE).

The result must have every column of the features contract with the contract's type or one
that converts to it without loss of meaning (`compatible`): a missing or mistyped column
fails naming it. The engine then adds `as_of_date` (after the entity key) and
`feature_run_id` (last): `schemas/features_lineage.yaml`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from scoring.core import io
from scoring.core.contracts import Contract, column_comments, load_contract, spark_schema
from scoring.core.errors import DataError, UseCaseCodeError
from scoring.core.session import temporary_conf
from scoring.usecase.spec import AS_OF_DATE, FEATURE_RUN_ID

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_NUMERIC = (*_INTEGRAL, T.FloatType, T.DoubleType, T.DecimalType)
# Spark 4.1 and later, as pip installs them, leave the named parameters of
# `spark.sql(text, args)` unbound (UNBOUND_SQL_PARAMETER, apache/spark#55392); the legacy
# substitution binds them where a constant may stand, as Spark 4.0 does.
_LEGACY_PARAMETERS = {"spark.sql.legacy.parameterSubstitution.constantsOnly": "true"}


def run_python(
    function: Callable[..., Any], name: str, sources: Mapping[str, DataFrame], as_of: date
) -> DataFrame:
    """Call a Python feature function; anything it raises or returns wrong names it.

    Raises:
        UseCaseCodeError: the function raised, or did not return a DataFrame.
    """
    try:
        result = function(dict(sources), as_of)
    except Exception as exc:  # the use case's code failed: say where, in one line
        raise UseCaseCodeError(f"{name} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, DataFrame):
        raise UseCaseCodeError(f"{name} returned {type(result).__name__}, not a Spark DataFrame")
    return result


@contextmanager
def source_views(sources: Mapping[str, DataFrame]) -> Iterator[None]:
    """Each source as a temporary view of its name, dropped when the block ends."""
    try:
        for name, frame in sources.items():
            frame.createOrReplaceTempView(name)
        yield
    finally:
        spark = next(iter(sources.values())).sparkSession if sources else None
        for name in sources:
            if spark is not None:
                spark.catalog.dropTempView(name)


def run_sql(spark: SparkSession, path: Path, as_of: date) -> DataFrame:
    """Run a SQL feature file with `:as_of` bound (the source views must exist).

    Raises:
        UseCaseCodeError: the query does not parse or resolve; the message names the file.
    """
    text = path.read_text(encoding="utf-8")
    try:
        # Bound while the query is analysed, which `sql` does at once; restored after.
        with temporary_conf(spark, parameter_conf(spark.version)):
            return spark.sql(text, args={"as_of": as_of})
    except Exception as exc:  # a parse or analysis error of the user's SQL
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UseCaseCodeError(f"{path}: {type(exc).__name__}: {first}") from exc


def parameter_conf(spark_version: str) -> dict[str, str]:
    """The settings under which `spark.sql(text, args)` binds named parameters on this Spark."""
    major, minor = (int(part) for part in spark_version.split(".")[:2])
    return dict(_LEGACY_PARAMETERS) if (major, minor) >= (4, 1) else {}


def compatible(found: T.DataType, expected: T.DataType) -> bool:
    """Whether a column of type `found` may fill a contract column of type `expected`.

    The same type; a null literal; any integer for an integer (range checks catch overflow);
    any number for a double or float; an integer for a decimal.
    """
    if found == expected or isinstance(found, T.NullType):
        return True
    if isinstance(expected, _INTEGRAL):
        return isinstance(found, _INTEGRAL)
    if isinstance(expected, T.DoubleType | T.FloatType):
        return isinstance(found, _NUMERIC)
    if isinstance(expected, T.DecimalType):
        return isinstance(found, _INTEGRAL)
    if isinstance(expected, T.ArrayType) and isinstance(found, T.ArrayType):
        return compatible(found.elementType, expected.elementType)
    return False


def conform_features(
    built: DataFrame, contract: Contract, entity: tuple[str, ...], as_of: date, run_id: str
) -> DataFrame:
    """The features rows: entity, `as_of_date`, the contract's columns, `feature_run_id`.

    Raises:
        DataError: naming the first contract column that is missing or has a type that
            does not convert to the contract's.
    """
    found = {f.name: f.dataType for f in built.schema.fields}
    for spec in contract.columns:
        if spec.name not in found:
            raise DataError(
                f"features: column '{spec.name}' of {contract.path} is missing from what the "
                f"feature code returned (columns: {sorted(found)})"
            )
        if not compatible(found[spec.name], spec.spark_type):
            raise DataError(
                f"features: column '{spec.name}' has type {found[spec.name].simpleString()}, "
                f"{contract.path} says {spec.type}"
            )
    lineage = {AS_OF_DATE: F.lit(as_of), FEATURE_RUN_ID: F.lit(run_id)}
    return built.select(
        *(
            lineage.get(f.name, F.col(f.name)).cast(f.dataType).alias(f.name)
            for f in features_schema(contract, entity).fields
        )
    )


def features_table_spec(contract: Contract, entity: tuple[str, ...]) -> io.TableSpec:
    """The features table: its schema, partitioned by date, commented from the contracts."""
    lineage = load_contract("features_lineage")
    return io.TableSpec(
        features_schema(contract, entity),
        lineage.partition_by,
        description=contract.description,
        comments=column_comments(contract, lineage),
    )


def features_schema(contract: Contract, entity: tuple[str, ...]) -> T.StructType:
    """The features table's schema: entity, as_of_date, the other contract columns, run id."""
    lineage = {f.name: f for f in spark_schema(load_contract("features_lineage")).fields}
    own = list(spark_schema(contract).fields)
    by_name = {f.name: f for f in own}
    keys = [T.StructField(k, by_name[k].dataType, False) for k in entity]
    rest = [f for f in own if f.name not in entity]
    return T.StructType([*keys, lineage[AS_OF_DATE], *rest, lineage[FEATURE_RUN_ID]])
