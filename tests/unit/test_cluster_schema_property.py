"""Property: whatever cluster.yaml holds, validate passes or reports errors with line numbers.

Random YAML documents and random mutations of the sample (bytes, lines, values) never produce
an internal error or a traceback, and every schema error points at a line of cluster.yaml.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO_ROOT, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TESTS_DIR

SCHEMA = REPO_ROOT / "schemas" / "cluster.schema.json"
SAMPLE = REPO_ROOT / "cluster.sample.yaml"
if not SAMPLE.exists():  # the template pack's sample, else the richest valid fixture
    SAMPLE = TESTS_DIR / "fixtures" / "valid" / "all-features.yaml"
SAMPLE_TEXT = SAMPLE.read_text(encoding="utf-8")
DECLARED = sorted(yaml.safe_load(SCHEMA.read_text())["properties"]) if SCHEMA.exists() else []

# Lines that are about the whole file, so they carry no line number (a required top-level key
# it lacks has no line either).
FILE_LEVEL = re.compile(
    r"^cluster\.yaml: (the file is empty|the file holds only null"
    r"|document \d+ is an? [\w ]+, not a mapping|not UTF-8|\w+: missing; add it)"
)
LOCATED = re.compile(r"^cluster\.yaml:\d+(:\d+)?: \S")
FROM_SET = re.compile(r"^--set (\"?)[^=]+=.*: \S")


@pytest.fixture(autouse=True)
def own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No remembered verdict from another test (or the user's own runs) decides a case."""
    monkeypatch.setenv("MAKEFLUX_CACHE_DIR", str(tmp_path / "cache"))


PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@contextmanager
def project() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="makeflux-prop-"))
    try:
        (root / "makeflux.toml").write_text(
            '[makeflux]\ninputs = ["templates"]\noutput = "out"\ndata = ["cluster.yaml"]\n'
            f'schema = "{SCHEMA.as_posix()}"\n',
            encoding="utf-8",
        )
        yield root
    finally:
        shutil.rmtree(root)


def check_outcome(content: bytes, *args: str) -> None:
    with project() as root:
        (root / "cluster.yaml").write_bytes(content)
        result = run_cli(["validate", *args], root)
    assert result.exit_code in (0, 2), result.output
    assert "internal error" not in result.stderr
    assert "Traceback" not in result.stderr
    if result.exit_code == 0:
        assert result.stderr == ""
        return
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines
    for line in lines:
        if line.startswith("  "):  # the source excerpt under a YAML syntax error
            continue
        assert LOCATED.match(line) or FILE_LEVEL.match(line) or FROM_SET.match(line), line


# ── random documents ─────────────────────────────────────────────────────────────────────────

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.dates(),
)
keys = st.one_of(st.sampled_from(DECLARED or ["a"]), st.text(min_size=1, max_size=12))
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(keys, st.integers(0, 3), st.booleans()), children, max_size=4),
    ),
    max_leaves=12,
)
documents = st.one_of(
    st.dictionaries(keys, values, max_size=10),
    values,  # a list or scalar at the top level
)


@PROPERTY_SETTINGS
@given(document=documents)
def test_random_documents_pass_or_report_located_errors(document: Any) -> None:
    text = yaml.safe_dump(document, default_flow_style=False, allow_unicode=True)
    check_outcome(text.encode("utf-8"))


@PROPERTY_SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("ab1: -#'\"[]{}&*!|>\n\t\\,?%@`é")), max_size=80))
def test_random_text_passes_or_reports_located_errors(text: str) -> None:
    check_outcome(text.encode("utf-8"))


# ── mutations of the sample ──────────────────────────────────────────────────────────────────

snippets = st.sampled_from(
    [
        ": ",
        "\t",
        "  ",
        "- ",
        "#",
        "'",
        '"',
        "[",
        "]",
        "{",
        "}",
        "&a ",
        "*a",
        "!!int ",
        "\n",
        "---\n",
        "yes",
        "null",
        "150",
        "-1",
        "7days",
        "1.5",
        "~",
        "? ",
        "|\n",
        "\\",
    ]
)


@st.composite
def mutated_sample(draw: st.DrawFn) -> bytes:
    data = bytearray(SAMPLE_TEXT.encode("utf-8"))
    lines = SAMPLE_TEXT.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["insert", "delete", "line", "value", "byte", "key"]))
        if kind == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(snippets).encode()
        elif kind == "delete" and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at : at + draw(st.integers(1, 8))] = b""
        elif kind == "byte":
            at = draw(st.integers(0, len(data)))
            data[at:at] = bytes([draw(st.integers(0x80, 0xFF))])
        else:
            index = draw(st.integers(0, len(lines) - 1))
            line = lines[index]
            if kind == "line":  # duplicate or drop a whole line
                lines[index] = line * draw(st.integers(0, 2))
            elif ":" in line:
                key, _, value = line.partition(":")
                if kind == "value":
                    lines[index] = (
                        f"{key}: {draw(st.sampled_from(['', 'true', '0', '101', 'x y', '[1]', '{a: 1}', '7d', '192.168.1.300']))}\n"  # noqa: E501
                    )
                else:
                    lines[index] = f"{draw(st.sampled_from(DECLARED or ['a']))[:-1]}:{value}"
            data = bytearray("".join(lines).encode("utf-8"))
    return bytes(data)


@PROPERTY_SETTINGS
@given(content=mutated_sample())
def test_mutated_sample_passes_or_reports_located_errors(content: bytes) -> None:
    check_outcome(content)


@PROPERTY_SETTINGS
@given(key=keys, value=st.text(max_size=20))
def test_random_set_overrides_pass_or_report_errors(key: str, value: str) -> None:
    check_outcome(SAMPLE_TEXT.encode("utf-8"), "--set", f"{key}={value}")
