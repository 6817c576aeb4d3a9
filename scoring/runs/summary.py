"""The end of a pipeline run, for people: a table of every step and one verdict line.

Pure functions over StepResults. The verdict is the worst of the monitored dates: `ALERT`
when a drift metric (or the share of drifted features) is at alert on any date, `warn` when
one is at warn, else `ok`; it names the features and the dates, what retraining did (a
retrained challenger, why not, or a failed retrain) and the report's path.
"""

from __future__ import annotations

from collections.abc import Sequence

from scoring.runs.result import StepResult

_HEADER = ("date", "step", "seconds", "rows in", "rows out", "quarantined", "tables written")
_TEXT_COLUMNS = (0, 1, 6)


def summary_table(results: Sequence[StepResult]) -> str:
    """One line per step run under a header, columns aligned (numbers to the right)."""
    rows = [_HEADER, *(_cells(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(width) if i in _TEXT_COLUMNS else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _cells(result: StepResult) -> tuple[str, ...]:
    return (
        result.run_date.isoformat(),
        result.step,
        f"{result.seconds:.1f}" if result.seconds is not None else "",
        _count(result.rows_in),
        _count(result.rows_out),
        _count(result.rows_quarantined),
        ", ".join(f"{t} v{v}" for t, v in result.table_versions.items()),
    )


def verdict(results: Sequence[StepResult], failure: str | None = None) -> str:
    """`verdict: ok|warn|ALERT|FAILED ...`: the worst monitored date, its features, the report."""
    reports = [str(r.details["path"]) for r in results if r.step == "report"]
    where = f"; report: {reports[-1]}" if reports else ""
    if failure is not None:
        return f"verdict: FAILED: {failure}"
    where = retrain_notes(results) + where
    monitored = [r for r in results if r.step == "monitor"]
    alerts = _by_date(monitored, "alerted_features", dataset=True)
    if alerts:
        return f"verdict: ALERT: drift alert on {alerts}{where}"
    warnings = _by_date(monitored, "warned_features", dataset=False)
    if warnings:
        return f"verdict: warn: drift warnings on {warnings}{where}"
    dates = len({r.run_date for r in monitored})
    return f"verdict: ok: no drift warning or alert on {dates} date(s){where}"


def retrain_notes(results: Sequence[StepResult]) -> str:
    """`; retrained challenger v3 on 2026-03-02; retrain FAILED on ...`: what the retrain
    steps did (scoring.runs.retrain), or nothing."""
    notes = []
    for r in results:
        if r.step != "retrain":
            continue
        details = r.details
        if details.get("failed"):
            notes.append(f"retrain FAILED on {r.run_date}: {details['failed']}")
        elif details.get("retrained"):
            notes.append(
                f"retrained {details['alias']} v{details['retrained_version']} on {r.run_date} "
                "(not promoted)"
            )
        else:
            notes.append(f"not retrained on {r.run_date}: {details.get('skipped')}")
    return "".join(f"; {n}" for n in notes)


def retrain_failed(results: Sequence[StepResult]) -> list[StepResult]:
    """The retrain steps that failed (the pipeline went on; the CLI exits 1)."""
    return [r for r in results if r.step == "retrain" and r.details.get("failed")]


def _by_date(monitored: Sequence[StepResult], key: str, dataset: bool) -> str:
    """`2026-03-05 (segment, amount_sum_7d); 2026-03-06 (...)` for the dates that have any."""
    parts = []
    for result in monitored:
        features = list(result.details.get(key) or [])
        if dataset and result.details.get("dataset_drift"):
            features.append("the share of drifted features")
        if features:
            parts.append(f"{result.run_date.isoformat()} ({', '.join(features)})")
    return "; ".join(parts)


def _count(value: int | None) -> str:
    return f"{value:,}" if value is not None else ""
