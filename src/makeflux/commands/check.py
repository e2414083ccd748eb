"""makeflux check: render in memory, lint, and fail when the committed tree has drifted (CI)."""

from __future__ import annotations

from pathlib import Path

import click

from makeflux import pipeline, report, sync
from makeflux.commands.common import (
    allow_mass_prune_option,
    pipeline_options,
    remember_format,
    run_options,
)
from makeflux.errors import EXIT_CHANGES
from makeflux.output import error_lines, write, write_lines


@click.command("check")
@pipeline_options
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "github", "json"]),
    default="text",
    show_default=True,
    callback=remember_format,
    help="github: ::error annotations for GitHub Actions; json: for tools.",
)
@click.option("--no-lint", is_flag=True, help="Skip the lint checks of the rendered tree.")
@allow_mass_prune_option
@click.pass_context
def check(
    ctx: click.Context,
    config: Path | None,
    overrides: tuple[str, ...],
    data_files: tuple[Path, ...],
    output: Path | None,
    output_format: str,
    no_lint: bool,
    allow_mass_prune: bool,
) -> None:
    """Exit 0 when the files on disk are what the templates render, 1 on drift (or lint
    errors, or a secret file in plaintext), 2 on bad input. Writes nothing."""
    options = run_options(config, overrides, data_files, output)
    run = pipeline.lint(pipeline.build(options), enabled=not no_lint)
    findings = run.findings  # None when lint did not run: the JSON report then has no "lint"
    lint_failed = bool(findings) and report.lint_exit_status(findings or []) != 0
    boundary = pipeline.run_boundary(run)
    the_plan = pipeline.plan(run, ignore_guard=True, boundary=boundary)
    error_lines(the_plan.notes)
    sync.check_mass_prune(the_plan, allowed=allow_mass_prune)
    the_plan.plaintext_secrets = sync.plaintext_secrets(
        run.settings.output, run.settings.rewritten_patterns, boundary
    )
    drift = bool(report.plan_changes(the_plan, for_check=True, with_diff=False))
    if output_format == "json":
        write(report.plan_json(the_plan, for_check=True, findings=findings))
    elif output_format == "github":
        lint_annotations = report.lint_lines(findings or [], "github")
        write_lines(report.check_github(the_plan) + lint_annotations)
    else:
        colour = report.use_colour()
        lines = report.check_text(the_plan, colour=colour)
        if findings:
            lines += [*report.lint_lines(findings), report.lint_summary(findings)]
        write_lines(lines, colour=colour)
    if drift or lint_failed:
        ctx.exit(EXIT_CHANGES)
