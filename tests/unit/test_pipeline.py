"""The render engine: settings, data, --set, all-or-nothing, no churn, bad input."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli, run_subprocess, snapshot

SETTINGS = """\
[makeflux]
inputs = ["templates"]
output = "out"
data = ["cluster.yaml"]
"""


def make_project(
    tmp_path: Path, templates: dict[str, str], data: str = "name: demo\n", settings: str = SETTINGS
) -> Path:
    project = tmp_path / "project"
    for name, text in templates.items():
        path = project / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (project / "makeflux.toml").write_text(settings)
    (project / "cluster.yaml").write_text(data)
    return project


def render(project: Path, *args: str):
    return run_cli(["render", *args], project)


# --- rendering -----------------------------------------------------------------------------------


def test_cluster_template_delimiters_by_default(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        {
            "app.yaml.j2": "#| comment #|\n#% if name %#\nname: #{ name }#\n#% endif %#\n",
        },
    )
    result = render(project)
    assert result.exit_code == 0, result.output
    assert (project / "out/app.yaml").read_text() == "name: demo\n"


def test_every_delimiter_is_configurable(tmp_path: Path) -> None:
    settings = SETTINGS + (
        '[makeflux.delimiter]\nblock_start = "<%"\nblock_end = "%>"\n'
        'variable_start = "#<"\nvariable_end = ">#"\n'
        'comment_start = "<#"\ncomment_end = "#>"\n'
    )
    project = make_project(
        tmp_path,
        {
            "app.yaml.j2": (
                "<# gone #><% if true %>\nname: #<  name  >#\nraw: #{ name }#\n<% endif %>\n"
            ),
        },
        settings=settings,
    )
    result = render(project)
    assert result.exit_code == 0, result.output
    assert (project / "out/app.yaml").read_text() == "name: demo\nraw: #{ name }#\n"


def test_set_overrides_with_natural_types(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        {
            "app.yaml.j2": (
                "flag: #{ flag is sameas true }#\nnum: #{ num + 1 }#\nret: #{ ret }#\n"
                "deep: #{ a.b.c }#\nkept: #{ a.keep }#\n"
            ),
        },
        data="flag: false\nnum: 1\nret: 1d\na:\n  keep: yes-kept\n",
    )
    result = render(
        project,
        "--set",
        "flag=true",
        "--set",
        "num=90",
        "--set",
        "ret=7d",
        "--set",
        "a.b.c=deep value",
    )
    assert result.exit_code == 0, result.output
    assert (project / "out/app.yaml").read_text() == (
        "flag: True\nnum: 91\nret: 7d\ndeep: deep value\nkept: yes-kept\n"
    )
    # --set is for this run only: the data file is untouched.
    assert (project / "cluster.yaml").read_text().startswith("flag: false")


def test_empty_output_is_not_written_and_summary_counts_it(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        {
            "on.yaml.j2": "a: 1\n",
            "off.yaml.j2": "#% if false %#\na: 1\n#% endif %#\n",
            "blank.yaml.j2": "   \n\n",
        },
    )
    result = render(project)
    assert result.exit_code == 0
    assert sorted(p.name for p in (project / "out").iterdir()) == ["on.yaml"]
    assert "1 created" in result.output and "2 skipped (empty)" in result.output


def test_no_churn_second_render_touches_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"a.yaml.j2": "a: #{ name }#\n", "b.yaml.j2": "b: 1\n"})
    assert render(project).exit_code == 0
    before = snapshot(project / "out")
    time.sleep(0.01)
    result = render(project)
    assert result.exit_code == 0
    assert snapshot(project / "out") == before
    assert "0 created" in result.output and "2 unchanged" in result.output


def test_changed_file_is_replaced_atomically_and_others_stay(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"a.yaml.j2": "a: #{ name }#\n", "b.yaml.j2": "b: 1\n"})
    assert render(project).exit_code == 0
    b_before = snapshot(project / "out")["b.yaml"]
    inode_a = (project / "out/a.yaml").stat().st_ino
    result = render(project, "--set", "name=changed")
    assert result.exit_code == 0
    assert (project / "out/a.yaml").read_text() == "a: changed\n"
    assert (project / "out/a.yaml").stat().st_ino != inode_a  # a new file renamed into place
    assert snapshot(project / "out")["b.yaml"] == b_before
    assert sorted(p.name for p in (project / "out").iterdir()) == ["a.yaml", "b.yaml"]  # no temp


def test_written_files_get_an_ordinary_mode(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"a.yaml.j2": "a: 1\n"})
    old = os.umask(0o022)
    try:
        assert render(project).exit_code == 0
    finally:
        os.umask(old)
    assert (project / "out/a.yaml").stat().st_mode & 0o777 == 0o644


# --- all or nothing ------------------------------------------------------------------------------


def test_every_failing_template_reported_and_nothing_written(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        {
            "ok.yaml.j2": "ok: #{ name }#\n",
            "apps/loki/helmrelease.yaml.j2": "a: 1\nb: 2\nenabled: #{ loki_enabeld }#\n",
            "syntax.yaml.j2": "a: 1\n#% if %#\n",
        },
    )
    (project / "out").mkdir()
    (project / "out/ok.yaml").write_text("old content\n")
    before = snapshot(project / "out")
    result = render(project)
    assert result.exit_code == 2
    lines = (
        result.stderr.strip().splitlines() if result.stderr_bytes else result.output.splitlines()
    )
    assert any(
        line.startswith("templates/apps/loki/helmrelease.yaml.j2:3: 'loki_enabeld' is undefined")
        for line in lines
    ), lines
    assert any(
        line.startswith("templates/syntax.yaml.j2:2: template syntax error") for line in lines
    )
    assert "Traceback" not in result.output
    assert snapshot(project / "out") == before


def test_undefined_inside_an_include_names_the_partial(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        {
            "main.yaml.j2": "top: 1\n#% include 'part.inc' %#\n",
            "part.inc": "x: 1\ny: #{ missing_var }#\n",
        },
    )
    result = render(project)
    assert result.exit_code == 2
    assert "templates/part.inc:2: 'missing_var' is undefined" in result.output


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"a.yaml.j2": "#{ nope }#\n"})
    done = run_subprocess(["--debug", "render"], project)
    assert done.returncode != 0
    assert "Traceback" in done.stderr
    plain = run_subprocess(["render"], project)
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr
    assert plain.stderr.strip() == (
        "templates/a.yaml.j2:1: 'nope' is undefined; "
        "define it in your data (e.g. cluster.yaml) or guard it with 'is defined'"
    )


# --- bad input: one clear line, exit 2, output untouched -----------------------------------------

BAD_INPUTS = {
    "missing settings": (
        lambda p: (p / "makeflux.toml").unlink(),
        "no makeflux.toml or makejinja.toml in",
    ),
    "malformed settings": (
        lambda p: (p / "makeflux.toml").write_text('[makeflux]\ninputs = ["templates"\n'),
        "makeflux.toml:3: not valid TOML",
    ),
    "unknown settings key": (
        lambda p: (p / "makeflux.toml").write_text(SETTINGS + "ouput = 'x'\n"),
        "makeflux.toml: unknown key 'ouput' in [makeflux]",
    ),
    "missing data file": (
        lambda p: (p / "cluster.yaml").unlink(),
        "cluster.yaml: data file not found",
    ),
    "data not a mapping": (
        lambda p: (p / "cluster.yaml").write_text("- a\n- b\n"),
        "cluster.yaml: document 1 is a list, not a mapping",
    ),
    "invalid yaml": (
        lambda p: (p / "cluster.yaml").write_text("a: 1\nb: [1, 2\n"),
        "cluster.yaml:3:1: invalid YAML",
    ),
    "duplicate key": (
        lambda p: (p / "cluster.yaml").write_text("name: a\nname: b\n"),
        "cluster.yaml:2:1: invalid YAML: duplicate key 'name' (first at line 1)",
    ),
    "plugin cannot be imported": (
        lambda p: (p / "makeflux.toml").write_text(SETTINGS + 'plugins = ["nosuch:Plugin"]\n'),
        "makeflux.toml: cannot import plugin 'nosuch:Plugin'",
    ),
    "template syntax error": (
        lambda p: (p / "templates/app.yaml.j2").write_text("a: 1\n#% for %#\n"),
        "templates/app.yaml.j2:2: template syntax error",
    ),
    "undefined under strict": (
        lambda p: (p / "templates/app.yaml.j2").write_text("a: #{ nam }#\n"),
        "templates/app.yaml.j2:1: 'nam' is undefined",
    ),
    "bad --set": (None, "--set 'novalue': expected KEY=VALUE"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_one_clear_line(tmp_path: Path, case: str) -> None:
    project = make_project(tmp_path, {"app.yaml.j2": "name: #{ name }#\n"})
    (project / "out").mkdir()
    (project / "out/keep.txt").write_text("user file\n")
    (project / "out/app.yaml").write_text("name: old\n")
    before = snapshot(project / "out")
    breaker, expected = BAD_INPUTS[case]
    args = ["render"]
    if breaker is None:
        args += ["--set", "novalue"]
    else:
        breaker(project)
    done = run_subprocess(args, project)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert expected in lines[0]
    assert "Traceback" not in done.stderr
    assert snapshot(project / "out") == before


def test_makejinja_toml_is_read_when_there_is_no_makeflux_toml(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        {"app.yaml.jinja": "name: {{ name }}\n"},
        settings=SETTINGS.replace("makeflux", "makejinja"),
    )
    (project / "makeflux.toml").rename(project / "makejinja.toml")
    result = render(project)
    assert result.exit_code == 0, result.output
    assert (project / "out/app.yaml").read_text() == "name: demo\n"


def test_explicit_config_path(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"app.yaml.j2": "name: #{ name }#\n"})
    (project / "makeflux.toml").rename(project / "other.toml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli(["render", "--config", str(project / "other.toml")], elsewhere)
    assert result.exit_code == 0, result.output
    assert (project / "out/app.yaml").read_text() == "name: demo\n"  # paths relative to the file


def test_version_help_and_module_entry_point(tmp_path: Path) -> None:
    from makeflux import __version__

    done = run_subprocess(["--version"], tmp_path)
    assert done.returncode == 0 and __version__ in done.stdout
    done = run_subprocess(["--help"], tmp_path)
    assert done.returncode == 0 and "render" in done.stdout


def test_set_value_that_yaml_would_read_as_a_comment_stays_text(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"app.yaml.j2": "channel: '#{ channel }#'\n"})
    result = render(project, "--set", "channel=#ops")
    assert result.exit_code == 0, result.output
    assert (project / "out/app.yaml").read_text() == "channel: '#ops'\n"


def test_quiet_validate_prints_nothing_on_success(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        {"app.yaml.j2": "name: #{ name }#\n"},
        settings=SETTINGS + 'schema = "schema.json"\n',
    )
    (project / "schema.json").write_text('{"properties": {"name": {"type": "string"}}}')
    assert run_cli(["validate"], project).output == "makeflux: cluster.yaml is valid\n"
    result = run_cli(["--quiet", "validate"], project)
    assert (result.exit_code, result.output) == (0, "")


def test_plugins_are_constructed_once_per_run_though_lint_reads_the_templates(
    tmp_path: Path,
) -> None:
    project = make_project(
        tmp_path,
        {"app.yaml.j2": "name: #{ name }#\n"},
        settings=SETTINGS + 'import_paths = ["scripts"]\nplugins = ["counting:Plugin"]\n',
    )
    (project / "scripts").mkdir()
    (project / "scripts/counting.py").write_text(
        "from pathlib import Path\n\n\nclass Plugin:\n    def __init__(self):\n"
        "        with Path(__file__).with_name('count').open('a') as fp:\n"
        "            fp.write('x')\n"
    )
    result = render(project)  # a makeflux.toml project: render lints too
    assert result.exit_code == 0, result.output
    assert (project / "scripts/count").read_text() == "x"
