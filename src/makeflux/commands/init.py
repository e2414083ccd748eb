"""makeflux init: start a cluster.yaml from the shipped, commented cluster.sample.yaml."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from makeflux import output
from makeflux.cluster_file import locate
from makeflux.commands.common import config_option
from makeflux.errors import DataError, Problem
from makeflux.errors import display_path as display
from makeflux.settings import load_settings


@click.command("init")
@config_option
def init(config: Path | None) -> None:
    """Create cluster.yaml from cluster.sample.yaml; never overwrites an existing file."""
    settings = load_settings(Path.cwd(), config)
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
    if not sample.is_file():
        raise DataError(
            Problem(
                "sample not found; makeflux init copies it to start cluster.yaml — restore it "
                "from the makeflux repository or write cluster.yaml by hand",
                display(sample),
            )
        )
    output.detail(f"makeflux: settings {display(settings.source or settings.base_dir)}")
    if not _create_exclusive(target, sample.read_bytes()):
        raise DataError(
            Problem("appeared while makeflux init ran; left it untouched", display(target))
        )
    output.info(
        f"makeflux: created {display(target)} from {display(sample)}; edit it "
        "(or 'makeflux set KEY=VALUE'), then run 'task configure'"
    )


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
