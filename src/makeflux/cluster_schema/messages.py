"""What each jsonschema error means, in words: one Mistake per wrong value, with what to do.

Errors that are consequences of another one (an if/then rule tripped by a mistyped value, a
missing key that is really a typo) are dropped, so one mistake gives one message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from makeflux.cluster_schema.reading import pointer_target, resolve
from makeflux.cluster_schema.words import (
    and_list,
    closest,
    did_you_mean,
    dotted,
    first_sentence,
    key_text,
    or_list,
    show,
)
from makeflux.errors import kind_of, with_article
from makeflux.yamlsource import KeyPath

if TYPE_CHECKING:  # jsonschema costs ~40 ms to import: only runs that really validate pay it
    from jsonschema.exceptions import ValidationError as JsonSchemaError

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

_BOUND_WORDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "more than",
    "exclusiveMaximum": "less than",
}


def _type_words(expected: str | list[str]) -> str:
    """What a `type` keyword asks for: 'a string or null'."""
    types = [expected] if isinstance(expected, str) else list(expected)
    return " or ".join(_TYPE_WORDS.get(t, t) for t in types)


@dataclass(frozen=True)
class Mistake:
    """One message about one place in the data, before it is given a file and line."""

    at: KeyPath  # where to point the user
    about: KeyPath  # the value it is about (one mistake per value survives)
    rank: int
    text: str
    at_value: bool = True  # point at the value rather than the key
    # keys a cross-field rule involves (dropped when one of them already has an error)
    involves: tuple[KeyPath, ...] = ()
    suggestion: KeyPath | None = None  # the declared key an unknown key is probably a typo of
    # a cross-field rule in two halves, so rules with the same requirement merge into one line
    condition: str = ""
    requirement: str = ""


def self_containing(path: KeyPath) -> Mistake:
    """A list or mapping that holds itself (`&x [*x]`): JSON has no such thing."""
    message = (
        f"{dotted(path)}: contains itself through a YAML alias (&anchor … *anchor); "
        "write the value out instead"
    )
    return Mistake(path, path, 0, message, at_value=False)


def non_string_key(path: KeyPath, key: Any) -> Mistake:
    """A key YAML read as a number, boolean, date or null; `about` ends in its text."""
    name = key_text(key)
    read_as = "null" if key is None else with_article(kind_of(key))
    return Mistake(
        (*path, name),
        (*path, name),
        0,
        f"{dotted((*path, name))}: the key {name} is read as {read_as}; "
        f"keys must be strings, quote it: '{name}'",
        at_value=False,
    )


def explain_errors(
    errors: Iterable[JsonSchemaError],
    schema: Mapping[str, Any],
    instance: Any,
    defaulted: set[KeyPath],
    key_problems: list[Mistake],
) -> list[Mistake]:
    mistakes: list[Mistake] = list(key_problems)  # first: they win over the same key's errors
    for error in errors:
        if error.context:  # anyOf / oneOf: the branch that came closest tells the most
            from jsonschema.exceptions import best_match

            error = best_match([error])
        mistakes += _mistakes(error, schema, instance)
    return _without_cascade(mistakes, instance, defaulted)


def _without_cascade(
    mistakes: list[Mistake], instance: Any, defaulted: set[KeyPath]
) -> list[Mistake]:
    """One mistake per value (the most basic), minus those another mistake already explains."""
    best: dict[KeyPath, Mistake] = {}
    rules: dict[tuple[KeyPath, str], list[Mistake]] = {}
    for mistake in mistakes:
        if mistake.rank == _RANK_CROSS_FIELD:
            rules.setdefault((mistake.about, mistake.requirement), []).append(mistake)
            continue
        kept = best.get(mistake.about)
        if kept is None or mistake.rank < kept.rank:
            best[mistake.about] = mistake
    # A typo'd key leaves the declared key missing or at its default: what is then said
    # about the declared key is an echo of the typo.
    typo_targets = {
        f.suggestion
        for f in best.values()
        if f.suggestion is not None
        and (f.suggestion in defaulted or not _has_path(instance, f.suggestion))
    }
    kept_mistakes = [
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
        text = f"{and_list(conditions)} {verb} {requirement}"
        kept_mistakes.append(
            Mistake(first.at, about, first.rank, text, first.at_value, first.involves)
        )
    return kept_mistakes


def _mistakes(error: JsonSchemaError, root: Mapping[str, Any], instance: Any) -> list[Mistake]:
    path: KeyPath = tuple(error.absolute_path)
    rule = _enclosing_rule(root, tuple(error.absolute_schema_path))
    if rule is not None:
        return _cross_field_mistakes(error, rule, instance)
    keyword = error.validator
    value = error.instance
    name = dotted(path)
    rank = _RANK.get(str(keyword), _RANK_OTHER)

    if keyword in ("additionalProperties", "unevaluatedProperties"):
        return _unknown_key_mistakes(error, root, path)
    if keyword == "required":
        return [
            Mistake(
                path,
                (*path, missing),
                rank,
                f"{dotted((*path, missing))}: missing; add it"
                + _described(_property_schema(error.schema, missing, root)),
                at_value=False,
            )
            for missing in _expected(error)
            if isinstance(value, Mapping) and missing not in value
        ]
    if keyword == "dependentRequired":
        return _dependent_required_mistakes(error, path)
    return [Mistake(path, path, rank, f"{name}: {_describe(error, root)}")]


# What a failed keyword says when the keyword alone tells what is wrong: {shown} is the value,
# {expected} the keyword's value as YAML spells it, {limit} as written, {count} the items.
_PLAIN_MESSAGES = {
    "const": "{shown} is not allowed; the only allowed value is {expected}",
    "maximum": "{shown} is greater than the maximum of {expected}",
    "minimum": "{shown} is less than the minimum of {expected}",
    "exclusiveMaximum": "{shown} must be less than {expected}",
    "exclusiveMinimum": "{shown} must be greater than {expected}",
    "multipleOf": "{shown} is not a multiple of {expected}",
    "maxLength": "{shown} is too long; at most {limit} characters",
    "minLength": "{shown} is too short; at least {limit} characters",
    "maxItems": "has {count} items; at most {limit} allowed",
    "minItems": "has {count} items; at least {limit} needed",
}


def _describe(error: JsonSchemaError, root: Mapping[str, Any]) -> str:
    """What is wrong with the value, and what would be right."""
    keyword = error.validator
    expected = _expected(error)
    value: Any = error.instance
    shown = show(value)
    subschema = error.schema if isinstance(error.schema, Mapping) else {}
    if keyword == "type":
        return _type_message(value, expected, root, error)
    if keyword == "enum":
        choices = ", ".join(show(choice) for choice in expected)
        text = f"{shown} is not one of the allowed values: {choices}"
        return text + did_you_mean(value, [c for c in expected if isinstance(c, str)])
    if keyword in ("pattern", "format"):
        examples = _examples(root, error)
        noun = _noun(root, error)
        if examples:
            return f"{shown} is not valid; expected {noun} like {or_list(examples)}"
        if keyword == "format":
            return f"{shown} is not a valid {expected}"
        return f"{shown} does not match the pattern {expected}"
    if keyword in _PLAIN_MESSAGES:
        count = len(value) if isinstance(value, list) else 0
        return _PLAIN_MESSAGES[str(keyword)].format(
            shown=shown, expected=show(expected), limit=expected, count=count
        )
    if keyword == "uniqueItems":
        duplicates = sorted({show(v) for v in value if value.count(v) > 1})
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
    wanted = _type_words(expected)
    if value is None:
        text = f"has no value; expected {wanted}"
        prop = _schema_at(root, tuple(error.absolute_path))
        if isinstance(prop, Mapping) and "default" in prop:
            text += f", or delete the line to use the default ({show(prop['default'])})"
        return text
    if isinstance(value, dict | list):
        return f"is {with_article(kind_of(value))}; expected {wanted}"
    if isinstance(value, bytes):
        text = f"is binary data (a !!binary value); expected {wanted}"
        try:
            decoded = value.decode("utf-8")
        except UnicodeDecodeError:
            return text + "; write the value itself instead"
        return text + f"; write the text itself instead: {show(decoded)}"
    text = f"{show(value)} is {with_article(kind_of(value))}; expected {wanted}"
    if "string" in types and not isinstance(value, dict | list):
        text += f"; quote it to make it a string: {show(str(show(value)))}"
    elif isinstance(value, str) and types == ["boolean"]:
        text += "; write true or false without quotes"
    elif (
        isinstance(value, str)
        and ("integer" in types or "number" in types)
        and re.fullmatch(r"[-+]?\d+(\.\d+)?", value.strip())
    ):
        text += "; write the number without quotes"
    return text


def _unknown_key_mistakes(
    error: JsonSchemaError, root: Mapping[str, Any], path: KeyPath
) -> list[Mistake]:
    value = error.instance
    subschema = resolve(error.schema, root)
    declared = _declared_names(subschema, root)
    patterns = subschema.get("patternProperties", {}) if isinstance(subschema, Mapping) else {}
    mistakes = []
    for key in value if isinstance(value, Mapping) else ():
        if key in declared or any(re.search(p, key) for p in patterns):
            continue
        match = closest(key, declared)
        if match:
            hint = f"did you mean '{match}'?"
            suggestion: KeyPath | None = (*path, match)
        else:
            hint = "not a setting the schema declares; check the spelling or remove it"
            suggestion = None
        mistakes.append(
            Mistake(
                (*path, key),
                (*path, key),
                0,
                f"{dotted((*path, key))}: unknown key; {hint}",
                at_value=False,
                suggestion=suggestion,
            )
        )
    return mistakes


def _declared_names(schema: Any, root: Mapping[str, Any], depth: int = 0) -> list[str]:
    schema = resolve(schema, root)
    if not isinstance(schema, Mapping) or depth > 8:
        return []
    names = list(schema.get("properties", {}))
    for keyword in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(keyword, ()):
            names += [n for n in _declared_names(part, root, depth + 1) if n not in names]
    return names


def _dependent_required_mistakes(error: JsonSchemaError, path: KeyPath) -> list[Mistake]:
    value = error.instance
    mistakes: list[Mistake] = []
    if not isinstance(value, Mapping):
        return mistakes
    for trigger, needed in _expected(error).items():
        if trigger not in value:
            continue
        for name in needed:
            if name in value:
                continue
            condition = dotted((*path, trigger))
            requirement = f"{dotted((*path, name))} to be set"
            mistakes.append(
                Mistake(
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
    return mistakes


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
        node = resolve(node, root)
        if isinstance(node, Mapping):
            if step in ("then", "else") and "if" in node:
                found = _Rule(str(step), node, depth)
            elif step == "dependentSchemas" and depth + 1 < len(schema_path):
                found = _Rule("dependentSchemas", node, depth, str(schema_path[depth + 1]))
        node = _schema_child(node, step)
        if node is _NOWHERE:
            return found
    return found


def _cross_field_mistakes(error: JsonSchemaError, rule: _Rule, instance: Any) -> list[Mistake]:
    # The rule applies to the object at the start of the failing value's path.
    target_path: KeyPath = tuple(error.absolute_path)
    object_path = _object_path(error, rule)
    holder = _value_at(instance, object_path)
    triggers: list[KeyPath] = []
    if rule.kind == "dependentSchemas":
        assert rule.trigger is not None
        condition = dotted((*object_path, rule.trigger))
        triggers.append((*object_path, rule.trigger))
    else:
        condition, keys = _condition_words(rule.schema["if"], holder, negate=rule.kind == "else")
        triggers += [(*object_path, key) for key in keys]
    if error.validator == "required":
        missing = [n for n in _expected(error) if isinstance(holder, Mapping)]
        missing = [n for n in missing if n not in holder]
        target_path = (*object_path, missing[0]) if missing else target_path
        requirement = f"{dotted(target_path)} to be set"
    else:
        requirement = _requirement_words(error, target_path)
    # Point at the key that switched the rule on when the user wrote it, else at the target.
    at = triggers[0] if triggers else target_path
    return [
        Mistake(
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
                words.append(f"{key}: {show(holder.get(key) if negate else expected)}")
        elif "enum" in condition:
            actual = holder.get(key) if isinstance(holder, Mapping) else None
            words.append(f"{key}: {show(actual)}")
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
    return or_list(list(dict.fromkeys(wanted)))


def _expectation(error: JsonSchemaError, root: Mapping[str, Any] | None) -> str:
    """What one failing keyword wanted, as a noun phrase."""
    expected = _expected(error)
    if error.validator == "type":
        return _type_words(expected)
    if error.validator in _BOUND_WORDS:
        return f"{_BOUND_WORDS[str(error.validator)]} {show(expected)}"
    if error.validator == "enum":
        return "one of " + ", ".join(show(v) for v in expected)
    if error.validator == "const":
        return show(expected)
    if error.validator in ("pattern", "format") and root is not None:
        examples = _examples(root, error)
        if examples:
            return f"{_noun(root, error)} like {or_list(examples)}"
    if error.validator == "pattern":
        return f"text matching {expected}"
    return error.message


def _requirement_words(error: JsonSchemaError, target: KeyPath) -> str:
    name = dotted(target)
    expected = _expected(error)
    if error.validator == "const":
        return f"{name}: {show(expected)}"
    if error.validator == "enum":
        return f"{name} to be one of {', '.join(show(v) for v in expected)}"
    if error.validator == "not":
        return f"{name} to be left out"
    if error.validator in ("anyOf", "oneOf") and error.context:
        return f"{name} to be {_alternatives(error, None)} (it is {show(error.instance)})"
    if error.validator == "type":
        return f"{name} to be {_type_words(expected)}"
    if error.validator in _BOUND_WORDS:
        bound = f"{_BOUND_WORDS[str(error.validator)]} {show(expected)}"
        return f"{name} to be {bound} (it is {show(error.instance)})"
    return f"{name} where {error.message}"


def _described(schema: Any) -> str:
    if isinstance(schema, Mapping) and isinstance(schema.get("description"), str):
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
        candidate = resolve(candidate, root)
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
            node = pointer_target(root, ref[1:])
        node = _schema_child(node, step)
        if node is _NOWHERE:
            return name
    return name


_NOWHERE: Any = object()


def _schema_child(node: Any, step: Any) -> Any:
    """One step down a jsonschema schema path, or _NOWHERE when the path leaves the schema."""
    if isinstance(node, Mapping):
        return node.get(step)
    if isinstance(node, list) and isinstance(step, int) and step < len(node):
        return node[step]
    return _NOWHERE


def _schema_at(root: Mapping[str, Any], path: KeyPath) -> Any:
    """The schema declared for the value at `path` (properties / items), if plainly declared."""
    node: Any = resolve(root, root)
    for step in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get("items") if isinstance(step, int) else node.get("properties", {}).get(step)
        node = resolve(node, root)
    return node


def _property_schema(schema: Any, name: str, root: Mapping[str, Any]) -> Any:
    schema = resolve(schema, root)
    if isinstance(schema, Mapping):
        return resolve(schema.get("properties", {}).get(name), root)
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


def _expected(error: JsonSchemaError) -> Any:
    """The schema keyword's value: what the failed keyword expected (`Unset` only for errors
    jsonschema builds by hand, which validation never yields)."""
    return error.validator_value
