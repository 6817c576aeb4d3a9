"""The closing summary of a test run names each failure with its causes, without frames."""

from __future__ import annotations

from tests.summary import LIMIT, summary_message

# What Py4J raises when a Spark write fails: the Java exception with its frames and cause.
JAVA_FAILURE = (
    "An error occurred while calling o85.save.\n"
    ": org.apache.spark.SparkException: Job aborted.\n"
    "\tat org.apache.spark.sql.errors.QueryExecutionErrors$.jobAbortedError(QueryExecutionErrors.scala:651)\n"
    "\tat org.apache.spark.util.LazyTry.tryT(LazyTry.scala:46)\n"
    "\t... 27 more\n"
    "\n"
    "Caused by: java.io.IOException: No space left on device\n"
    "\tat java.base/java.io.FileOutputStream.writeBytes(Native Method)\n"
)
ONE_LINE = (
    "An error occurred while calling o85.save. | : org.apache.spark.SparkException: Job "
    "aborted. | Caused by: java.io.IOException: No space left on device"
)


def test_a_java_failure_keeps_its_exceptions_and_causes_on_one_line():
    assert summary_message(JAVA_FAILURE) == ONE_LINE


def test_a_plain_message_is_kept_and_a_long_one_is_cut_at_the_limit():
    assert summary_message("assert 2 == 3") == "assert 2 == 3"
    cut = summary_message("x" * 1000)
    assert cut == "x" * (LIMIT - 3) + "..." and len(cut) == LIMIT


def test_the_runs_closing_summary_ends_with_each_failure_on_one_line(pytester, monkeypatch):
    monkeypatch.setenv("CI", "true")  # where pytest writes whole messages into the summary
    pytester.makepyfile(
        test_jvm=f"""
        import pytest

        FAILURE = {JAVA_FAILURE!r}

        @pytest.fixture
        def table():
            raise RuntimeError(FAILURE)

        def test_write():
            raise RuntimeError(FAILURE)

        def test_read(table):
            pass
        """
    )
    result = pytester.runpytest("-p", "tests.summary", "-ra")
    *failures, totals = result.stdout.lines[-3:]
    assert sorted(failures) == [
        f"ERROR test_jvm.py::test_read - RuntimeError: {ONE_LINE}",
        f"FAILED test_jvm.py::test_write - RuntimeError: {ONE_LINE}",
    ]
    assert "1 failed, 1 error" in totals
    # The failures section above the summary still prints the frames.
    assert any("LazyTry.tryT(LazyTry.scala:46)" in line for line in result.stdout.lines)
