"""The report's champion-vs-challenger section, from plain model_comparison and runs rows."""

from __future__ import annotations

import re
from datetime import date

from scoring.monitor.report_page import alerts, comparison_rows, render_report
from tests.monitor.report_data import DAY, RUN, plain_data

EARLIER = date(2026, 2, 28)


def _row(day, kind, metric, value, champion=None, challenger=None):
    return {"date": day, "champion_version": "1", "challenger_version": "2", "kind": kind,
            "metric": metric, "value": value, "champion_value": champion,
            "challenger_value": challenger}  # fmt: skip


COMPARISON = [
    _row(DAY, "agreement", "psi", 0.031),
    _row(DAY, "agreement", "spearman", 0.912),
    _row(DAY, "agreement", "flip_share", 0.07),
    _row(EARLIER, "agreement", "psi", 0.02),
    _row(EARLIER, "realized", "roc_auc", 0.012, 0.781, 0.793),
    _row(EARLIER, "realized", "log_loss", -0.01, 0.5, 0.49),  # not the binary headline
]
PROMOTIONS = [
    {"run_id": "promote-2", "run_date": DAY, "status": "failed", "decision": None,
     "alias": None, "version": None, "previous_version": None, "requested_by": None,
     "why": "PromotionError: promotion of m v2 to 'champion' refused: min_dates: 1 date(s)"},
]  # fmt: skip


def test_comparison_rows_pair_each_date_with_the_headline_realized_metric():
    rows = comparison_rows(plain_data(comparison=COMPARISON, task="binary"))
    assert [r["date"] for r in rows] == [DAY, EARLIER]  # newest first
    assert (rows[0]["psi"], rows[0]["spearman"], rows[0]["flip_share"]) == (0.031, 0.912, 0.07)
    assert "realized_champion" not in rows[0]  # the outcomes of DAY have not arrived
    assert (rows[1]["realized_champion"], rows[1]["realized_challenger"]) == (0.781, 0.793)
    assert rows[1]["realized_difference"] == 0.012


def test_the_page_shows_the_section_with_the_refused_promotion():
    html = render_report(plain_data(comparison=COMPARISON, promotions=PROMOTIONS, task="binary"))
    section = html[html.index('id="champion-challenger"') : html.index('id="quarantine"')]
    found = re.search(r'<tr data-date="2026-02-28".*?</tr>', section)
    assert found is not None
    row = found.group(0)
    assert "<td>v1</td><td>v2</td>" in row and "0.781" in row and "0.793" in row
    assert "min_dates: 1 date(s)" in section and 'class="failed"' in section


def test_without_comparison_rows_or_promotions_there_is_no_section():
    assert 'id="champion-challenger"' not in render_report(plain_data())


def test_promotion_decisions_are_read_from_runs_newest_first(spark, tmp_path):
    from datetime import datetime

    from scoring.core.tables import TableRef
    from scoring.monitor.report import promotions
    from scoring.runs.history import append_run, run_row
    from scoring.runs.result import StepResult

    ref = TableRef("runs", str(tmp_path / "runs"))
    first, later = datetime(2026, 3, 2, 6, 0), datetime(2026, 3, 2, 7, 0)
    refusal = "PromotionError: promotion of m v2 to 'champion' refused: max_drop: ..."
    append_run(spark, ref, run_row("tiny", "promote", DAY, "promote-1", None, first, first,
                                   None, refusal))  # fmt: skip
    checks = [{"rule": "max_drop", "passed": False, "evidence": "..."}]
    forced = StepResult("promote", "promote-2", DAY, details={
        "decision": "forced", "alias": "champion", "version": "2", "previous_version": "1",
        "requested_by": "ops", "reason": "incident 42", "evidence": {"checks": checks}})  # fmt: skip
    append_run(spark, ref, run_row("tiny", "promote", DAY, "promote-2", None, later, later,
                                   forced, None))  # fmt: skip
    got = promotions(spark, ref, "tiny")
    assert [(p["run_id"], p["status"], p["decision"]) for p in got] == [
        ("promote-2", "succeeded", "forced"),
        ("promote-1", "failed", None),
    ]
    assert got[0]["why"] == "forced past: max_drop; incident 42"
    assert got[1]["why"] == refusal


def test_a_refused_promotion_is_a_decision_listed_not_a_failed_run_alert():
    refused = RUN | {"step": "promote", "status": "failed", "run_id": "promote-2",
                     "error": "PromotionError: promotion of m v2 to 'champion' refused: min_dates"}  # fmt: skip
    broken = refused | {"run_id": "promote-3", "error": "MlflowUnreachableError: registry down"}
    found = [(a.kind, a.name, a.detail) for a in alerts(plain_data(runs=[refused, broken]))]
    assert [f for f in found if f[0] == "run"] == [
        ("run", "promote failed", "promote-3: MlflowUnreachableError: registry down")
    ]
