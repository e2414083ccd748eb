"""Messages a user reads after a mistake: one line each, true to what happened, with paths as
typed from the working directory, and a next step that works."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import run_cli, run_subprocess, shipped_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The shipped project with cluster.yaml from the sample."""
    return shipped_project(tmp_path / "project")


def settings_with(project: Path, extra: str) -> None:
    settings = project / "makeflux.toml"
    settings.write_text(settings.read_text() + extra)


def test_an_output_that_is_a_file_is_refused_before_anything_is_rendered(project: Path) -> None:
    (project / "afile").write_text("mine\n")
    result = run_cli(["render", "-o", "afile"], project)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "afile: the output is a file, not a directory; name a directory in --output\n"
    )
    below = run_cli(["plan", "-o", "afile/deeper"], project)
    assert below.exit_code == 2
    assert below.stderr == (
        "afile: a file, where the output afile/deeper needs a directory; "
        "name another directory in --output\n"
    )
    assert (project / "afile").read_text() == "mine\n"


@pytest.mark.parametrize("value", ["/", ".", "templates"])
def test_a_manifest_setting_naming_a_directory_is_a_settings_error(
    project: Path, value: str
) -> None:
    settings = project / "makeflux.toml"
    settings.write_text(
        settings.read_text().replace("[makeflux.lint]", f'manifest = "{value}"\n\n[makeflux.lint]')
    )
    result = run_cli(["render"], project)
    assert result.exit_code == 2
    assert result.stderr == (
        f"makeflux.toml: 'manifest' names a directory ({value!r}); it must name a file, "
        'e.g. manifest = ".makeflux-manifest.json"\n'
    )


def test_an_unreadable_manifest_suggests_a_checkout_of_its_path(project: Path) -> None:
    settings = project / "makeflux.toml"
    settings.write_text(
        settings.read_text().replace(
            "[makeflux.lint]", 'manifest = "state/manifest.json"\n\n[makeflux.lint]'
        )
    )
    (project / "state").mkdir()
    (project / "state" / "manifest.json").write_text("garbage\n")
    result = run_cli(["render"], project)
    assert result.exit_code == 2
    assert "(git checkout -- state/manifest.json)" in result.stderr


def test_a_lint_setting_of_the_wrong_type_is_said_once(project: Path) -> None:
    settings_with(project, 'disable = "promql-invalid"\n')
    result = run_subprocess(["lint"], project)
    assert result.returncode == 2
    assert result.stderr == (
        "makeflux.toml: 'lint.disable' must be a list of strings: rule ids to switch off, "
        'e.g. ["template-variable-unused"]\n'
    )


def test_settings_problems_name_the_file_relative_to_the_working_directory(
    project: Path,
) -> None:
    settings_with(project, 'disable = ["nope"]\n')
    below = project / "sub"
    below.mkdir()
    result = run_subprocess(["lint", "--config", "../makeflux.toml"], below)
    assert result.returncode == 2
    assert result.stderr.startswith("../makeflux.toml: 'lint.disable' names unknown rule 'nope'")
    assert str(project) not in result.stderr


def test_init_over_a_link_to_nothing_says_so(project: Path) -> None:
    (project / "cluster.yaml").unlink()
    (project / "cluster.sample.yaml").write_text("cluster_name: home\n")
    (project / "cluster.yaml").symlink_to("elsewhere/cluster.yaml")
    result = run_cli(["init"], project)
    assert result.exit_code == 2
    assert result.stderr == (
        "cluster.yaml: a link to 'elsewhere/cluster.yaml', which does not exist; makeflux init "
        "does not write through links: remove the link, or create the file it points to\n"
    )
    assert os.readlink(project / "cluster.yaml") == "elsewhere/cluster.yaml"


def test_data_from_standard_input_or_a_pipe_is_refused_for_what_it_is(project: Path) -> None:
    stdin = run_cli(["validate", "--data", "-"], project)
    assert stdin.exit_code == 2
    assert stdin.stderr == (
        "--data -: makeflux does not read data from standard input; save it to a file and "
        "pass that\n"
    )
    os.mkfifo(project / "pipe.yaml")
    pipe = run_cli(["validate", "--data", "pipe.yaml"], project)
    assert pipe.exit_code == 2
    assert pipe.stderr == (
        "pipe.yaml: not a regular file (a pipe, socket or device); makeflux reads data from "
        "files: save it to one and name that\n"
    )


def test_a_key_given_twice_in_json_data_is_refused_as_in_yaml(project: Path) -> None:
    (project / "values.json").write_text(
        '{\n  "cluster_name": "a",\n  "cluster_gateway_addr": "10.0.0.1",\n'
        '  "cluster_pod_cidr": "10.42.0.0/16",\n  "control_plane_addrs": [],\n'
        '  "cluster_name": "b"\n}\n'
    )
    result = run_cli(["validate", "--data", "values.json"], project)
    assert result.exit_code == 2
    assert result.stderr == (
        "values.json:6: duplicate key 'cluster_name' (first at line 2); remove one of them\n"
    )


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_data_that_is_not_utf8_is_refused(project: Path, encoding: str) -> None:
    text = (project / "cluster.yaml").read_text()
    prefix = "\ufeff" if encoding == "utf-16-be" else ""
    (project / "cluster.yaml").write_bytes((prefix + text).encode(encoding))
    result = run_cli(["validate"], project)
    assert result.exit_code == 2
    assert result.stderr == "cluster.yaml: not UTF-8 text; save the file as UTF-8\n"


def test_binary_data_is_explained_with_the_text_to_write(project: Path) -> None:
    cluster = project / "cluster.yaml"
    cluster.write_text(
        cluster.read_text().replace('cluster_name: "kubernetes"', "cluster_name: !!binary aGVsbG8=")
    )
    result = run_cli(["validate"], project)
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "cluster_name: is binary data (a !!binary value); expected a string; write the text "
        "itself instead: 'hello'\n"
    )


def test_paths_climb_with_dots_inside_the_repository_and_a_little_outside(tmp_path: Path) -> None:
    from makeflux.errors import display_path

    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    target = tmp_path / "x.yaml"
    # No repository: up to two levels read as `..`, deeper climbs as the absolute path.
    assert display_path(target, tmp_path / "a" / "b") == "../../x.yaml"
    assert display_path(target, deep) == str(target)
    # Inside one, any depth is relative, as git shows paths; outside it, absolute.
    (tmp_path / ".git").mkdir()
    errors_module = sys.modules["makeflux.errors"]
    errors_module._ROOTS.clear()
    assert display_path(target, deep) == "../../../x.yaml"
    assert display_path(tmp_path.parent / "y", deep) == str(tmp_path.parent / "y")


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["render", "--no-lint"],
        ["plan", "--no-lint"],
        ["explain"],
        ["docs", "--check"],
        ["set", "node_cpu_threshold=80"],
    ],
    ids=lambda c: " ".join(c),
)
def test_an_unknown_lint_rule_is_refused_by_every_command(
    project: Path, command: list[str]
) -> None:
    """[makeflux.lint] is part of the settings: a typo there fails `validate` as it fails
    `lint`, not only the commands that happen to lint."""
    settings_with(project, 'disable = ["no-such-rule"]\n')
    before = (project / "cluster.yaml").read_bytes()
    result = run_cli(command, project)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("makeflux.toml: 'lint.disable' names unknown rule 'no-such-rule'; ")
    assert (project / "cluster.yaml").read_bytes() == before
    assert not (project / "kubernetes").exists()
