"""Options every pipeline command shares."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from makeflux.pipeline import RunOptions
from makeflux.settings import Settings, load_settings

USE_CACHE_KEY = "makeflux.use_cache"  # ctx.meta: False when the group's --no-cache was given

config_option = click.option(
    "-c",
    "--config",
    type=click.Path(path_type=Path),
    default=None,
    help="Settings file (default: makeflux.toml, else makejinja.toml).",
)


def use_cache() -> bool:
    """False when `makeflux --no-cache` was given (True outside the command line)."""
    ctx = click.get_current_context(silent=True)
    return ctx is None or bool(ctx.meta.get(USE_CACHE_KEY, True))


def command_settings(config: Path | None) -> Settings:
    """The settings that apply in the working directory (or --config), with --no-cache."""
    return load_settings(Path.cwd(), config, use_cache=use_cache())


def pipeline_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--config, --set, --data and --output, turned into one RunOptions argument `options`."""
    decorators = [
        config_option,
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override a data value for this run; dotted keys reach into mappings.",
        ),
        click.option(
            "-d",
            "--data",
            "data_files",
            multiple=True,
            type=click.Path(path_type=Path),
            help="Data file(s) to use instead of the settings' 'data'.",
        ),
        click.option(
            "-o",
            "--output",
            type=click.Path(path_type=Path),
            default=None,
            help="Output directory instead of the settings' 'output'.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def run_options(
    config: Path | None,
    overrides: tuple[str, ...],
    data_files: tuple[Path, ...],
    output: Path | None,
) -> RunOptions:
    return RunOptions(
        cwd=Path.cwd(),
        config=config,
        overrides=tuple(overrides),
        output=output,
        data_files=tuple(data_files) if data_files else None,
        use_cache=use_cache(),
    )


allow_mass_prune_option = click.option(
    "--allow-mass-prune",
    is_flag=True,
    help="Allow deleting more than half of the files makeflux generated (a feature turned off "
    "on purpose); without it such a run stops, since lost input looks the same.",
)


def remember_format(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """--format's callback: errors about bad input are then printed in that format too."""
    ctx.meta["makeflux.format"] = value
    return value
