"""Shared test helpers: run the real CLI, copy the shipped project, snapshot trees."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from makeflux.cli import cli

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = REPO_ROOT / "tests"  # fixtures/, data/, golden/ live here


def shipped_project(root: Path, *extra: str, cluster_yaml: bool = True) -> Path:
    """A copy of the shipped project at `root`, as a user's clone has it: templates/, schemas/,
    makeflux.toml and cluster.sample.yaml, the `extra` files named (e.g. "Taskfile.yaml"), and
    with `cluster_yaml` a cluster.yaml copied from the sample."""
    root.mkdir(parents=True)
    for name in ("templates", "schemas"):
        shutil.copytree(REPO_ROOT / name, root / name)
    for name in ("makeflux.toml", "cluster.sample.yaml", *extra):
        shutil.copy2(REPO_ROOT / name, root / name)
    if cluster_yaml:
        shutil.copy2(REPO_ROOT / "cluster.sample.yaml", root / "cluster.yaml")
    return root


def run_cli(args: Sequence[str], cwd: Path) -> Result:
    """Run makeflux in-process (click's CliRunner) with `cwd` as the working directory."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def run_subprocess(args: Sequence[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run makeflux as a real process, the way a shell user does."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(kwargs.pop("env", {}))
    return subprocess.run(
        [sys.executable, "-m", "makeflux", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        **kwargs,
    )


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file below root → (content, mode, mtime_ns): equal snapshots mean untouched."""
    result: dict[str, tuple[bytes, int, int]] = {}
    if not root.exists():
        return result
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            result[path.relative_to(root).as_posix()] = (
                path.read_bytes(),
                st.st_mode,
                st.st_mtime_ns,
            )
    return result


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Tests never read or write the user's ~/.cache/makeflux (tests that need their own set it)."""
    previous = os.environ.get("MAKEFLUX_CACHE_DIR")
    os.environ["MAKEFLUX_CACHE_DIR"] = str(tmp_path_factory.mktemp("makeflux-cache"))
    yield
    if previous is None:
        os.environ.pop("MAKEFLUX_CACHE_DIR", None)
    else:
        os.environ["MAKEFLUX_CACHE_DIR"] = previous


@pytest.fixture
def cli_runner():
    return run_cli


# `makeflux set` arguments for the values the schema requires with no default (the user's own
# network), which `makeflux init` leaves for the user to fill in.
NETWORK_ASSIGNMENTS = (
    "cluster_gateway_addr=192.168.1.72",
    "cluster_pod_cidr=10.42.0.0/16",
    "control_plane_addrs=[]",
)
