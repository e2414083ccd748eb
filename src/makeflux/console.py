"""The `makeflux` console script (and `python -m makeflux`): the one process makeflux owns
from start to exit, so the only place start-up tricks are allowed (makeflux.classcode)."""

from __future__ import annotations

import sys


def main() -> None:
    from makeflux import classcode
    from makeflux.cache import cache_root

    classcode.enable(None if "--no-cache" in sys.argv[1:] else cache_root())
    with classcode.kept():  # makeflux's own classes, defined as cli and its imports load
        from makeflux import cli
    cli.main()
