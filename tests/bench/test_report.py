"""The benchmark's report and choices (pure functions; the benchmark itself never runs in
`make test`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.__main__ import END, START, check_settings, main, replace_measured
from bench.parity import ScoreParity
from bench.report import (
    SUMMARY_COLUMNS,
    growth_rows,
    parity_cell,
    parity_rows,
    shadow_rows,
    summary_rows,
)
from bench.results import ParityCheck
from bench.run import (
    Cell,
    Measurement,
    Settings,
    bench_config,
    cell_variants,
    parse_conf,
    parse_sizes,
)
from bench.tables import bench_table
from scoring.core.errors import ConfigError
from scoring.core.tables import TableRef


def measured(
    rows: int,
    variant: str,
    seconds: float,
    predict: float | None = None,
    scenario: str = "first",
    table: str = "demo",
) -> Measurement:
    return Measurement(
        rows, "few-large", "tree", variant, 0, seconds, predict, 100.0, 200.0, 1.0, table, scenario
    )


def checked(rows: int, parity: ScoreParity, rep: int = 0, scenario: str = "first") -> ParityCheck:
    return ParityCheck(rows, "demo", scenario, "few-large", "tree", rep, parity)


SAME = ScoreParity(rows=1000, unmatched=0, max_abs_diff=0.0, label_mismatches=0)


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
        {
            "table": "demo",
            "scenario": "first",
            "shape": "few-large",
            "model": "tree",
            "variant": "a",
            "rows x": "16",
            "time x": "16.0",
        }
    ]


def test_one_pass_is_set_against_the_two_models_separate_runs():
    run = [
        measured(1000, "a", 10.0),
        Measurement(1000, "few-large", "linear", "a", 0, 6.0, None, 100.0, 200.0, 1.0, "demo"),
        measured(1000, "s", 12.0),
        measured(1000, "s", 11.0),  # the best repetition counts
    ]
    assert shadow_rows(run) == [
        {
            "rows": "1,000",
            "table": "demo",
            "scenario": "first",
            "shape": "few-large",
            "one pass s": "11.0",
            "two runs s": "16.0",
            "one pass / two runs": "0.69",
        }
    ]
    assert shadow_rows(RUN) == []  # no (s) measured: no row


def test_sizes_accept_millions_and_thousands():
    assert parse_sizes("0.5M,2k,300") == (500_000, 2_000, 300)


def test_conf_splits_at_the_first_equals_sign_and_keeps_the_value_whole():
    conf = parse_conf(["spark.driver.extraJavaOptions=-Da=b -XX:+UseG1GC", " k =v"])
    assert conf == {"spark.driver.extraJavaOptions": "-Da=b -XX:+UseG1GC", "k": "v"}


@pytest.mark.parametrize("pair", ["spark.sql.shuffle.partitions", "=16", "key="])
def test_a_bad_conf_stops_the_bench_before_it_writes_anything(pair, capsys, tmp_path: Path):
    work, report = tmp_path / "work", tmp_path / "RESULTS.md"
    assert main(["--conf", pair, "--work", str(work), "--report", str(report)]) == 2
    assert f"--conf: expected KEY=VALUE, got {pair!r}" in capsys.readouterr().err
    assert not work.exists() and not report.exists()


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


def test_summary_gives_compiled_against_native_as_a_throughput_ratio():
    row = summary_rows([*RUN[:4], measured(1000, "n", 12.5)])[0]
    assert (row["n rows/s"], row["a/n thr"]) == ("80", "1.25")
    assert summary_rows(RUN)[0]["a/n thr"] == "-"


def test_summary_sets_a_time_against_the_smallest_size_of_the_same_kind():
    rows = summary_rows([*RUN, measured(4000, "a", 30.0)])
    assert [(r["rows x"], r["a time x"]) for r in rows] == [
        ("1", "1.0"),
        ("16", "16.0"),
        ("4", "3.0"),
    ]


def test_summary_keeps_tables_and_scenarios_apart():
    run = [
        measured(1000, "a", 10.0),
        measured(1000, "a", 20.0, scenario="steady"),
        measured(1000, "a", 5.0, table="float"),
    ]
    rows = summary_rows(run)
    assert [(r["table"], r["scenario"], r["a s"]) for r in rows] == [
        ("demo", "first", "10.0"),
        ("demo", "steady", "20.0"),
        ("float", "first", "5.0"),
    ]


def test_a_steady_row_takes_c_from_the_scenario_it_ran_in():
    run = [*RUN[:4], measured(1000, "a", 20.0, scenario="steady")]
    steady = summary_rows(run)[1]
    assert (steady["scenario"], steady["c rows/s"], steady["a/c thr"]) == ("steady", "200", "0.25")
    assert steady["predict s"] == "2.0"


def test_parity_cell_is_ok_with_the_largest_difference_of_every_repetition():
    close = ScoreParity(rows=1000, unmatched=0, max_abs_diff=4e-16, label_mismatches=0)
    assert parity_cell([checked(1000, SAME), checked(1000, close, rep=1)]) == "ok, max 4e-16"


def test_parity_cell_fails_with_the_numbers_of_the_failing_repetition():
    off = ScoreParity(rows=1000, unmatched=3, max_abs_diff=2.5e-9, label_mismatches=2)
    assert parity_cell([checked(1000, SAME), checked(1000, off, rep=1)]) == (
        "FAIL, 1,000 rows, 3 unmatched, max |diff| 2.5e-09, 2 labels"
    )
    assert parity_cell([]) == "-"


def test_summary_shows_the_parity_of_its_own_cell_only():
    off = ScoreParity(rows=1000, unmatched=0, max_abs_diff=1e-6, label_mismatches=0)
    rows = summary_rows(RUN, [checked(1000, SAME), checked(16000, off)])
    assert [r["compiled parity"] for r in rows] == [
        "ok, max 0",
        "FAIL, 1,000 rows, max |diff| 1e-06, 0 labels",
    ]


def test_parity_rows_list_every_repetition_with_its_verdict():
    off = ScoreParity(rows=999, unmatched=1, max_abs_diff=0.0, label_mismatches=0)
    table = parity_rows([checked(1000, SAME), checked(1000, off, rep=1)])
    assert [(r["rep"], r["rows compared"], r["unmatched"], r["within 1e-12"]) for r in table] == [
        ("0", "1,000", "0", "yes"),
        ("1", "999", "1", "**no**"),
    ]


def settings(tmp_path: Path, **changes: object) -> Settings:
    base = Settings((1000,), ("few-large",), ("tree",), 1, tmp_path, 50_000)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_settings_name_an_unknown_table_and_the_known_ones(tmp_path: Path):
    assert check_settings(settings(tmp_path)) is None
    assert check_settings(settings(tmp_path, tables=("demo", "wide"))) == (
        "--tables: unknown 'wide' (choose from demo,float)"
    )


def test_the_steady_scenario_needs_an_earlier_date(tmp_path: Path):
    problem = check_settings(settings(tmp_path, scenarios=("steady",), history=0))
    assert problem is not None and problem.startswith("--history")


def cell(scenario: str, uris: tuple[str, ...]) -> Cell:
    features = TableRef("features", path="/nowhere")
    return Cell(bench_table("demo"), features, 1000, "few-large", scenario, "tree", uris, None)


def test_c_runs_in_the_first_scenario_asked_for_and_s_only_with_a_shadow(tmp_path: Path):
    both = settings(tmp_path, scenarios=("first", "steady"))
    pair = ("models:/bench_tree/1", "models:/bench_linear/1")
    assert cell_variants(both, cell("first", pair)) == ("a", "n", "b", "c", "d", "r", "s")
    assert cell_variants(both, cell("steady", pair)) == ("a", "n", "b", "d", "r", "s")
    assert cell_variants(both, cell("first", pair[:1])) == ("a", "n", "b", "c", "d", "r")
    steady_only = settings(tmp_path, scenarios=("steady",), variants=("a", "c"))
    assert cell_variants(steady_only, cell("steady", pair)) == ("a", "c")
