"""The validation engine against small schemas written here: messages, lines, hints, no cascade."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT, run_cli, snapshot

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "$defs": {"duration": {"type": "string", "pattern": "^[0-9]+(h|d)$"}},
    "properties": {
        "cluster_name": {"type": "string", "default": "home"},
        "monitoring_enabled": {"type": "boolean", "default": False},
        "hubble_enabled": {"type": "boolean", "default": False},
        "loki_enabled": {"type": "boolean", "default": False},
        "tracing_sample_rate": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
        "monitoring_stack": {
            "type": "string",
            "enum": ["victoriametrics", "prometheus"],
            "default": "victoriametrics",
        },
        "metrics_retention": {
            "$ref": "#/$defs/duration",
            "default": "7d",
            "examples": ["7d", "72h"],
        },
        "storage_size": {"type": "string", "pattern": "^[0-9]+Gi$", "examples": ["5Gi"]},
        # no default: with defaults applied first, dependentRequired would always fire
        "slack_webhook": {"type": "string"},
        "slack_channel": {"type": "string"},
        "nodes": {
            "type": "array",
            "default": [],
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "address": {"type": "string", "format": "ipv4", "examples": ["10.0.0.1"]},
                    "role": {"type": "string", "default": "worker"},
                },
                "required": ["name"],
            },
        },
    },
    "dependentRequired": {"slack_webhook": ["slack_channel"]},
    "allOf": [
        {
            "if": {
                "properties": {"hubble_enabled": {"const": True}},
                "required": ["hubble_enabled"],
            },
            "then": {
                "properties": {"monitoring_enabled": {"const": True}},
                "required": ["monitoring_enabled"],
            },
        },
        {
            "if": {"properties": {"loki_enabled": {"const": True}}, "required": ["loki_enabled"]},
            "then": {
                "properties": {"monitoring_enabled": {"const": True}},
                "required": ["monitoring_enabled"],
            },
        },
    ],
}


@pytest.fixture(autouse=True)
def own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts with an empty cache, so no remembered verdict leaks between tests."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("MAKEFLUX_CACHE_DIR", str(directory))
    return directory


def make_project(
    root: Path,
    data: str | bytes,
    schema: dict[str, Any] | str | None = SCHEMA,
    templates: dict[str, str] | None = None,
) -> Path:
    """A makeflux project in `root`: settings, cluster.yaml, schema.json and templates/."""
    settings = '[makeflux]\ninputs = ["templates"]\noutput = "out"\ndata = ["cluster.yaml"]\n'
    if schema is not None:
        settings += 'schema = "schema.json"\n'
        text = schema if isinstance(schema, str) else json.dumps(schema, indent=2)
        (root / "schema.json").write_text(text, encoding="utf-8")
    (root / "makeflux.toml").write_text(settings, encoding="utf-8")
    if isinstance(data, bytes):
        (root / "cluster.yaml").write_bytes(data)
    else:
        (root / "cluster.yaml").write_text(textwrap.dedent(data), encoding="utf-8")
    (root / "templates").mkdir()
    for name, text in (templates or {"out.txt.j2": "#{ cluster_name }#\n"}).items():
        (root / "templates" / name).write_text(text, encoding="utf-8")
    return root


def validate(root: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli(["validate", *args], root)
    return result.exit_code, result.stdout, result.stderr


def errors(root: Path, *args: str) -> list[str]:
    """The error lines of a validate run that must fail with exit status 2 and no stdout."""
    code, out, err = validate(root, *args)
    assert (code, out) == (2, ""), err
    return err.splitlines()


def test_valid_data_passes(tmp_path: Path) -> None:
    make_project(tmp_path, "monitoring_enabled: true\nhubble_enabled: true\n")
    assert validate(tmp_path) == (0, "makeflux: cluster.yaml is valid\n", "")


def test_value_error_points_at_the_value(tmp_path: Path) -> None:
    make_project(tmp_path, "cluster_name: lab\ntracing_sample_rate: 150\n")
    assert errors(tmp_path) == [
        "cluster.yaml:2:22: tracing_sample_rate: 150 is greater than the maximum of 100"
    ]


def test_every_error_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        """\
        tracing_sample_rate: 0
        monitoring_stack: prometeus
        lokienabled: true
        metrics_retention: 7days
        """,
    )
    assert errors(tmp_path) == [
        "cluster.yaml:1:22: tracing_sample_rate: 0 is less than the minimum of 1",
        "cluster.yaml:2:19: monitoring_stack: 'prometeus' is not one of the allowed values: "
        "'victoriametrics', 'prometheus'; did you mean 'prometheus'?",
        "cluster.yaml:3:1: lokienabled: unknown key; did you mean 'loki_enabled'?",
        "cluster.yaml:4:20: metrics_retention: '7days' is not valid; "
        "expected a duration like 7d or 72h",
    ]


def test_unknown_key_without_a_close_name(tmp_path: Path) -> None:
    make_project(tmp_path, "favourite_colour: blue\n")
    assert errors(tmp_path) == [
        "cluster.yaml:1:1: favourite_colour: unknown key; "
        "not a setting the schema declares; check the spelling or remove it"
    ]


def test_pattern_hint_comes_from_the_examples(tmp_path: Path) -> None:
    make_project(tmp_path, "storage_size: 5GB\n")
    assert errors(tmp_path) == [
        "cluster.yaml:1:15: storage_size: '5GB' is not valid; expected a value like 5Gi"
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "monitoring_enabled: 'yes'",
            "cluster.yaml:1:21: monitoring_enabled: 'yes' is a string; "
            "expected a boolean (true or false); write true or false without quotes",
        ),
        (
            "monitoring_enabled:",
            "cluster.yaml:1:1: monitoring_enabled: has no value; expected a boolean "
            "(true or false), or delete the line to use the default (false)",
        ),
        (
            "cluster_name: 42",
            "cluster.yaml:1:15: cluster_name: 42 is a whole number; expected a string; "
            "quote it to make it a string: '42'",
        ),
        (
            "tracing_sample_rate: '50'",
            "cluster.yaml:1:22: tracing_sample_rate: '50' is a string; expected a whole number; "
            "write the number without quotes",
        ),
        (
            "nodes: {name: a}",
            "cluster.yaml:1:1: nodes: is a mapping; expected a list",
        ),
    ],
)
def test_type_errors_name_the_expected_type(tmp_path: Path, line: str, expected: str) -> None:
    make_project(tmp_path, line + "\n")
    assert errors(tmp_path) == [expected]


def test_if_then_rule_in_words_at_the_switch_that_turned_it_on(tmp_path: Path) -> None:
    make_project(tmp_path, "cluster_name: lab\nhubble_enabled: true\n")
    assert errors(tmp_path) == [
        "cluster.yaml:2:1: hubble_enabled requires monitoring_enabled: true"
    ]


def test_rules_with_the_same_requirement_merge_into_one_line(tmp_path: Path) -> None:
    make_project(tmp_path, "hubble_enabled: true\nloki_enabled: true\nmonitoring_enabled: false\n")
    assert errors(tmp_path) == [
        "cluster.yaml:1:1: hubble_enabled and loki_enabled require monitoring_enabled: true"
    ]


def test_no_cascade_from_a_mistyped_value(tmp_path: Path) -> None:
    # The if/then rule also fails on monitoring_enabled, but the type is the real mistake.
    make_project(tmp_path, "hubble_enabled: true\nmonitoring_enabled: 'true'\n")
    assert errors(tmp_path) == [
        "cluster.yaml:2:21: monitoring_enabled: 'true' is a string; expected a boolean "
        "(true or false); write true or false without quotes"
    ]


def test_no_cascade_from_a_typo_in_a_key(tmp_path: Path) -> None:
    # monitoring_enabled stays at its default false, so the rule fails too: an echo of the typo.
    make_project(tmp_path, "hubble_enabled: true\nmonitoring_enabld: true\n")
    assert errors(tmp_path) == [
        "cluster.yaml:2:1: monitoring_enabld: unknown key; did you mean 'monitoring_enabled'?"
    ]


def test_no_cascade_from_a_typo_in_a_required_key(tmp_path: Path) -> None:
    make_project(tmp_path, "nodes:\n  - nme: a\n")
    assert errors(tmp_path) == ["cluster.yaml:2:5: nodes[0].nme: unknown key; did you mean 'name'?"]


def test_dependent_required_in_words(tmp_path: Path) -> None:
    make_project(tmp_path, "cluster_name: lab\nslack_webhook: https://hooks.example\n")
    assert errors(tmp_path) == ["cluster.yaml:2:1: slack_webhook requires slack_channel to be set"]


def test_nested_paths_and_list_items_are_located(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        """\
        nodes:
          - name: cp1
            address: 10.0.0.1
          - name: cp2
            address: 10.0.0.300
          - address: 10.0.0.3
        """,
    )
    assert errors(tmp_path) == [
        "cluster.yaml:5:14: nodes[1].address: '10.0.0.300' is not valid; "
        "expected a value like 10.0.0.1",
        "cluster.yaml:6:5: nodes[2].name: missing; add it",
    ]


def test_set_override_is_reported_as_coming_from_set(tmp_path: Path) -> None:
    make_project(tmp_path, "tracing_sample_rate: 150\n")
    assert errors(tmp_path, "--set", "tracing_sample_rate=0") == [
        "--set tracing_sample_rate=0: tracing_sample_rate: 0 is less than the minimum of 1"
    ]
    # ...and an override that fixes the file's mistake makes the run valid.
    code, out, _ = validate(tmp_path, "--set", "tracing_sample_rate=50")
    assert (code, out) == (0, "makeflux: cluster.yaml with the --set overrides is valid\n")


def test_non_string_keys_are_reported(tmp_path: Path) -> None:
    make_project(tmp_path, "nodes:\n  - name: a\n    1: x\n")
    assert errors(tmp_path) == [
        "cluster.yaml:3:5: nodes[0].1: the key 1 is read as a whole number; keys must be strings, "
        "quote it: '1'"
    ]


def test_empty_data_file_is_an_error_when_validating(tmp_path: Path) -> None:
    make_project(tmp_path, "# nothing yet\n")
    assert errors(tmp_path) == [
        "cluster.yaml: the file is empty; add your settings as 'key: value' lines, "
        "or write {} to use every default"
    ]


def test_missing_data_file(tmp_path: Path) -> None:
    make_project(tmp_path, "{}\n")
    assert errors(tmp_path, "--data", "nope.yaml") == [
        "nope.yaml: data file not found; create it or fix 'data' in the settings"
    ]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ('{"type": "object",\n  "properties": }', "schema.json:2:17: schema is not valid JSON"),
        (
            '{"type": "strng"}',
            "schema.json: not a valid draft 2020-12 JSON Schema: at /type: 'strng' is not valid",
        ),
        (
            '{"properties": {"a": {"pattern": "(unclosed"}}}',
            "schema.json: not a valid draft 2020-12 JSON Schema: at /properties/a/pattern:",
        ),
        (
            '{"$schema": "http://json-schema.org/draft-07/schema#"}',
            "schema.json: schema declares $schema 'http://json-schema.org/draft-07/schema#'",
        ),
        ("[]", "schema.json: schema must be a JSON object at the top level"),
    ],
)
def test_broken_schema_is_a_schema_error(tmp_path: Path, schema: str, expected: str) -> None:
    make_project(tmp_path, "a: 1\n", schema=schema)
    lines = errors(tmp_path)
    assert len(lines) == 1
    assert lines[0].startswith(expected), lines[0]


def test_missing_schema_file(tmp_path: Path) -> None:
    make_project(tmp_path, "a: 1\n")
    (tmp_path / "schema.json").unlink()
    assert errors(tmp_path) == [
        "schema.json: schema file not found; fix 'schema' in the settings file"
    ]


@pytest.mark.parametrize("where", [".", "templates"])
def test_a_missing_schema_is_told_alike_by_every_command(tmp_path: Path, where: str) -> None:
    """One reader, one wording: validate, explain, set and docs name the schema as the user
    types it from where they stand, and say the same thing about it."""
    make_project(tmp_path, "a: 1\n")
    (tmp_path / "schema.json").unlink()
    shown = "schema.json" if where == "." else "../schema.json"
    expected = f"{shown}: schema file not found; fix 'schema' in the settings file"
    config = [] if where == "." else ["--config", "../makeflux.toml"]
    for command in (["validate"], ["explain"], ["explain", "a"], ["set", "a=2"], ["docs"]):
        result = run_cli([*command, *config], tmp_path / where)
        assert result.exit_code == 2, (command, result.output)
        assert result.stderr.splitlines()[0] == expected, (command, result.stderr)
    assert (tmp_path / "cluster.yaml").read_text() == "a: 1\n"  # set changed nothing


def test_no_schema_means_no_validation(tmp_path: Path) -> None:
    make_project(tmp_path, "anything: [1, 2]\ncluster_name: x\n", schema=None)
    code, out, err = validate(tmp_path)
    assert code == 0 and err == ""
    assert "no schema configured" in out
    result = run_cli(["render"], tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "out.txt").read_text() == "x\n"


def test_schema_defaults_reach_templates(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        "nodes:\n  - name: cp1\n",
        templates={
            "out.txt.j2": (
                "#{ cluster_name }# #{ metrics_retention }# #{ monitoring_stack }#"
                " #% if not monitoring_enabled %#off#% endif %#"
                " #{ nodes[0].role }#\n"
            )
        },
    )
    result = run_cli(["render"], tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "out.txt").read_text() == "home 7d victoriametrics off worker\n"


def test_render_refuses_invalid_data_without_writing(tmp_path: Path) -> None:
    make_project(tmp_path, "cluster_name: first\n")
    assert run_cli(["render"], tmp_path).exit_code == 0
    before = snapshot(tmp_path / "out")
    (tmp_path / "cluster.yaml").write_text("cluster_name: second\ntracing_sample_rate: 150\n")
    result = run_cli(["render"], tmp_path)
    assert result.exit_code == 2
    assert result.stderr == (
        "cluster.yaml:2:22: tracing_sample_rate: 150 is greater than the maximum of 100\n"
    )
    assert snapshot(tmp_path / "out") == before


def test_validation_libraries_load_only_when_needed(tmp_path: Path) -> None:
    """jsonschema only when a schema is configured; never ruamel (lines come from PyYAML)."""
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from makeflux import pipeline\n"
        "try:\n"
        "    pipeline.validate(pipeline.load(pipeline.RunOptions(cwd=Path.cwd())))\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__)\n"
        "print('jsonschema' in sys.modules, 'ruamel.yaml' in sys.modules)\n"
    )
    cases = {"plain": ("a: 1\n", None), "valid": ("cluster_name: lab\n", SCHEMA)}
    cases["invalid"] = ("cluster_name: 1\n", SCHEMA)
    seen = {}
    for name, (data, schema) in cases.items():
        project = tmp_path / name
        project.mkdir()
        make_project(project, data, schema=schema)
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
        for run in ("first", "again"):
            ran = subprocess.run(
                [sys.executable, "-c", probe], cwd=project, env=env, capture_output=True, text=True
            )
            seen[name, run] = ran.stdout.splitlines()[-1]
    assert seen == {
        ("plain", "first"): "False False",
        ("plain", "again"): "False False",
        ("valid", "first"): "True False",
        ("valid", "again"): "False False",  # remembered: this schema accepted this data
        ("invalid", "first"): "True False",
        ("invalid", "again"): "True False",
    }


@pytest.mark.parametrize(
    ("schema", "data"),
    [
        ({"properties": {"a": {"type": "strng"}}}, "a: 1\n"),
        ({"properties": {"a": {"minimum": "5"}}}, "a: 1\n"),
        ({"properties": {"a": {"pattern": "(unclosed"}}}, "a: x\n"),
        ({"required": "a"}, "b: 1\n"),
    ],
)
def test_render_reports_a_broken_schema_not_a_data_error(
    tmp_path: Path, schema: dict[str, Any], data: str
) -> None:
    """render checks the schema itself only when validation fails or breaks: it must say so."""
    make_project(tmp_path, data, schema=json.dumps(schema))
    result = run_cli(["render"], tmp_path)
    assert result.exit_code == 2
    assert result.stderr.startswith("schema.json: not a valid draft 2020-12 JSON Schema: at /")
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_remembered_verdict_never_hides_a_change(tmp_path: Path, own_cache_dir: Path) -> None:
    make_project(tmp_path, "cluster_name: lab\n")
    assert run_cli(["render"], tmp_path).exit_code == 0
    assert len(list((own_cache_dir / "valid").iterdir())) == 1
    (tmp_path / "cluster.yaml").write_text("cluster_name: lab\ntracing_sample_rate: 150\n")
    assert errors(tmp_path) == [
        "cluster.yaml:2:22: tracing_sample_rate: 150 is greater than the maximum of 100"
    ]
    (tmp_path / "cluster.yaml").write_text("cluster_name: lab\n")
    schema = json.loads((tmp_path / "schema.json").read_text())
    schema["properties"]["cluster_name"]["maxLength"] = 2
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    assert errors(tmp_path) == [
        "cluster.yaml:1:15: cluster_name: 'lab' is too long; at most 2 characters"
    ]


def test_validate_checks_the_schema_even_when_render_accepted_the_data(tmp_path: Path) -> None:
    # The malformed keyword never meets a value, so validating the data alone cannot notice.
    schema = {"properties": {"unused": {"type": "strng"}}}
    make_project(tmp_path, "cluster_name: lab\n", schema=json.dumps(schema))
    # --no-lint: lint would rightly flag cluster_name, which this schema does not declare.
    assert run_cli(["render", "--no-lint"], tmp_path).exit_code == 0
    assert errors(tmp_path) == [
        "schema.json: not a valid draft 2020-12 JSON Schema: at /properties/unused/type: "
        "'strng' is not valid under any of the given schemas"
    ]


def test_no_cache_and_an_unusable_cache_dir_still_validate(
    tmp_path: Path, own_cache_dir: Path
) -> None:
    make_project(tmp_path, "cluster_name: lab\n")
    assert run_cli(["--no-cache", "render"], tmp_path).exit_code == 0
    assert not own_cache_dir.exists()
    own_cache_dir.write_text("a file where the cache directory should be")
    assert run_cli(["render"], tmp_path).exit_code == 0
    (tmp_path / "cluster.yaml").write_text("cluster_name: 5\n")
    assert run_cli(["render"], tmp_path).exit_code == 2


RULES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "stack": {"enum": ["victoriametrics", "prometheus"], "default": "victoriametrics"},
        "grafana_enabled": {"type": "boolean", "default": False},
        "replicas": {"type": "integer", "default": 1},
        "ha": {"type": "boolean", "default": False},
        "webhook": {"type": "string"},
        "retention": {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+d$"}]},
    },
    "allOf": [
        {
            "if": {"properties": {"stack": {"const": "prometheus"}}},
            "then": {"properties": {"grafana_enabled": {"const": True}}},
        },
        {
            "if": {"properties": {"ha": {"const": True}}, "required": ["ha"]},
            "then": {"properties": {"replicas": {"minimum": 2}}},
            "else": {"properties": {"replicas": {"maximum": 1}}},
        },
    ],
    "dependentSchemas": {"webhook": {"properties": {"grafana_enabled": {"const": True}}}},
}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            "stack: prometheus\n",
            "cluster.yaml:1:1: stack: 'prometheus' requires grafana_enabled: true",
        ),
        (
            "ha: true\nreplicas: 1\n",
            "cluster.yaml:1:1: ha requires replicas to be at least 2 (it is 1)",
        ),
        (
            "ha: false\nreplicas: 3\n",
            "cluster.yaml:1:1: ha: false requires replicas to be at most 1 (it is 3)",
        ),
        (
            "webhook: https://hooks.example\n",
            "cluster.yaml:1:1: webhook requires grafana_enabled: true",
        ),
        (
            "retention: 7days\n",
            "cluster.yaml:1:12: retention: '7days' does not match the pattern ^[0-9]+d$",
        ),
        (
            "retention: true\n",
            "cluster.yaml:1:12: retention: true is not valid; expected a whole number or a string",
        ),
    ],
)
def test_other_rule_shapes_in_words(tmp_path: Path, data: str, expected: str) -> None:
    make_project(tmp_path, data, schema=RULES_SCHEMA)
    assert errors(tmp_path) == [expected]


def test_data_vars_and_json_data_are_located_by_file(tmp_path: Path) -> None:
    make_project(tmp_path, "cluster_name: lab\n")
    settings = (tmp_path / "makeflux.toml").read_text()
    settings = settings.replace('data = ["cluster.yaml"]', 'data = ["cluster.yaml", "extra.json"]')
    (tmp_path / "makeflux.toml").write_text(settings + '[makeflux.data_vars]\nloki_enabled = "1"\n')
    (tmp_path / "extra.json").write_text('{\n  "tracing_sample_rate": 500\n}\n')
    assert errors(tmp_path) == [
        "extra.json: tracing_sample_rate: 500 is greater than the maximum of 100",
        "makeflux.toml: loki_enabled: '1' is a string; expected a boolean (true or false); "
        "write true or false without quotes",
    ]


def test_an_any_of_inside_a_rule_is_still_a_rule(tmp_path: Path) -> None:
    schema = {
        "properties": {
            "tracing_enabled": {"type": "boolean", "default": False},
            "retention": {"default": 0},
        },
        "allOf": [
            {
                "if": {"properties": {"tracing_enabled": {"const": True}}},
                "then": {
                    "properties": {
                        "retention": {"anyOf": [{"type": "string"}, {"minimum": 1}]},
                    },
                },
            }
        ],
    }
    make_project(tmp_path, "tracing_enabled: true\n", schema=schema)
    assert errors(tmp_path) == [
        "cluster.yaml:1:1: tracing_enabled requires retention to be a string or at least 1 "
        "(it is 0)"
    ]
    (tmp_path / "cluster.yaml").write_text("retention: 0\n")
    assert validate(tmp_path)[0] == 0  # tracing off: the rule does not apply
    (tmp_path / "cluster.yaml").write_text("tracing_enabled: true\nretention: -5\n")
    assert errors(tmp_path) == [
        "cluster.yaml:1:1: tracing_enabled requires retention to be a string or at least 1 "
        "(it is -5)"
    ]


def test_the_schema_is_parsed_once_and_never_stale(tmp_path: Path) -> None:
    """validation, --set, lint and explain all ask the one reader: a run parses the file once,
    and an edited file is read afresh (the cache is keyed on the text, not the time)."""
    from makeflux.cluster_schema.reading import read_schema

    path = tmp_path / "schema.json"
    path.write_text('{"properties": {"a": {}}}', encoding="utf-8")
    first = read_schema(path).schema
    assert read_schema(path).schema is first
    path.write_text('{"properties": {"b": {}}}', encoding="utf-8")  # same size, same second
    assert list(read_schema(path).schema["properties"]) == ["b"]
