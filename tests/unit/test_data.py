"""Data files: cluster.yaml is read exactly as makejinja reads it (PyYAML's pure-Python safe
loader), so what one accepts the other does, and errors name the line; TOML and JSON errors
name the line and column."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from makeflux import data
from makeflux.errors import DataError
from makeflux.settings import load_settings

TRICKY = """\
%YAML 1.1
---
anchors: &base {replicas: 2, image: "ghcr.io/a/b:1.0"}
merged:
  <<: *base
  replicas: 3
booleans: [yes, no, on, off, true, False, y, n]
numbers: [0o17, 017, 0x1F, 1_000, 1e3, .5, -.inf, .nan, 12:30:00]
dates: [2026-11-26, 2026-11-26T10:00:00Z]
strings: ["7d", '0017', 1.10, null, ~, "", "unicode: é ✓"]
folded: >
  one
  two

literal: |
  keep
    indent
plain key with spaces: value
"quoted key": 1
? complex
: value
---
second_document: true
"""


def test_data_reads_as_makejinja_reads_it(tmp_path: Path):
    path = tmp_path / "cluster.yaml"
    path.write_text(TRICKY, encoding="utf-8")
    loaded = data._load_yaml(path)
    reference: dict = {}
    for document in yaml.safe_load_all(TRICKY):  # makejinja's from_yaml
        reference |= document
    assert repr(loaded) == repr(reference)  # repr: nan != nan, and types must match too
    assert loaded["merged"] == {"replicas": 3, "image": "ghcr.io/a/b:1.0"}
    assert loaded["second_document"] is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\na: 2\n", "cluster.yaml:2:1: invalid YAML: duplicate key 'a' (first at line 1)"),
        ("a: [1, 2\n", "cluster.yaml:2:1: invalid YAML: expected ',' or ']'"),
        ("a: b: c\n", "cluster.yaml:1:5: invalid YAML: mapping values are not allowed here"),
        ("- just\n- a list\n", "cluster.yaml: document 1 is a list, not a mapping"),
        # libyaml's parser accepts a tab after `key:`; PyYAML's reader, and so makejinja, do not.
        (
            "a: 1\nb:\t\n",
            "cluster.yaml:2:3: invalid YAML: found character '\\t' that cannot start any token; "
            "replace the tab with a space",
        ),
        ("deep: " + "[" * 2000 + "]" * 2000 + "\n", "cluster.yaml: nested too deeply to read"),
    ],
    ids=["duplicate-key", "unclosed-flow", "mapping-in-value", "not-a-mapping", "tab", "too-deep"],
)
def test_bad_yaml_is_refused_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    with pytest.raises(DataError) as raised:
        data._load_yaml(path)
    assert str(raised.value).startswith(expected), str(raised.value)
    if "invalid YAML" in expected and "duplicate" not in expected:
        with pytest.raises(yaml.YAMLError):  # makejinja refuses it too
            list(yaml.safe_load_all(text))


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("data.toml", "a = 1\nb = \nc = 2\n", "data.toml:2:5: invalid TOML: Invalid value"),
        (
            "data.json",
            '{"a": 1,\n "b": }\n',
            "data.json:2:7: invalid JSON: Expecting value",
        ),
    ],
)
def test_toml_and_json_errors_name_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, expected: str
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError) as raised:
        data.load_file(tmp_path / name)
    assert str(raised.value) == expected


def test_loaded_data_keeps_yaml_aliases_shared_and_types_exact(tmp_path: Path):
    """load_data rebuilds the values compactly (see data._packed); nothing may change."""
    (tmp_path / "cluster.yaml").write_text(
        "base: &b {ports: [80, 443]}\nsame: *b\nwhen: 2026-11-27\nloop: &l [*l]\n"
        "nums: {hex: 0x1F, sci: 1e3}\nset: !!set {a, b}\n"
    )
    (tmp_path / "makejinja.toml").write_text(
        '[makejinja]\ninputs = ["t"]\noutput = "o"\ndata = ["cluster.yaml"]\n'
    )
    settings = load_settings(tmp_path)
    values = data.load_data(settings).values
    assert values["same"] is values["base"]  # an alias is the same object, as PyYAML gives it
    assert values["loop"][0] is values["loop"]
    assert repr(values["when"]) == "datetime.date(2026, 11, 27)"
    assert values["nums"] == {"hex": 31, "sci": "1e3"} and values["set"] == {"a", "b"}
