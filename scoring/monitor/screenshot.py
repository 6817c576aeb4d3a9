"""Headless Chromium for the report: a PNG of its top (the README's picture) and its DOM
after the page's scripts ran (the browser test).

    .venv/bin/python -m scoring.monitor.screenshot REPORT.html OUT.png [--width W --height H]

Chromium is Debian's `chromium` (`make .stamps/chromium` installs it), or the binary that
`SCORING_CHROMIUM` names. The PNG is reduced to a 256-colour palette (Pillow, which
matplotlib already brings) so that it stays well under 300 KB for the README.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scoring.core.errors import EnvironmentProblem

CHROMIUM_ENV = "SCORING_CHROMIUM"
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_SECONDS = 120
# Time the page may take to run its scripts and decode its images before the dump.
_BUDGET_MS = "5000"


def chromium_binary() -> str:
    """The Chromium to run: `SCORING_CHROMIUM`, else the first of chromium's usual names.

    Raises:
        EnvironmentProblem: none is found (the message says how to get one).
    """
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        if not (Path(named).is_file() and os.access(named, os.X_OK)):
            raise EnvironmentProblem(f"{CHROMIUM_ENV}={named}: not an executable file")
        return named
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise EnvironmentProblem(
        "no Chromium found: run `make .stamps/chromium` (as root: apt-get install chromium) "
        f"or set {CHROMIUM_ENV} to a Chromium binary"
    )


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [chromium_binary(), "--headless", "--disable-gpu", "--hide-scrollbars"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    with tempfile.TemporaryDirectory(prefix="scoring-chromium-") as profile:
        result = subprocess.run(
            [*command, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    if result.returncode != 0:
        tail = (result.stderr or "").strip().splitlines()[-3:]
        raise EnvironmentProblem(
            f"chromium exited with {result.returncode}: {' | '.join(tail) or 'no output'}"
        )
    return result


def dump_dom(page: Path) -> str:
    """The page's DOM as HTML after its scripts ran (and its load event fired)."""
    url = page.resolve().as_uri()
    return _run(f"--virtual-time-budget={_BUDGET_MS}", "--dump-dom", url).stdout


def screenshot(page: Path, target: Path, width: int = 1280, height: int = 1500) -> Path:
    """A PNG of the page's top `width` x `height` pixels, as a 256-colour palette PNG."""
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    raw = target.with_suffix(".raw.png")
    try:
        _run(
            f"--window-size={width},{height}",
            f"--virtual-time-budget={_BUDGET_MS}",
            f"--screenshot={raw.resolve()}",
            page.resolve().as_uri(),
        )
        if not raw.is_file():
            raise EnvironmentProblem(f"chromium wrote no screenshot of {page}")
        with Image.open(raw) as image:
            small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
            small.save(target, optimize=True)
    finally:
        raw.unlink(missing_ok=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scoring.monitor.screenshot",
        description="Render an HTML report's top to a PNG with headless Chromium.",
    )
    parser.add_argument("report", type=Path, help="the report's HTML file")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"error: {args.report}: no such file", file=sys.stderr)
        return 2
    try:
        out = screenshot(args.report, args.out, args.width, args.height)
    except EnvironmentProblem as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{out}: {out.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
