"""makeflux validate: load the data and check it against the schema, without rendering."""

from __future__ import annotations

from pathlib import Path

import click

from makeflux import pipeline
from makeflux.commands.common import pipeline_options, run_options
from makeflux.errors import display_path
from makeflux.output import info, result


@click.command("validate")
@pipeline_options
def validate(
    config: Path | None,
    overrides: tuple[str, ...],
    data_files: tuple[Path, ...],
    output: Path | None,
) -> None:
    """Check the data (and --set overrides) against the schema; write nothing."""
    options = run_options(config, overrides, data_files, output)
    run = pipeline.validate(pipeline.load(options), thorough=True)
    names = ", ".join(display_path(path) for path in run.data.files) or "the data"
    if run.settings.schema is None:
        result(
            f"makeflux: {names} loaded; no schema configured, so nothing was checked "
            "(set 'schema' in makeflux.toml)"
        )
        return
    with_overrides = " with the --set overrides" if run.data.overrides else ""
    info(f"makeflux: {names}{with_overrides} is valid")
