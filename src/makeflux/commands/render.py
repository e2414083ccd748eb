"""makeflux render: render in memory, write what changed, prune, update the manifest."""

from __future__ import annotations

from pathlib import Path

import click

from makeflux import pipeline, report, sync
from makeflux.commands.common import pipeline_options, run_options


@click.command("render")
@pipeline_options
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite (or prune) files edited by hand or not written by makeflux.",
)
def render(
    config: Path | None,
    overrides: tuple[str, ...],
    data_files: tuple[Path, ...],
    output: Path | None,
    force: bool,
) -> None:
    """Render the templates, write the files that changed and prune the ones no longer rendered.

    Stops without writing anything (exit 2) when a file it would overwrite or delete was edited
    by hand or was not written by makeflux; --force overwrites them.
    """
    run = pipeline.build(run_options(config, overrides, data_files, output))
    plan = sync.plan_run(run, force=force)
    report.echo_lines(plan.notes, err=True)
    sync.apply_plan(plan)
    report.echo_lines(report.recreated_lines(plan))
    report.echo(report.summary_line(plan))
