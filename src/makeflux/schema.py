"""JSON Schema validation of the data: schema defaults into the render context, every error at once.

Each jsonschema error becomes one `file:line:col: key.path: what is wrong; what to do` line. Errors
that are consequences of another one (an if/then rule tripped by a mistyped value, a missing key
that is really a typo) are dropped, so one mistake gives one message.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from makeflux import cache
from makeflux.data import LoadedData
from makeflux.errors import (
    Problem,
    SchemaError,
    ValidationError,
    display_path,
    kind_of,
    with_article,
)
from makeflux.settings import Settings
from makeflux.yamlsource import YAML_SUFFIXES, KeyPath, load_documents, locate

if TYPE_CHECKING:  # jsonschema costs ~40 ms to import: only runs that really validate pay it
    from jsonschema.exceptions import ValidationError as JsonSchemaError

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

# Which of several errors about the same value to show: the most basic mistake first.
_RANK = {
    "type": 0,
    "additionalProperties": 0,
    "unevaluatedProperties": 0,
    "required": 1,
    "enum": 2,
    "const": 2,
    "maxLength": 3,
    "minLength": 3,
    "format": 4,
    "pattern": 4,
}
_RANK_OTHER = 5
_RANK_CROSS_FIELD = 9

_TYPE_WORDS = {
    "boolean": "a boolean (true or false)",
    "integer": "a whole number",
    "number": "a number",
    "string": "a string",
    "object": "a mapping of 'key: value' lines",
    "array": "a list",
    "null": "null",
}


# ── the schema ───────────────────────────────────────────────────────────────────────────────


def load_schema(path: Path) -> dict[str, Any]:
    """The schema file as a JSON object that declares draft 2020-12 (or nothing)."""
    return _read_schema(path)[0]


def _read_schema(path: Path) -> tuple[dict[str, Any], str]:
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
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(
            Problem(f"schema is not valid JSON: {exc.msg}", where, exc.lineno, exc.colno)
        ) from None
    if not isinstance(schema, dict):
        raise SchemaError(Problem("schema must be a JSON object at the top level", where))
    declared = schema.get("$schema", DRAFT_2020_12)
    if not isinstance(declared, str) or declared.rstrip("#") != DRAFT_2020_12:
        raise SchemaError(
            Problem(
                f"schema declares $schema {declared!r}; makeflux reads draft 2020-12 "
                f"schemas ('{DRAFT_2020_12}')",
                where,
            )
        )
    return schema, text


def check_schema(schema: Mapping[str, Any], path: Path) -> None:
    """Raise SchemaError unless `schema` is valid against the draft 2020-12 meta-schema.

    This costs more than validating cluster.yaml itself, so runs that render do it only when
    validation fails or breaks (a broken schema shows up there); `makeflux validate` always does.
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    meta = Draft202012Validator(
        Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    error = best_match(meta.iter_errors(schema))
    if error is not None:
        at = _json_pointer(error.absolute_path)
        raise SchemaError(
            Problem(
                f"not a valid draft 2020-12 JSON Schema: at {at}: {error.message}",
                display_path(path),
            )
        )


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
    schema = _resolve(schema, root)
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for name, subschema in properties.items():
            subschema = _resolve(subschema, root)
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


def _resolve(schema: Any, root: Mapping[str, Any]) -> Any:
    """Follow a local `$ref` ('#/$defs/duration'); anything else is returned as it is."""
    for _ in range(16):
        if not isinstance(schema, Mapping):
            return schema
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#"):
            return schema
        target = _pointer_target(root, ref[1:])
        if target is None:
            return schema
        # Sibling keywords (examples, description) stay visible next to the referenced ones.
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _pointer_target(root: Any, pointer: str) -> Any:
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


# ── validation ───────────────────────────────────────────────────────────────────────────────


def validate_data(settings: Settings, data: LoadedData, *, thorough: bool = False) -> None:
    """Apply the schema's defaults to `data.values`; raise ValidationError listing every error.

    `thorough` also checks the schema against the meta-schema when the data is valid.
    """
    assert settings.schema is not None
    path = settings.schema
    schema, schema_text = _read_schema(path)
    problems = _empty_file_problems(data)
    try:
        defaulted = apply_defaults(schema, data.values)
    except Exception as exc:  # a malformed schema ('allOf': 5 …)
        _raise_unusable(schema, path, exc)
    instance, key_problems = _json_view(data.values, ())
    verdict = None if problems or key_problems else _verdict_file(schema_text, instance)
    if verdict is not None and not thorough and _recall(verdict):
        return  # this schema already accepted exactly this data
    if thorough:
        check_schema(schema, path)
    try:
        errors = _schema_errors(schema, instance)
    except RecursionError:
        main = _Locator(settings, data).main_file()
        where = display_path(main) if main else None
        raise ValidationError(Problem("nested too deeply to validate; flatten it", where)) from None
    except Exception as exc:  # jsonschema trips over a malformed schema in many ways
        _raise_unusable(schema, path, exc)
    if not errors and not key_problems and not problems:
        if verdict is not None:
            _remember(verdict)
        return
    if errors and not thorough:
        check_schema(schema, path)  # errors from a malformed schema would only mislead
    locator = _Locator(settings, data)
    findings = _explain(errors, schema, instance, defaulted, key_problems)
    problems += [locator.problem(finding) for finding in findings]
    raise ValidationError(sorted(problems, key=locator.order))


def _schema_errors(schema: Mapping[str, Any], instance: Any) -> list[JsonSchemaError]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return list(validator.iter_errors(instance))


def _raise_unusable(schema: Mapping[str, Any], path: Path, exc: Exception) -> NoReturn:
    """A schema that breaks validation: say what is wrong with it, not with the data."""
    check_schema(schema, path)
    import referencing.exceptions

    if isinstance(exc, referencing.exceptions.Unresolvable):
        message = f"schema cannot be used: cannot resolve $ref {exc.ref!r}"
    else:
        message = f"schema cannot be used: {type(exc).__name__}: {exc}"
    raise SchemaError(Problem(message, display_path(path))) from None


# A valid verdict is remembered per (schema text, data) in the user's cache directory, so a run
# whose schema and data did not change skips importing jsonschema and validating again.
_VERDICT_FORMAT = "makeflux-valid-1"


def _verdict_file(schema_text: str, instance: Any) -> Path | None:
    root = cache.cache_root() if cache.is_enabled() else None
    if root is None:
        return None
    validator_version = _jsonschema_fingerprint()
    digest = hashlib.sha256()
    for part in (
        _VERDICT_FORMAT,
        validator_version,
        schema_text,
        json.dumps(instance, sort_keys=True, default=_typed_repr),
    ):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return root / "valid" / digest.hexdigest()


def _jsonschema_fingerprint() -> str:
    """Changes whenever jsonschema is upgraded; far cheaper than importlib.metadata (~20 ms)."""
    spec = importlib.util.find_spec("jsonschema")
    origin = spec.origin if spec is not None else None
    if origin is None:
        return "unknown"
    try:
        stat = Path(origin).stat()
    except OSError:
        return origin
    return f"{origin}:{stat.st_size}:{stat.st_mtime_ns}"


def _typed_repr(value: Any) -> str:
    # Dates, sets …: not JSON, and never equal to a string the user wrote.
    return f"\0{type(value).__name__}:{value!r}"


def _recall(verdict: Path) -> bool:
    """True when the verdict is remembered; marks it used (its mtime), so pruning keeps it."""
    try:
        os.utime(verdict)
    except OSError:
        return False
    return True


def _remember(verdict: Path) -> None:
    try:
        verdict.parent.mkdir(parents=True, exist_ok=True)
        verdict.touch()
    except OSError:
        pass  # the cache only saves time; a read-only home must not fail the run


@dataclass(frozen=True)
class Finding:
    """One message about one place in the data, before it is given a file and line."""

    at: KeyPath  # where to point the user
    about: KeyPath  # the value it is about (one finding per value survives)
    rank: int
    text: str
    at_value: bool = True  # point at the value rather than the key
    # keys a cross-field rule involves (dropped when one of them already has an error)
    involves: tuple[KeyPath, ...] = ()
    suggestion: KeyPath | None = None  # the declared key an unknown key is probably a typo of
    # a cross-field rule in two halves, so rules with the same requirement merge into one line
    condition: str = ""
    requirement: str = ""


def _json_view(
    value: Any, path: KeyPath, inside: frozenset[int] = frozenset()
) -> tuple[Any, list[Finding]]:
    """`value` with every mapping key a string (as JSON Schema expects), a finding per other key.

    `inside` holds the containers on the way here: a list that contains itself (`&x [*x]`)
    is reported, not followed forever.
    """
    findings: list[Finding] = []
    if isinstance(value, dict | list):
        if id(value) in inside:
            message = (
                f"{_dotted(path)}: contains itself through a YAML alias (&anchor … *anchor); "
                "write the value out instead"
            )
            return None, [Finding(path, path, 0, message, at_value=False)]
        inside = inside | {id(value)}
    if isinstance(value, dict):
        view: dict[str, Any] = {}
        for key, child in value.items():
            name = key if isinstance(key, str) else _key_text(key)
            if not isinstance(key, str):
                read_as = "null" if key is None else with_article(kind_of(key))
                findings.append(
                    Finding(
                        (*path, name),
                        (*path, name),
                        0,
                        f"{_dotted((*path, name))}: the key {name} is read as {read_as}; "
                        f"keys must be strings, quote it: '{name}'",
                        at_value=False,
                    )
                )
            view[name], child_findings = _json_view(child, (*path, name), inside)
            findings += child_findings
        return view, findings
    if isinstance(value, list):
        items = []
        for index, child in enumerate(value):
            item, child_findings = _json_view(child, (*path, index), inside)
            items.append(item)
            findings += child_findings
        return items, findings
    return value, findings


def _explain(
    errors: Iterable[JsonSchemaError],
    schema: Mapping[str, Any],
    instance: Any,
    defaulted: set[KeyPath],
    key_problems: list[Finding],
) -> list[Finding]:
    findings: list[Finding] = list(key_problems)  # first: they win over the same key's errors
    for error in errors:
        if error.context:  # anyOf / oneOf: the branch that came closest tells the most
            from jsonschema.exceptions import best_match

            error = best_match([error])
        findings += _findings(error, schema, instance)
    return _without_cascade(findings, instance, defaulted)


def _without_cascade(
    findings: list[Finding], instance: Any, defaulted: set[KeyPath]
) -> list[Finding]:
    """One finding per value (the most basic), minus those another finding already explains."""
    best: dict[KeyPath, Finding] = {}
    rules: dict[tuple[KeyPath, str], list[Finding]] = {}
    for finding in findings:
        if finding.rank == _RANK_CROSS_FIELD:
            rules.setdefault((finding.about, finding.requirement), []).append(finding)
            continue
        kept = best.get(finding.about)
        if kept is None or finding.rank < kept.rank:
            best[finding.about] = finding
    # A typo'd key leaves the declared key missing or at its default: what is then said
    # about the declared key is an echo of the typo.
    typo_targets = {
        f.suggestion
        for f in best.values()
        if f.suggestion is not None
        and (f.suggestion in defaulted or not _has_path(instance, f.suggestion))
    }
    kept_findings = [
        f for f in best.values() if not (f.rank == _RANK["required"] and f.about in typo_targets)
    ]
    for (about, requirement), same in rules.items():
        same = [
            f for f in same if not any(path in best or path in typo_targets for path in f.involves)
        ]
        if not same:
            continue
        # Several switches needing the same thing: one line naming them all.
        conditions = list(dict.fromkeys(f.condition for f in same))
        verb = "requires" if len(conditions) == 1 else "require"
        first = same[0]
        text = f"{_and_list(conditions)} {verb} {requirement}"
        kept_findings.append(
            Finding(first.at, about, first.rank, text, first.at_value, first.involves)
        )
    return kept_findings


def _findings(error: JsonSchemaError, root: Mapping[str, Any], instance: Any) -> list[Finding]:
    path: KeyPath = tuple(error.absolute_path)
    rule = _enclosing_rule(root, tuple(error.absolute_schema_path))
    if rule is not None:
        return _cross_field_findings(error, rule, instance)
    keyword = error.validator
    value = error.instance
    name = _dotted(path)
    rank = _RANK.get(str(keyword), _RANK_OTHER)

    if keyword in ("additionalProperties", "unevaluatedProperties"):
        return _unknown_key_findings(error, root, path)
    if keyword == "required":
        return [
            Finding(
                path,
                (*path, missing),
                rank,
                f"{_dotted((*path, missing))}: missing; add it"
                + _described(_property_schema(error.schema, missing, root)),
                at_value=False,
            )
            for missing in _expected(error)
            if isinstance(value, Mapping) and missing not in value
        ]
    if keyword == "dependentRequired":
        return _dependent_required_findings(error, path)
    return [Finding(path, path, rank, f"{name}: {_describe(error, root)}")]


def _describe(error: JsonSchemaError, root: Mapping[str, Any]) -> str:
    """What is wrong with the value, and what would be right."""
    keyword = error.validator
    expected = _expected(error)
    value: Any = error.instance
    shown = _show(value)
    subschema = error.schema if isinstance(error.schema, Mapping) else {}
    if keyword == "type":
        return _type_message(value, expected, root, error)
    if keyword == "enum":
        choices = ", ".join(_show(choice) for choice in expected)
        text = f"{shown} is not one of the allowed values: {choices}"
        return text + _did_you_mean(value, [c for c in expected if isinstance(c, str)])
    if keyword == "const":
        return f"{shown} is not allowed; the only allowed value is {_show(expected)}"
    if keyword in ("pattern", "format"):
        examples = _examples(root, error)
        noun = _noun(root, error)
        if examples:
            return f"{shown} is not valid; expected {noun} like {_or_list(examples)}"
        if keyword == "format":
            return f"{shown} is not a valid {expected}"
        return f"{shown} does not match the pattern {expected}"
    if keyword == "maximum":
        return f"{shown} is greater than the maximum of {_show(expected)}"
    if keyword == "minimum":
        return f"{shown} is less than the minimum of {_show(expected)}"
    if keyword == "exclusiveMaximum":
        return f"{shown} must be less than {_show(expected)}"
    if keyword == "exclusiveMinimum":
        return f"{shown} must be greater than {_show(expected)}"
    if keyword == "multipleOf":
        return f"{shown} is not a multiple of {_show(expected)}"
    if keyword == "maxLength":
        return f"{shown} is too long; at most {expected} characters"
    if keyword == "minLength":
        return f"{shown} is too short; at least {expected} characters"
    if keyword == "maxItems":
        return f"has {len(value)} items; at most {expected} allowed"
    if keyword == "minItems":
        return f"has {len(value)} items; at least {expected} needed"
    if keyword == "uniqueItems":
        duplicates = sorted({_show(v) for v in value if value.count(v) > 1})
        return f"lists {', '.join(duplicates)} more than once; each item must be unique"
    if keyword in ("anyOf", "oneOf") and error.context:
        return f"{shown} is not valid; expected {_alternatives(error, root)}"
    if keyword == "oneOf":
        return f"{shown} matches more than one of the allowed forms; make it match exactly one"
    if keyword == "not":
        return f"{shown} is not allowed here"
    if keyword == "anyOf":
        return f"{shown} does not match any of the allowed forms"
    description = subschema.get("description")
    return error.message + (f" ({description})" if isinstance(description, str) else "")


def _type_message(value: Any, expected: Any, root: Mapping[str, Any], error: Any) -> str:
    types = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
    if value is None:
        text = f"has no value; expected {wanted}"
        prop = _schema_at(root, tuple(error.absolute_path))
        if isinstance(prop, Mapping) and "default" in prop:
            text += f", or delete the line to use the default ({_show(prop['default'])})"
        return text
    if isinstance(value, dict | list):
        return f"is {with_article(kind_of(value))}; expected {wanted}"
    if isinstance(value, bytes):
        text = f"is binary data (a !!binary value); expected {wanted}"
        try:
            decoded = value.decode("utf-8")
        except UnicodeDecodeError:
            return text + "; write the value itself instead"
        return text + f"; write the text itself instead: {_show(decoded)}"
    text = f"{_show(value)} is {with_article(kind_of(value))}; expected {wanted}"
    if "string" in types and not isinstance(value, dict | list):
        text += f"; quote it to make it a string: {_show(str(_show(value)))}"
    elif isinstance(value, str) and types == ["boolean"]:
        text += "; write true or false without quotes"
    elif (
        isinstance(value, str)
        and ("integer" in types or "number" in types)
        and re.fullmatch(r"[-+]?\d+(\.\d+)?", value.strip())
    ):
        text += "; write the number without quotes"
    return text


def _unknown_key_findings(
    error: JsonSchemaError, root: Mapping[str, Any], path: KeyPath
) -> list[Finding]:
    value = error.instance
    subschema = _resolve(error.schema, root)
    declared = _declared_names(subschema, root)
    patterns = subschema.get("patternProperties", {}) if isinstance(subschema, Mapping) else {}
    findings = []
    for key in value if isinstance(value, Mapping) else ():
        if key in declared or any(re.search(p, key) for p in patterns):
            continue
        match = _closest(key, declared)
        if match:
            hint = f"did you mean '{match}'?"
            suggestion: KeyPath | None = (*path, match)
        else:
            hint = "not a setting the schema declares; check the spelling or remove it"
            suggestion = None
        findings.append(
            Finding(
                (*path, key),
                (*path, key),
                0,
                f"{_dotted((*path, key))}: unknown key; {hint}",
                at_value=False,
                suggestion=suggestion,
            )
        )
    return findings


def _declared_names(schema: Any, root: Mapping[str, Any], depth: int = 0) -> list[str]:
    schema = _resolve(schema, root)
    if not isinstance(schema, Mapping) or depth > 8:
        return []
    names = list(schema.get("properties", {}))
    for keyword in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(keyword, ()):
            names += [n for n in _declared_names(part, root, depth + 1) if n not in names]
    return names


def _dependent_required_findings(error: JsonSchemaError, path: KeyPath) -> list[Finding]:
    value = error.instance
    findings: list[Finding] = []
    if not isinstance(value, Mapping):
        return findings
    for trigger, needed in _expected(error).items():
        if trigger not in value:
            continue
        for name in needed:
            if name in value:
                continue
            condition = _dotted((*path, trigger))
            requirement = f"{_dotted((*path, name))} to be set"
            findings.append(
                Finding(
                    (*path, trigger),
                    (*path, name),
                    _RANK_CROSS_FIELD,
                    f"{condition} requires {requirement}",
                    at_value=False,
                    involves=((*path, trigger), (*path, name)),
                    condition=condition,
                    requirement=requirement,
                )
            )
    return findings


# ── cross-field rules (if/then/else, dependentSchemas) ───────────────────────────────────────


@dataclass(frozen=True)
class _Rule:
    kind: str  # "then", "else" or "dependentSchemas"
    schema: Mapping[str, Any]  # the schema holding `if` (or dependentSchemas)
    depth: int  # how many schema_path steps lead to that schema
    trigger: str | None = None  # for dependentSchemas: the key whose presence applies it


def _enclosing_rule(root: Mapping[str, Any], schema_path: tuple[Any, ...]) -> _Rule | None:
    """The innermost if/then/else or dependentSchemas the failing keyword sits under."""
    node: Any = root
    found: _Rule | None = None
    for depth, step in enumerate(schema_path):
        node = _resolve(node, root)
        if isinstance(node, Mapping):
            if step in ("then", "else") and "if" in node:
                found = _Rule(str(step), node, depth)
            elif step == "dependentSchemas" and depth + 1 < len(schema_path):
                found = _Rule("dependentSchemas", node, depth, str(schema_path[depth + 1]))
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return found
    return found


def _cross_field_findings(error: JsonSchemaError, rule: _Rule, instance: Any) -> list[Finding]:
    # The rule applies to the object at the start of the failing value's path.
    target_path: KeyPath = tuple(error.absolute_path)
    object_path = _object_path(error, rule)
    holder = _value_at(instance, object_path)
    triggers: list[KeyPath] = []
    if rule.kind == "dependentSchemas":
        assert rule.trigger is not None
        condition = _dotted((*object_path, rule.trigger))
        triggers.append((*object_path, rule.trigger))
    else:
        condition, keys = _condition_words(rule.schema["if"], holder, negate=rule.kind == "else")
        triggers += [(*object_path, key) for key in keys]
    if error.validator == "required":
        missing = [n for n in _expected(error) if isinstance(holder, Mapping)]
        missing = [n for n in missing if n not in holder]
        target_path = (*object_path, missing[0]) if missing else target_path
        requirement = f"{_dotted(target_path)} to be set"
    else:
        requirement = _requirement_words(error, target_path)
    # Point at the key that switched the rule on when the user wrote it, else at the target.
    at = triggers[0] if triggers else target_path
    return [
        Finding(
            at,
            target_path,
            _RANK_CROSS_FIELD,
            f"{condition} requires {requirement}",
            at_value=False,
            involves=(target_path, *triggers),
            condition=condition,
            requirement=requirement,
        )
    ]


def _object_path(error: JsonSchemaError, rule: _Rule) -> KeyPath:
    """The instance path of the object the rule was applied to."""
    steps_below_rule = tuple(error.absolute_schema_path)[rule.depth + 1 :]
    # Each `properties`/`items` step below the rule goes one level deeper in the instance.
    deeper = sum(1 for step in steps_below_rule if step in ("properties", "items", "prefixItems"))
    path = tuple(error.absolute_path)
    return path[: len(path) - deeper] if deeper else path


def _condition_words(if_schema: Any, holder: Any, *, negate: bool) -> tuple[str, list[str]]:
    """`hubble_enabled` for {const: true}; `monitoring_stack: prometheus` for another const."""
    words: list[str] = []
    keys: list[str] = []
    properties = if_schema.get("properties", {}) if isinstance(if_schema, Mapping) else {}
    for key, condition in properties.items():
        if not isinstance(condition, Mapping):
            continue
        keys.append(key)
        if "const" in condition:
            expected = condition["const"]
            if expected is True and not negate:
                words.append(key)
            else:
                words.append(f"{key}: {_show(holder.get(key) if negate else expected)}")
        elif "enum" in condition:
            actual = holder.get(key) if isinstance(holder, Mapping) else None
            words.append(f"{key}: {_show(actual)}")
        else:
            words.append(key)
    if not words:
        return "this combination of settings", keys
    return " with ".join(words), keys


def _alternatives(error: JsonSchemaError, root: Mapping[str, Any] | None) -> str:
    """What each branch of an anyOf/oneOf wanted: 'a string or at least 1'."""
    from jsonschema.exceptions import best_match

    branches: dict[Any, list[JsonSchemaError]] = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    wanted = [_expectation(best_match(subs), root) for subs in branches.values()]
    return _or_list(list(dict.fromkeys(wanted)))


def _expectation(error: JsonSchemaError, root: Mapping[str, Any] | None) -> str:
    """What one failing keyword wanted, as a noun phrase."""
    expected = _expected(error)
    words = {"minimum": "at least", "maximum": "at most"}
    words |= {"exclusiveMinimum": "more than", "exclusiveMaximum": "less than"}
    if error.validator == "type":
        types = [expected] if isinstance(expected, str) else list(expected)
        return " or ".join(_TYPE_WORDS.get(t, t) for t in types)
    if error.validator in words:
        return f"{words[str(error.validator)]} {_show(expected)}"
    if error.validator == "enum":
        return "one of " + ", ".join(_show(v) for v in expected)
    if error.validator == "const":
        return _show(expected)
    if error.validator in ("pattern", "format") and root is not None:
        examples = _examples(root, error)
        if examples:
            return f"{_noun(root, error)} like {_or_list(examples)}"
    if error.validator == "pattern":
        return f"text matching {expected}"
    return error.message


def _requirement_words(error: JsonSchemaError, target: KeyPath) -> str:
    name = _dotted(target)
    expected = _expected(error)
    if error.validator == "const":
        return f"{name}: {_show(expected)}"
    if error.validator == "enum":
        return f"{name} to be one of {', '.join(_show(v) for v in expected)}"
    if error.validator == "not":
        return f"{name} to be left out"
    if error.validator in ("anyOf", "oneOf") and error.context:
        return f"{name} to be {_alternatives(error, None)} (it is {_show(error.instance)})"
    if error.validator == "type":
        types = [expected] if isinstance(expected, str) else expected
        return f"{name} to be " + " or ".join(_TYPE_WORDS.get(t, t) for t in types)
    bounds = {
        "minimum": "at least",
        "maximum": "at most",
        "exclusiveMinimum": "more than",
        "exclusiveMaximum": "less than",
    }
    if error.validator in bounds:
        actual = _show(error.instance)
        return f"{name} to be {bounds[str(error.validator)]} {_show(expected)} (it is {actual})"
    return f"{name} where {error.message}"


# ── where each finding is ────────────────────────────────────────────────────────────────────


class _Locator:
    """Turns a key path into the file (or --set option) and line that set it."""

    def __init__(self, settings: Settings, data: LoadedData) -> None:
        self.settings = settings
        self.data = data
        self.documents: dict[Path, list[Any] | None] = {}
        self.file_order = {display_path(f): n for n, f in enumerate(data.files)}

    def problem(self, finding: Finding) -> Problem:
        override = self._override(finding.at) or self._override(finding.about)
        if override is not None:
            key, raw = override
            given = f"{key}={raw}"
            shown = given if given.isprintable() else _escaped(given)
            return Problem(finding.text, f"--set {shown}")
        if finding.at and self._from_data_vars(finding.at) and self.settings.source:
            return Problem(finding.text, display_path(self.settings.source))
        top = finding.at[0] if finding.at else None
        origin = self.data.origins.get(top) if isinstance(top, str) else None
        if origin is None and finding.at:
            origin = self._origin_by_text(finding.at[0])
        if origin is None:
            main = self.main_file()
            return Problem(finding.text, display_path(main) if main else None)
        if origin.suffix not in YAML_SUFFIXES:
            return Problem(finding.text, display_path(origin))
        documents = self._documents(origin)
        position = locate(documents, finding.at, at_value=finding.at_value) if documents else None
        line, column = position if position else (None, None)
        return Problem(finding.text, display_path(origin), line, column)

    def order(self, problem: Problem) -> tuple[int, int, int, str]:
        if problem.path is None or problem.path.startswith("--set "):
            file_rank = len(self.file_order) + 1
        else:
            file_rank = self.file_order.get(problem.path, len(self.file_order))
        return (file_rank, problem.line or 0, problem.column or 0, problem.message)

    def _override(self, path: KeyPath) -> tuple[str, str] | None:
        text_path = [str(p) for p in path]
        best: tuple[str, str] | None = None
        for key, raw in self.data.overrides.items():
            parts = key.split(".")
            shorter = min(len(parts), len(text_path))
            matches = shorter and parts[:shorter] == text_path[:shorter]
            if matches and (best is None or len(key) > len(best[0])):
                best = (key, raw)
        return best

    def _from_data_vars(self, path: KeyPath) -> bool:
        text_path = [str(p) for p in path]
        for key in self.settings.data_vars:
            parts = key.split(".")
            shorter = min(len(parts), len(text_path))
            if parts[:shorter] == text_path[:shorter]:
                return True
        return False

    def _origin_by_text(self, key: Any) -> Path | None:
        for origin_key, origin in self.data.origins.items():
            if _key_text(origin_key) == str(key):
                return origin
        return None

    def main_file(self) -> Path | None:
        for path in self.data.files:
            if path.suffix in YAML_SUFFIXES:
                return path
        return self.data.files[0] if self.data.files else None

    def _documents(self, path: Path) -> list[Any] | None:
        if path not in self.documents:
            self.documents[path] = load_documents(path)
        return self.documents[path]


def _empty_file_problems(data: LoadedData) -> list[Problem]:
    """A YAML data file with nothing in it is almost always a mistake when a schema is in use."""
    contributing = set(data.origins.values())
    problems = []
    for path in data.files:
        if path.suffix not in YAML_SUFFIXES or path in contributing:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        meaningful = [
            line
            for line in text.splitlines()
            if line.strip()
            and not line.lstrip().startswith("#")
            and line.strip() not in ("---", "...")
        ]
        if not meaningful:
            problems.append(
                Problem(
                    "the file is empty; add your settings as 'key: value' lines, "
                    "or write {} to use every default",
                    display_path(path),
                )
            )
    return problems


# ── words ────────────────────────────────────────────────────────────────────────────────────


def _dotted(path: KeyPath) -> str:
    """A key path the way a user writes it: `nodes[0].address`."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += ("." if text else "") + _printable(str(step))
    return text or "(top level)"


def _printable(text: str) -> str:
    """`text` as is, or quoted with escapes when it is empty or holds invisible characters."""
    if text and text.isprintable() and text.strip() == text:
        return text
    return _escaped(text)


def _escaped(text: str) -> str:
    """Double-quoted like a YAML string, every invisible character spelled out (\\t, \\x85)."""
    shown = []
    for char in text:
        if char in '"\\':
            shown.append("\\" + char)
        elif char.isprintable():
            shown.append(char)
        else:
            shown.append(char.encode("unicode_escape").decode("ascii"))
    return '"' + "".join(shown) + '"'


def _show(value: Any) -> str:
    """A value as YAML would spell it."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        if not text.isprintable():
            return _escaped(text)
        return "'" + text.replace("'", "''") + "'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _key_text(key: Any) -> str:
    """A non-string key as the user most likely wrote it: 1, true, 2024-01-01."""
    return _show(key) if isinstance(key, bool) or key is None else str(key)


def _or_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _did_you_mean(value: Any, choices: list[str]) -> str:
    match = _closest(value, choices) if isinstance(value, str) else None
    return f"; did you mean '{match}'?" if match else ""


def _closest(word: str, choices: list[str]) -> str | None:
    """The choice `word` is most likely a typo of, ignoring case ('DSR' → 'dsr')."""
    import difflib  # only when there is a mistake to explain

    by_lower = {choice.lower(): choice for choice in choices}
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[matches[0]] if matches else None


def _described(schema: Any) -> str:
    if isinstance(schema, Mapping) and isinstance(schema.get("description"), str):
        from makeflux.variables import first_sentence

        return f" ({first_sentence(schema['description'].strip()).rstrip('.')})"
    return ""


def _examples(root: Mapping[str, Any], error: JsonSchemaError) -> list[str]:
    """Up to four example values for the failing value, from the nearest schema that has some."""
    candidates = [error.schema, _schema_at(root, tuple(error.absolute_path))]
    path = tuple(error.absolute_path)
    if path and isinstance(path[-1], int):  # an item: its list's examples are lists of items
        parent = _schema_at(root, path[:-1])
        if isinstance(parent, Mapping):
            for example in parent.get("examples", ()):
                if isinstance(example, list):
                    candidates.append({"examples": example})
    for candidate in candidates:
        candidate = _resolve(candidate, root)
        if isinstance(candidate, Mapping) and isinstance(candidate.get("examples"), list):
            shown = [
                str(e) if e != "" else "'' (empty)"
                for e in candidate["examples"]
                if not isinstance(e, dict | list)
            ]
            if shown:
                return shown[:4]
    return []


def _noun(root: Mapping[str, Any], error: JsonSchemaError) -> str:
    """What kind of value is expected, from the `$defs` name it was defined under ('a duration')."""
    name = _def_name(root, tuple(error.absolute_schema_path))
    if name:
        return with_article(re.sub(r"[_-]+", " ", name))
    return "a value"


def _def_name(root: Mapping[str, Any], schema_path: tuple[Any, ...]) -> str | None:
    node: Any = root
    name = None
    for step in schema_path:
        if isinstance(node, Mapping) and step not in node and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            match = re.fullmatch(r"#/(?:\$defs|definitions)/([^/]+)", ref)
            name = match.group(1) if match else name
            node = _pointer_target(root, ref[1:])
        if isinstance(node, Mapping):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return name
    return name


def _schema_at(root: Mapping[str, Any], path: KeyPath) -> Any:
    """The schema declared for the value at `path` (properties / items), if plainly declared."""
    node: Any = _resolve(root, root)
    for step in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get("items") if isinstance(step, int) else node.get("properties", {}).get(step)
        node = _resolve(node, root)
    return node


def _property_schema(schema: Any, name: str, root: Mapping[str, Any]) -> Any:
    schema = _resolve(schema, root)
    if isinstance(schema, Mapping):
        return _resolve(schema.get("properties", {}).get(name), root)
    return None


def _has_path(instance: Any, path: KeyPath) -> bool:
    parent = _value_at(instance, path[:-1])
    return isinstance(parent, Mapping) and str(path[-1]) in parent


def _value_at(instance: Any, path: KeyPath) -> Any:
    node = instance
    for step in path:
        if isinstance(node, Mapping):
            node = node.get(str(step))
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return None
    return node


def _json_pointer(path: Iterable[Any]) -> str:
    steps = [str(p) for p in path]
    return "/" + "/".join(steps) if steps else "the top level"


def _expected(error: JsonSchemaError) -> Any:
    """The schema keyword's value: what the failed keyword expected (`Unset` only for errors
    jsonschema builds by hand, which validation never yields)."""
    return error.validator_value
