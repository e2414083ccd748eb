"""Lint findings name the template line that produced the rendered line: across a `#%` for
loop and if blocks, an imported macro, an included partial, and a copied file; a line that
cannot be traced names no template rather than a wrong one."""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent

import pytest
from conftest import run_cli

SETTINGS = """\
[makeflux]
inputs = ["templates"]
output = "."
data = ["cluster.yaml"]
exclude_patterns = ["macros/*.j2", "partials/*.j2"]
"""

MACROS = """\
#% macro port_entry(number) %#
    - port: #{ number }#
      protocoll: TCP
#% endmacro %#
"""

PARTIAL = """\
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: extra
  labels:
    tier: platform_
"""

SERVICES = """\
#% import "macros/ports.j2" as ports %#
#% for name in services %#
---
apiVersion: v1
kind: Service
metadata:
  name: #{ name }#
spec:
  ports:
#% if name == "web" %#
    - port: http
#% else %#
#{ ports.port_entry(80) }#
#% endif %#
#% endfor %#
#% include "partials/extra.yaml.j2" %#
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: #{ replicas | tojson }#
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx
"""


def make_project(tmp_path: Path, files: dict[str, str]) -> Path:
    project = tmp_path / "project"
    for name, text in {
        "makeflux.toml": SETTINGS,
        "cluster.yaml": 'services: [web, api]\nreplicas: "3"\n',
        "templates/macros/ports.j2": MACROS,
        "templates/partials/extra.yaml.j2": PARTIAL,
        **files,
    }.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return project


def schema_findings(project: Path) -> list[dict]:
    result = run_cli(["lint", "--format", "json"], project)
    assert result.exit_code == 1, result.output
    return [f for f in json.loads(result.stdout) if f["rule"].startswith("schema-")]


def test_each_finding_names_the_line_of_the_loop_macro_partial_or_template(tmp_path) -> None:
    project = make_project(
        tmp_path, {"templates/kubernetes/apps/web/app/service.yaml.j2": SERVICES}
    )
    found = [
        (f["line"], f["rule"], f["template"], f["template_line"]) for f in schema_findings(project)
    ]
    service = "templates/kubernetes/apps/web/app/service.yaml.j2"
    assert found == [
        (8, "schema-type", service, 11),  # the `#% if %#` branch inside the loop
        (17, "schema-unknown-field", "templates/macros/ports.j2", 3),  # the macro's body
        (25, "schema-metadata", "templates/partials/extra.yaml.j2", 7),  # the included partial
        (32, "schema-type", service, 23),  # an expression after the blocks
    ]
    # Each named template line is the one holding the offending text.
    rendered = run_cli(["render", "--no-lint"], project)
    assert rendered.exit_code == 0, rendered.output
    output = (project / "kubernetes/apps/web/app/service.yaml").read_text().splitlines()
    for line, _rule, template, template_line in found:
        key = output[line - 1].strip().split(":")[0].lstrip("- ")
        assert key in (project / template).read_text().splitlines()[template_line - 1]


def test_text_and_github_formats_name_the_template(tmp_path) -> None:
    project = make_project(
        tmp_path, {"templates/kubernetes/apps/web/app/service.yaml.j2": SERVICES}
    )
    text = run_cli(["lint"], project).stdout
    assert (
        "kubernetes/apps/web/app/service.yaml:17 (templates/macros/ports.j2:3): error: "
        "schema-unknown-field: Service spec.ports[0].protocoll: unknown field 'protocoll'; "
        "did you mean 'protocol'?"
    ) in text.splitlines()
    github = run_cli(["lint", "--format", "github"], project).stdout
    assert (
        "::error file=templates/macros/ports.j2,line=3,title=schema-unknown-field::"
        "kubernetes/apps/web/app/service.yaml:17: schema-unknown-field: Service "
        "spec.ports[0].protocoll: unknown field 'protocoll'; did you mean 'protocol'?"
    ) in github.splitlines()


def test_a_copied_file_names_itself_at_the_same_line(tmp_path) -> None:
    plain = dedent(PARTIAL)
    project = make_project(tmp_path, {"templates/kubernetes/apps/extra.yaml": plain})
    assert [(f["line"], f["template"], f["template_line"]) for f in schema_findings(project)] == [
        (7, "templates/kubernetes/apps/extra.yaml", 7)
    ]


def test_an_untraceable_line_names_no_template(tmp_path) -> None:
    # `length` of a macro's output counts the marks too: the traced render differs from the
    # real one, so no template is named (never a wrong one).
    template = SERVICES.replace(
        "  replicas: #{ replicas | tojson }#", '  replicas: "#{ ports.port_entry(1) | length }#"'
    )
    project = make_project(
        tmp_path, {"templates/kubernetes/apps/web/app/service.yaml.j2": template}
    )
    found = schema_findings(project)
    assert [f["template"] for f in found] == [None] * len(found)
    assert [f["line"] for f in found] == [8, 17, 25, 32]


@pytest.mark.parametrize("command", ["render", "check", "plan", "lint"])
def test_every_command_that_lints_reports_schema_findings_with_their_template(
    tmp_path, command: str
) -> None:
    project = make_project(
        tmp_path, {"templates/kubernetes/apps/web/app/service.yaml.j2": SERVICES}
    )
    result = run_cli([command], project)
    assert result.exit_code == 1, result.output
    assert (
        "kubernetes/apps/web/app/service.yaml:17 (templates/macros/ports.j2:3): error: "
        "schema-unknown-field: Service spec.ports[0].protocoll"
    ) in result.output
    if command != "lint":
        skipped = run_cli([command, "--no-lint"], project)
        assert "schema-" not in skipped.output


def test_check_json_lint_findings_name_their_template(tmp_path) -> None:
    project = make_project(
        tmp_path, {"templates/kubernetes/apps/web/app/service.yaml.j2": SERVICES}
    )
    result = run_cli(["check", "--format", "json"], project)
    assert result.exit_code == 1
    lint = json.loads(result.stdout)["lint"]
    assert [(f["line"], f["template"], f["template_line"]) for f in lint] == [
        (8, "templates/kubernetes/apps/web/app/service.yaml.j2", 11),
        (17, "templates/macros/ports.j2", 3),
        (25, "templates/partials/extra.yaml.j2", 7),
        (32, "templates/kubernetes/apps/web/app/service.yaml.j2", 23),
    ]
