"""`python -m bench.stages DIR`: where each timed bench run's wall time went, stage by stage.

Run the bench with Spark's event log on: `python -m bench ... --event-log DIR` (it turns the
log's compression off, so nothing but the standard library reads it). Every Spark job of a
timed run carries the run's job group (`a rep 0 | float first 16M few-large tree`, set by
`bench.run._timed`); untimed work (data, models, the warm-up, the steady state's set-up) has
none and is left out.

Prints, per run: its span (its first job's start to its last job's end), the time inside
Spark stages and the time between them (driver work: planning, the Delta log and commits,
the model registry, the parity gate); then each stage that took at least `--min-seconds`:
its wall seconds, tasks, shortest and longest task, task seconds summed, how busy the cores
were (task seconds over wall times cores: a stage whose last task runs alone shows it), rows
read and written, and the task threads' JVM CPU and GC seconds. bench/RESULTS.md, finding
26, came from this.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scoring.core.session import JOB_GROUP

COMPRESSED = (".zstd", ".lz4", ".lzf", ".snappy")


def event_log_conf(folder: Path) -> dict[str, str]:
    """The Spark settings that write an uncompressed event log into `folder` (created)."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": folder.as_uri(),
        "spark.eventLog.compress": "false",
    }


@dataclass(frozen=True)
class Task:
    """One finished task attempt: times in ms since the epoch, CPU in ns."""

    launched: int
    finished: int
    rows_read: int = 0
    rows_written: int = 0
    cpu_ns: int = 0
    gc_ms: int = 0

    @property
    def seconds(self) -> float:
        return (self.finished - self.launched) / 1000


@dataclass
class Stage:
    """One completed stage attempt and its tasks."""

    stage_id: int
    name: str
    submitted: int
    completed: int
    tasks: list[Task] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.completed - self.submitted) / 1000

    @property
    def task_seconds(self) -> float:
        return sum(t.seconds for t in self.tasks)

    def busy(self, cores: int) -> float:
        """Task seconds over wall seconds times cores (1.0: every core busy throughout)."""
        return self.task_seconds / (self.seconds * cores) if self.seconds > 0 else 0.0


@dataclass
class Run:
    """The jobs of one job group: a timed bench run."""

    application: str
    group: str
    started: int
    ended: int
    stages: list[Stage] = field(default_factory=list)

    @property
    def span(self) -> float:
        """Seconds from the first job's submission to the last job's end."""
        return (self.ended - self.started) / 1000

    @property
    def in_stages(self) -> float:
        """Seconds of the span during which at least one stage ran (overlaps counted once)."""
        total, reach = 0, None
        for stage in sorted(self.stages, key=lambda s: s.submitted):
            start, end = stage.submitted, stage.completed
            if reach is None or start > reach:
                total += end - start
                reach = end
            elif end > reach:
                total += end - reach
                reach = end
        return total / 1000


@dataclass
class Application:
    """What one Spark application's event log says about its bench runs."""

    app_id: str
    cores: int
    runs: list[Run]


def read_applications(path: Path) -> list[Application]:
    """Every application's log under `path` (a `--event-log` folder, an application's rolling
    log folder or one log file).

    Raises:
        ValueError: a compressed log, a line that is not JSON (names the file), or no log.
    """
    logs = list(_logs(path))
    if not logs:
        raise ValueError(f"{path}: no Spark event log found")
    return [_application(files) for files in logs]


def _logs(path: Path) -> Iterator[list[Path]]:
    """The files of each application's log under `path`, in order."""
    if path.is_file():
        yield [path]
        return
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or folder")
    files = [p for p in sorted(path.iterdir()) if p.is_file() and _is_log(p)]
    rolling = [p for p in files if _part(p) > 0]  # the parts of one application's log
    if rolling:
        yield sorted(rolling, key=_part)
    yield from ([p] for p in files if _part(p) == 0)  # each a whole application's log
    for folder in sorted(p for p in path.iterdir() if p.is_dir()):
        yield from _logs(folder)


def _is_log(path: Path) -> bool:
    """An event log file, not a checksum or a rolling log's status marker."""
    name = path.name
    return not (name.startswith((".", "appstatus")) or name.endswith(".crc"))


def _part(path: Path) -> int:
    """A rolling log file's index (`events_3_<app>` -> 3); 0 for a single-file log."""
    found = re.match(r"events_(\d+)_", path.name)
    return int(found.group(1)) if found else 0


def _events(files: Iterable[Path]) -> Iterator[dict]:
    for path in files:
        if path.name.removesuffix(".inprogress").endswith(COMPRESSED):
            raise ValueError(
                f"{path}: a compressed event log; run the bench with --event-log, which "
                "writes it uncompressed (spark.eventLog.compress=false)"
            )
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise ValueError(f"{path}:{number}: not a JSON event ({exc})") from exc


def _application(files: list[Path]) -> Application:
    app_id, cores = str(files[0]), 0
    groups: dict[int, str] = {}  # stage id -> the job group of the job that ran it
    job_groups: dict[int, str] = {}
    runs: dict[str, Run] = {}
    stages: dict[tuple[int, int], Stage] = {}
    tasks: dict[tuple[int, int], list[Task]] = {}
    for event in _events(files):
        kind = event.get("Event")
        if kind == "SparkListenerApplicationStart":
            app_id = event.get("App ID", app_id)
        elif kind == "SparkListenerExecutorAdded":
            cores += int(event["Executor Info"]["Total Cores"])
        elif kind == "SparkListenerJobStart":
            group = (event.get("Properties") or {}).get(JOB_GROUP)
            if group is None:
                continue
            job_groups[event["Job ID"]] = group
            for stage_id in event["Stage IDs"]:
                groups[stage_id] = group
            run = runs.setdefault(
                group, Run(app_id, group, event["Submission Time"], event["Submission Time"])
            )
            run.started = min(run.started, event["Submission Time"])
        elif kind == "SparkListenerJobEnd" and event["Job ID"] in job_groups:
            run = runs[job_groups[event["Job ID"]]]
            run.ended = max(run.ended, event["Completion Time"])
        elif kind == "SparkListenerTaskEnd":
            key = (event["Stage ID"], event["Stage Attempt ID"])
            tasks.setdefault(key, []).append(_task(event))
        elif kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            if "Submission Time" not in info or "Completion Time" not in info:
                continue  # skipped: its output was already there
            key = (info["Stage ID"], info["Stage Attempt ID"])
            stages[key] = Stage(
                info["Stage ID"],
                info["Stage Name"],
                info["Submission Time"],
                info["Completion Time"],
            )
    for key, stage in sorted(stages.items()):
        stage.tasks = tasks.get(key, [])
        group = groups.get(stage.stage_id)
        if group is not None:
            runs[group].stages.append(stage)
    ordered = sorted(runs.values(), key=lambda r: r.started)
    return Application(app_id, max(cores, 1), ordered)


def _task(event: dict) -> Task:
    info, metrics = event["Task Info"], event.get("Task Metrics") or {}
    return Task(
        info["Launch Time"],
        info["Finish Time"],
        int((metrics.get("Input Metrics") or {}).get("Records Read", 0)),
        int((metrics.get("Output Metrics") or {}).get("Records Written", 0)),
        int(metrics.get("Executor CPU Time", 0)),
        int(metrics.get("JVM GC Time", 0)),
    )


def render(applications: list[Application], min_seconds: float, only: str | None) -> str:
    """The report: per run, its span and split, then its stages of at least `min_seconds`."""
    out: list[str] = []
    for app in applications:
        runs = [r for r in app.runs if only is None or only in r.group]
        if not runs:
            continue
        out.append(f"## {app.app_id} ({app.cores} cores)\n")
        for run in runs:
            out.extend(_render_run(run, app.cores, min_seconds))
    return "\n".join(out) if out else "no timed bench run in the event log\n"


def _render_run(run: Run, cores: int, min_seconds: float) -> list[str]:
    inside = run.in_stages
    lines = [
        f"### {run.group}: {run.span:.1f} s from its first job to its last; {inside:.1f} s in "
        f"stages, {run.span - inside:.1f} s between them\n",
        "| stage | what | wall s | tasks | task s min / max | task s sum | cores busy "
        "| rows read | rows written | task CPU s | GC s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    small = [s for s in run.stages if s.seconds < min_seconds]
    for stage in run.stages:
        if stage.seconds < min_seconds:
            continue
        times = [t.seconds for t in stage.tasks] or [0.0]
        lines.append(
            f"| {stage.stage_id} | {stage.name.split(' at ')[0]} | {stage.seconds:.1f} "
            f"| {len(stage.tasks)} | {min(times):.1f} / {max(times):.1f} "
            f"| {stage.task_seconds:.1f} | {stage.busy(cores):.0%} "
            f"| {sum(t.rows_read for t in stage.tasks):,} "
            f"| {sum(t.rows_written for t in stage.tasks):,} "
            f"| {sum(t.cpu_ns for t in stage.tasks) / 1e9:.1f} "
            f"| {sum(t.gc_ms for t in stage.tasks) / 1000:.1f} |"
        )
    if small:
        seconds = sum(s.seconds for s in small)
        lines.append(
            f"| {len(small)} more | each under {min_seconds:g} s | {seconds:.1f} (summed) "
            "| | | | | | | | |"
        )
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, read the logs, print the report."""
    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__)
    parser.add_argument("path", type=Path, help="the --event-log folder, or one log")
    parser.add_argument(
        "--min-seconds", type=float, default=1.0, help="list stages this long (default 1)"
    )
    parser.add_argument("--run", default=None, help="only runs whose label contains this")
    args = parser.parse_args(argv)
    try:
        applications = read_applications(args.path)
    except ValueError as exc:
        print(f"bench.stages: {exc}", file=sys.stderr)
        return 2
    print(render(applications, args.min_seconds, args.run))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
