"""spark-submit entry point: `spark-submit jobs/compare.py --env local --run-date YYYY-MM-DD`."""

from __future__ import annotations

import sys

from scoring.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
