"""`python -m scoring`: the same CLI as the `scoring` console script."""

from __future__ import annotations

from scoring.cli.main import main

if __name__ == "__main__":
    main()
