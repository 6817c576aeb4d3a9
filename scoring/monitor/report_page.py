"""The monitoring report's HTML and PNG charts, from plain data (no Spark, no I/O).

The page is the Jinja2 template `templates/report.html.j2` (autoescaped); charts are drawn
with matplotlib's Agg backend (no display needed) and embedded as base64 `data:` URIs, and
the few lines of JavaScript that sort the metric table are inline, so the page is one
self-contained file that can be mailed or archived and needs no network.

Order of the page: alerts and a one-paragraph verdict (with what retraining did on the date);
trends over the scored dates; the
baseline-vs-run-date distributions of every flagged feature and of the model's output;
calibration; champion vs challenger (when `model_comparison` has rows) and the latest
promotion decisions; quarantine and run history; the full metric table (sortable).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Any

import jinja2
import matplotlib

matplotlib.use("Agg")
from matplotlib import dates as mdates
from matplotlib import pyplot as plt

SCORE_BINS = 20
TEMPLATE = "report.html.j2"
# The headline quality metric per task (the verdict names it), then the others drawn.
QUALITY_METRICS = {
    "binary": ("roc_auc", "f1", "brier", "positive_rate"),
    "multiclass": ("accuracy", "macro_f1", "log_loss"),
    "regression": ("mae", "rmse", "r2"),
}
_SEVERITY = {"alert": 2, "warn": 1, "ok": 0}
_COLORS = {"ok": "#5b9b5b", "warn": "#e0a800", "alert": "#c0392b"}


@dataclass(frozen=True)
class Distribution:
    """A feature's rows per bucket (the buckets of its PSI) in the baseline and on the date."""

    feature: str
    status: str
    psi: float | None
    buckets: Sequence[str]
    baseline: Sequence[int]
    current: Sequence[int]


@dataclass(frozen=True)
class Calibration:
    """Observed outcome rate against mean score per score bin (bins with rows only)."""

    name: str
    n: Sequence[int]
    mean_score: Sequence[float]
    outcome_rate: Sequence[float]


@dataclass(frozen=True)
class Alert:
    """One line of the alerts list."""

    level: str  # warn or alert
    kind: str  # drift, quality, quarantine, run
    name: str
    detail: str


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
    task: str = "binary"
    # (date, feature, value): baseline PSI of the run date's top features over the window.
    psi_trend: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    # (date, rows, mean, p10, p50, p90) of the model's output per scored date.
    output_trend: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    # (date, rows_in, rows_quarantined) of each delivery date's latest ingest run.
    ingest_trend: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    # model_quality rows of the window; None when the table does not exist.
    quality: Sequence[Mapping[str, Any]] | None = None
    distributions: Sequence[Distribution] = field(default_factory=tuple)
    calibration: Sequence[Calibration] = field(default_factory=tuple)
    # The succeeded `retrain` runs of the run date (scoring.runs.retrain): their notes say
    # what was retrained and why, or why not.
    retrains: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    # model_comparison rows of the window (champion vs challenger); None: no such table.
    comparison: Sequence[Mapping[str, Any]] | None = None
    # The latest `promote` runs (newest first), with their parsed details.
    promotions: Sequence[Mapping[str, Any]] = field(default_factory=tuple)


def render_report(data: ReportData) -> str:
    """The whole page as one HTML string."""
    today_quality = _quality_today(data)
    context = {
        "title": (
            f"Scoring monitor: {data.usecase}, {data.model_name} "
            f"v{data.model_version or '?'} on {data.run_date}"
        ),
        "data": data,
        "alerts": alerts(data),
        "verdict": verdict(data),
        "charts": _charts(data),
        "drift_present": bool(data.drift),
        "quality_present": bool(data.quality),
        "metrics": metric_rows(data.drift, today_quality),
        "comparison": comparison_rows(data),
        "headline": QUALITY_METRICS.get(data.task, ("",))[0],
        "run_columns": [
            "run_id",
            "step",
            "run_date",
            "status",
            "started_at",
            "ended_at",
            "rows_in",
            "rows_out",
            "error",
            "warnings",
        ],
        "fmt": _fmt,
    }
    return _environment().get_template(TEMPLATE).render(**context)


def alerts(data: ReportData) -> list[Alert]:
    """What needs a look, the alerts first: drift, quality, failed or killed runs, quarantine."""
    found: list[Alert] = []
    for feature, rows in _by_feature(data.drift).items():
        worst = max(rows, key=lambda r: _SEVERITY[r["status"]])
        if worst["status"] == "ok":
            continue
        hits = ", ".join(
            f"{r['metric']} {_fmt(r['value'])} vs {r['comparison']}"
            for r in rows
            if r["status"] != "ok"
        )
        name = "dataset drift" if feature == "__dataset__" else feature
        found.append(Alert(worst["status"], "drift", name, hits))
    for r in _quality_today(data):
        if r["status"] != "ok":
            baseline = r.get("baseline_value")
            against = f" (baseline {_fmt(baseline)})" if baseline is not None else ""
            found.append(
                Alert(
                    r["status"],
                    "quality",
                    f"{r['kind']} {r['metric']}",
                    f"{_fmt(r['value'])}{against} for as-of date {r['date']}",
                )
            )
    for r in data.runs:
        if _refused_promotion(r):
            continue  # a decision by the rules, not a broken run: the promotions list shows it
        if r["status"] in ("failed", "killed") and r.get("run_date") == data.run_date:
            found.append(
                Alert("alert", "run", f"{r['step']} {r['status']}", f"{r['run_id']}: {r['error']}")
            )
    if data.quarantine:
        share = _quarantine_share(data)
        reasons = sorted({str(r["reason"]) for r in data.quarantine if r["reason"]})
        detail = f"reasons {', '.join(reasons)}" + (
            f"; {share:.1%} of the rows delivered" if share is not None else ""
        )
        sources = sorted({str(r["source"]) for r in data.quarantine or ()})
        found.append(Alert("warn", "quarantine", ", ".join(sources), detail))
    return sorted(found, key=lambda a: (-_SEVERITY[a.level], a.kind, a.name))


def verdict(data: ReportData) -> tuple[str, str]:
    """(level, paragraph): the one paragraph a reader needs, its level the worst alert's."""
    found = alerts(data)
    level = max((a.level for a in found), key=lambda s: _SEVERITY[s], default="ok")
    sentences = []
    volume = {r["date"]: r["rows"] for r in data.output_trend}
    if data.run_date in volume:
        earlier = [d for d in volume if d < data.run_date]
        change = ""
        if earlier and volume[max(earlier)]:
            ratio = volume[data.run_date] / volume[max(earlier)] - 1
            change = f" ({ratio:+.0%} on {max(earlier)})"
        sentences.append(
            f"On {data.run_date}, {data.model_name} v{data.model_version or '?'} scored "
            f"{volume[data.run_date]:,} rows{change}."
        )
    if not data.drift:
        sentences.append("No drift metrics for this date: run `scoring monitor` first.")
    else:
        dataset = [
            r for r in data.drift if r["metric"] == "drifted_share" and r["status"] == "alert"
        ]
        drift_alerts = sorted({a.name for a in found if a.kind == "drift" and a.level == "alert"})
        drift_warns = sorted({a.name for a in found if a.kind == "drift" and a.level == "warn"})
        if dataset:
            sentences.append("DATASET DRIFT: a large share of the features moved.")
        if drift_alerts:
            sentences.append(f"Drift alerts: {', '.join(drift_alerts)}.")
        if drift_warns:
            sentences.append(f"Drift warnings: {', '.join(drift_warns)}.")
        if not (dataset or drift_alerts or drift_warns):
            sentences.append("No drift alert: the inputs look like the training baseline.")
    sentences.append(_quality_sentence(data))
    share = _quarantine_share(data)
    if share is not None:
        sentences.append(f"{share:.1%} of the rows delivered on {data.run_date} were quarantined.")
    failing = [a for a in found if a.kind == "run"]
    if failing:
        sentences.append(f"{len(failing)} step run(s) of this date failed or were killed.")
    sentences += retrain_sentences(data.retrains)
    return level, " ".join(s for s in sentences if s)


def retrain_sentences(retrains: Sequence[Mapping[str, Any]]) -> list[str]:
    """`Retrained challenger v3 on the features of ... because ....`: the note of each
    succeeded retrain run of the date (a failed one is among the alerts, as any failed run)."""
    sentences = []
    for r in retrains:
        for note in r.get("warnings") or ():
            text = str(note).rstrip(".")
            sentences.append(f"{text[:1].upper()}{text[1:]}.")
    return sentences


def metric_rows(
    drift: Sequence[Mapping[str, Any]], quality: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Every drift and quality metric of the date as one table, the worst status first."""
    rows = [
        {
            "source": "drift",
            "date": r["date"],
            "comparison": r["comparison"],
            "feature": r["feature"],
            "metric": r["metric"],
            "value": r["value"],
            "baseline": None,
            "threshold_warn": r["threshold_warn"],
            "threshold_alert": r["threshold_alert"],
            "status": r["status"],
        }
        for r in drift
    ] + [
        {
            "source": "quality",
            "date": r["date"],
            "comparison": r["kind"],
            "feature": "",
            "metric": r["metric"],
            "value": r["value"],
            "baseline": r.get("baseline_value"),
            "threshold_warn": r.get("threshold_warn"),
            "threshold_alert": r.get("threshold_alert"),
            "status": r["status"],
        }
        for r in quality
    ]
    return sorted(
        rows,
        key=lambda r: (
            -_SEVERITY[r["status"]],
            r["source"],
            r["comparison"],
            r["feature"],
            r["metric"],
        ),
    )


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
    figure, axis = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    axis.barh(
        [r["feature"] for r in rows],
        [r["value"] for r in rows],
        color=[_COLORS[r["status"]] for r in rows],
    )
    warn = max((r["threshold_warn"] or 0.0) for r in rows)
    alert = max((r["threshold_alert"] or 0.0) for r in rows)
    axis.axvline(warn, color="#e0a800", linestyle="--", label=f"warn {warn:g}")
    axis.axvline(alert, color="#c0392b", linestyle="--", label=f"alert {alert:g}")
    axis.set_xlabel("PSI")
    axis.legend(loc="lower right")
    return _png(figure)


def psi_trend_chart(trend: Sequence[Mapping[str, Any]], warn: float, alert: float) -> bytes:
    """One line per top feature: its PSI against the baseline per scored date."""
    figure, axis = plt.subplots(figsize=(7, 3.2))
    for feature in dict.fromkeys(r["feature"] for r in trend):
        points = [r for r in trend if r["feature"] == feature]
        axis.plot(
            [r["date"] for r in points], [r["value"] for r in points], marker="o", label=feature
        )
    if warn:
        axis.axhline(warn, color="#e0a800", linestyle="--", linewidth=1)
    if alert:
        axis.axhline(alert, color="#c0392b", linestyle="--", linewidth=1)
    axis.set_ylabel("PSI vs baseline")
    axis.legend(fontsize="small")
    _date_axis(axis, [r["date"] for r in trend])
    return _png(figure)


def output_trend_chart(output: str, trend: Sequence[Mapping[str, Any]]) -> bytes:
    """The output's mean and its 10-90 % band (median dotted) per scored date."""
    dates = [r["date"] for r in trend]
    figure, axis = plt.subplots(figsize=(7, 3.2))
    axis.fill_between(
        dates,
        [_num(r["p10"]) for r in trend],
        [_num(r["p90"]) for r in trend],
        color="#c0392b",
        alpha=0.15,
        label="10-90 %",
    )
    axis.plot(dates, [_num(r["p50"]) for r in trend], ":", color="#c0392b", label="median")
    axis.plot(dates, [_num(r["mean"]) for r in trend], "-o", color="#c0392b", label="mean")
    axis.set_ylabel(output)
    axis.legend(fontsize="small")
    _date_axis(axis, dates)
    return _png(figure)


def volume_chart(
    output_trend: Sequence[Mapping[str, Any]], ingest_trend: Sequence[Mapping[str, Any]]
) -> bytes:
    """Rows scored per date (bars) and the share of delivered rows quarantined (line)."""
    figure, axis = plt.subplots(figsize=(7, 3.2))
    if output_trend:
        axis.bar(
            [r["date"] for r in output_trend],
            [r["rows"] for r in output_trend],
            color="#8aa9c9",
            label="rows scored",
        )
    axis.set_ylabel("rows scored")
    shares = [
        (r["date"], r["rows_quarantined"] / r["rows_in"])
        for r in ingest_trend
        if r["rows_in"] and r["rows_quarantined"] is not None
    ]
    if shares:
        twin = axis.twinx()
        twin.plot([d for d, _ in shares], [s for _, s in shares], "-o", color="#c0392b")
        twin.set_ylabel("share quarantined", color="#c0392b")
        twin.set_ylim(bottom=0)
    _date_axis(axis, [r["date"] for r in (*output_trend, *ingest_trend)])
    return _png(figure)


def quality_chart(
    quality: Sequence[Mapping[str, Any]], metrics: Sequence[str]
) -> tuple[bytes, list[str]]:
    """One panel per metric: estimated (line) and realized (dots) per as-of date, the
    baseline dashed. Returns the PNG and the metrics drawn."""
    drawn = [m for m in metrics if any(r["metric"] == m for r in quality)]
    figure, axes = plt.subplots(1, len(drawn), figsize=(3.4 * len(drawn) + 0.6, 3.0))
    panels = axes if len(drawn) > 1 else [axes]
    for axis, metric in zip(panels, drawn, strict=True):
        for kind, style in (("estimated", "-"), ("realized", "o")):
            points = [r for r in quality if r["metric"] == metric and r["kind"] == kind]
            if points:
                axis.plot(
                    [r["date"] for r in points],
                    [r["value"] for r in points],
                    style,
                    color="#2c6fbb" if kind == "estimated" else "#c0392b",
                    label=kind,
                )
        baseline = [r["baseline_value"] for r in quality if r["metric"] == metric]
        if baseline and baseline[-1] is not None:
            axis.axhline(baseline[-1], color="#888888", linestyle="--", label="baseline")
        axis.set_title(metric)
        _date_axis(axis, [r["date"] for r in quality if r["metric"] == metric])
    panels[0].legend(fontsize="small")
    return _png(figure), drawn


def distribution_chart(distribution: Distribution) -> bytes:
    """Share of rows per bucket: baseline (grey) and run date (coloured by status)."""
    positions = list(range(len(distribution.buckets)))
    figure, axis = plt.subplots(figsize=(4.6, 2.8))
    axis.bar(
        [p - 0.2 for p in positions],
        _share(distribution.baseline),
        width=0.4,
        color="#999999",
        label="baseline",
    )
    axis.bar(
        [p + 0.2 for p in positions],
        _share(distribution.current),
        width=0.4,
        color=_COLORS[distribution.status],
        label="run date",
    )
    axis.set_xticks(positions, distribution.buckets, rotation=60, ha="right", fontsize="x-small")
    axis.set_ylabel("share of rows")
    psi = f", PSI {distribution.psi:.3g}" if distribution.psi is not None else ""
    axis.set_title(f"{distribution.feature}{psi}", fontsize="medium")
    axis.legend(fontsize="x-small")
    return _png(figure)


def calibration_chart(curves: Sequence[Calibration]) -> bytes:
    """Observed outcome rate against mean score per bin, the diagonal for perfect calibration."""
    figure, axis = plt.subplots(figsize=(4.6, 4.0))
    axis.plot([0, 1], [0, 1], "--", color="#888888", label="perfectly calibrated")
    for curve in curves:
        axis.plot(curve.mean_score, curve.outcome_rate, "-o", label=curve.name)
    axis.set_xlabel("mean score of the bin")
    axis.set_ylabel("share of positive outcomes")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.legend(fontsize="small")
    return _png(figure)


def _charts(data: ReportData) -> dict[str, Any]:
    """The page's PNGs as data URIs (absent when there is nothing to draw)."""
    names = ("psi_trend", "output_trend", "volume", "quality", "psi", "calibration")
    charts: dict[str, Any] = dict.fromkeys(names)
    psi_rows = _psi(data.drift)
    if data.psi_trend:
        warn = max((r["threshold_warn"] or 0.0) for r in psi_rows) if psi_rows else 0.0
        alert = max((r["threshold_alert"] or 0.0) for r in psi_rows) if psi_rows else 0.0
        charts["psi_trend"] = _uri(psi_trend_chart(data.psi_trend, warn, alert))
    if data.output_trend:
        charts["output_trend"] = _uri(output_trend_chart(data.output, data.output_trend))
    if data.output_trend or data.ingest_trend:
        charts["volume"] = _uri(volume_chart(data.output_trend, data.ingest_trend))
    if data.quality:
        png, drawn = quality_chart(data.quality, QUALITY_METRICS.get(data.task, ()))
        if drawn:
            charts["quality"] = _uri(png)
    charts["output"] = _uri(
        output_chart(data.output, data.output_range, data.output_current, data.output_baseline)
    )
    if psi_rows:
        charts["psi"] = _uri(psi_chart(data.drift))
    charts["distributions"] = [(d, _uri(distribution_chart(d))) for d in data.distributions]
    if data.calibration:
        charts["calibration"] = _uri(calibration_chart(data.calibration))
    return charts


def comparison_rows(data: ReportData) -> list[dict[str, Any]]:
    """One row per (date, champion, challenger) of `model_comparison`, newest date first:
    the agreement metrics and the task's headline realized metric side by side (blank
    until the outcomes of that date arrived)."""
    headline = QUALITY_METRICS.get(data.task, ("",))[0]
    rows: dict[tuple[Any, str, str], dict[str, Any]] = {}
    for r in data.comparison or ():
        key = (r["date"], str(r["champion_version"]), str(r["challenger_version"]))
        row = rows.setdefault(key, {"date": key[0], "champion": key[1], "challenger": key[2]})
        if r["kind"] == "agreement":
            row[r["metric"]] = r["value"]
        elif r["metric"] == headline:
            row["realized_champion"] = r["champion_value"]
            row["realized_challenger"] = r["challenger_value"]
            row["realized_difference"] = r["value"]
    return sorted(rows.values(), key=lambda r: (r["date"], r["challenger"]), reverse=True)


def _date_axis(axis: Any, dates: Sequence[date]) -> None:
    """Month-day tick labels: every date when there are few, else matplotlib's choice."""
    distinct = sorted(set(dates))
    if 0 < len(distinct) <= 12:
        axis.set_xticks(distinct)
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    axis.tick_params(axis="x", labelrotation=45, labelsize="small")


def _quality_today(data: ReportData) -> list[Mapping[str, Any]]:
    """The estimated rows of the run date and the realized rows of the latest as-of date
    with outcomes (realized quality lags by the outcome delay)."""
    rows = data.quality or ()
    estimated = [r for r in rows if r["kind"] == "estimated" and r["date"] == data.run_date]
    labelled = [r["date"] for r in rows if r["kind"] == "realized" and r["metric"] != "coverage"]
    realized = [
        r for r in rows if r["kind"] == "realized" and labelled and r["date"] == max(labelled)
    ]
    return [*estimated, *realized]


def _quality_sentence(data: ReportData) -> str:
    if data.quality is None:
        return "No quality metrics yet (no model_quality table: run `scoring quality`)."
    headline = QUALITY_METRICS.get(data.task, ("",))[0]
    parts = []
    for r in _quality_today(data):
        if r["metric"] == headline:
            baseline = r.get("baseline_value")
            against = f" against {_fmt(baseline)} on the baseline" if baseline is not None else ""
            parts.append(
                f"{r['kind']} {headline} {_fmt(r['value'])}{against} "
                f"(as-of {r['date']}, {r['status']})"
            )
    if not parts:
        return f"No quality metrics for {data.run_date} yet."
    return "Quality: " + "; ".join(parts) + "."


def _refused_promotion(run: Mapping[str, Any]) -> bool:
    """A `promote` run the rules refused (`PromotionError`), as opposed to one that broke."""
    return run["step"] == "promote" and str(run.get("error") or "").startswith("PromotionError")


def _quarantine_share(data: ReportData) -> float | None:
    for r in data.ingest_trend:
        if r["date"] == data.run_date and r["rows_in"] and r["rows_quarantined"] is not None:
            return float(r["rows_quarantined"]) / float(r["rows_in"])
    return None


def _by_feature(drift: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for r in sorted(drift, key=lambda r: (r["feature"], r["comparison"], r["metric"])):
        grouped.setdefault(r["feature"], []).append(r)
    return grouped


def _psi(drift: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in drift if r["metric"] == "psi" and r["comparison"] == "baseline"]


def _share(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _num(value: Any) -> float:
    return float(value) if value is not None else float("nan")


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):  # a run's warnings
        return "; ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _template(name: str) -> str:
    """The template's text from the package (works from a wheel and a `--py-files` zip)."""
    return resources.files("scoring.monitor").joinpath("templates", name).read_text("utf-8")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_template),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
