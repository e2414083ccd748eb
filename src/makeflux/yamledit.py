"""Edit one value in a YAML file and leave every other byte as it was (ruamel.yaml round-trip)."""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)
from ruamel.yaml.util import load_yaml_guess_indent

from makeflux.cluster_file import FILL_IN_NOTE
from makeflux.errors import DataError, Problem

_STRING_STYLES = (DoubleQuotedScalarString, SingleQuotedScalarString, LiteralScalarString)


def _round_tripper(text: str) -> YAML:
    """A ruamel YAML set up to write `text` back the way it was written (indent, quotes, `---`)."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    try:
        _, indent, block_seq_indent = load_yaml_guess_indent(text)
    except YAMLError:
        indent, block_seq_indent = 2, 0
    indent = indent or 2
    yaml.indent(mapping=indent, sequence=indent, offset=block_seq_indent or 0)
    yaml.explicit_start = text.lstrip().startswith("---")
    return yaml


def load_document(text: str, where: str) -> CommentedMap:
    """The round-trip document of `text`; a YAML error becomes one DataError line."""
    try:
        document = _round_tripper(text).load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise DataError(
            Problem(f"invalid YAML: {problem}; fix it before 'makeflux set'", where, line, column)
        ) from None
    if document is None:
        return CommentedMap()
    if not isinstance(document, CommentedMap):
        raise DataError(Problem("top level is not a mapping of 'key: value' pairs", where))
    return document


def _dump(yaml: YAML, document: Any) -> str:
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    return buffer.getvalue()


def _plain(value: Any) -> Any:
    """ruamel's commented containers as plain dicts and lists, for comparing meaning."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def _styled_like(old: Any, new: Any) -> Any:
    """`new` in the quoting style `old` was written in, so `"home"` becomes `"lab"`, not `lab`."""
    if isinstance(new, str) and not isinstance(new, _STRING_STYLES):
        for style in (DoubleQuotedScalarString, SingleQuotedScalarString):
            if isinstance(old, style):
                return style(new)
    if isinstance(new, list) and not isinstance(new, CommentedSeq):
        new = CommentedSeq(new)
    if isinstance(old, CommentedSeq) and isinstance(new, CommentedSeq) and old and new:
        # New items quoted the way the old items were ("192.168.1.10" stays quoted).
        for index, item in enumerate(new):
            new[index] = _styled_like(old[0], item)
        # ruamel keeps the comment lines after a list on its last item: move them along.
        trailing = old.ca.items.get(len(old) - 1)
        if trailing is not None:
            new.ca.items[len(new) - 1] = trailing
    return new


def _uncomment(text: str, key: str, yaml: YAML, value: Any) -> str | None:
    """Replace the sample's single `# key: value` line by `key: new`, when there is exactly one.

    A list replaces a commented flow list (`# addrs: ["a", "b"]`) in flow style."""
    if isinstance(value, dict):
        return None
    pattern = re.compile(rf"^#[ \t]?{re.escape(key)}[ \t]*:(?:[ \t].*)?$")
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if pattern.match(line.rstrip("\r\n"))]
    if len(hits) != 1:
        return None
    line = lines[hits[0]]
    try:  # write the value in the quoting style the sample's commented line used
        example = YAML(typ="rt")
        example.preserve_quotes = True
        commented = example.load(line.lstrip("#").lstrip())
        old = commented.get(key) if isinstance(commented, CommentedMap) else None
    except YAMLError:
        old = None
    if isinstance(value, list):
        if not isinstance(old, CommentedSeq) or not old.fa.flow_style() or not old:
            return None
        value = _styled_like(old, CommentedSeq(value))
        value.fa.set_flow_style()
    rendered = _dump(_round_tripper(""), {key: _styled_like(old, value)})
    if rendered.startswith("---"):
        rendered = rendered.split("\n", 1)[1]
    if rendered.count("\n") != 1:
        return None
    ending = line[len(line.rstrip("\r\n")) :] or "\n"
    lines[hits[0]] = rendered.rstrip("\n") + ending
    if hits[0] and lines[hits[0] - 1].rstrip("\r\n") == FILL_IN_NOTE.format(name=key):
        del lines[hits[0] - 1]  # init's note asking for this value: it is filled in now
    return "".join(lines)


def _splice(original: str, baseline: str, edited: str) -> str | None:
    """Apply the baseline→edited line changes to `original`, or None where they do not map.

    ruamel normalises some formatting it does not keep (mixed list indents); applying only its
    changed lines keeps everything else byte-identical.
    """
    if baseline == original:
        return edited
    original_lines = original.splitlines(keepends=True)
    baseline_lines = baseline.splitlines(keepends=True)
    edited_lines = edited.splitlines(keepends=True)
    # Which original line each baseline line is (only lines ruamel reproduced exactly).
    line_map: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(a=baseline_lines, b=original_lines, autojunk=False)
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        # Lines ruamel reproduced exactly, and lines it only re-spaced (same count in a gap).
        if tag == "equal" or (tag == "replace" and a2 - a1 == b2 - b1):
            for offset in range(a2 - a1):
                line_map[a1 + offset] = b1 + offset
    result = list(original_lines)
    edits = difflib.SequenceMatcher(a=baseline_lines, b=edited_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in reversed(edits.get_opcodes()):
        if tag == "equal":
            continue
        if i1 < i2:
            if any(i not in line_map for i in range(i1, i2)):
                return None
            start, end = line_map[i1], line_map[i2 - 1] + 1
            if end - start != i2 - i1:
                return None
        elif i1 in line_map:
            start = end = line_map[i1]
        elif i1 == len(baseline_lines):
            start = end = len(original_lines)
            if result and not result[-1].endswith("\n"):
                result[-1] += "\n"
        else:
            return None
        result[start:end] = edited_lines[j1:j2]
    return "".join(result)


def set_value(text: str, dotted_key: str, value: Any, where: str) -> str:
    """`text` with `dotted_key` set to `value`; comments, order and other formatting kept."""
    document = load_document(text, where)
    yaml = _round_tripper(text)
    keys = dotted_key.split(".")
    if len(keys) == 1 and keys[0] not in document:
        uncommented = _uncomment(text, keys[0], yaml, value)
        if uncommented is not None and _plain(load_document(uncommented, where)) == _plain(
            {**document, keys[0]: value}
        ):
            return uncommented
    baseline = _dump(yaml, document)
    here: CommentedMap = document
    for depth, key in enumerate(keys[:-1]):
        nested = here.get(key)
        if nested is None:
            nested = here[key] = CommentedMap()
        if not isinstance(nested, CommentedMap):
            reached = ".".join(keys[: depth + 1])
            raise DataError(
                Problem(
                    f"cannot set {dotted_key}: {reached} is not a mapping; "
                    f"set {reached} itself instead",
                    where,
                )
            )
        here = nested
    here[keys[-1]] = _styled_like(here.get(keys[-1]), value)
    edited = _dump(yaml, document)
    result = _splice(text, baseline, edited)
    if result is None or _plain(load_document(result, where)) != _plain(document):
        result = edited
    kept = _keep_value_position(text, result, keys, where)
    if kept is not None and _plain(load_document(kept, where)) == _plain(document):
        return kept
    return result


def _value_position(document: CommentedMap, keys: list[str]) -> tuple[int, int, int] | None:
    """(key line, value line, value column) of keys in document, 0-based, or None."""
    parent: Any = document
    for key in keys[:-1]:
        parent = parent.get(key) if isinstance(parent, CommentedMap) else None
    if not isinstance(parent, CommentedMap) or keys[-1] not in parent:
        return None
    if isinstance(parent[keys[-1]], CommentedMap | CommentedSeq):
        return None
    try:
        key_line, _ = parent.lc.key(keys[-1])
        value_line, value_column = parent.lc.value(keys[-1])
    except (KeyError, TypeError, AttributeError):
        return None
    return key_line, value_line, value_column


def _keep_value_position(original: str, edited: str, keys: list[str], where: str) -> str | None:
    """Keep the original spacing before a replaced scalar (`key:   90` stays `key:   85`)."""
    before = _value_position(load_document(original, where), keys)
    after = _value_position(load_document(edited, where), keys)
    if before is None or after is None:
        return None
    key_line, value_line, column = before
    new_key_line, new_value_line, new_column = after
    if key_line != value_line or new_key_line != new_value_line:
        return None  # a value on its own line: leave ruamel's layout
    original_lines = original.splitlines(keepends=True)
    edited_lines = edited.splitlines(keepends=True)
    prefix = original_lines[key_line][:column]
    edited_lines[new_value_line] = prefix + edited_lines[new_value_line][new_column:]
    return "".join(edited_lines)
