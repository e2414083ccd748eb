"""Validate one object against a Kubernetes OpenAPI v3 / JSON Schema, as the API server would.

Why not `jsonschema`: the schemas are Kubernetes structural schemas, whose meaning lives in
`x-kubernetes-*` extensions jsonschema ignores (int-or-string, preserve-unknown-fields,
embedded resources, list-type map/set, CEL validations), and Flux placeholders and SOPS
values need their own types. This walker knows those, reports one violation per problem with
the field path, and resolves `$ref`s lazily so a kind costs only the definitions it uses.

    validator = Validator(schema, definitions)
    validator.validate(document) → [Violation(path=("spec", "intervall"), rule=..., message=...)]
"""

from __future__ import annotations

import base64
import binascii
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from makeflux.errors import kind_of, with_article
from makeflux.lint.cel import Unsupported, compile_rule

Path = tuple[str | int, ...]


class Placeholder(str):
    """A string holding a Flux `${VAR}` that postBuild substitutes later: any scalar passes."""

    __slots__ = ()


class Encrypted(str):
    """A SOPS `ENC[...]` value: valid wherever a string is."""

    __slots__ = ()


@dataclass(frozen=True)
class Violation:
    path: Path
    rule: str
    message: str


_DURATION = re.compile(
    r"^[-+]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))*$|^0$"
)
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?\d+))?$")
_QUANTITY_REF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING_REF = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# An embedded resource (x-kubernetes-embedded-resource) carries these whatever its schema says.
_EMBEDDED_FIELDS = ("apiVersion", "kind", "metadata")


def type_name(value: Any) -> str:
    """'a whole number', 'a list' …: what the value is, in the words every message uses."""
    return with_article(kind_of(value))


def _matches_type(value: Any, expected: str) -> bool:
    if expected == "string":
        return isinstance(value, str)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "null":
        return value is None
    return True


# A schema type, in the words of makeflux.errors.kind_of (what a message calls a value).
_ARTICLES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "object": "a mapping",
    "array": "a list",
}


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


@cache
def _pattern(source: str) -> re.Pattern[str] | None:
    # Kubernetes patterns are RE2 (ECMA-like); the few Python cannot read are skipped.
    try:
        return re.compile(source)
    except re.error:
        return None


class Validator:
    """One kind's schema, ready to check many documents (refs resolved once, on first use)."""

    def __init__(self, schema: Mapping[str, Any], definitions: Mapping[str, Any] | None = None):
        self.schema = schema
        self.definitions = definitions or {}

    def validate(self, value: Any) -> list[Violation]:
        violations: list[Violation] = []
        self._check(value, self.schema, (), violations)
        return violations

    def _resolve(self, schema: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
        reference = ""
        while "$ref" in schema:
            reference = schema["$ref"].rpartition("/")[2]
            target = self.definitions.get(reference)
            if target is None:
                return {}, reference
            schema = target
        return schema, reference

    def _check(self, value: Any, schema: Mapping[str, Any], path: Path, out: list[Violation]):
        schema, reference = self._resolve(schema)
        if not schema or value is None:
            # Null is what an empty YAML value gives; the API server drops such optional fields.
            return
        if isinstance(value, Placeholder):
            return
        int_or_string = schema.get("x-kubernetes-int-or-string") or reference in (
            _INT_OR_STRING_REF,
            _QUANTITY_REF,
        )
        if int_or_string:
            if not (isinstance(value, str) or _matches_type(value, "integer")) and not (
                reference == _QUANTITY_REF and _matches_type(value, "number")
            ):
                out.append(
                    Violation(
                        path,
                        "schema-type",
                        f"{_shown(value)} is {type_name(value)}; expected a whole number or"
                        " a string",
                    )
                )
                return
            if reference == _QUANTITY_REF and isinstance(value, str):
                self._quantity(value, path, out)
        elif not self._type(value, schema, path, out):
            return
        if any(key in schema for key in ("oneOf", "anyOf")) and not int_or_string:
            self._alternatives(value, schema, path, out)
        for part in schema.get("allOf", ()):
            self._check(value, part, path, out)
        if isinstance(schema.get("not"), Mapping):
            matched: list[Violation] = []
            self._check(value, schema["not"], path, matched)
            if not matched:
                out.append(Violation(path, "schema-enum", f"{_shown(value)} is not allowed here"))
        if isinstance(value, Encrypted):
            return
        if "enum" in schema and not self._in_enum(value, schema["enum"]):
            allowed = ", ".join(_shown(v) for v in schema["enum"] if v is not None)
            out.append(Violation(path, "schema-enum", f"{_shown(value)} is not one of: {allowed}"))
            return
        if isinstance(value, str):
            self._string(value, schema, path, out)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._number(value, schema, path, out)
        elif isinstance(value, dict):
            self._object(value, schema, path, out)
        elif isinstance(value, list):
            self._array(value, schema, path, out)
        self._rules(value, schema, path, out)

    def _type(self, value: Any, schema: Mapping[str, Any], path: Path, out: list[Violation]):
        expected = schema.get("type")
        if expected is None:
            return True
        names = [expected] if isinstance(expected, str) else list(expected)
        if isinstance(value, Encrypted):
            if "string" in names:
                return True
        elif any(_matches_type(value, name) for name in names):
            return True
        wanted = " or ".join(_ARTICLES.get(n, n) for n in names if n != "null")
        hint = ""
        if "string" in names and isinstance(value, bool | int | float):
            hint = " (quote it)"
        elif isinstance(value, str) and ("integer" in names or "number" in names):
            hint = " (remove the quotes)" if _looks_numeric(value) else ""
        out.append(
            Violation(
                path,
                "schema-type",
                f"{_shown(value)} is {type_name(value)}; expected {wanted}{hint}",
            )
        )
        return False

    @staticmethod
    def _in_enum(value: Any, allowed: list[Any]) -> bool:
        return any(value == a and isinstance(value, bool) == isinstance(a, bool) for a in allowed)

    def _alternatives(self, value: Any, schema: Mapping[str, Any], path: Path, out):
        for key in ("oneOf", "anyOf"):
            options = schema.get(key)
            if not options:
                continue
            results = []
            for option in options:
                found: list[Violation] = []
                self._check(value, option, path, found)
                if not found:
                    break
                results.append(found)
            else:
                # Report the alternative that came closest (fewest problems).
                out.extend(min(results, key=len))

    def _quantity(self, value: str, path: Path, out: list[Violation]) -> None:
        if not _QUANTITY.match(value):
            out.append(
                Violation(
                    path,
                    "schema-format",
                    f"{_shown(value)} is not a quantity; write e.g. 100m, 1.5, 128Mi or 2Gi",
                )
            )

    def _string(self, value: str, schema: Mapping[str, Any], path: Path, out: list[Violation]):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(
                Violation(
                    path,
                    "schema-range",
                    f"{_shown(value)} is {len(value)} characters long; at most "
                    f"{schema['maxLength']} allowed",
                )
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(
                Violation(
                    path,
                    "schema-range",
                    f"{_shown(value)} is {len(value)} characters long; at least "
                    f"{schema['minLength']} needed",
                )
            )
        pattern = schema.get("pattern")
        if pattern:
            compiled = _pattern(pattern)
            if compiled is not None and not compiled.search(value):
                out.append(
                    Violation(path, "schema-pattern", f"{_shown(value)} does not match {pattern}")
                )
                return
        problem = _format_problem(value, schema.get("format"))
        if problem:
            out.append(Violation(path, "schema-format", f"{_shown(value)} {problem}"))

    def _number(self, value: float, schema: Mapping[str, Any], path: Path, out: list[Violation]):
        limits = _INT_RANGES.get(schema.get("format", ""))
        if limits and not limits[0] <= value <= limits[1]:
            out.append(
                Violation(path, "schema-range", f"{value} does not fit in {schema['format']}")
            )
        minimum, maximum = schema.get("minimum"), schema.get("maximum")
        if minimum is not None and (
            value < minimum or (schema.get("exclusiveMinimum") is True and value == minimum)
        ):
            out.append(Violation(path, "schema-range", f"{value} is below the minimum {minimum}"))
        if maximum is not None and (
            value > maximum or (schema.get("exclusiveMaximum") is True and value == maximum)
        ):
            out.append(Violation(path, "schema-range", f"{value} is above the maximum {maximum}"))

    def _object(self, value: dict, schema: Mapping[str, Any], path: Path, out: list[Violation]):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        for name in schema.get("required", ()):
            if name not in value:
                where = ".".join(str(p) for p in path) or "the document"
                out.append(
                    Violation(
                        path,
                        "schema-required",
                        f"missing required field '{name}' in {where}",
                    )
                )
        additional = schema.get("additionalProperties", True)
        # The API server adds apiVersion, kind and metadata to every CRD's root schema.
        embedded = schema.get("x-kubernetes-embedded-resource") or not path
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        for key, item in value.items():
            child = properties.get(key)
            if child is not None:
                self._check(item, child, (*path, key), out)
            elif embedded and key in _EMBEDDED_FIELDS:
                continue
            elif isinstance(additional, Mapping):
                self._check(item, additional, (*path, key), out)
            elif additional is False and not preserve:
                out.append(
                    Violation((*path, key), "schema-unknown-field", _unknown(key, properties))
                )
        _count_bounds(len(value), "fields", "Properties", schema, path, out)

    def _array(self, value: list, schema: Mapping[str, Any], path: Path, out: list[Violation]):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                self._check(item, items, (*path, index), out)
        _count_bounds(len(value), "items", "Items", schema, path, out)
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "set" or schema.get("uniqueItems"):
            self._unique(value, path, out, lambda item: item, "value")
        elif list_type == "map":
            keys = schema.get("x-kubernetes-list-map-keys") or []
            if keys:
                self._unique(
                    value,
                    path,
                    out,
                    lambda item: (
                        tuple(item.get(k) for k in keys) if isinstance(item, dict) else None
                    ),
                    "/".join(keys),
                )

    @staticmethod
    def _unique(value: list, path: Path, out: list[Violation], key_of, what: str) -> None:
        seen: dict[str, int] = {}
        for index, item in enumerate(value):
            key = key_of(item)
            if key is None or _holds_placeholder(key):
                continue
            marker = repr(key)
            if marker in seen:
                if isinstance(key, tuple):  # map keys: 80/TCP, a key left out as 'unset'
                    shown = "/".join("unset" if part is None else str(part) for part in key)
                else:
                    shown = _shown(key)
                out.append(
                    Violation(
                        (*path, index),
                        "schema-list-unique",
                        f"duplicate {what} {shown} (first at item {seen[marker]}); "
                        "each must appear once",
                    )
                )
            else:
                seen[marker] = index

    def _rules(self, value: Any, schema: Mapping[str, Any], path: Path, out: list[Violation]):
        rules = schema.get("x-kubernetes-validations")
        if not rules or _holds_placeholder(value):
            return
        # The API server evaluates rules after defaulting: so do we.
        defaulted = self._defaulted(value, schema)
        for rule in rules:
            source = rule.get("rule") if isinstance(rule, Mapping) else None
            if not isinstance(source, str):
                continue
            try:
                passed = compile_rule(source).evaluate(defaulted)
            except (Unsupported, RecursionError):
                continue
            if passed:
                continue
            message = rule.get("message") or f"failed rule: {' '.join(source.split())}"
            field_path = rule.get("fieldPath")
            where = path
            if isinstance(field_path, str) and field_path.startswith("."):
                where = (*path, *field_path[1:].split("."))
            out.append(Violation(where, "schema-cel", message))

    def _defaulted(self, value: Any, schema: Mapping[str, Any]) -> Any:
        """`value` with the schema's defaults filled in where fields are missing."""
        schema, _ = self._resolve(schema)
        if isinstance(value, dict):
            properties: Mapping[str, Any] = schema.get("properties") or {}
            filled = {
                key: self._defaulted(item, properties[key]) if key in properties else item
                for key, item in value.items()
            }
            for key, child in properties.items():
                default = self._resolve(child)[0].get("default")
                if key not in filled and default is not None:
                    filled[key] = self._defaulted(default, child)
            return filled
        if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
            return [self._defaulted(item, schema["items"]) for item in value]
        return value


def _unknown(key: str, properties: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(properties), n=1)
    if close:
        return f"unknown field '{key}'; did you mean '{close[0]}'?"
    if not properties:
        return f"unknown field '{key}'; this object takes no fields"
    known = ", ".join(sorted(properties))
    if len(known) > 120:
        known = known[:117] + "..."
    return f"unknown field '{key}'; known fields: {known}"


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _format_problem(value: str, fmt: Any) -> str:
    if fmt == "duration" and not _DURATION.match(value):
        return "is not a duration; write e.g. 30s, 5m or 1h30m"
    if fmt == "byte":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return "is not base64; encode it (or use stringData)"
    if fmt == "date-time":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "is not an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z"
    return ""


def _holds_placeholder(value: Any) -> bool:
    if isinstance(value, Placeholder | Encrypted):
        return True
    if isinstance(value, dict):
        return any(_holds_placeholder(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_placeholder(v) for v in value)
    return False


def _count_bounds(
    count: int, noun: str, keyword: str, schema: Mapping[str, Any], path: Path, out: list[Violation]
) -> None:
    """maxProperties/minProperties (keyword "Properties") or maxItems/minItems ("Items")."""
    for bound, compare, words in (
        (f"max{keyword}", int.__gt__, "at most"),
        (f"min{keyword}", int.__lt__, "at least"),
    ):
        if bound in schema and compare(count, schema[bound]):
            out.append(
                Violation(
                    path, "schema-range", f"has {count} {noun}; {words} {schema[bound]} allowed"
                )
            )
