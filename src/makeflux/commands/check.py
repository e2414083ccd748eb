"""makeflux check: render in memory and fail when the committed tree has drifted (for CI)."""

from __future__ import annotations

from pathlib import Path

import click

from makeflux import pipeline, report, sync
from makeflux.commands.common import pipeline_options, run_options
from makeflux.errors import EXIT_CHANGES


@click.command("check")
@pipeline_options
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "github", "json"]),
    default="text",
    show_default=True,
    help="github: ::error annotations for GitHub Actions; json: for tools.",
)
@click.pass_context
def check(
    ctx: click.Context,
    config: Path | None,
    overrides: tuple[str, ...],
    data_files: tuple[Path, ...],
    output: Path | None,
    output_format: str,
) -> None:
    """Exit 0 when the files on disk are what the templates render, 1 on drift, 2 on bad input."""
    run = pipeline.build(run_options(config, overrides, data_files, output))
    the_plan = sync.plan_run(run, ignore_guard=True)
    report.echo_lines(the_plan.notes, err=True)
    drift = bool(report.plan_changes(the_plan, for_check=True, with_diff=False))
    if output_format == "json":
        report.echo(report.plan_json(the_plan, for_check=True))
    elif output_format == "github":
        report.echo_lines(report.check_github(the_plan))
    else:
        colour = report.use_colour()
        report.echo_lines(report.check_text(the_plan, colour=colour), colour=colour)
    if drift:
        ctx.exit(EXIT_CHANGES)
