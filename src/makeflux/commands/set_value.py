"""makeflux set KEY=VALUE ...: change cluster.yaml in place, validated before it is saved."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import click

from makeflux import lock, output, pipeline
from makeflux.cluster_file import locate
from makeflux.cluster_schema.variables import declared_variables
from makeflux.cluster_schema.words import format_value
from makeflux.commands.common import command_settings, config_option
from makeflux.data import parse_assignment
from makeflux.errors import DataError, MakefluxError, Problem
from makeflux.errors import display_path as display
from makeflux.pipeline import RunOptions
from makeflux.settings import Settings


@click.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@config_option
@click.option(
    "-f",
    "--file",
    "data_file",
    type=click.Path(path_type=Path),
    default=None,
    help="The data file to edit (default: the settings' cluster.yaml).",
)
def set_command(assignments: tuple[str, ...], config: Path | None, data_file: Path | None) -> None:
    """Change values in cluster.yaml, keeping its comments and layout.

    VALUE is read like YAML (true, 90, 7d); the file is validated against the
    schema and left untouched when a value is refused.
    """
    settings = command_settings(config)
    # Held while cluster.yaml is read, changed and replaced: two runs at once would lose one.
    with lock.held(settings):
        _set_values(settings, assignments, data_file)


def _set_values(settings: Settings, assignments: tuple[str, ...], data_file: Path | None) -> None:
    named = Path.cwd() / data_file if data_file else locate(settings).data_file
    shown = display(named)
    # A linked cluster.yaml (kept in another repository, say) is edited where it really is:
    # replacing the link with a file would leave the real one unchanged.
    target = named.resolve()
    if not target.is_file():
        raise DataError(
            Problem("not found; run 'makeflux init' to start it from the sample", shown)
        )
    original = target.read_bytes()
    try:
        text = original.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(Problem("not UTF-8 text; save the file as UTF-8", shown)) from None
    # ruamel.yaml is slow to import: only `set` pays for it, not every makeflux command.
    from makeflux.yamledit import set_value

    variables = declared_variables(settings)
    changes: list[str] = []
    for assignment in assignments:
        key, value = parse_assignment(assignment, variables, "makeflux set")
        text = set_value(text, key, value, shown)
        changes.append(f"{key}={format_value(value)}")
    new_content = text.encode("utf-8")
    if new_content == original:
        output.info(f"makeflux: {shown} already has {', '.join(changes)}; nothing to change")
        return
    _validate_and_replace(settings, target, new_content, shown)
    output.info(f"makeflux: {shown}: set {', '.join(changes)}")


def _validate_and_replace(settings: Settings, target: Path, content: bytes, shown: str) -> None:
    """Validate `content` as the new cluster.yaml; only if it passes, rename it into place."""
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent
    )
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(content)
        data_files = tuple(tmp if path.resolve() == target else path for path in settings.data)
        if tmp not in data_files:
            data_files = (*data_files, tmp)
        options = RunOptions(cwd=Path.cwd(), config=settings.source, data_files=data_files)
        try:
            pipeline.validate(pipeline.load(options))
        except MakefluxError as exc:
            problems = [_renamed(problem, tmp, shown) for problem in exc.problems]
            problems.append(
                Problem("not changed; fix the value and run 'makeflux set' again", shown)
            )
            raise type(exc)(problems) from None
        shutil.copymode(target, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _renamed(problem: Problem, tmp: Path, shown: str) -> Problem:
    """Problems found in the temporary candidate file, told about cluster.yaml instead."""
    if problem.path is not None and Path(problem.path).name == tmp.name:
        return replace(problem, path=shown)
    if problem.path is None or tmp.name not in problem.message:
        return problem
    return replace(problem, message=problem.message.replace(str(tmp), shown))
