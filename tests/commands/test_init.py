"""makeflux init: cluster.yaml from the shipped sample, and never over an existing file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import shipped_project

from makeflux.cli import cli
from makeflux.cluster_file import FILL_IN_NOTE
from tests.conftest import REPO_ROOT, run_subprocess

REPO = REPO_ROOT


def make_project(tmp_path: Path) -> Path:
    """A copy of the shipped project (settings, schema, templates, sample) without cluster.yaml."""
    return shipped_project(tmp_path / "project", cluster_yaml=False)


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_subprocess(args, project)


def test_init_copies_the_sample_but_leaves_the_network_values_to_the_user(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = run(project, "init")
    assert result.returncode == 0, result.stderr
    assert "created cluster.yaml from cluster.sample.yaml" in result.stdout
    required = ["cluster_gateway_addr", "cluster_pod_cidr", "control_plane_addrs"]
    for name in required:
        assert f"{name}=…" in result.stdout
    sample = (project / "cluster.sample.yaml").read_text().splitlines()
    cluster = (project / "cluster.yaml").read_text().splitlines()
    # Every line of the sample is there; only the required values are commented out, each under
    # a note saying how to fill it in.
    changed = [line for line in cluster if line not in sample]
    for name in required:
        value_line = next(line for line in sample if line.startswith(f"{name}:"))
        assert f"# {value_line}" in changed
        assert FILL_IN_NOTE.format(name=name) in changed
    assert len(changed) == 2 * len(required)
    # validate names each missing value, and nothing else.
    validated = run(project, "validate")
    assert validated.returncode == 2
    assert [line.split(":")[1].strip() for line in validated.stderr.splitlines()] == required
    assert all(": missing; add it" in line for line in validated.stderr.splitlines())
    # `set` fills them in where they were, note and all (in one go, as init's message shows:
    # the file must validate when saved), and the file then renders.
    filled = run(
        project,
        "set",
        "cluster_gateway_addr=10.0.0.5",
        "cluster_pod_cidr=10.244.0.0/16",
        'control_plane_addrs=["10.0.0.11", "10.0.0.12"]',
    )
    assert filled.returncode == 0, filled.stderr
    now = (project / "cluster.yaml").read_text().splitlines()
    assert [line for line in now if line not in sample] == [
        'cluster_gateway_addr: "10.0.0.5"',
        'cluster_pod_cidr: "10.244.0.0/16"',
        'control_plane_addrs: ["10.0.0.11", "10.0.0.12"]',
    ]
    assert len(now) == len(sample)
    rendered = run(project, "render")
    assert rendered.returncode == 0, rendered.stderr
    cilium = project / "kubernetes/apps/kube-system/cilium/app/helmrelease.yaml"
    assert "10.244.0.0/16" in cilium.read_text()


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
