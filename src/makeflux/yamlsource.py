"""Where things are in a YAML data file: readable YAML errors, and line/column of any key path.

PyYAML (data.py) loads the data; ruamel.yaml is imported only to point at the line of a schema
error, because its round-trip loader remembers where every key and item was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from makeflux.errors import Problem, display_path

KeyPath = tuple[str | int, ...]


def yaml_error_problem(path: Path, exc: yaml.YAMLError) -> Problem:
    """A PyYAML error as one `file:line:col: ...` problem, with the offending line and a caret."""
    where = display_path(path)
    try:
        text: str | None = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = None
    if isinstance(exc, yaml.reader.ReaderError):
        return _reader_problem(where, exc, text)
    if not isinstance(exc, yaml.MarkedYAMLError):
        return Problem(f"invalid YAML: {exc}", where)
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return Problem(f"invalid YAML: {exc.problem or exc}", where)
    message = f"invalid YAML: {exc.problem or exc.context}"
    if exc.context and exc.problem and exc.context_mark is not None:
        context_mark = exc.context_mark
        message += (
            f" ({exc.context} that starts at {context_mark.line + 1}:{context_mark.column + 1})"
        )
    if isinstance(exc, yaml.constructor.ConstructorError):
        # Well-formed YAML with a wrong value (a duplicate key): the message says it all.
        return Problem(message, where, mark.line + 1, mark.column + 1)
    message += _syntax_hint(exc.problem or "")
    source_line = _source_line(text, mark.line)
    if source_line is not None:
        message += "\n" + caret_excerpt(source_line, mark.line + 1, mark.column + 1)
    return Problem(message, where, mark.line + 1, mark.column + 1)


def caret_excerpt(source_line: str, line: int, column: int) -> str:
    """Two lines: the source line numbered like an editor, then a caret under `column`."""
    number = str(line)
    shown = source_line.rstrip("\r\n").expandtabs(1)
    return f"  {number} | {shown}\n  {' ' * len(number)} | {' ' * (column - 1)}^"


def _syntax_hint(problem: str) -> str:
    if "mapping values are not allowed" in problem:
        return "; quote a value that contains ': ', or check this line's indentation"
    if "found character '\\t'" in problem:
        return "; indent with spaces, not tabs"
    if "found undefined alias" in problem:
        return "; define the &anchor before using *alias"
    if "could not find expected ':'" in problem:
        return "; every line of a mapping needs 'key: value'"
    return ""


def _source_line(text: str | None, index: int) -> str | None:
    if text is None:
        return None
    lines = text.splitlines()
    return lines[index] if 0 <= index < len(lines) else None


def _reader_problem(where: str, exc: yaml.reader.ReaderError, text: str | None) -> Problem:
    # PyYAML reports a byte/character offset; turn it into a line for the editor.
    line = None
    if isinstance(exc.name, str) and exc.position is not None and Path(exc.name).is_file():
        try:
            line = Path(exc.name).read_bytes()[: exc.position].count(b"\n") + 1
        except OSError:
            line = None
    elif text is not None and exc.position is not None:
        line = text[: exc.position].count("\n") + 1
    if exc.encoding != "unicode":  # PyYAML's marker for a decoded but forbidden character
        return Problem("not UTF-8 text; save the file as UTF-8", where, line)
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return Problem(
        f"invalid YAML: unacceptable character #x{code:04x} "
        "(control characters are not allowed); remove it",
        where,
        line,
    )


def load_documents(path: Path) -> list[Any] | None:
    """Every document of a YAML file as ruamel round-trip nodes (None when it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    from ruamel.yaml import YAML  # only needed to locate errors, so imported only then

    reader = YAML(typ="rt")
    reader.allow_duplicate_keys = True
    try:
        return [doc for doc in reader.load_all(text) if doc is not None]
    except Exception:  # ruamel may reject what PyYAML accepted; the error then has no line
        return None


def locate(
    documents: Sequence[Any], key_path: KeyPath, *, at_value: bool
) -> tuple[int, int] | None:
    """1-based (line, column) of `key_path` in the documents, or of its nearest written ancestor.

    `at_value` points at a scalar value instead of its key (`retention: 7days` → at `7days`).
    """
    if not key_path:
        return None
    for document in reversed(documents):  # a later document wins, as when data.py merges them
        found = _find_key(document, key_path[0])
        if found is not None:
            return _walk(document, found, key_path[1:], at_value)
    return None


def _walk(node: Any, key: Any, rest: KeyPath, at_value: bool) -> tuple[int, int] | None:
    position = _key_position(node, key)
    while True:
        child = node[key]
        if not rest:
            if at_value and not isinstance(child, dict | list) and child is not None:
                position = _value_position(node, key) or position
            return _one_based(position)
        step, rest = rest[0], rest[1:]
        if isinstance(child, list) and isinstance(step, int) and 0 <= step < len(child):
            found: Any = step
        elif isinstance(child, dict):
            found = _find_key(child, step)
        else:
            found = None
        if found is None:
            return _one_based(position)
        node, key = child, found
        position = _key_position(node, key) or position


def _find_key(mapping: Any, key: Any) -> Any:
    if not isinstance(mapping, dict):
        return None
    if key in mapping:
        return key
    # The schema sees string keys; the file may have written 1 or true (YAML 1.1 vs 1.2).
    for candidate in mapping:
        if str(candidate) == str(key):
            return candidate
    return None


def _key_position(node: Any, key: Any) -> tuple[int, int] | None:
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        return lc.item(key) if isinstance(node, list) else lc.key(key)
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


def _value_position(node: Any, key: Any) -> tuple[int, int] | None:
    lc = getattr(node, "lc", None)
    if lc is None or isinstance(node, list):
        return None
    try:
        return lc.value(key)
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


def _one_based(position: tuple[int, int] | None) -> tuple[int, int] | None:
    if position is None:
        return None
    line, column = position
    return line + 1, column + 1
