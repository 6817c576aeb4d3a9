"""The benchmark's report (pure functions; the benchmark itself never runs in `make test`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import END, START, replace_measured
from bench.report import SUMMARY_COLUMNS, growth_rows, shadow_rows, summary_rows
from bench.run import Measurement, bench_config, parse_sizes
from scoring.core.errors import ConfigError


def measured(rows: int, variant: str, seconds: float, predict: float | None = None) -> Measurement:
    return Measurement(rows, "few-large", "tree", variant, 0, seconds, predict, 100.0, 200.0, 1.0)


RUN = [
    measured(1000, "a", 10.0),
    measured(1000, "b", 15.0),
    measured(1000, "c", 5.0, predict=2.0),
    measured(1000, "d", 6.0),
    measured(16000, "a", 160.0),
]


def test_summary_has_one_row_per_size_shape_and_model_with_every_column():
    table = summary_rows(RUN)
    assert [tuple(row) for row in table] == [SUMMARY_COLUMNS, SUMMARY_COLUMNS]
    assert [row["rows"] for row in table] == ["1,000", "16,000"]


def test_summary_ratios_are_throughput_for_b_and_c_and_time_against_floor_plus_predict():
    row = summary_rows(RUN)[0]
    assert (row["a/b thr"], row["a/c thr"], row["a/(d+p) time"]) == ("1.50", "0.50", "1.25")


def test_summary_marks_variants_that_were_not_measured():
    row = summary_rows(RUN)[1]
    assert (row["a rows/s"], row["b rows/s"], row["a/b thr"]) == ("100", "-", "-")


def test_growth_compares_the_largest_and_smallest_size():
    assert growth_rows(RUN) == [
        {"shape": "few-large", "model": "tree", "variant": "a", "rows x": "16", "time x": "16.0"}
    ]


def test_one_pass_is_set_against_the_two_models_separate_runs():
    run = [
        measured(1000, "a", 10.0),
        Measurement(1000, "few-large", "linear", "a", 0, 6.0, None, 100.0, 200.0, 1.0),
        measured(1000, "s", 12.0),
        measured(1000, "s", 11.0),  # the best repetition counts
    ]
    assert shadow_rows(run) == [
        {
            "rows": "1,000",
            "shape": "few-large",
            "one pass s": "11.0",
            "two runs s": "16.0",
            "one pass / two runs": "0.69",
        }
    ]
    assert shadow_rows(RUN) == []  # no (s) measured: no row


def test_sizes_accept_millions_and_thousands():
    assert parse_sizes("0.5M,2k,300") == (500_000, 2_000, 300)


def test_report_keeps_the_written_text_around_the_measured_block(tmp_path: Path):
    report = tmp_path / "RESULTS.md"
    report.write_text(f"intro\n{START}\nold\n{END}\nfindings\n", encoding="utf-8")
    replace_measured(report, "new\n")
    assert report.read_text(encoding="utf-8") == f"intro\n{START}\nnew\n{END}\nfindings\n"


def test_bench_batch_size_defaults_to_the_score_steps_setting(tmp_path: Path) -> None:
    assert bench_config(tmp_path).scoring.batch_size == 50_000  # conf/base.yaml
    assert bench_config(tmp_path, 20_000).scoring.batch_size == 20_000


def test_a_bench_batch_size_below_one_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"scoring\.batch_size"):
        bench_config(tmp_path, 0)


def test_summary_gives_the_cost_of_reason_codes_as_r_time_over_a():
    row = summary_rows([*RUN[:4], measured(1000, "r", 13.0)])[0]
    assert (row["r rows/s"], row["r/a time"]) == ("77", "1.30")
    assert summary_rows(RUN)[0]["r/a time"] == "-"
