"""makeflux is a drop-in for makejinja: same inputs, data and settings → same tree, same bytes."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TESTS_DIR, run_cli

FIXTURE = TESTS_DIR / "fixtures" / "dropin"
MAKEJINJA = shutil.which("makejinja") or str(Path(sys.executable).parent / "makejinja")


def tree_state(root: Path) -> dict[str, object]:
    """Files (bytes and exec bit) and directories below root: what 'the same tree' means."""
    state: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            state[rel + "/"] = "dir"
        else:
            state[rel] = (path.read_bytes(), bool(path.stat().st_mode & stat.S_IXUSR))
    return state


def run_makejinja(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKEFLUX")}
    done = subprocess.run(
        [MAKEJINJA, "--quiet"], cwd=project, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr + done.stdout


VARIANTS = {
    "as-written": "",
    "keep-everything": (
        "keep_empty = true\nkeep_jinja_suffix = true\ncopy_metadata = true\n"
        'undefined = "chainable"\n'
    ),
    "whitespace": (
        "\n[makejinja.whitespace]\ntrim_blocks = false\nlstrip_blocks = false\n"
        "keep_trailing_newline = false\n"
    ),
    "include-patterns": 'include_patterns = ["**/", "**/*.yaml.j2", "**/*.sh"]\n',
}


def make_project(tmp_path: Path, variant: str) -> Path:
    project = tmp_path / "project"
    shutil.copytree(FIXTURE, project, symlinks=True)
    settings = project / "makejinja.toml"
    text = settings.read_text()
    extra = VARIANTS[variant]
    if "undefined" in extra:
        text = text.replace('undefined = "strict"\n', "")
    if extra.startswith("\n["):
        text += extra
    else:
        text = text.replace("[makejinja]\n", "[makejinja]\n" + extra, 1)
    settings.write_text(text)
    return project


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_same_tree_as_makejinja(tmp_path: Path, variant: str) -> None:
    project = make_project(tmp_path, variant)
    run_makejinja(project)
    expected = tree_state(project / "out")
    shutil.rmtree(project / "out")

    result = run_cli(["render"], project)
    assert result.exit_code == 0, result.output
    actual = tree_state(project / "out")
    assert actual == expected
    # The fixture really exercises what it claims to.
    assert "kubernetes/apps/monitoring/ports.partial.yaml" not in actual  # excluded partial
    assert "bootstrap/skipme.txt" not in actual  # plugin path filter
    assert "bootstrap/script.sh" in actual  # copied as is
    names = {k.rsplit("/", 1)[-1] for k in actual}
    assert "disabled.yaml" not in names or variant == "keep-everything"


def test_overrides_input_wins_and_data_merges(tmp_path: Path) -> None:
    project = make_project(tmp_path, "as-written")
    assert run_cli(["render"], project).exit_code == 0
    out = project / "out"
    assert "# from overrides" in (out / "kubernetes/apps/kustomization.yaml").read_text()
    release = (out / "kubernetes/apps/monitoring/helmrelease.yaml").read_text()
    assert "region: eu-1" in release  # data_vars dotted key beats the file
    assert "owner: ops" in release  # b.toml loaded after a.json
    assert "retention: 7d" in release  # second YAML document
    assert "gateway: 10.0.0.1" in release  # plugin filter
    assert "name: tempo" not in release  # loopcontrols extension
    assert not (out / "kubernetes/apps/empty").exists()  # emptied dir removed


def test_makeflux_toml_means_the_same_as_makejinja_toml(tmp_path: Path) -> None:
    project = make_project(tmp_path, "as-written")
    run_makejinja(project)
    expected = tree_state(project / "out")
    shutil.rmtree(project / "out")
    # makeflux.toml defaults already are the cluster-template delimiters, .j2 and strict.
    text = (project / "makejinja.toml").read_text()
    text = text.replace("[makejinja]", "[makeflux]").split("[makejinja.delimiter]")[0]
    text = text.replace('jinja_suffix = ".j2"\n', "").replace('undefined = "strict"\n', "")
    (project / "makeflux.toml").write_text(text)
    (project / "makejinja.toml").unlink()
    # The fixture is no Flux tree; makeflux.toml projects lint by default.
    result = run_cli(["render", "--no-lint"], project)
    assert result.exit_code == 0, result.output
    assert tree_state(project / "out") == expected


def test_plugin_files_import_makejinja_without_makejinja_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path, "as-written")
    # None in sys.modules makes `import makejinja` fail, as on a machine without it.
    monkeypatch.setitem(sys.modules, "makejinja", None)
    monkeypatch.setitem(sys.modules, "makejinja.plugin", None)
    result = run_cli(["render"], project)
    assert result.exit_code == 0, result.output
    assert (
        "greeting: hello home"
        in (project / "out/kubernetes/apps/monitoring/helmrelease.yaml").read_text()
    )


def test_makejinja_projects_lint_only_when_asked(tmp_path: Path) -> None:
    project = make_project(tmp_path, "as-written")
    render = run_cli(["render"], project)
    assert render.exit_code == 0, render.output
    assert "kustomize-resource-missing" not in render.output
    check = run_cli(["check"], project)
    assert check.exit_code == 0, check.output
    lint = run_cli(["lint"], project)
    assert lint.exit_code == 1
    assert "kustomize-resource-missing" in lint.output
