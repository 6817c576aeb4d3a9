from __future__ import annotations

import re
import sys
from importlib.metadata import version
from pathlib import Path

from scoring.core.config import load_config
from scoring.core.session import local_conf


def test_session_uses_utc_arrow_and_few_shuffle_partitions(spark):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"


def test_session_loads_delta_from_local_jars_never_from_a_repository(spark):
    conf = spark.sparkContext.getConf()
    jars = conf.get("spark.jars").split(",")
    assert all(Path(j).is_file() for j in jars)
    assert {Path(j).name for j in jars} == {
        f"delta-spark_2.13-{version('delta-spark')}.jar",
        f"delta-storage-{version('delta-spark')}.jar",
    }
    assert conf.get("spark.jars.packages", None) is None
    assert conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"


def test_workers_run_the_drivers_python(spark):
    assert spark.sparkContext.getConf().get("spark.pyspark.python") == sys.executable
    ran_on = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("sys").executable)
    assert ran_on.collect() == [sys.executable]


def test_delta_jar_version_matches_the_pinned_python_package():
    pom = (Path(__file__).parents[2] / "deps" / "delta-jars.pom.xml").read_text()
    pinned = re.search(r"<delta.version>([^<]+)</delta.version>", pom)
    assert pinned is not None
    assert pinned.group(1) == version("delta-spark")


def test_pandas_is_below_3_with_pyspark_4_0():
    assert version("pyspark").startswith("4.0.")
    assert int(version("pandas").split(".")[0]) < 3


def test_null_string_survives_pandas_to_spark_and_back(spark):
    import pandas as pd

    frame = pd.DataFrame({"s": ["a", None]})
    rows = spark.createDataFrame(frame).collect()
    assert [r["s"] for r in rows] == ["a", None]
    back = spark.createDataFrame(frame).toPandas()
    assert back["s"].isna().tolist() == [False, True]


def test_extra_spark_conf_from_config_reaches_the_local_settings(tmp_path):
    config = load_config("local", [f"spark.jars_dir={tmp_path}"])
    for name in ("delta-spark_2.13-", "delta-storage-"):
        (tmp_path / f"{name}{version('delta-spark')}.jar").write_text("")
    conf = local_conf(config.spark, warehouse_dir="/w")
    assert conf["spark.sql.warehouse.dir"] == "/w"
    assert conf["spark.ui.enabled"] == "false"


def test_spark_defaults_carry_the_delta_jars_and_the_drivers_python(tmp_path):
    from scoring.core.session import write_spark_defaults

    path = write_spark_defaults(load_config("local").spark, spark_home=tmp_path)
    lines = dict(
        line.split(" ", 1) for line in path.read_text().splitlines() if not line.startswith("#")
    )
    assert path == tmp_path / "conf" / "spark-defaults.conf"
    assert [Path(j).name for j in lines["spark.jars"].split(",")] == [
        f"delta-spark_2.13-{version('delta-spark')}.jar",
        f"delta-storage-{version('delta-spark')}.jar",
    ]
    assert lines["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert lines["spark.pyspark.python"] == sys.executable
