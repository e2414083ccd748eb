"""makeflux cache: show what the cache holds, and empty it (or drop what has gone unused)."""

from __future__ import annotations

from pathlib import Path

import click

from makeflux import cache, output
from makeflux.errors import MakefluxError


@click.group("cache")
def cache_group() -> None:
    """Show or clean the cache of compiled templates, template facts and verdicts.

    Entries unused for 30 days are removed on their own (checked once a day); nothing in it is
    ever needed: an emptied cache only makes the next run compile again.
    """


@cache_group.command("info")
def info() -> None:
    """Print where the cache is and how much it holds."""
    root = _root()
    files = size = 0
    for unit in cache.cache_units(root):
        unit_files, unit_bytes = cache.unit_size(unit)
        files += unit_files
        size += unit_bytes
    output.result(f"{root}: {files} file(s), {_megabytes(size)}")


@cache_group.command("clean")
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0),
    default=None,
    metavar="DAYS",
    help="Remove only entries unused for this many days (default: everything).",
)
def clean(days: float | None) -> None:
    """Remove the cache's entries (all of them, or those unused for DAYS)."""
    root = _root()
    files, size = cache.clean(root, None if days is None else days * 24 * 3600)
    output.result(f"makeflux: removed {files} file(s), {_megabytes(size)}, from {root}")


def _root() -> Path:
    root = cache.cache_root()
    if root is None:
        raise MakefluxError(
            "makeflux: no cache directory: set MAKEFLUX_CACHE_DIR (no home directory is known)"
        )
    return root


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
