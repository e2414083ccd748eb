"""Plans and problems → text for the terminal. Every user-facing write goes through here."""

from __future__ import annotations

import click

from makeflux.sync import CREATE, UNCHANGED, UPDATE, Plan


def summary_line(plan: Plan) -> str:
    """One line saying what a render did."""
    counts = [
        f"{len(plan.paths(CREATE))} created",
        f"{len(plan.paths(UPDATE))} updated",
        f"{len(plan.paths(UNCHANGED))} unchanged",
    ]
    skipped = len(plan.tree.skipped_empty)
    if skipped:
        counts.append(f"{skipped} skipped (empty)")
    return "makeflux: " + ", ".join(counts)


def echo(message: str, *, err: bool = False) -> None:
    click.echo(message, err=err)


def error_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(line, err=True)
