"""The variables cluster.yaml may set, read from the JSON Schema: what each means, which rules
it takes part in, and which templates use it. `explain` and `docs` print this."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from makeflux.cluster_schema.reading import read_schema, resolve
from makeflux.cluster_schema.words import and_list, format_value
from makeflux.errors import Problem, SchemaError, SettingsError, display_path, kind_of
from makeflux.settings import Settings

if TYPE_CHECKING:  # jinja2 is needed only to find which templates use a variable
    import jinja2

_MISSING: Any = object()


@dataclass(frozen=True)
class Rule:
    """One cross-field rule of the schema, in words, with the variables it mentions."""

    text: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Variable:
    """One key cluster.yaml may set (nested keys are dotted: `alerting.slack.channel`)."""

    name: str
    schema: Mapping[str, Any]
    required: bool = False

    @property
    def description(self) -> str:
        return str(self.schema.get("description", "")).strip()

    @property
    def has_default(self) -> bool:
        return "default" in self.schema

    @property
    def default(self) -> Any:
        return self.schema.get("default")

    @property
    def types(self) -> set[str]:
        """The JSON types the schema declares for it (empty: any)."""
        kind = self.schema.get("type")
        if isinstance(kind, str):
            return {kind}
        if isinstance(kind, list):
            return {str(k) for k in kind}
        return set()

    @property
    def type_text(self) -> str:
        return type_text(self.schema)

    def constraints(self) -> list[str]:
        """Allowed values and limits, one short phrase each."""
        return constraint_texts(self.schema)


@dataclass(frozen=True)
class SchemaInfo:
    """The schema, its variables in schema order, and its cross-field rules."""

    path: Path
    schema: Mapping[str, Any]
    variables: dict[str, Variable] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)

    def rules_for(self, name: str) -> list[Rule]:
        return [rule for rule in self.rules if name in rule.names]


def load_schema_info(settings: Settings) -> SchemaInfo:
    """Read the settings' schema; no schema configured is a SettingsError saying how to add one."""
    if settings.schema is None:
        where = display_path(settings.source) if settings.source else None
        raise SettingsError(
            Problem(
                "no 'schema' in the settings, so makeflux knows no variables; add "
                'schema = "schemas/cluster.schema.json" to [makeflux]',
                where,
            )
        )
    path = settings.schema
    schema = read_schema(path).schema
    return SchemaInfo(
        path=path, schema=schema, variables=walk_variables(schema), rules=schema_rules(schema)
    )


def declared_variables(settings: Settings) -> dict[str, Variable]:
    """The schema's variables, or none when there is no schema or it cannot be read (the run's
    validation reports that, with its place)."""
    if settings.schema is None:
        return {}
    try:
        return load_schema_info(settings).variables
    except (SchemaError, RecursionError, AttributeError, TypeError):
        return {}


def walk_variables(root: Mapping[str, Any]) -> dict[str, Variable]:
    """Every declared property, depth first in schema order; objects' properties as dotted names."""
    found: dict[str, Variable] = {}

    def visit(node: Mapping[str, Any], prefix: str, refs_above: frozenset[Any]) -> None:
        properties = node.get("properties")
        if not isinstance(properties, Mapping):
            return
        required = set(node.get("required") or ())
        for name, sub in properties.items():
            if not isinstance(sub, Mapping):
                continue
            ref = sub["$ref"] if isinstance(sub.get("$ref"), str) else None
            sub = resolve(sub, root)
            dotted = f"{prefix}{name}"
            found[dotted] = Variable(dotted, sub, name in required)
            if ref is None or ref not in refs_above:  # a recursive definition is listed once
                visit(sub, f"{dotted}.", refs_above | {ref})

    visit(resolve(root, root), "", frozenset())
    return found


def type_text(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        text = " or ".join(str(k) for k in kind)
    elif isinstance(kind, str):
        text = kind
    elif "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        text = " or ".join(sorted({_json_type(v) for v in values}))
    else:
        variants = schema.get("anyOf") or schema.get("oneOf")
        text = " or ".join(type_text(v) for v in variants) if variants else "any"
    if text == "array" and isinstance(schema.get("items"), Mapping):
        item_type = type_text(schema["items"])
        if item_type != "any":
            text = f"list of {item_type}"
    return text


def constraint_texts(schema: Mapping[str, Any]) -> list[str]:
    texts: list[str] = []
    if "enum" in schema:
        texts.append("one of " + ", ".join(format_value(v) for v in schema["enum"]))
    if "const" in schema:
        texts.append(f"exactly {format_value(schema['const'])}")
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        texts.append(f"{format_value(low)} to {format_value(high)}")
    elif low is not None:
        texts.append(f"at least {format_value(low)}")
    elif high is not None:
        texts.append(f"at most {format_value(high)}")
    if "exclusiveMinimum" in schema:
        texts.append(f"greater than {format_value(schema['exclusiveMinimum'])}")
    if "exclusiveMaximum" in schema:
        texts.append(f"less than {format_value(schema['exclusiveMaximum'])}")
    if "multipleOf" in schema:
        texts.append(f"a multiple of {format_value(schema['multipleOf'])}")
    if "minLength" in schema and schema["minLength"] > 0:
        texts.append(f"at least {schema['minLength']} characters")
    if "maxLength" in schema:
        texts.append(f"at most {schema['maxLength']} characters")
    if "format" in schema:
        texts.append(f"format {schema['format']}")
    if "pattern" in schema and "format" not in schema:  # the format says it in words
        texts.append(f"matches {schema['pattern']}")
    if "minItems" in schema and schema["minItems"] > 0:
        texts.append(f"at least {schema['minItems']} items")
    if "maxItems" in schema:
        texts.append(f"at most {schema['maxItems']} items")
    if schema.get("uniqueItems"):
        texts.append("no duplicates")
    items = schema.get("items")
    if isinstance(items, Mapping):
        texts.extend(f"each item: {text}" for text in constraint_texts(items))
    if "examples" in schema and isinstance(schema["examples"], list) and schema["examples"]:
        texts.append("e.g. " + ", ".join(format_value(v) for v in schema["examples"][:3]))
    return texts


def schema_rules(root: Mapping[str, Any]) -> list[Rule]:
    """The schema's cross-field rules: top-level allOf if/then/else and dependentRequired."""
    rules: list[Rule] = []
    for item in root.get("allOf") or ():
        if not isinstance(item, Mapping):
            continue
        names = _mentioned(item)
        said = item.get("description") or item.get("$comment")
        if said:
            rules.append(Rule(str(said), names))
        elif "if" in item and ("then" in item or "else" in item):
            condition = _describe_keys(item["if"], demand=False)
            parts = []
            if "then" in item:
                parts.append(f"when {condition}, {_describe_keys(item['then'], demand=True)}")
            if "else" in item:
                parts.append(f"otherwise {_describe_keys(item['else'], demand=True)}")
            rules.append(Rule("; ".join(parts), names))
    for name, needed in (root.get("dependentRequired") or {}).items():
        rules.append(
            Rule(f"when {name} is set, {and_list(list(needed))} must be set too", (name, *needed))
        )
    return rules


def _mentioned(node: Any) -> tuple[str, ...]:
    names: list[str] = []
    for part in ("if", "then", "else"):
        sub = node.get(part) if isinstance(node, Mapping) else None
        if not isinstance(sub, Mapping):
            continue
        for name in (*(sub.get("properties") or {}), *(sub.get("required") or ())):
            if name not in names:
                names.append(name)
    return tuple(names)


def _describe_keys(node: Mapping[str, Any], prefix: str = "", *, demand: bool) -> str:
    """An `if` (demand=False: "a is 1 and b is set") or a `then`/`else` ("b must be set")."""
    parts = []
    properties = node.get("properties") or {}
    for name, sub in properties.items():
        parts.append(_describe_value(prefix + name, sub, demand=demand))
    for name in node.get("required") or ():
        if name not in properties:
            parts.append(f"{prefix}{name} {'must be' if demand else 'is'} set")
    if demand and isinstance(node.get("not"), Mapping):
        for name in node["not"].get("required") or ():
            parts.append(f"{prefix}{name} must not be set")
    if parts:
        return and_list(parts)
    return json.dumps(node, sort_keys=True) if demand else "always"


def _describe_value(name: str, sub: Any, *, demand: bool) -> str:
    verb = "must be" if demand else "is"
    if not isinstance(sub, Mapping):
        return f"{name} {verb} valid"
    if "const" in sub:
        return f"{name} {verb} {format_value(sub['const'])}"
    if "enum" in sub:
        return f"{name} {verb} one of " + ", ".join(format_value(v) for v in sub["enum"])
    if isinstance(sub.get("not"), Mapping) and "const" in sub["not"]:
        return f"{name} {verb} not {format_value(sub['not']['const'])}"
    if "properties" in sub or "required" in sub:  # a rule about keys inside a mapping
        return _describe_keys(sub, f"{name}.", demand=demand)
    texts = constraint_texts(sub)
    if texts:
        return f"{name} {verb} " + ", ".join(texts)
    return f"{name} {verb} {type_text(sub)}"


# kind_of's words for a JSON value, as JSON Schema's type names
_JSON_TYPE_OF_KIND = {"whole number": "integer", "mapping": "object", "list": "array"}


def _json_type(value: Any) -> str:
    kind = kind_of(value)
    return _JSON_TYPE_OF_KIND.get(kind, kind)


def lookup(values: Mapping[str, Any], dotted: str) -> Any:
    """values['a']['b'] for 'a.b', or the _MISSING sentinel (see `is_missing`)."""
    here: Any = values
    for part in dotted.split("."):
        if not isinstance(here, Mapping) or part not in here:
            return _MISSING
        here = here[part]
    return here


def is_missing(value: Any) -> bool:
    return value is _MISSING


def template_usage(
    settings: Settings, env: jinja2.Environment | None = None
) -> dict[str, list[str]]:
    """Top-level variable name → the templates (paths relative to the project) that read it."""
    from jinja2 import TemplateSyntaxError

    from makeflux import cache
    from makeflux.render import discover_sources

    env = env or parse_environment(settings)
    usage: dict[str, list[str]] = {}
    for source in discover_sources(settings, with_partials=True):
        if not source.is_template:
            continue
        try:
            text = source.path.read_text(encoding="utf-8")
            # Parsing every template is most of explain's cost: keep the names between runs.
            names = cache.memoize(
                settings.cache_dir,
                env,
                "explain-template-variables-1",
                source.name,
                text,
                functools.partial(_undeclared_names, env, text),
            )
        except (OSError, UnicodeDecodeError, TemplateSyntaxError):
            continue  # render reports these with file and line; explain only lists usage
        shown = _relative(source.path, settings.base_dir)
        for name in names:
            usage.setdefault(name, []).append(shown)
    return {name: sorted(paths) for name, paths in usage.items()}


def parse_environment(settings: Settings) -> jinja2.Environment:
    """An environment with the project's delimiters and extensions, for parsing only."""
    import jinja2

    from makeflux.environment import syntax_options

    try:
        return jinja2.Environment(extensions=list(settings.extensions), **syntax_options(settings))
    except (ImportError, AttributeError, ValueError):
        # An extension that cannot load is render's to report; parse with the syntax alone.
        return jinja2.Environment(**syntax_options(settings))


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def _undeclared_names(env: jinja2.Environment, text: str) -> list[str]:
    from jinja2 import meta

    return sorted(meta.find_undeclared_variables(env.parse(text)))
