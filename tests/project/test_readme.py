"""The README is the newcomer's path: its quick start works as written, and it covers every
command, task, setting and shipped app that exists."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from conftest import run_cli

from makeflux.cli import cli
from makeflux.settings import Delimiters, Internal, Prefix, Settings, Whitespace
from tests.conftest import REPO_ROOT

REPO = REPO_ROOT
README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    """The text of the README section `## title`, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def shell_commands(text: str) -> list[str]:
    """Commands in the ```sh blocks of `text`, comments removed."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if command:
                commands.append(command)
    return commands


def test_quick_start_test_command_is_what_ci_runs() -> None:
    commands = shell_commands(section("Quick start"))
    assert "pytest" in commands
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert [line for line in ci_lines if line and not line.startswith("#")][-1] == "pytest"


def test_quick_start_render_works_word_for_word(tmp_path: Path) -> None:
    render = [c for c in shell_commands(section("Quick start")) if c.startswith("makeflux ")]
    assert len(render) == 1
    clone = tmp_path / "makeflux"
    clone.mkdir()
    for name in ("templates", "schemas"):
        shutil.copytree(REPO / name, clone / name)
    for name in ("makeflux.toml", "cluster.sample.yaml"):
        shutil.copy2(REPO / name, clone / name)
    # The one liberty taken: the output directory lands in this test's tmp_path.
    target = tmp_path / "cluster"
    command = render[0].replace("/tmp/cluster", str(target))
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    assert shutil.which("makeflux", path=env["PATH"]), "pip install -e '.[test]' first"
    ran = subprocess.run(
        ["bash", "-c", command], cwd=clone, env=env, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (target / "kubernetes" / "flux" / "cluster" / "ks.yaml").is_file()
    assert not (clone / "kubernetes").exists()


def test_every_command_has_a_section_with_an_example() -> None:
    commands = section("Commands")
    for name in cli.commands:
        match = re.search(rf"^### makeflux {name}\b.*?(?=^### |\Z)", commands, re.S | re.M)
        assert match, f"README: no '### makeflux {name}' section"
        assert f"$ makeflux {name}" in match.group(0), f"README: no example of makeflux {name}"


def test_every_task_is_documented() -> None:
    tasks = yaml.safe_load((REPO / "Taskfile.yaml").read_text())["tasks"]
    routine = section("The daily routine")
    for name, spec in tasks.items():
        if "desc" in spec:
            assert f"`task {name}`" in routine, f"README: task {name} is not documented"


def test_every_setting_is_documented() -> None:
    reference = section("Settings file reference")
    skip = {"source", "flavor", "base_dir", "keep_manifest", "cache_dir"}  # run state
    skip |= {"delimiter", "prefix", "whitespace", "internal", "lint"}  # listed key by key
    names = [f.name for f in dataclasses.fields(Settings) if f.name not in skip]
    names += [f"lint.{key}" for key in ("disable", "externals", "variables", "roots")]
    names += [f"lint.{key}" for key in ("schema_locations", "kubernetes_version", "skip_kinds")]
    for table, cls in (
        ("delimiter", Delimiters),
        ("prefix", Prefix),
        ("whitespace", Whitespace),
        ("internal", Internal),
    ):
        names += [f"{table}.{f.name}" for f in dataclasses.fields(cls)]
    missing = [name for name in names if f"`{name}`" not in reference]
    assert not missing, f"README settings reference lacks {missing}"


def test_every_shipped_app_is_described() -> None:
    deploys = section("What the shipped templates deploy")
    apps = REPO / "templates" / "config" / "kubernetes" / "apps"
    for app in sorted(p for p in apps.glob("*/*") if p.is_dir()):
        path = app.relative_to(REPO / "templates" / "config").as_posix()
        assert f"`{path}/`" in deploys, f"README does not say what {path} deploys"


def test_every_console_example_prints_what_the_readme_shows(tmp_path: Path) -> None:
    """Walk the README's ```console examples in order, in a copy of a fresh clone, like a reader:
    each command prints exactly the lines the README shows under it (stdout and stderr as a
    terminal interleaves them), with the exit status after `# exit N` (otherwise 0)."""
    project = tmp_path / "home-ops"
    project.mkdir()
    for name in ("templates", "schemas", "docs"):
        shutil.copytree(REPO / name, project / name)
    for name in ("makeflux.toml", "cluster.sample.yaml", "Taskfile.yaml"):
        shutil.copy2(REPO / name, project / name)
    bin_dir = str(Path(sys.executable).parent)
    cache_dir = tmp_path / "cache"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("MAKEFLUX", "MAKEFLUX_JOBS")},
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "NO_COLOR": "1",
        "MAKEFLUX_CACHE_DIR": str(cache_dir),
    }
    examples: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", README, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                examples.append((line[2:], []))
            elif examples:
                examples[-1][1].append(line)
    assert len(examples) >= 20
    for command, shown in examples:
        match = re.search(r"\s+# exit (\d+)$", command)
        expected = int(match.group(1)) if match else 0
        runnable = command[: match.start()] if match else command
        runnable = runnable.replace("/tmp/cluster", str(tmp_path / "cluster"))
        ran = subprocess.run(
            ["bash", "-c", f"{{ {runnable}; }} 2>&1"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert ran.returncode == expected, f"$ {command}\n{ran.stdout}"
        # The other liberty: the README's reader keeps the cache in their home directory.
        printed = ran.stdout.replace(str(cache_dir), "/home/me/.cache/makeflux")
        assert printed.splitlines() == shown, f"$ {command}"


def test_the_manifest_example_is_the_shipped_settings_manifest(tmp_path: Path) -> None:
    """README's manifest excerpt: the shipped output, and paths that a render records."""
    text = section("Plan, check and prune: what makeflux generated, and never losing your files")
    example = re.search(r"```json\n(.*?)```", text, re.S)
    assert example, "README: no manifest example"
    output = re.search(r'"output": "([^"]*)"', example.group(1))
    paths = re.findall(r'^\s+"([^"]+)": "sha256:', example.group(1), re.M)
    shipped = tomllib.loads((REPO / "makeflux.toml").read_text())["makeflux"]["output"]
    assert output and output.group(1) == shipped
    project = tmp_path / "project"
    project.mkdir()
    for name in ("templates", "schemas"):
        shutil.copytree(REPO / name, project / name)
    shutil.copy2(REPO / "makeflux.toml", project / "makeflux.toml")
    shutil.copy2(REPO / "cluster.sample.yaml", project / "cluster.yaml")
    assert run_cli(["render", "--no-lint"], project).exit_code == 0
    recorded = json.loads((project / ".makeflux-manifest.json").read_text())
    assert paths and set(paths) <= set(recorded["files"])
