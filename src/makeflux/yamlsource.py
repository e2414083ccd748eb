"""Where things are in a YAML data file: readable YAML errors, and line/column of any key path.

Lines come from the node tree of the same parser that loaded the data (PyYAML, YAML 1.1), so a
key means here exactly what it meant to data.py: a YAML 1.2 parser such as ruamel.yaml reads
`0E0:` or `on:` as other keys and would lose the line. The tree is built only when a schema
error needs a line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from makeflux.errors import Problem, display_path

YAML_SUFFIXES = (".yaml", ".yml")  # what makeflux reads as YAML, everywhere

KeyPath = tuple[str | int, ...]


def repeated_keys(
    loader: yaml.constructor.SafeConstructor, node: yaml.MappingNode, deep: bool = False
) -> Iterator[tuple[Any, yaml.Node, int]]:
    """Each key a mapping gives a second time: (key, its node, the line it was first given).

    The mapping's own keys only, looked at before merge keys (`<<: *base`) are flattened in:
    overriding a merged key is what merging is for. Both duplicate-key loaders (data files,
    which refuse one, and lint, which reports every one) read mappings through this."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: PyYAML reports it when it builds the mapping
            continue
        if first is not None:
            yield key, key_node, first
        else:
            seen[key] = key_node.start_mark.line + 1


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
    source_line = _source_line(text, mark.line)
    message += _syntax_hint(exc.problem or "", source_line, mark.column)
    if source_line is not None:
        message += "\n" + caret_excerpt(source_line, mark.line + 1, mark.column + 1)
    return Problem(message, where, mark.line + 1, mark.column + 1)


def caret_excerpt(source_line: str, line: int, column: int) -> str:
    """Two lines: the source line numbered like an editor, then a caret under `column`."""
    number = str(line)
    shown = source_line.rstrip("\r\n").expandtabs(1)
    # One terminal line: an invisible character is shown as the replacement character.
    shown = "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in shown)
    return f"  {number} | {shown}\n  {' ' * len(number)} | {' ' * (column - 1)}^"


def _syntax_hint(problem: str, source_line: str | None, column: int) -> str:
    if "mapping values are not allowed" in problem:
        return "; quote a value that contains ': ', or check this line's indentation"
    if "found character '\\t'" in problem:
        if source_line is not None and source_line[:column].strip():
            return "; replace the tab with a space (YAML allows no tab here)"
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


def load_documents(path: Path) -> list[yaml.Node] | None:
    """The node tree of every document in a YAML file (None when it cannot be parsed)."""
    try:
        text = path.read_text(encoding="utf-8")
        return [node for node in yaml.compose_all(text, Loader=yaml.SafeLoader) if node]
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def locate(
    documents: Sequence[yaml.Node], key_path: KeyPath, *, at_value: bool
) -> tuple[int, int] | None:
    """1-based (line, column) of `key_path` in the documents, or of its nearest written ancestor.

    `at_value` points at a scalar value instead of its key (`retention: 7days` → at `7days`).
    """
    if not key_path:
        return None
    keys = _KeyReader()
    for document in reversed(documents):  # a later document wins, as when data.py merges them
        entry = keys.find(document, key_path[0])
        if entry is None:
            continue
        mark = entry[0].start_mark
        node = entry[1]
        for step in key_path[1:]:
            if isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                if not 0 <= step < len(node.value):
                    break
                node = node.value[step]
                mark = node.start_mark
                continue
            entry = keys.find(node, step)
            if entry is None:
                break
            mark, node = entry[0].start_mark, entry[1]
        else:
            if at_value and isinstance(node, yaml.ScalarNode) and node.tag != _NULL_TAG:
                mark = node.start_mark
        return mark.line + 1, mark.column + 1
    return None


_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _KeyReader:
    """Finds a key among a mapping node's entries, reading each key as data.py read it."""

    def __init__(self) -> None:
        self.loader = yaml.SafeLoader("")

    def find(self, node: yaml.Node, key: str | int) -> tuple[yaml.Node, yaml.Node] | None:
        if not isinstance(node, yaml.MappingNode):
            return None
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *defaults` keys count, after the own ones
                merged += (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                continue
            if self._same_key(key_node, key):
                return key_node, value_node
        for source in merged:
            found = self.find(source, key)
            if found is not None:
                return found
        return None

    def _same_key(self, key_node: yaml.Node, key: str | int) -> bool:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return True
        try:
            value = self.loader.construct_object(key_node, deep=True)
        except (yaml.YAMLError, TypeError, ValueError):
            return False
        # The schema saw string keys; the file may hold 1 or true (shown as '1' / 'true').
        if value == key and type(value) is type(key):
            return True
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return (value is None and key == "null") or text == str(key)
