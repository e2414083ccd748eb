"""makeflux plan: what render would do, written nowhere."""

from __future__ import annotations

from pathlib import Path

import click

from makeflux import pipeline, report
from makeflux.commands.common import pipeline_options, remember_format, run_options
from makeflux.errors import EXIT_CHANGES
from makeflux.output import error_lines, write, write_lines


@click.command("plan")
@pipeline_options
@click.option("--stat", is_flag=True, help="List the paths only, without diffs.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    callback=remember_format,
    help="json: a machine-readable report for tools.",
)
@click.option("--exit-code", is_flag=True, help="Exit 1 when render would change anything.")
@click.option("--force", is_flag=True, help="Plan what 'render --force' would do.")
@click.option("--no-lint", is_flag=True, help="Skip the lint checks of the rendered tree.")
@click.pass_context
def plan(
    ctx: click.Context,
    config: Path | None,
    overrides: tuple[str, ...],
    data_files: tuple[Path, ...],
    output: Path | None,
    stat: bool,
    output_format: str,
    exit_code: bool,
    force: bool,
    no_lint: bool,
) -> None:
    """Show what render would create (+), change (~) and delete (-), with diffs. Writes nothing.

    Lint findings of the rendered tree follow on stderr, as render prints them; lint errors
    exit 1.
    """
    run = pipeline.build(run_options(config, overrides, data_files, output))
    run = pipeline.lint(run, enabled=not no_lint)
    findings = run.findings or []
    the_plan = pipeline.plan(run, force=force)
    write_lines(the_plan.notes, err=True)
    if the_plan.mass_prune:
        write(
            "makeflux: render would stop here: it deletes more than half of the generated "
            "files (rerun it with --allow-mass-prune if that is meant)",
            err=True,
        )
    if output_format == "json":
        write(report.plan_json(the_plan))
    else:
        colour = report.use_colour()
        write_lines(report.plan_text(the_plan, stat=stat, colour=colour), colour=colour)
        write(report.plan_summary(the_plan))
    if findings:
        error_lines([*report.lint_lines(findings), report.lint_summary(findings)])
    if (exit_code and the_plan.changed) or report.lint_exit_status(findings):
        ctx.exit(EXIT_CHANGES)
