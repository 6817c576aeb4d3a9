from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from scoring.core.config import load_config
from scoring.core.errors import EnvironmentProblem
from scoring.core.session import (
    JOB_DESCRIPTION,
    JOB_GROUP,
    delta_jar_names,
    delta_jars,
    java_options,
    job_group,
    local_conf,
)

ROOT = Path(__file__).parents[2]
# The pairs the project tests: constraints file (lines override constraints.txt) and pom.
PAIRS = {
    "constraints.txt": "deps/delta-jars.pom.xml",
    "constraints-latest.txt": "deps/delta-jars-latest.pom.xml",
}


def installed_jar_names() -> list[tuple[str, ...]]:
    return delta_jar_names(version("delta-spark"), version("pyspark"))


def pins(constraints: str) -> dict[str, str]:
    """The versions of a pair: constraints.txt's `package==version` lines, then `constraints`'s
    (as `make setup-latest` merges them), by package name as pip compares them."""
    pinned = {}
    for path in ("constraints.txt", constraints):
        for line in (ROOT / path).read_text().splitlines():
            if "==" in line and not line.startswith("#"):
                name, value = line.split("==")
                pinned[re.sub(r"[-_.]+", "-", name.strip().lower())] = value.strip()
    return pinned


def pom_artifact(pom: str) -> tuple[str, str]:
    """The delta-spark artifact id and `delta.version` of one of our poms."""
    text = (ROOT / pom).read_text()
    artifact = re.search(r"<artifactId>(delta-spark_[^<]+)</artifactId>", text)
    pinned = re.search(r"<delta.version>([^<]+)</delta.version>", text)
    assert artifact is not None and pinned is not None, pom
    return artifact.group(1), pinned.group(1)


def test_session_uses_utc_arrow_and_few_shuffle_partitions(spark):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"


def test_session_loads_delta_from_local_jars_never_from_a_repository(spark):
    conf = spark.sparkContext.getConf()
    jars = conf.get("spark.jars").split(",")
    assert all(Path(j).is_file() for j in jars)
    assert all(Path(j).name in names for j, names in zip(jars, installed_jar_names(), strict=True))
    assert conf.get("spark.jars.packages", None) is None
    assert conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"


def test_the_local_jvm_collects_garbage_with_the_throughput_collector(spark):
    # ParallelGC's collectors are "PS Scavenge" / "PS MarkSweep"; Java 17's default, G1,
    # names its own "G1 Young Generation" / "G1 Old Generation" (finding 21 of RESULTS.md).
    jvm = spark.sparkContext._jvm
    beans = jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    names = sorted(beans.get(i).getName() for i in range(beans.size()))
    assert names == ["PS MarkSweep", "PS Scavenge"]


def test_workers_run_the_drivers_python(spark):
    assert spark.sparkContext.getConf().get("spark.pyspark.python") == sys.executable
    ran_on = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("sys").executable)
    assert ran_on.collect() == [sys.executable]


def test_each_pairs_pom_copies_the_delta_of_its_constraints_for_its_spark():
    for constraints, pom in PAIRS.items():
        pinned = pins(constraints)
        artifact, delta = pom_artifact(pom)
        assert delta == pinned["delta-spark"], pom
        spark = ".".join(pinned["pyspark"].split(".")[:2])
        assert artifact in {f"delta-spark_{spark}_2.13", "delta-spark_2.13"}, pom


def test_the_installed_pair_is_one_the_project_tests():
    tested = {(pins(c)["pyspark"], pins(c)["delta-spark"]) for c in PAIRS}
    assert (version("pyspark"), version("delta-spark")) in tested


def test_pandas_is_below_3():
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
    jars = lines["spark.jars"].split(",")
    assert all(Path(j).name in names for j, names in zip(jars, installed_jar_names(), strict=True))
    assert lines["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert lines["spark.pyspark.python"] == sys.executable
    for side in ("driver", "executor"):  # a spark-submit'd JVM gets the same flags
        flags = lines[f"spark.{side}.defaultJavaOptions"].split()
        assert {"-XX:+UseParallelGC", "-Duser.timezone=UTC"} <= set(flags)
        assert f"spark.{side}.extraJavaOptions" not in lines  # left to the user


@pytest.mark.parametrize(
    ("extra", "collector"),
    [
        ("", "-XX:+UseParallelGC"),
        ("-Xss4m", "-XX:+UseParallelGC"),
        ("-Xss4m -XX:+UseG1GC", None),
        ("-XX:+UseZGC", None),
        ("-XX:+UseGCOverheadLimit", "-XX:+UseParallelGC"),  # not a collector
    ],
)
def test_java_options_leave_out_our_collector_only_when_the_user_picks_one(extra, collector):
    flags = java_options(extra).split()
    assert flags[0] == "-Duser.timezone=UTC"
    assert flags[-1].startswith("-Dlog4j2.configurationFile=file:")
    assert [f for f in flags if f.startswith("-XX:")] == ([collector] if collector else [])


# A second JVM: the user's extraJavaOptions pick G1 and set a property; the session starts,
# keeps our UTC and log format, and runs the user's collector.
USER_JVM = """
import dataclasses, json, sys
from scoring.core.config import load_config
from scoring.core.session import build_session
config = load_config("local", ["spark.shuffle_partitions=1"])
extra = "-XX:+UseG1GC -Dscoring.probe=set-by-user"
conf = {**config.spark.conf, "spark.driver.extraJavaOptions": extra}
spark = build_session(dataclasses.replace(config.spark, conf=conf), sys.argv[1])
jvm = spark.sparkContext._jvm
beans = jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
system = jvm.java.lang.System
print(json.dumps({
    "collectors": sorted(beans.get(i).getName() for i in range(beans.size())),
    "probe": system.getProperty("scoring.probe"),
    "timezone": system.getProperty("user.timezone"),
    "log4j": system.getProperty("log4j2.configurationFile"),
}))
spark.stop()
"""


@pytest.mark.slow
def test_a_users_extra_java_options_add_to_ours_and_may_pick_the_collector(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", USER_JVM, str(tmp_path / "warehouse")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["collectors"] and all(name.startswith("G1 ") for name in seen["collectors"])
    assert seen["probe"] == "set-by-user"
    assert seen["timezone"] == "UTC"
    assert seen["log4j"].endswith("conf/log4j2.properties")


def test_delta_jar_names_carry_the_spark_version_then_the_name_without_it():
    assert delta_jar_names("4.4.0", "4.2.0") == [
        ("delta-spark_4.2_2.13-4.4.0.jar", "delta-spark_2.13-4.4.0.jar"),
        ("delta-storage-4.4.0.jar",),
    ]
    assert delta_jar_names("4.0.1", "4.0.1")[0] == (
        "delta-spark_4.0_2.13-4.0.1.jar",
        "delta-spark_2.13-4.0.1.jar",
    )


@pytest.mark.parametrize("choice", [0, 1], ids=["with-spark-version", "without-spark-version"])
def test_delta_jars_finds_the_delta_spark_jar_under_either_name(tmp_path, choice):
    spark_names, (storage,) = installed_jar_names()
    for name in (spark_names[choice], storage):
        (tmp_path / name).write_text("")
    assert delta_jars(str(tmp_path)) == [tmp_path / spark_names[choice], tmp_path / storage]


def test_delta_jars_prefer_the_name_with_the_spark_version(tmp_path):
    spark_names, (storage,) = installed_jar_names()
    for name in (*spark_names, storage):
        (tmp_path / name).write_text("")
    assert delta_jars(str(tmp_path))[0] == tmp_path / spark_names[0]


def test_delta_jar_of_another_delta_version_is_not_taken(tmp_path):
    spark_names, (storage,) = delta_jar_names("0.0.1", version("pyspark"))
    for name in (*spark_names, storage):
        (tmp_path / name).write_text("")
    with pytest.raises(EnvironmentProblem, match="Delta jar missing"):
        delta_jars(str(tmp_path))


def test_a_job_group_labels_the_jobs_of_its_block_and_is_cleared_even_after_an_error(spark):
    context, tracker = spark.sparkContext, spark.sparkContext.statusTracker()
    with pytest.raises(ValueError), job_group(spark, "nightly scoring", "score churn 2026-12-01"):
        spark.range(3).count()
        seen = (context.getLocalProperty(JOB_GROUP), context.getLocalProperty(JOB_DESCRIPTION))
        jobs = sorted(tracker.getJobIdsForGroup("nightly scoring"))
        raise ValueError("the step failed")
    assert seen == ("nightly scoring", "score churn 2026-12-01")
    assert context.getLocalProperty(JOB_GROUP) is None
    assert context.getLocalProperty(JOB_DESCRIPTION) is None
    spark.range(3).count()  # after the block: in no group
    assert jobs and sorted(tracker.getJobIdsForGroup("nightly scoring")) == jobs
