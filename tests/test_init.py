"""makeflux init: cluster.yaml from the shipped sample, and never over an existing file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from makeflux.cli import cli

REPO = Path(__file__).resolve().parent.parent


def make_project(tmp_path: Path) -> Path:
    """A copy of the shipped project (settings, schema, templates, sample) without cluster.yaml."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("templates", "schemas"):
        shutil.copytree(REPO / name, project / name)
    for name in ("makeflux.toml", "cluster.sample.yaml"):
        shutil.copy2(REPO / name, project / name)
    return project


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "makeflux", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_init_copies_the_sample_byte_for_byte(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = run(project, "init")
    assert result.returncode == 0, result.stderr
    cluster = project / "cluster.yaml"
    assert cluster.read_bytes() == (project / "cluster.sample.yaml").read_bytes()
    assert "created cluster.yaml from cluster.sample.yaml" in result.stdout
    # The new file is the one render reads: it validates and renders as it stands.
    rendered = run(project, "render")
    assert rendered.returncode == 0, rendered.stderr
    assert (project / "kubernetes" / "flux" / "cluster" / "ks.yaml").is_file()


def test_init_refuses_to_overwrite_and_leaves_the_file_untouched(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    cluster = project / "cluster.yaml"
    cluster.write_text("# mine\ncluster_name: lab\n")
    os.utime(cluster, ns=(1_000_000_000, 1_000_000_000))
    result = run(project, "init")
    assert result.returncode == 2
    assert result.stderr.startswith("cluster.yaml: already exists")
    assert "never overwrites" in result.stderr
    assert "Traceback" not in result.stderr
    assert cluster.read_text() == "# mine\ncluster_name: lab\n"
    assert cluster.stat().st_mtime_ns == 1_000_000_000
    assert sorted(p.name for p in project.iterdir() if p.name.startswith(".")) == []


def test_init_without_a_sample_says_what_is_missing(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project / "cluster.sample.yaml").unlink()
    result = run(project, "init")
    assert result.returncode == 2
    assert result.stderr.startswith("cluster.sample.yaml: sample not found")
    assert not (project / "cluster.yaml").exists()


def test_init_puts_cluster_yaml_next_to_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(cli, ["init", "--config", str(project / "makeflux.toml")])
    assert result.exit_code == 0, result.output
    assert (project / "cluster.yaml").is_file()
    assert not (elsewhere / "cluster.yaml").exists()


def test_init_without_settings_is_a_one_line_error(tmp_path: Path) -> None:
    result = run(tmp_path, "init")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "makeflux.toml" in result.stderr
