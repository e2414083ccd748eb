"""Data files: cluster.yaml is read with libyaml's parser when PyYAML has it, and the data and
the errors must be exactly those of PyYAML's pure-Python reader, which makejinja uses; TOML
and JSON errors name the line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from makeflux import data
from makeflux.errors import DataError

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


@pytest.mark.skipif(data._FAST_LOADER is None, reason="PyYAML without libyaml")
def test_libyaml_and_pure_python_read_the_same_data(tmp_path: Path):
    path = tmp_path / "cluster.yaml"
    path.write_text(TRICKY, encoding="utf-8")
    fast = data._read_yaml(path, data._FAST_LOADER)
    reference = data._read_yaml(path, data._UniqueKeyLoader)
    assert repr(fast) == repr(reference)  # repr: nan != nan, and types must match too
    assert fast["merged"] == {"replicas": 3, "image": "ghcr.io/a/b:1.0"}
    assert fast["second_document"] is True


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",  # duplicate key
        "a: [1, 2\n",  # unclosed flow sequence
        "a: b: c\n",  # mapping value where none may start
        "- just\n- a list\n",  # not a mapping
        "deep: " + "[" * 2000 + "]" * 2000 + "\n",  # libyaml reads it; the rest of makeflux cannot
    ],
    ids=["duplicate-key", "unclosed-flow", "mapping-in-value", "not-a-mapping", "too-deep"],
)
def test_errors_read_as_the_pure_python_reader_words_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
):
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    with pytest.raises(DataError) as raised:
        data._load_yaml(path)
    monkeypatch.setattr(data, "_FAST_LOADER", None)  # the pure-Python reader alone
    with pytest.raises(DataError) as reference:
        data._load_yaml(path)
    assert str(raised.value) == str(reference.value)


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
