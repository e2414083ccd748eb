"""makeflux lint: render in memory (or read DIR as it is on disk) and check the whole tree."""

from __future__ import annotations

import json
from pathlib import Path

import click

from makeflux import lint as linting
from makeflux import pipeline, report
from makeflux.cache import cache_root
from makeflux.commands.common import (
    command_settings,
    pipeline_options,
    remember_format,
    run_options,
    use_cache,
)
from makeflux.output import QUIET, verbosity, write
from makeflux.settings import find_settings_file


@click.command("lint")
@click.argument(
    "directory",
    required=False,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@pipeline_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(linting.FORMATS),
    default="text",
    show_default=True,
    callback=remember_format,
    help="text: one line per finding; json: a list; github: workflow annotations.",
)
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option(
    "--rules",
    "list_rules",
    is_flag=True,
    help="List every rule (id, severity, what it checks) and exit; nothing is checked.",
)
def lint(
    directory: Path | None,
    config: Path | None,
    overrides: tuple[str, ...],
    data_files: tuple[Path, ...],
    output: Path | None,
    fmt: str,
    strict: bool,
    list_rules: bool,
) -> None:
    """Check the rendered tree: Flux wiring, API schemas and CEL rules, template mistakes.

    Without DIR, renders in memory (nothing is written), also checks the templates against
    the schema, and names the template line behind each finding. With DIR, checks that
    directory tree as it is on disk, without rendering.
    Exit status: 0 clean (or warnings only), 1 errors (or warnings with --strict), 2 bad input.
    """
    if list_rules:
        if directory is not None or overrides or data_files or output:
            raise click.UsageError("--rules lists the rules; it takes no DIR or render options")
        _print_rules(fmt)
        return
    if directory is not None:
        if overrides or data_files or output:
            raise click.UsageError("--set, --data and --output render; they don't apply to DIR")
        lint_config = _directory_config(config)
        findings = linting.lint_tree(_read_tree(directory, lint_config), lint_config)
    else:
        run = pipeline.build(run_options(config, overrides, data_files, output))
        findings = linting.run(run)
    text = linting.format_findings(findings, fmt)
    if text or fmt == "json":
        write(text)
    if fmt == "text" and findings and verbosity() > QUIET:
        write(report.lint_summary(findings), err=True)
    raise SystemExit(linting.exit_status(findings, strict))


def _print_rules(fmt: str) -> None:
    from makeflux.lint.rules import rules_json, rules_text

    if fmt == "github":
        raise click.UsageError("--rules prints text or json, not github annotations")
    text = json.dumps(rules_json(), indent=2) if fmt == "json" else rules_text()
    write(text)


def _directory_config(config: Path | None) -> linting.LintConfig:
    """The lint table of the settings file that applies here, if there is one."""
    if find_settings_file(Path.cwd(), config) is None:
        return linting.LintConfig(cache_dir=cache_root() if use_cache() else None)
    return linting.config_from_settings(command_settings(config))


def _read_tree(directory: Path, lint_config: linting.LintConfig) -> dict[str, bytes]:
    """DIR as a tree; `makeflux lint kubernetes` means the repository's kubernetes/ directory,
    so its files keep the kubernetes/ prefix that Flux paths and roots are written with."""
    files = linting.read_directory(directory)
    name = directory.resolve().name
    holds_manifest_dir = any((directory / d).is_dir() for d in lint_config.manifest_dirs)
    if name in lint_config.manifest_dirs and not holds_manifest_dir:
        return {f"{name}/{path}": content for path, content in files.items()}
    return files
