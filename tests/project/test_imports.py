"""A command imports only what it needs: what `makeflux render` loads, in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.helpers.plugin_project import make_project

# Runs the real CLI, then reports which modules the process ended up with (main() leaves with
# os._exit once atexit handlers have run, so the report is one of them).
PROBE = """
import atexit, json, sys
from makeflux.console import main

def report():
    with open(REPORT, "w") as fp:
        json.dump(sorted(sys.modules), fp)

atexit.register(report)
sys.argv = ["makeflux", *json.loads(sys.argv[1])]
main()
"""

NOT_FOR_RENDER = (
    "makejinja.cli",  # makejinja's CLI (rich, typed-settings, pydantic): plugins need none of it
    "typed_settings",
    "pydantic",
    "rich",
    "ruamel",  # comment-preserving YAML: only `makeflux set`
    "jsonschema",  # only when a schema is configured
    "makeflux.commands.set_value",
    "makeflux.commands.docs",
    "makeflux.commands.explain",
)


def modules_after(args: list[str], cwd: Path, tmp_path: Path) -> set[str]:
    report = tmp_path / "modules.json"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
    env["MAKEFLUX_CACHE_DIR"] = str(tmp_path / "cache")
    code = f"REPORT = {str(report)!r}\n" + PROBE
    subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return set(json.loads(report.read_text()))


def loaded(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_render_with_a_makejinja_plugin_imports_no_heavy_extras(tmp_path: Path):
    project = make_project(tmp_path / "project")
    modules = modules_after(["render", "--no-lint", "-o", "out"], project, tmp_path)
    assert (project / "out" / "app.yaml").is_file()  # it did render, plugin included
    assert "makeflux.render" in modules and "plugin" in modules
    assert [name for name in NOT_FOR_RENDER if loaded(modules, name)] == []


def test_version_imports_no_jinja(tmp_path: Path):
    modules = modules_after(["--version"], tmp_path, tmp_path)
    assert not loaded(modules, "jinja2")
    assert not loaded(modules, "yaml")


# Not needed by a warm run (caches filled, nothing changed): the data and the settings come
# from the cache, so neither the YAML reader nor tomllib is needed; the schema's variables serve
# only --set and schemas.
NOT_FOR_A_WARM_RUN = (
    "yaml",
    "tomllib",
    "makeflux.cluster_schema.variables",
    "makeflux.cluster_schema.messages",
    "makeflux.yamlsource",
)


def test_a_warm_render_and_check_import_no_yaml_reader(tmp_path: Path):
    project = make_project(tmp_path / "project")
    cold = modules_after(["render", "--no-lint", "-o", "out"], project, tmp_path)
    assert loaded(cold, "yaml")  # the cold run did read the data with PyYAML
    for command in (["render", "-o", "out"], ["check", "-o", "out"]):
        modules = modules_after(command, project, tmp_path)
        assert "makeflux.render" in modules and "plugin" in modules
        assert [name for name in NOT_FOR_A_WARM_RUN if loaded(modules, name)] == []


def test_a_changed_data_file_is_read_with_pyyaml_again(tmp_path: Path):
    """The other side of the lazy import: a data file not in the cache is still read."""
    project = make_project(tmp_path / "project")
    modules_after(["render", "-o", "out"], project, tmp_path)
    data = project / "cluster.yaml"
    data.write_text(data.read_text() + "\nadded_key: 1\n")
    assert loaded(modules_after(["render", "-o", "out"], project, tmp_path), "yaml")


GC_PROBE = """
import atexit, gc, json, sys
from makeflux.console import main
from makeflux import classcode

def report():
    with open(REPORT, "w") as fp:
        state = {"frozen": gc.get_freeze_count(), "enabled": gc.isenabled()}
        json.dump({**state, "compiled dataclass code": classcode._added}, fp)

atexit.register(report)
sys.argv = ["makeflux", *json.loads(sys.argv[1])]
main()
"""


def test_the_console_script_imports_its_command_with_the_collector_paused(tmp_path: Path):
    """What importing a command makes lives until exit: the collector is paused meanwhile and
    those objects frozen; it is collecting again for the command itself."""
    project = make_project(tmp_path / "project")
    report = tmp_path / "gc.json"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
    env["MAKEFLUX_CACHE_DIR"] = str(tmp_path / "cache")
    code = f"REPORT = {str(report)!r}\n" + GC_PROBE
    args = json.dumps(["render", "-o", "out"])
    for run in ("cold", "warm"):
        subprocess.run([sys.executable, "-c", code, args], cwd=project, env=env, check=True)
        state = json.loads(report.read_text())
        assert state["enabled"] and state["frozen"] > 10_000
        # the warm run's dataclasses run code kept by the cold one (makeflux.classcode)
        assert state["compiled dataclass code"] == (run == "cold")


def test_in_process_callers_keep_their_collector_as_it_is(tmp_path: Path):
    import gc

    from tests.conftest import run_cli

    project = make_project(tmp_path / "project")
    frozen = gc.get_freeze_count()
    assert run_cli(["render", "-o", "out"], project).exit_code == 0
    assert gc.get_freeze_count() == frozen and gc.isenabled()
