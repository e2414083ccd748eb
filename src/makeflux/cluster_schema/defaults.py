"""The schema's `default`s, filled into the data before it is validated and rendered."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from makeflux.cluster_schema.reading import resolve
from makeflux.yamlsource import KeyPath


def apply_defaults(schema: Mapping[str, Any], values: dict[str, Any]) -> set[KeyPath]:
    """Fill every declared key the data leaves out with the schema's `default`, recursively.

    Returns the key paths that were filled in.
    """
    filled: set[KeyPath] = set()
    _apply_defaults(schema, values, schema, (), filled)
    return filled


def _apply_defaults(
    schema: Mapping[str, Any],
    values: dict[str, Any],
    root: Mapping[str, Any],
    path: KeyPath,
    filled: set[KeyPath],
) -> None:
    if len(path) > 32:  # a recursive $ref would otherwise never end
        return
    schema = resolve(schema, root)
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for name, subschema in properties.items():
            subschema = resolve(subschema, root)
            if not isinstance(subschema, Mapping):
                continue
            if name not in values and "default" in subschema:
                values[name] = copy.deepcopy(subschema["default"])
                filled.add((*path, name))
            child = values.get(name)
            if isinstance(child, dict):
                _apply_defaults(subschema, child, root, (*path, name), filled)
            elif isinstance(child, list) and isinstance(subschema.get("items"), Mapping):
                items_schema = subschema["items"]
                for index, item in enumerate(child):
                    if isinstance(item, dict):
                        _apply_defaults(items_schema, item, root, (*path, name, index), filled)
    for part in schema.get("allOf", ()):
        if isinstance(part, Mapping):
            _apply_defaults(part, values, root, path, filled)
