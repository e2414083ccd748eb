"""Taskfile.yaml: every task runs for real (go-task from go-task-bin) in a copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import NETWORK_ASSIGNMENTS, run_subprocess, shipped_project

from tests.conftest import REPO_ROOT

REPO = REPO_ROOT


def task_env() -> dict[str, str]:
    """`task` and `pytest` from this Python's bin, makeflux from this checkout."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO / "src"),
        "MAKEFLUX": f"{sys.executable} -m makeflux",
        "NO_COLOR": "1",
    }


def task(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = task_env()
    binary = shutil.which("task", path=env["PATH"])
    assert binary, "task not found: pip install go-task-bin (it is in makeflux's test extra)"
    return subprocess.run(
        [binary, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The shipped project as a user has it: settings, schema, templates, sample, Taskfile."""
    return shipped_project(tmp_path / "project", "Taskfile.yaml", cluster_yaml=False)


def init_and_fill(project: Path) -> None:
    """`task init`, then the network values it leaves for the user, set as a user would."""
    assert task(project, "init").returncode == 0
    filled = run_subprocess(["set", *NETWORK_ASSIGNMENTS], project)
    assert filled.returncode == 0, filled.stderr


def test_the_taskfile_lists_the_daily_routine(project: Path) -> None:
    result = task(project, "--list")
    assert result.returncode == 0, result.stderr
    listed = {line.split(":")[0].lstrip("* ").strip() for line in result.stdout.splitlines()[1:]}
    assert {"init", "configure", "plan", "check", "test", "docs"} <= listed
    declared = yaml.safe_load((REPO / "Taskfile.yaml").read_text())["tasks"]
    assert listed == {name for name, spec in declared.items() if "desc" in spec}


def test_init_then_configure_renders_a_lint_clean_tree_and_check_agrees(project: Path) -> None:
    init_and_fill(project)

    configure = task(project, "configure")
    assert configure.returncode == 0, configure.stdout + configure.stderr
    assert "-m makeflux render" in configure.stderr  # task echoes each command it runs
    assert (project / "kubernetes" / "flux" / "cluster" / "ks.yaml").is_file()
    assert "29 created, 0 updated, 0 deleted" in configure.stdout

    check = task(project, "check")
    assert check.returncode == 0, check.stdout + check.stderr

    # Nothing changed: a second configure rewrites nothing.
    again = task(project, "configure")
    assert again.returncode == 0
    assert " 0 created, 0 updated, 0 deleted" in again.stdout


def test_plan_previews_and_check_catches_drift_until_configure(project: Path) -> None:
    init_and_fill(project)
    assert task(project, "configure").returncode == 0
    cluster = project / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace("loki_enabled: true", "loki_enabled: false"))
    before = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())

    plan = task(project, "plan", "--", "--stat")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "- kubernetes/apps/monitoring/loki/ks.yaml" in plan.stdout
    after = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    assert after == before  # plan writes nothing

    # `task -x` passes makeflux's own exit status through: 1 means drift.
    drift = task(project, "-x", "check")
    assert drift.returncode == 1, drift.stdout + drift.stderr
    assert "run makeflux render and commit" in drift.stdout + drift.stderr

    assert task(project, "configure").returncode == 0
    assert not (project / "kubernetes" / "apps" / "monitoring" / "loki").exists()
    assert task(project, "check").returncode == 0


def test_configure_stops_at_invalid_input_and_writes_nothing(project: Path) -> None:
    init_and_fill(project)
    cluster = project / "cluster.yaml"
    cluster.write_text(
        cluster.read_text().replace("node_cpu_threshold: 90", "node_cpu_threshold: 900")
    )
    result = task(project, "-x", "configure")
    assert result.returncode == 2
    assert "cluster.yaml:" in result.stderr and "node_cpu_threshold: 900" in result.stderr
    assert not (project / "kubernetes").exists()


def test_task_test_runs_pytest_with_arguments(project: Path) -> None:
    tests = project / "tests"
    tests.mkdir()
    (tests / "test_smoke.py").write_text(
        "def test_passes():\n    assert True\n\n\ndef test_fails():\n    assert False\n"
    )
    chosen = task(project, "test", "--", "-k", "passes", "-p", "no:cacheprovider")
    assert chosen.returncode == 0, chosen.stdout + chosen.stderr
    assert "1 passed, 1 deselected" in chosen.stdout
    everything = task(project, "test", "--", "-p", "no:cacheprovider")
    assert everything.returncode != 0
    assert "1 failed, 1 passed" in everything.stdout


def test_taskfile_is_valid_for_go_task_and_editors() -> None:
    """check-jsonschema carries the Taskfile schema editors use; the Taskfile must satisfy it."""
    binary = shutil.which("check-jsonschema", path=task_env()["PATH"])
    assert binary, "check-jsonschema not found: it is in makeflux's test extra"
    result = subprocess.run(
        [binary, "--builtin-schema", "vendor.taskfile", str(REPO / "Taskfile.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


SECRET_TEMPLATE = """\
apiVersion: v1
kind: Secret
metadata:
  name: demo
  namespace: default
stringData:
  password: hunter2
"""

# A stand-in for sops (not packaged for this machine): it logs its arguments and encrypts the way
# the real one looks from outside, with ENC[...] values and a `sops:` metadata block.
FAKE_SOPS = """\
#!/bin/sh
echo "$*" >> "$SOPS_LOG"
file="$3"
sed -e 's/hunter2/ENC[AES256_GCM,data:xxxx,type:str]/' "$file" > "$file.new"
printf 'sops:\\n    age: []\\n' >> "$file.new"
mv "$file.new" "$file"
"""


def _with_secret(project: Path) -> Path:
    secret = project / "templates/config/kubernetes/apps/default/demo/secret.sops.yaml.j2"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(SECRET_TEMPLATE)
    return project / "kubernetes/apps/default/demo/secret.sops.yaml"


def test_configure_encrypts_rendered_secrets_with_sops(project: Path, tmp_path: Path) -> None:
    rendered = _with_secret(project)
    (project / ".sops.yaml").write_text("creation_rules:\n  - age: age1example\n")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "sops").write_text(FAKE_SOPS)
    (tools / "sops").chmod(0o755)
    log = tmp_path / "sops.log"
    env_path = f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"
    init_and_fill(project)

    first = _task_with(project, {"PATH": env_path, "SOPS_LOG": str(log)}, "configure")
    assert first.returncode == 0, first.stdout + first.stderr
    assert log.read_text() == "--encrypt --in-place kubernetes/apps/default/demo/secret.sops.yaml\n"
    assert "hunter2" not in rendered.read_text()
    assert task(project, "check").returncode == 0  # encrypted, and its plaintext is current

    again = _task_with(project, {"PATH": env_path, "SOPS_LOG": str(log)}, "configure")
    assert again.returncode == 0, again.stdout + again.stderr
    assert log.read_text().count("--encrypt") == 1  # already encrypted: left alone


def test_configure_fails_while_a_secret_cannot_be_encrypted(project: Path) -> None:
    rendered = _with_secret(project)
    init_and_fill(project)
    result = task(project, "-x", "configure")  # no .sops.yaml here
    assert result.returncode == 1
    assert (
        "task: secrets left in plaintext (install sops and add .sops.yaml): "
        "kubernetes/apps/default/demo/secret.sops.yaml"
    ) in result.stderr
    assert rendered.stat().st_mode & 0o777 == 0o600  # readable by its owner only meanwhile
    assert task(project, "-x", "check").returncode == 1


def _task_with(
    project: Path, extra_env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**task_env(), **extra_env}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    binary = shutil.which("task", path=env["PATH"])
    assert binary
    return subprocess.run(
        [binary, *args], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
