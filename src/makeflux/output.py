"""Terminal output policy: --quiet / --verbose, and colour only on a terminal without NO_COLOR."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from makeflux.settings import Settings

QUIET, NORMAL, VERBOSE = 0, 1, 2
VERBOSITY_KEY = "makeflux.verbosity"


def verbosity() -> int:
    """The verbosity the group options chose for this invocation (NORMAL outside the CLI)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return NORMAL
    return int(ctx.find_root().meta.get(VERBOSITY_KEY, NORMAL))


def colour_enabled(stream: IO[Any] | None = None) -> bool:
    """Colour only when writing to a terminal and NO_COLOR (https://no-color.org) is unset."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = stream if stream is not None else sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def style(text: str, *, err: bool = False, **styles: Any) -> str:
    """`text` styled with click.style when colour is on for stdout (or stderr), else plain."""
    return click.style(text, **styles) if colour_enabled(sys.stderr if err else None) else text


def info(message: str) -> None:
    """Ordinary progress and summary lines: shown unless --quiet."""
    if verbosity() > QUIET:
        click.echo(message, color=colour_enabled())


def detail(message: str) -> None:
    """What makeflux is doing and with which files: shown only with --verbose, on stderr."""
    if verbosity() >= VERBOSE:
        click.echo(message, err=True, color=colour_enabled(sys.stderr))


def result(message: str) -> None:
    """The answer a command was asked for (a table, a report): always shown."""
    click.echo(message, color=colour_enabled())


def write(message: str, *, err: bool = False, colour: bool | None = None) -> None:
    """One line (or block) to stdout, or stderr with err, whatever the verbosity."""
    click.echo(message, err=err, color=colour)


def write_lines(lines: list[str], *, err: bool = False, colour: bool | None = None) -> None:
    for line in lines:
        click.echo(line, err=err, color=colour)


def info_lines(lines: list[str]) -> None:
    """Progress and summary lines (hidden by --quiet)."""
    for line in lines:
        info(line)


def error_lines(lines: list[str]) -> None:
    """Notes and problems on stderr, whatever the verbosity."""
    write_lines(lines, err=True)


def files_in_use(settings: Settings, data_files: tuple[Path, ...]) -> None:
    """--verbose: the settings, data, schema and output directory a run uses, one line each."""
    if verbosity() < VERBOSE:
        return
    from makeflux.errors import display_path as display

    source = display(settings.source) if settings.source else "(none: defaults)"
    detail(f"makeflux: settings {source} [{settings.flavor}]")
    detail("makeflux: data " + (", ".join(display(p) for p in data_files) or "(none)"))
    if settings.schema is not None:
        detail(f"makeflux: schema {display(settings.schema)}")
    detail(f"makeflux: output {display(settings.output)}")
