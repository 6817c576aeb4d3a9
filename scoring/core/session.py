"""The one SparkSession factory.

Locally it builds a session with Delta's SQL extension and catalog, and hands Spark the
Delta jars that `make setup` copied from Maven Central into `spark.jars_dir`, so starting a
session never downloads anything. On Databricks and EMR the platform's session and Delta
are used as they are, and only settings that may change at run time are set.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

from pyspark.sql import SparkSession

from scoring.core.config import Config, SparkSettings, join_path
from scoring.core.errors import EnvironmentProblem
from scoring.core.resources import resource_dir


def session_for(config: Config) -> SparkSession:
    """The session of a job run: `build_session` with the run's storage root; Spark's console
    progress bar on a terminal, unless logs are JSON lines for a collector."""
    progress = sys.stderr.isatty() and not config.logging.json
    return build_session(config.spark, join_path(config.storage.root, "_warehouse"), progress)


def build_session(
    settings: SparkSettings, warehouse_dir: str | None = None, progress: bool = False
) -> SparkSession:
    """Build (or get) the SparkSession described by `settings`.

    Args:
        settings: the `spark` section of the configuration.
        warehouse_dir: local platform only: where catalog tables are stored.
        progress: local platform only: show Spark's console progress bar.

    Raises:
        EnvironmentProblem: Java or the Delta jars are missing on the local platform.
    """
    builder = SparkSession.builder.appName(settings.app_name)
    if settings.platform == "local":
        for key, value in local_conf(settings, warehouse_dir, progress).items():
            builder = builder.config(key, value)
    for key, value in {**runtime_conf(settings), **settings.conf}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in runtime_conf(settings).items():
        spark.conf.set(key, value)  # an existing platform session ignores builder settings
    if settings.platform == "local":
        spark.sparkContext.setLogLevel(settings.log_level)
    return spark


def runtime_conf(settings: SparkSettings) -> dict[str, str]:
    """Settings every platform gets; all of them may be changed on a running session."""
    return {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Fail loudly instead of silently falling back to slow row-by-row conversion.
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        # Parquet timestamps as INT64 microseconds, the type every reader (delta-rs, Trino,
        # DuckDB, pyarrow) knows; Spark's default is the deprecated INT96.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    }


def launch_conf(settings: SparkSettings) -> dict[str, str]:
    """Settings the local JVM needs when it starts: the Delta jars, extension, catalog, Python,
    and the project's JVM flags (`java_options`).

    A session started from Python passes them at launch. A `spark-submit` has started its
    JVM before our code runs, so `make setup` also writes them to the local Spark's
    spark-defaults.conf (see `write_spark_defaults`).

    The JVM flags go to `spark.{driver,executor}.defaultJavaOptions`, which Spark puts in
    front of `extraJavaOptions`: a user's `extraJavaOptions` (in `spark.conf`, or
    `--driver-java-options` / `--conf` of `spark-submit`) adds flags to ours instead of
    dropping the UTC time zone and the log format.
    """
    python = ensure_worker_python()
    return {
        "spark.jars": ",".join(str(p) for p in delta_jars(settings.jars_dir)),
        **{
            f"spark.{side}.defaultJavaOptions": java_options(
                settings.conf.get(f"spark.{side}.extraJavaOptions", "")
            )
            for side in ("driver", "executor")
        },
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.pyspark.python": python,
        "spark.pyspark.driver.python": python,
    }


# A flag that picks the JVM's garbage collector: -XX:+UseG1GC, -XX:+UseZGC, -XX:+UseSerialGC...
_COLLECTOR_FLAG = re.compile(r"(?:^|\s)-XX:\+Use\w*GC(?:\s|$)")


def java_options(extra: str = "") -> str:
    """The project's flags for a local JVM whose `extraJavaOptions` are `extra`.

    UTC in the JVM too; Spark's own log lines in the project's timestamp format. The
    throughput collector (ParallelGC) instead of Java 17's default G1: a batch job has no
    pause target to meet, and G1's write barriers and concurrent marking cost Spark's row
    and Parquet code up to a third of its task-thread CPU (bench/RESULTS.md, finding 21).
    When `extra` picks a collector itself, ours is left out: a JVM given two refuses to
    start ("Multiple garbage collectors selected").
    """
    flags = ["-Duser.timezone=UTC"]
    if not _COLLECTOR_FLAG.search(extra):
        flags.append("-XX:+UseParallelGC")
    flags.append(f"-Dlog4j2.configurationFile={log4j_config()}")
    return " ".join(flags)


def write_spark_defaults(settings: SparkSettings, spark_home: Path | None = None) -> Path:
    """Write `launch_conf` to `<SPARK_HOME>/conf/spark-defaults.conf` of the local pyspark.

    Then `spark-submit jobs/<step>.py --env local ...` works from a clone after set-up
    without `--jars`. Only for the local platform; clusters keep their own defaults.
    """
    import pyspark

    home = spark_home or Path(pyspark.__file__).parent
    target = home / "conf" / "spark-defaults.conf"
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} {value}" for key, value in launch_conf(settings).items()]
    header = (
        "# Written by `make setup` (scoring.core.session.write_spark_defaults); safe to delete.\n"
    )
    target.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    return target


def local_conf(
    settings: SparkSettings, warehouse_dir: str | None, progress: bool = False
) -> dict[str, str]:
    """Settings of the embedded local session: master, UI, progress bar, and `launch_conf`."""
    conf = {
        "spark.master": settings.master or "local[2]",
        **launch_conf(settings),
        "spark.ui.enabled": str(settings.ui_enabled).lower(),
        "spark.ui.showConsoleProgress": str(progress).lower(),
        # Delta's log replay uses this many partitions; the default 50 is slow for small tables.
        "spark.databricks.delta.snapshotPartitions": str(max(2, settings.shuffle_partitions)),
    }
    if warehouse_dir:
        conf["spark.sql.warehouse.dir"] = warehouse_dir
    return conf


def log4j_config() -> str:
    """The `file:` URI of the packaged `conf/log4j2.properties`."""
    return (resource_dir("conf") / "log4j2.properties").absolute().as_uri()


def ensure_worker_python() -> str:
    """Make Python workers run the driver's interpreter unless PYSPARK_PYTHON says otherwise.

    A worker on another Python lacks pandas/pyarrow/mlflow, and pandas UDFs fail there.
    """
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise EnvironmentProblem("Java not found: install Java 17 or set JAVA_HOME")
    python = os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", python)
    return python


def delta_jars(jars_dir: str | None) -> list[Path]:
    """The Delta jars in `jars_dir` for the installed delta-spark and pyspark versions.

    Raises:
        EnvironmentProblem: naming the folder, when a jar is missing or of another version.
    """
    if not jars_dir:
        raise EnvironmentProblem("spark.jars_dir is not set: the local platform needs Delta jars")
    folder = Path(jars_dir)
    delta, pyspark = version("delta-spark"), version("pyspark")
    jars = []
    for names in delta_jar_names(delta, pyspark):
        path = next((folder / name for name in names if (folder / name).is_file()), None)
        if path is None:
            found = sorted(p.name for p in folder.glob("*.jar")) if folder.is_dir() else []
            raise EnvironmentProblem(
                f"{folder}: Delta jar missing: {' or '.join(names)} (delta-spark {delta} and "
                f"pyspark {pyspark} are installed; found {found or 'no jars'}). Run `make setup` "
                "(`make setup-latest` for the newest pair) to copy it from Maven Central."
            )
        jars.append(path)
    return jars


def delta_jar_names(delta: str, pyspark: str) -> list[tuple[str, ...]]:
    """The file names each Delta jar may have, preferred first, for Delta `delta` on `pyspark`.

    Since Delta 4.1 the artifact names the Spark it is built for (`delta-spark_4.2_2.13`);
    Delta 4.0's, and later Deltas' build for their newest Spark, is `delta-spark_2.13`.

    >>> delta_jar_names("4.4.0", "4.2.0")[0]
    ('delta-spark_4.2_2.13-4.4.0.jar', 'delta-spark_2.13-4.4.0.jar')
    """
    spark = ".".join(pyspark.split(".")[:2])
    return [
        (f"delta-spark_{spark}_2.13-{delta}.jar", f"delta-spark_2.13-{delta}.jar"),
        (f"delta-storage-{delta}.jar",),
    ]


@contextmanager
def temporary_conf(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Set runtime Spark settings for the actions inside the block, then restore them."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


# The local properties `SparkContext.setJobGroup` sets; the event log and the UI show them.
JOB_GROUP, JOB_DESCRIPTION = "spark.jobGroup.id", "spark.job.description"


@contextmanager
def job_group(spark: SparkSession, group: str, description: str | None = None) -> Iterator[None]:
    """Label the Spark jobs this thread starts inside the block with `group` (and
    `description`, else the group), then put back the labels it had (none: cleared)."""
    context = spark.sparkContext
    previous = {key: context.getLocalProperty(key) for key in (JOB_GROUP, JOB_DESCRIPTION)}
    context.setJobGroup(group, description or group)
    try:
        yield
    finally:
        for key, value in previous.items():
            context.setLocalProperty(key, value)  # type: ignore[arg-type]


if __name__ == "__main__":  # `make setup`: python -m scoring.core.session [ENV]
    from scoring.core.config import load_config

    env = sys.argv[1] if len(sys.argv) > 1 else "local"
    print(f"wrote {write_spark_defaults(load_config(env).spark)}")
