"""The profile's parsing of `jfr print` output and its grouping (pure; no JVM is profiled)."""

from __future__ import annotations

from bench.profile import categorize, parse_samples, task_breakdown, thread_group

PRINTED = """
jdk.ExecutionSample {
  startTime = 12:29:58.123
  sampledThread = "Executor task launch worker for task 0.0 in stage 5.0 (TID 12)" (javaThreadId = 81)
  state = "STATE_RUNNABLE"
  stackTrace = [
    org.apache.parquet.io.api.Binary.unsignedCompare(byte[], int) line: 104
    org.apache.parquet.column.statistics.BinaryStatistics.updateStats(Binary) line: 66
    org.apache.spark.sql.execution.python.PythonArrowOutput$$anon$1.read() line: 80
    ...
  ]
}

jdk.ExecutionSample {
  startTime = 12:29:58.133
  sampledThread = "Executor task launch worker for task 1.0 in stage 5.0 (TID 13)" (javaThreadId = 82)
  state = "STATE_RUNNABLE"
  stackTrace = [
    org.apache.arrow.vector.complex.AbstractStructVector.getChildren() line: 301
    org.apache.spark.sql.execution.arrow.ArrowWriter.sizeInBytes() line: 120
    org.apache.spark.sql.execution.arrow.ArrowWriter.write(InternalRow) line: 95
  ]
}

jdk.ExecutionSample {
  startTime = 12:29:58.143
  sampledThread = "dag-scheduler-event-loop" (javaThreadId = 40)
  state = "STATE_RUNNABLE"
  stackTrace = [
    org.apache.spark.scheduler.DAGScheduler.submitStage(Stage) line: 1
  ]
}
"""


def test_samples_are_parsed_with_their_thread_and_frames_innermost_first():
    samples = parse_samples(PRINTED)
    assert [thread[:20] for thread, _ in samples] == [
        "Executor task launch",
        "Executor task launch",
        "dag-scheduler-event-",
    ]
    assert samples[1][1] == [
        "org.apache.arrow.vector.complex.AbstractStructVector.getChildren",
        "org.apache.spark.sql.execution.arrow.ArrowWriter.sizeInBytes",
        "org.apache.spark.sql.execution.arrow.ArrowWriter.write",
    ]


def test_a_sample_counts_once_under_the_first_matching_category_of_its_whole_stack():
    # The size check sits under ArrowWriter.write: it must not count as the Arrow transfer.
    assert categorize(["x.getChildren", "a.ArrowWriter.sizeInBytes", "a.ArrowWriter.write"]) == (
        "Arrow batch size check"
    )
    assert categorize(["a.ArrowWriter.write"]) == "Arrow to Python"
    assert categorize(["java.lang.Object.wait"]) == "other"


def test_only_task_threads_are_broken_down():
    assert task_breakdown(parse_samples(PRINTED)) == {
        "Parquet string statistics": 1,
        "Arrow batch size check": 1,
    }


def test_jvm_threads_are_grouped_by_their_proc_names():
    assert thread_group("Executor task l") == "JVM task threads"
    assert thread_group("C2 CompilerThre") == "JVM JIT compiler"
    assert thread_group("G1 Conc#0") == "JVM GC"
    assert thread_group("GC Thread#1") == "JVM GC"
    assert thread_group("dispatcher-even") == "JVM other"
