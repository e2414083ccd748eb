"""makeflux init: start a cluster.yaml from the shipped, commented cluster.sample.yaml."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import click

from makeflux import output
from makeflux.cluster_file import FILL_IN_NOTE, locate
from makeflux.cluster_schema.variables import load_schema_info
from makeflux.commands.common import command_settings, config_option
from makeflux.errors import DataError, Problem
from makeflux.errors import display_path as display
from makeflux.settings import Settings


@click.command("init")
@config_option
def init(config: Path | None) -> None:
    """Create cluster.yaml from cluster.sample.yaml; never overwrites an existing file."""
    settings = command_settings(config)
    files = locate(settings)
    target, sample = files.data_file, files.sample
    if target.exists():
        raise DataError(
            Problem(
                "already exists; makeflux init never overwrites it — edit it, use "
                "'makeflux set KEY=VALUE', or delete it first to start over",
                display(target),
            )
        )
    if target.is_symlink():  # exists() is False for a link to nothing
        raise DataError(
            Problem(
                f"a link to {os.readlink(target)!r}, which does not exist; makeflux init does "
                "not write through links: remove the link, or create the file it points to",
                display(target),
            )
        )
    if not sample.is_file():
        raise DataError(
            Problem(
                "sample not found; makeflux init copies it to start cluster.yaml — restore it "
                "from the makeflux repository or write cluster.yaml by hand",
                display(sample),
            )
        )
    output.detail(f"makeflux: settings {display(settings.source or settings.base_dir)}")
    required = _required_without_default(settings)
    content = _leave_for_the_user(sample.read_bytes(), required)
    if not _create_exclusive(target, content):
        raise DataError(
            Problem("appeared while makeflux init ran; left it untouched", display(target))
        )
    if required:
        to_fill = " ".join(f"{name}=…" for name in required)
        output.info(
            f"makeflux: created {display(target)} from {display(sample)}; set your network's "
            f"values, which have no default ('makeflux set {to_fill}'), then run 'task configure'"
        )
        return
    output.info(
        f"makeflux: created {display(target)} from {display(sample)}; edit it "
        "(or 'makeflux set KEY=VALUE'), then run 'task configure'"
    )


def _required_without_default(settings: Settings) -> list[str]:
    """Top-level variables the schema requires and gives no default: the user's own values."""
    if settings.schema is None:
        return []
    variables = load_schema_info(settings).variables.values()
    return [v.name for v in variables if v.required and not v.has_default and "." not in v.name]


def _leave_for_the_user(sample: bytes, names: list[str]) -> bytes:
    """The sample with each of `names` commented out under a line saying to fill it in.

    The sample's values are examples of someone else's network; copied as they are, they would
    validate and be deployed. `makeflux set NAME=VALUE` uncomments the line in place."""
    try:
        lines = sample.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return sample  # validate reports a file that is not UTF-8
    for name in names:
        start = next(
            (i for i, line in enumerate(lines) if re.match(rf"{re.escape(name)}[ \t]*:", line)),
            None,
        )
        if start is None:
            continue
        end = start + 1
        while end < len(lines) and lines[end][:1] in (" ", "\t", "-") and lines[end].strip():
            end += 1  # the value's own lines (a block list or mapping)
        note = FILL_IN_NOTE.format(name=name) + "\n"
        lines[start:end] = [note, *(f"# {line}" for line in lines[start:end])]
    return "".join(lines).encode("utf-8")


def _create_exclusive(target: Path, content: bytes) -> bool:
    """Write `content` to `target` whole or not at all, failing (False) if `target` exists."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(content)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        try:
            os.link(tmp_name, target)  # link, unlike rename, refuses to replace a file
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp_name)
