"""makeflux render: render in memory, lint, write what changed, prune, update the manifest."""

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
@click.option("--no-lint", is_flag=True, help="Skip the lint checks of the rendered tree.")
@click.pass_context
def render(
    ctx: click.Context,
    config: Path | None,
    overrides: tuple[str, ...],
    data_files: tuple[Path, ...],
    output: Path | None,
    force: bool,
    no_lint: bool,
) -> None:
    """Render the templates, write the files that changed and prune the ones no longer rendered.

    Stops without writing anything (exit 2) when a file it would overwrite or delete was edited
    by hand or was not written by makeflux; --force overwrites them. Lint errors in the
    written tree exit 1 (makejinja.toml projects lint only with `makeflux lint`).
    """
    options = run_options(config, overrides, data_files, output)
    # Lint before writing: bad lint settings write nothing.
    run = pipeline.lint(pipeline.build(options), enabled=not no_lint)
    findings = run.findings or []
    plan = sync.plan_run(run, force=force)
    report.error_lines(plan.notes)
    sync.apply_plan(plan)
    report.info_lines([*report.recreated_lines(plan), report.summary_line(plan)])
    if findings:
        report.error_lines([*report.lint_lines(findings), report.lint_summary(findings)])
        ctx.exit(report.lint_exit_status(findings))
