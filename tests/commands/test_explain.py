"""makeflux explain [KEY]: a variable's meaning, limits, rules and users; without KEY, a table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2
import pytest
from click.testing import CliRunner, Result

from makeflux.cli import cli
from tests.conftest import REPO_ROOT, shipped_project

REPO = REPO_ROOT
SCHEMA = json.loads((REPO / "schemas" / "cluster.schema.json").read_text())


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = shipped_project(tmp_path / "project", cluster_yaml=False)
    (root / "cluster.yaml").write_text(
        "monitoring_enabled: true\ntracing_enabled: true\ntracing_sample_rate: 25\n"
    )
    monkeypatch.chdir(root)
    return root


def explain(*args: str) -> Result:
    return CliRunner().invoke(cli, ["explain", *args])


def field(output: str, label: str) -> list[str]:
    """The values printed for `label:` (continuation lines included)."""
    values: list[str] = []
    inside = False
    for line in output.splitlines():
        match = re.match(r"^  (\w[\w ]*):\s+(.*)$", line)
        if match:
            inside = match.group(1) == label
            if inside:
                values.append(match.group(2))
        elif inside and line.startswith("            "):
            values.append(line.strip())
        else:
            inside = False
    return values


def templates_mentioning(project: Path, name: str) -> set[str]:
    """Templates whose text names the variable (a word match): what 'used by' must list."""
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    return {
        path.relative_to(project).as_posix()
        for path in (project / "templates").rglob("*.j2")
        if pattern.search(path.read_text())
    }


def test_explain_shows_everything_the_schema_says_and_the_current_value(project: Path) -> None:
    result = explain("tracing_sample_rate")
    assert result.exit_code == 0, result.output
    spec = SCHEMA["properties"]["tracing_sample_rate"]
    text = " ".join(result.output.split())
    assert " ".join(spec["description"].split()) in text
    assert field(result.output, "type") == ["integer"]
    assert field(result.output, "default") == [str(spec["default"])]
    assert field(result.output, "allowed") == [f"{spec['minimum']} to {spec['maximum']}"]
    assert field(result.output, "current") == ["25 (cluster.yaml)"]


def test_explain_lists_the_rules_a_variable_takes_part_in(project: Path) -> None:
    result = explain("hubble_enabled")
    assert result.exit_code == 0, result.output
    rules = field(result.output, "rules")
    # Both directions: hubble needs monitoring, and hubble UI needs hubble.
    assert "when hubble_enabled is true, monitoring_enabled must be true" in rules
    assert "when hubble_ui_enabled is true, hubble_enabled must be true" in rules
    rule_count = sum("hubble_enabled" in json.dumps(rule) for rule in SCHEMA.get("allOf", []))
    assert len(rules) == rule_count
    assert field(result.output, "current") == ["false (default)"]
    assert field(result.output, "allowed") == ["true or false"]


def test_explain_lists_exactly_the_templates_that_use_a_variable(project: Path) -> None:
    for name in ("tracing_sample_rate", "monitoring_stack", "node_memory_threshold"):
        result = explain(name)
        assert result.exit_code == 0, result.output
        expected = templates_mentioning(project, name)
        assert expected, f"no shipped template uses {name}"
        assert set(field(result.output, "used by")) == expected


def test_template_users_are_remembered_between_runs_and_follow_edits(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = field(explain("tracing_sample_rate").output, "used by")
    parses: list[str] = []
    original = jinja2.Environment.parse

    def counting_parse(self, source, *args, **kwargs):
        parses.append(source)
        return original(self, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "parse", counting_parse)
    assert field(explain("tracing_sample_rate").output, "used by") == first
    assert parses == []  # every template's names came from the cache
    extra = project / "templates" / "config" / "extra.yaml.j2"
    extra.write_text("rate: #{ tracing_sample_rate }#\n")
    users = field(explain("tracing_sample_rate").output, "used by")
    assert set(users) == set(first) | {"templates/config/extra.yaml.j2"}
    assert len(parses) == 1
    extra.write_text("rate: none\n")
    assert field(explain("tracing_sample_rate").output, "used by") == first


def test_explain_enum_lists_allowed_values(project: Path) -> None:
    result = explain("monitoring_stack")
    allowed = field(result.output, "allowed")
    assert allowed == ["one of " + ", ".join(SCHEMA["properties"]["monitoring_stack"]["enum"])]


def test_unknown_key_exits_2_with_did_you_mean(project: Path) -> None:
    result = explain("tracing_sample_rat")
    assert result.exit_code == 2
    assert "unknown variable 'tracing_sample_rat'; did you mean 'tracing_sample_rate'?" in (
        result.output
    )
    result = explain("zzz")
    assert result.exit_code == 2
    assert "did you mean" not in result.output


def test_table_shows_every_variable_with_its_value_or_default(project: Path) -> None:
    result = explain()
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.output.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and parts[0] in SCHEMA["properties"]:
            rows[parts[0]] = (" ".join(parts[1:-1]), parts[-1])
    assert set(rows) == set(SCHEMA["properties"])
    assert rows["tracing_sample_rate"] == ("25", "cluster.yaml")
    assert rows["monitoring_enabled"] == ("true", "cluster.yaml")
    default = SCHEMA["properties"]["node_cpu_threshold"]["default"]
    assert rows["node_cpu_threshold"] == (str(default), "default")


def test_table_without_cluster_yaml_shows_defaults(project: Path) -> None:
    (project / "cluster.yaml").unlink()
    result = explain()
    assert result.exit_code == 0, result.output
    assert " cluster.yaml" not in result.output
    assert "default" in result.output


def test_explain_key_completes_in_the_shell(project: Path) -> None:
    from click.shell_completion import ShellComplete

    completion = ShellComplete(cli, {}, "makeflux", "_MAKEFLUX_COMPLETE")
    names = [item.value for item in completion.get_completions(["explain"], "tracing_")]
    assert names == [name for name in SCHEMA["properties"] if name.startswith("tracing_")]


def test_nested_refs_and_rules_of_a_hand_written_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$ref'd definitions, nested objects (dotted names), if/then/else and dependentRequired."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"percent": {"type": "integer", "minimum": 1, "maximum": 100}},
        "properties": {
            "mode": {"enum": ["fast", "safe"], "default": "safe", "description": "How to run."},
            "alerting": {
                "type": "object",
                "properties": {
                    "threshold": {"$ref": "#/$defs/percent", "default": 90},
                    "channel": {"type": "string"},
                },
            },
            "webhook": {"type": "string"},
            "token": {"type": "string"},
        },
        "allOf": [
            {
                "if": {"properties": {"mode": {"const": "fast"}}, "required": ["mode"]},
                "then": {"required": ["webhook"]},
                "else": {"properties": {"alerting": {"required": ["channel"]}}},
            }
        ],
        "dependentRequired": {"webhook": ["token"]},
    }
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    (tmp_path / "makeflux.toml").write_text(
        '[makeflux]\ninputs = ["t"]\noutput = "out"\ndata = ["c.yaml"]\nschema = "schema.json"\n'
    )
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "alert.yaml.j2").write_text("#{ alerting.threshold }#\n")
    (tmp_path / "c.yaml").write_text("alerting:\n  threshold: 75\n")
    monkeypatch.chdir(tmp_path)

    nested = explain("alerting.threshold")
    assert nested.exit_code == 0, nested.output
    assert field(nested.output, "type") == ["integer"]
    assert field(nested.output, "allowed") == ["1 to 100"]
    assert field(nested.output, "current") == ["75 (c.yaml)"]
    assert field(nested.output, "used by") == ["t/alert.yaml.j2"]

    mode = explain("mode")
    assert field(mode.output, "type") == ["string"]
    assert field(mode.output, "rules") == [
        "when mode is fast, webhook must be set; otherwise alerting.channel must be set"
    ]
    assert field(explain("token").output, "rules") == ["when webhook is set, token must be set too"]


def test_a_recursive_schema_lists_each_definition_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A definition that refers to itself (a tree) is described, not followed forever."""
    node = {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}
    schema = {"$defs": {"node": node}, "properties": {"tree": {"$ref": "#/$defs/node"}}}
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    (tmp_path / "makeflux.toml").write_text(
        '[makeflux]\ninputs = ["t"]\noutput = "out"\ndata = ["c.yaml"]\nschema = "schema.json"\n'
    )
    (tmp_path / "t").mkdir()
    (tmp_path / "c.yaml").write_text("tree: {}\n")
    monkeypatch.chdir(tmp_path)

    child = explain("tree.child")
    assert child.exit_code == 0, child.output
    assert field(child.output, "type") == ["object"]
    assert explain("tree.child.child").exit_code != 0  # listed once, not one level per ref
