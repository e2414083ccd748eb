"""The one reader of the cluster.yaml schema file and the one `$ref` resolver.

Every command that needs the schema (validate, render, set, explain, docs, lint) reads it here,
so a missing or broken file is reported in the same words, with the path as the user types it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from makeflux.errors import Problem, SchemaError, display_path


class SchemaFile:
    """The schema as parsed (shared between readers: never change it) and the text it came from.

    A plain class: a dataclass costs a millisecond at import, on every run that validates.
    """

    __slots__ = ("schema", "text")

    def __init__(self, schema: dict[str, Any], text: str) -> None:
        self.schema = schema
        self.text = text


# Parsed schemas by (path, text): a run asks for the schema several times (--set, validation,
# lint), and parsing is the cost; keying on the text means an edited file is never stale.
_parsed: dict[tuple[Path, str], dict[str, Any]] = {}
_PARSED_KEPT = 4


def read_schema(path: Path) -> SchemaFile:
    """The schema file as a JSON object; SchemaError (relative path) when it cannot be."""
    where = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError(
            Problem("schema file not found; fix 'schema' in the settings file", where)
        ) from None
    except UnicodeDecodeError:
        raise SchemaError(Problem("schema file is not UTF-8 text", where)) from None
    except OSError as exc:
        raise SchemaError(Problem(f"cannot read schema file: {exc.strerror}", where)) from None
    schema = _parsed.get((path, text))
    if schema is None:
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError(
                Problem(f"schema is not valid JSON: {exc.msg}", where, exc.lineno, exc.colno)
            ) from None
        if not isinstance(parsed, dict):
            raise SchemaError(Problem("schema must be a JSON object at the top level", where))
        if len(_parsed) >= _PARSED_KEPT:  # a long-lived process (tests) reads many schemas
            _parsed.clear()
        schema = _parsed[(path, text)] = parsed
    return SchemaFile(schema, text)


def resolve(schema: Any, root: Mapping[str, Any]) -> Any:
    """Follow a local `$ref` ('#/$defs/duration'); anything else is returned as it is."""
    for _ in range(16):  # a $ref cycle must end
        if not isinstance(schema, Mapping):
            return schema
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#"):
            return schema
        target = pointer_target(root, ref[1:])
        if not isinstance(target, Mapping):
            return schema
        # Sibling keywords (examples, description) stay visible next to the referenced ones.
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def pointer_target(root: Any, pointer: str) -> Any:
    """What a JSON pointer ('/$defs/duration') names in `root`, or None."""
    node = root
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


# ── where the schema declares each variable (lint points at it) ──────────────────────────────


def schema_variables(schema_path: Path) -> dict[str, int]:
    """Top-level `properties` of the schema file → the line that declares each one."""
    schema_file = read_schema(schema_path)
    properties = schema_file.schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    lines = _top_level_property_lines(schema_file.text)
    return {name: lines.get(name, 1) for name in properties}


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _top_level_property_lines(text: str) -> dict[str, int]:
    """Where each key of the root object's "properties" object is written (valid JSON only)."""
    lines: dict[str, int] = {}
    depth = 0
    properties_depth: int | None = None  # depth inside the root's "properties" object
    opening_properties = False
    position = 0
    while position < len(text):
        char = text[position]
        if char == '"':
            match = _JSON_STRING.match(text, position)
            end = match.end() if match else len(text)
            is_key = text[end:].lstrip().startswith(":")
            if is_key:
                key = json.loads(text[position:end])
                if depth == 1 and key == "properties":
                    opening_properties = True
                elif properties_depth is not None and depth == properties_depth:
                    lines.setdefault(key, text.count("\n", 0, position) + 1)
            position = end
            continue
        if char in "{[":
            depth += 1
            if opening_properties and char == "{":
                properties_depth = depth
            opening_properties = False
        elif char in "}]":
            if properties_depth is not None and depth == properties_depth:
                properties_depth = None
            depth -= 1
        position += 1
    return lines
