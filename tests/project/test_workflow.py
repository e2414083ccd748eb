"""The routine around the commands: editor support, pre-commit hooks, the CI recipe, output
conventions (--quiet, --verbose, NO_COLOR, colour only on a terminal) and shell completion."""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import NETWORK_ASSIGNMENTS, shipped_project

from tests.conftest import REPO_ROOT

REPO = REPO_ROOT
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def env(**extra: str) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return {
        **base,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO / "src"),
        **extra,
    }


def makeflux(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "makeflux", *args],
        cwd=cwd,
        env=env(**extra),
        capture_output=True,
        text=True,
        check=False,
    )


def check_jsonschema(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("check-jsonschema", path=env()["PATH"])
    assert binary, "check-jsonschema not found: it is in makeflux's test extra"
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The shipped project with cluster.yaml from the sample, rendered once."""
    root = shipped_project(tmp_path / "project")
    rendered = makeflux(root, "render", "--no-lint")
    assert rendered.returncode == 0, rendered.stderr
    return root


# -- editor support ------------------------------------------------------------------------


def test_sample_modeline_points_editors_at_the_schema() -> None:
    first_line = (REPO / "cluster.sample.yaml").read_text().splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first_line)
    assert match, f"first line is not a yaml-language-server modeline: {first_line!r}"
    assert (REPO / match.group(1)).resolve() == (REPO / "schemas" / "cluster.schema.json")


def test_schema_is_standard_draft_2020_12_for_an_independent_validator() -> None:
    schema = REPO / "schemas" / "cluster.schema.json"
    result = check_jsonschema("--check-metaschema", str(schema))
    assert result.returncode == 0, result.stdout + result.stderr


def test_sample_validates_with_check_jsonschema_and_a_broken_copy_does_not(
    tmp_path: Path,
) -> None:
    schema = str(REPO / "schemas" / "cluster.schema.json")
    sample = REPO / "cluster.sample.yaml"
    good = check_jsonschema("--schemafile", schema, str(sample))
    assert good.returncode == 0, good.stdout + good.stderr
    # The same validator must reject what makeflux rejects, or the schema is not standard.
    broken = tmp_path / "cluster.yaml"
    text = sample.read_text()
    broken.write_text(
        re.sub(r"(?m)^monitoring_enabled: true$", "monitoring_enabled: false", text)
        + "node_cpu_threshold_typo: 1\n"
    )
    bad = check_jsonschema("--schemafile", schema, str(broken))
    assert bad.returncode == 1
    assert "node_cpu_threshold_typo" in bad.stdout
    assert "hubble_enabled" in bad.stdout or "monitoring_enabled" in bad.stdout


# -- pre-commit hooks ----------------------------------------------------------------------

HOOKS = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())


def hook(hook_id: str) -> dict:
    return next(h for h in HOOKS if h["id"] == hook_id)


def test_pre_commit_hooks_are_declared_the_way_pre_commit_reads_them() -> None:
    assert {h["id"] for h in HOOKS} == {"makeflux-check", "makeflux-validate"}
    for entry in HOOKS:
        assert {"id", "name", "entry", "language"} <= set(entry)
        assert entry["language"] == "python"  # pre-commit pip-installs this repository
        assert entry["pass_filenames"] is False  # makeflux reads its settings, not argv files
    pattern = re.compile(hook("makeflux-validate")["files"])
    assert pattern.search("cluster.yaml") and pattern.search("clusters/home/cluster.yml")
    assert not pattern.search("cluster.sample.yaml")


def test_pre_commit_hook_entries_pass_in_sync_and_fail_on_drift_or_bad_input(
    project: Path,
) -> None:
    check = hook("makeflux-check")["entry"].split()
    validate = hook("makeflux-validate")["entry"].split()
    assert check[0] == validate[0] == "makeflux"
    assert makeflux(project, *check[1:]).returncode == 0
    assert makeflux(project, *validate[1:]).returncode == 0

    generated = project / "kubernetes" / "flux" / "cluster" / "ks.yaml"
    generated.write_text(generated.read_text() + "# edited by hand\n")
    assert makeflux(project, *check[1:]).returncode == 1

    cluster = project / "cluster.yaml"
    cluster.write_text(cluster.read_text() + "tracing_sample_rate: 0\n")
    bad = makeflux(project, *validate[1:])
    assert bad.returncode == 2
    assert "tracing_sample_rate" in bad.stderr


# -- the CI recipe -------------------------------------------------------------------------

WORKFLOW = REPO / "examples" / "ci" / "render-check.yaml"


def test_ci_example_is_a_valid_github_actions_workflow() -> None:
    result = check_jsonschema("--builtin-schema", "vendor.github-workflows", str(WORKFLOW))
    assert result.returncode == 0, result.stdout + result.stderr
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["check"]["steps"]
    runs = [step.get("run", "") for step in steps]
    assert any("pip install" in run and "makeflux" in run for run in runs)
    assert runs[-1] == "makeflux check --format github"


def test_ci_example_command_annotates_drift_for_github(project: Path) -> None:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["check"]["steps"]
    command = steps[-1]["run"].split()
    assert command[0] == "makeflux"
    in_sync = makeflux(project, *command[1:])
    assert in_sync.returncode == 0, in_sync.stdout + in_sync.stderr

    generated = project / "kubernetes" / "apps" / "monitoring" / "kustomization.yaml"
    generated.write_text(generated.read_text().replace("resources:", "resources: # drift", 1))
    drift = makeflux(project, *command[1:])
    assert drift.returncode == 1
    assert "::error file=kubernetes/apps/monitoring/kustomization.yaml" in drift.stdout


# -- output conventions --------------------------------------------------------------------


def run_on_terminal(cwd: Path, *args: str, **extra: str) -> str:
    """makeflux with stdout on a pseudo-terminal, as in an interactive shell."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "makeflux", *args],
        cwd=cwd,
        env=env(**extra),
        stdout=follower,
        stderr=subprocess.DEVNULL,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: makeflux exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode()


def test_colour_only_on_a_terminal_and_never_with_no_color(project: Path) -> None:
    assert ANSI.search(run_on_terminal(project, "explain"))
    assert not ANSI.search(run_on_terminal(project, "explain", NO_COLOR="1"))
    piped = makeflux(project, "explain")
    assert piped.returncode == 0
    assert not ANSI.search(piped.stdout)


def test_quiet_keeps_results_and_errors_verbose_names_the_files(project: Path) -> None:
    normal = makeflux(project, "render")
    assert "0 created, 0 updated" in normal.stdout
    quiet = makeflux(project, "--quiet", "render")
    assert quiet.returncode == 0 and quiet.stdout == ""
    assert makeflux(project, "-q", "explain").stdout.startswith("VARIABLE")  # a result stays

    (project / "cluster.yaml").unlink()
    quiet_init = makeflux(project, "-q", "init")
    assert quiet_init.returncode == 0 and quiet_init.stdout == ""
    assert makeflux(project, "-q", "set", *NETWORK_ASSIGNMENTS).returncode == 0
    failing = makeflux(project, "-q", "init")
    assert failing.returncode == 2 and "already exists" in failing.stderr  # errors stay

    verbose = makeflux(project, "--verbose", "explain", "loki_enabled")
    assert "schema schemas/cluster.schema.json" in verbose.stderr
    verbose_render = makeflux(project, "-v", "render", "--no-lint")
    assert verbose_render.returncode == 0, verbose_render.stderr
    assert verbose_render.stderr.splitlines()[:4] == [
        "makeflux: settings makeflux.toml [makeflux]",
        "makeflux: data cluster.yaml",
        "makeflux: schema schemas/cluster.schema.json",
        "makeflux: output .",
    ]
    assert "makeflux: data" not in makeflux(project, "render", "--no-lint").stderr
    both = makeflux(project, "-q", "-v", "explain")
    assert both.returncode == 2 and "contradict" in both.stderr


def test_shell_completion_completes_commands_and_variable_names(project: Path) -> None:
    script = makeflux(project, _MAKEFLUX_COMPLETE="bash_source")
    assert script.returncode == 0
    assert "_makeflux_completion()" in script.stdout
    commands = makeflux(
        project, _MAKEFLUX_COMPLETE="bash_complete", COMP_WORDS="makeflux ex", COMP_CWORD="1"
    )
    assert commands.stdout.split() == ["plain,explain"]
    keys = makeflux(
        project,
        _MAKEFLUX_COMPLETE="bash_complete",
        COMP_WORDS="makeflux explain hubble",
        COMP_CWORD="2",
    )
    assert keys.stdout.split() == ["plain,hubble_enabled", "plain,hubble_ui_enabled"]


# -- where the settings are found ------------------------------------------------------------


def test_settings_are_found_in_a_parent_directory_up_to_the_repository_root(
    project: Path,
) -> None:
    (project / ".git").mkdir()  # the repository root, as `git init` marks it
    below = project / "kubernetes" / "apps"
    verbose = makeflux(below, "-v", "validate")
    assert verbose.returncode == 0, verbose.stderr
    assert "makeflux: settings ../../makeflux.toml [makeflux]" in verbose.stderr
    assert verbose.stdout == "makeflux: ../../cluster.yaml is valid\n"
    # A plan from below the root sees the tree it rendered: nothing to do.
    planned = makeflux(below, "plan", "--exit-code")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    # The nearest settings file wins.
    (below / "makeflux.toml").write_text('[makeflux]\ninputs = ["in"]\noutput = "out"\n')
    (below / "in").mkdir()
    nearest = makeflux(below, "-v", "validate")
    assert "makeflux: settings makeflux.toml [makeflux]" in nearest.stderr


def test_settings_outside_a_repository_are_looked_for_only_in_the_working_directory(
    project: Path,
) -> None:
    below = project / "kubernetes"
    result = makeflux(below, "validate")
    assert result.returncode == 2
    assert result.stderr == (
        "no makeflux.toml or makejinja.toml in .; create one (see README: Settings) "
        "or pass --config PATH\n"
    )
    (project / ".git").write_text("gitdir: ../elsewhere\n")  # a worktree's .git is a file
    deeper = below / "flux"
    result = makeflux(deeper, "validate")
    assert result.returncode == 0, result.stderr


def run_install_step(repository: Path, tools: Path, requirement: str) -> tuple[int, str, str]:
    """The workflow's install step as GitHub runs it (bash), with `python` recording what it is
    asked to install instead of installing it."""
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["check"]["steps"]
    step = next(step for step in steps if step.get("name") == "Install makeflux")
    log = tools / "python.log"
    log.unlink(missing_ok=True)
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", step["run"]],
        cwd=repository,
        env={
            "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
            "MAKEFLUX_REQUIREMENT": requirement,  # ${{ vars.X }} is "" when unset
            "PYTHON_LOG": str(log),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout, log.read_text() if log.exists() else ""


def test_ci_install_step_installs_the_checkout_or_the_pinned_requirement(tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "python").write_text('#!/bin/sh\necho "$*" >> "$PYTHON_LOG"\n')
    (tools / "python").chmod(0o755)
    # The cluster-template model: the repository carries makeflux itself.
    carrier = tmp_path / "carrier"
    carrier.mkdir()
    shutil.copy2(REPO / "pyproject.toml", carrier / "pyproject.toml")
    assert run_install_step(carrier, tools, "") == (0, "", "-m pip install .\n")
    # A home-ops repository without it: the pinned requirement, and never the package index.
    home_ops = tmp_path / "home-ops"
    home_ops.mkdir()
    pinned = "makeflux @ git+https://example.org/makeflux@v0.1.0"
    assert run_install_step(home_ops, tools, pinned) == (0, "", f"-m pip install {pinned}\n")
    status, stdout, installed = run_install_step(home_ops, tools, "")
    assert (status, installed) == (1, "")
    assert stdout.startswith("::error::makeflux is not on the package index: set the repository ")
