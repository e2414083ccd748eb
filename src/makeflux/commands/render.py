"""makeflux render: render in memory, lint, write what changed, prune, update the manifest."""

from __future__ import annotations

from pathlib import Path

import click

from makeflux import lock, pipeline, report, sync
from makeflux.commands.common import allow_mass_prune_option, pipeline_options, run_options
from makeflux.output import error_lines, info_lines


@click.command("render")
@pipeline_options
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite (or prune) files edited by hand or not written by makeflux.",
)
@click.option("--no-lint", is_flag=True, help="Skip the lint checks of the rendered tree.")
@allow_mass_prune_option
@click.pass_context
def render(
    ctx: click.Context,
    config: Path | None,
    overrides: tuple[str, ...],
    data_files: tuple[Path, ...],
    output: Path | None,
    force: bool,
    no_lint: bool,
    allow_mass_prune: bool,
) -> None:
    """Render the templates, write the files that changed and prune the ones no longer rendered.

    Stops without writing anything (exit 2) when a file it would overwrite or delete was edited
    by hand or was not written by makeflux; --force overwrites them (and never deletes a
    changed file). A render that would delete more than half of the generated files stops
    unless --allow-mass-prune. Lint errors in the written tree exit 1 (makejinja.toml projects
    lint only with `makeflux lint`).
    """
    run = pipeline.load(run_options(config, overrides, data_files, output))
    with lock.held(run.settings):
        # Lint before writing: bad lint settings write nothing.
        run = pipeline.lint(pipeline.render(pipeline.validate(run)), enabled=not no_lint)
        findings = run.findings or []
        plan = pipeline.plan(run, force=force)
        error_lines(plan.notes)
        sync.check_mass_prune(plan, allowed=allow_mass_prune)
        sync.apply_plan(plan)
    info_lines([*report.recreated_lines(plan), report.summary_line(plan)])
    error_lines(report.secret_lines(plan))
    if findings:
        error_lines([*report.lint_lines(findings), report.lint_summary(findings)])
        ctx.exit(report.lint_exit_status(findings))
