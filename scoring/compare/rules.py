"""The promotion rules, judged on plain evidence (no Spark, no registry): pure functions.

A challenger may take an alias from the version holding it when, over the dates of the
window (`promotion.window_days` up to the promotion's date) on which both have realized
`promotion.metric` rows in `model_comparison`:

- `min_dates`: there are at least `promotion.min_dates` such dates;
- `max_drop`: the challenger is at most `promotion.max_drop` worse than the champion, in
  the metric's own direction (a fall of AUC, a rise of RMSE), on average over those dates
  (`aggregate: mean`) or on each of them (`aggregate: every`);
- `block_on_drift_alert` (when true): drift_metrics has no alert for the model on them.

Each failed rule gives one line naming it and its evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from scoring.core.config import PromotionSettings
from scoring.model.tasks import BINARY, MULTICLASS, REGRESSION
from scoring.quality.metrics import HIGHER_IS_BETTER

#: The realized metrics a promotion can be judged on, per task (model_quality's).
TASK_METRICS = {
    BINARY: ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "precision", "recall", "f1",
             "accuracy"),
    MULTICLASS: ("accuracy", "macro_f1", "log_loss"),
    REGRESSION: ("mae", "rmse", "r2"),
}  # fmt: skip
#: Slack for float sums: a challenger exactly `max_drop` worse passes.
_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Evidence:
    """What the rules look at, for one (champion, challenger) pair."""

    metric: str
    window: tuple[date, date]
    # (date, champion value, challenger value) of every compared date, oldest first.
    values: tuple[tuple[date, float, float], ...]
    # "date feature metric" of every drift alert on those dates.
    drift_alerts: tuple[str, ...] = ()

    @property
    def higher_is_better(self) -> bool:
        """The metric's direction (AUC: higher; log loss, RMSE: lower)."""
        return self.metric in HIGHER_IS_BETTER

    @property
    def gains(self) -> tuple[float, ...]:
        """Per date, how much better the challenger is (negative: worse), in the metric's
        direction."""
        sign = 1.0 if self.higher_is_better else -1.0
        return tuple(sign * (challenger - champion) for _, champion, challenger in self.values)


@dataclass(frozen=True)
class Check:
    """One rule's verdict and the line that says why."""

    rule: str
    passed: bool
    evidence: str


def judge(rules: PromotionSettings, evidence: Evidence) -> list[Check]:
    """Every rule's verdict on `evidence` (module docstring)."""
    checks = [_min_dates(rules, evidence), _max_drop(rules, evidence)]
    if rules.block_on_drift_alert:
        alerts = evidence.drift_alerts
        shown = ", ".join(alerts[:5]) + (f" and {len(alerts) - 5} more" if len(alerts) > 5 else "")
        checks.append(
            Check(
                "block_on_drift_alert",
                not alerts,
                f"drift alerts on the compared dates: {shown}" if alerts else "no drift alert",
            )
        )
    return checks


def _min_dates(rules: PromotionSettings, evidence: Evidence) -> Check:
    start, end = evidence.window
    found = len(evidence.values)
    return Check(
        "min_dates",
        found >= rules.min_dates,
        f"{found} date(s) with realized {evidence.metric} for both in {start}..{end} "
        f"(window_days {rules.window_days}), {rules.min_dates} needed",
    )


def _max_drop(rules: PromotionSettings, evidence: Evidence) -> Check:
    gains = evidence.gains
    way = "higher" if evidence.higher_is_better else "lower"
    if not gains:
        return Check("max_drop", False, f"no date to compare {evidence.metric} on")
    champion = sum(v[1] for v in evidence.values) / len(gains)
    challenger = sum(v[2] for v in evidence.values) / len(gains)
    if rules.aggregate == "every":
        worst = min(range(len(gains)), key=lambda i: gains[i])
        gain, where = gains[worst], f"on its worst date {evidence.values[worst][0]}"
    else:
        gain, where = sum(gains) / len(gains), f"on average over {len(gains)} date(s)"
    side = "better" if gain >= 0 else "worse"
    return Check(
        "max_drop",
        gain >= -rules.max_drop - _TOLERANCE,
        f"challenger {evidence.metric} ({way} is better) {abs(gain):.4g} {side} than the "
        f"champion's {where} (means {challenger:.4g} vs {champion:.4g}); at most "
        f"{rules.max_drop:g} worse allowed ({rules.aggregate})",
    )


def metric_error(rules: PromotionSettings, task: str) -> str | None:
    """Why `promotion.metric` cannot judge a model of `task`, or None when it can."""
    known = TASK_METRICS[task]
    if rules.metric in known:
        return None
    return (
        f"promotion.metric: '{rules.metric}' is not a realized metric of a {task} model "
        f"(one of: {', '.join(known)}); set it in usecase.yaml promotion:"
    )
