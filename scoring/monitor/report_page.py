"""The monitoring report's HTML and PNG charts, from plain data (no Spark, no I/O).

Charts are drawn with matplotlib's Agg backend (no display needed) and embedded as base64
`data:` URIs, so the page is one self-contained file that can be mailed or archived.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot as plt

SCORE_BINS = 20
_STYLE = """
body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
.alert{background:#f8d7da;font-weight:bold}.warn{background:#fff3cd}.ok{color:#155724}
.failed,.killed{background:#f8d7da}.running{background:#e7f1ff}.note{color:#666;font-style:italic}img{max-width:100%}
"""


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows, already aggregated (each list is small)."""

    usecase: str
    run_date: date
    model_name: str
    model_version: str | None
    drift: Sequence[Mapping[str, Any]]
    output: str
    output_range: tuple[float, float]
    output_current: Sequence[int]
    output_baseline: Sequence[int] | None
    quarantine: Sequence[Mapping[str, Any]] | None
    runs: Sequence[Mapping[str, Any]]
    notes: Sequence[str] = field(default_factory=tuple)


def render_report(data: ReportData) -> str:
    """The whole page as one HTML string."""
    title = (
        f"Scoring monitor: {data.usecase}, {data.model_name} v{data.model_version or '?'} "
        f"on {data.run_date}"
    )
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>",
        *(f"<p class='note'>{_e(n)}</p>" for n in data.notes),
        _verdict(data.drift),
        f"<h2>Distribution of {_e(data.output)}</h2>",
        _img(
            output_chart(data.output, data.output_range, data.output_current, data.output_baseline),
            f"{data.output} distribution",
        ),
        "<h2>PSI per feature (vs training baseline)</h2>",
        _img(psi_chart(data.drift), "PSI per feature") if _psi(data.drift) else "",
        _drift_table(data.drift),
        "<h2>Quarantine</h2>",
        _quarantine_table(data.quarantine),
        "<h2>Run history</h2>",
        _table(
            [
                "run_id",
                "step",
                "run_date",
                "status",
                "started_at",
                "ended_at",
                "rows_in",
                "rows_out",
                "error",
            ],
            data.runs,
            row_class="status",
        ),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def output_chart(
    output: str,
    span: tuple[float, float],
    current: Sequence[int],
    baseline: Sequence[int] | None,
) -> bytes:
    """Share of rows per bin (1/20 of the span): the run date against the baseline."""
    low, high = span
    width = (high - low) / SCORE_BINS
    edges = [low + i * width for i in range(SCORE_BINS)]
    figure, axis = plt.subplots(figsize=(7, 3.2))
    if baseline is not None:
        axis.bar(
            edges,
            _share(baseline),
            width=width,
            align="edge",
            alpha=0.45,
            label="training baseline",
            color="#888888",
        )
    axis.step(
        [*edges, high],
        [*_share(current), 0.0],
        where="post",
        color="#c0392b",
        label="run date",
        linewidth=2,
    )
    axis.set_xlabel("score (probability)" if output == "score" else output)
    axis.set_ylabel("share of rows")
    axis.legend()
    return _png(figure)


def psi_chart(drift: Sequence[Mapping[str, Any]]) -> bytes:
    """Horizontal PSI bars per feature with the warn and alert thresholds as lines."""
    rows = sorted(_psi(drift), key=lambda r: r["value"])
    colors = {"ok": "#5b9b5b", "warn": "#e0a800", "alert": "#c0392b"}
    figure, axis = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    axis.barh(
        [r["feature"] for r in rows],
        [r["value"] for r in rows],
        color=[colors[r["status"]] for r in rows],
    )
    warn = max((r["threshold_warn"] or 0.0) for r in rows)
    alert = max((r["threshold_alert"] or 0.0) for r in rows)
    axis.axvline(warn, color="#e0a800", linestyle="--", label=f"warn {warn:g}")
    axis.axvline(alert, color="#c0392b", linestyle="--", label=f"alert {alert:g}")
    axis.set_xlabel("PSI")
    axis.legend(loc="lower right")
    return _png(figure)


def _verdict(drift: Sequence[Mapping[str, Any]]) -> str:
    alerts = [r for r in drift if r["status"] == "alert" and r["feature"] != "__dataset__"]
    dataset = [r for r in drift if r["metric"] == "drifted_share" and r["status"] == "alert"]
    if not drift:
        return "<p class='note'>No drift metrics for this date: run `scoring monitor` first.</p>"
    verdict = "DATASET DRIFT" if dataset else ("drift alerts" if alerts else "no drift alert")
    names = sorted({r["feature"] for r in alerts})
    listed = f": {_e(', '.join(names))}" if names else ""
    css = "alert" if alerts or dataset else "ok"
    return f"<p class='{css}'>Verdict: {verdict}{listed}</p>"


def _drift_table(drift: Sequence[Mapping[str, Any]]) -> str:
    keep = [
        r
        for r in drift
        if r["metric"]
        in (
            "psi",
            "ks",
            "js_distance",
            "null_rate_change",
            "row_count",
            "row_count_change",
            "drifted_share",
        )
    ]
    ordered = sorted(keep, key=lambda r: (r["comparison"], r["feature"], r["metric"]))
    columns = [
        "comparison",
        "feature",
        "metric",
        "value",
        "threshold_warn",
        "threshold_alert",
        "status",
    ]
    return _table(columns, ordered, row_class="status")


def _quarantine_table(rows: Sequence[Mapping[str, Any]] | None) -> str:
    if rows is None:
        return "<p class='note'>No quarantine table: nothing was quarantined yet.</p>"
    if not rows:
        return "<p>No rows quarantined for this delivery date.</p>"
    return _table(["source", "reason", "rows"], rows)


def _table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], row_class: str = "") -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for row in rows:
        css = f" class='{_e(str(row[row_class]))}'" if row_class else ""
        cells = "".join(f"<td>{_e(_fmt(row[c]))}</td>" for c in columns)
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _psi(drift: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in drift if r["metric"] == "psi" and r["comparison"] == "baseline"]


def _share(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def _img(png: bytes, alt: str) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{encoded}'>"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _e(text: str) -> str:
    return html.escape(text, quote=True)
