"""makeflux render: validate, render in memory, then write what changed."""

from __future__ import annotations

from pathlib import Path

import click

from makeflux import pipeline, report, sync
from makeflux.commands.common import pipeline_options, run_options


@click.command("render")
@pipeline_options
def render(
    config: Path | None,
    overrides: tuple[str, ...],
    data_files: tuple[Path, ...],
    output: Path | None,
) -> None:
    """Render the templates and write the files that changed."""
    run = pipeline.build(run_options(config, overrides, data_files, output))
    assert run.tree is not None
    plan = sync.make_plan(run.tree)
    sync.apply_plan(plan)
    report.echo(report.summary_line(plan))
