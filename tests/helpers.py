"""Test helpers used everywhere, so every DataFrame comparison has the same settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import count

from chispa import assert_df_equality
from prometheus_client.parser import text_string_to_metric_families
from pyspark.sql import DataFrame, SparkSession


def assert_frames_equal(actual: DataFrame, expected: DataFrame) -> None:
    """chispa equality with the project's one setting: row order, nullability and column
    metadata (a table's column comments) ignored; column order and values compared."""
    assert_df_equality(
        actual,
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
        ignore_column_order=False,
        ignore_metadata=True,
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition text, read with prometheus_client's parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    """A sample's labels as `samples` keys them."""
    return tuple(sorted(values.items()))


_APPENDERS = count()


@contextmanager
def jvm_log(spark: SparkSession, logger: str) -> Iterator[Callable[[], str]]:
    """What the JVM logger `logger` (a class name) logs at INFO and above inside the block.

    Local mode runs the executors in the driver's JVM, so this sees what tasks log. Yields a
    function that returns the messages so far, one per line. After the block the logger
    takes its parent's configuration again.
    """
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    log4j = jvm.org.apache.logging.log4j
    context = log4j.LogManager.getContext(False)
    config = context.getConfiguration()
    text = jvm.java.io.StringWriter()
    layout = log4j.core.layout.PatternLayout.newBuilder().withPattern("%m%n").build()
    name = f"test-capture-{next(_APPENDERS)}"
    appender = log4j.core.appender.WriterAppender.createAppender(
        layout, None, text, name, False, True
    )
    appender.start()
    logger_config = log4j.core.config.LoggerConfig(logger, log4j.Level.INFO, False)
    logger_config.addAppender(appender, None, None)
    config.addLogger(logger, logger_config)
    context.updateLoggers()
    try:
        yield lambda: str(text.toString())
    finally:
        config.removeLogger(logger)
        context.updateLoggers()
        appender.stop()
