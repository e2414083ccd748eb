"""Validating the data against the schema: defaults filled in first, every error at once.

Each jsonschema error becomes one `file:line:col: key.path: what is wrong; what to do` line
(messages.py says it, locating.py places it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from makeflux.cluster_schema.defaults import apply_defaults
from makeflux.cluster_schema.reading import read_schema
from makeflux.errors import Problem, SchemaError, ValidationError, display_path
from makeflux.yamlsource import YAML_SUFFIXES, KeyPath

# Imported where used: jsonschema costs ~40 ms, and the wording and locating of mistakes are
# needed only when there are some (a warm run whose data is valid skips them).
if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError as JsonSchemaError

    from makeflux.cluster_schema.messages import Mistake
    from makeflux.data import LoadedData
    from makeflux.settings import Settings

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def _schema_to_validate(path: Path) -> tuple[dict[str, Any], str]:
    """The schema and its text, when it declares draft 2020-12 (or nothing): what validates.

    Only validation insists on the draft; `explain` and `docs` describe any schema they can read.
    """
    schema_file = read_schema(path)
    schema = schema_file.schema
    declared = schema.get("$schema", DRAFT_2020_12)
    if not isinstance(declared, str) or declared.rstrip("#") != DRAFT_2020_12:
        raise SchemaError(
            Problem(
                f"schema declares $schema {declared!r}; makeflux reads draft 2020-12 "
                f"schemas ('{DRAFT_2020_12}')",
                display_path(path),
            )
        )
    return schema, schema_file.text


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


# ── the data ─────────────────────────────────────────────────────────────────────────────────


def validate_data(settings: Settings, data: LoadedData, *, thorough: bool = False) -> None:
    """Apply the schema's defaults to `data.values`; raise ValidationError listing every error.

    `thorough` also checks the schema against the meta-schema when the data is valid.
    """
    assert settings.schema is not None
    path = settings.schema
    schema, schema_text = _schema_to_validate(path)
    problems = _empty_file_problems(data)
    try:
        defaulted = apply_defaults(schema, data.values)
    except Exception as exc:  # a malformed schema ('allOf': 5 …)
        _raise_unusable(schema, path, exc)
    instance, key_problems = json_view(data.values, ())
    verdict = (
        None
        if problems or key_problems
        else _verdict_file(settings.cache_dir, schema_text, instance)
    )
    if verdict is not None and not thorough and _recall(verdict):
        return  # this schema already accepted exactly this data
    if thorough:
        check_schema(schema, path)
    try:
        errors = _schema_errors(schema, instance)
    except RecursionError:
        from makeflux.cluster_schema.locating import Locator

        main = Locator(settings, data).main_file()
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
    from makeflux.cluster_schema.locating import Locator
    from makeflux.cluster_schema.messages import explain_errors

    locator = Locator(settings, data)
    mistakes = explain_errors(errors, schema, instance, defaulted, key_problems)
    problems += [locator.problem(mistake) for mistake in mistakes]
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


def _verdict_file(root: Path | None, schema_text: str, instance: Any) -> Path | None:
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


def json_view(
    value: Any, path: KeyPath, inside: frozenset[int] = frozenset()
) -> tuple[Any, list[Mistake]]:
    """`value` with every mapping key a string (as JSON Schema expects), a mistake per other key.

    `inside` holds the containers on the way here: a list that contains itself (`&x [*x]`)
    is reported, not followed forever.
    """
    mistakes: list[Mistake] = []
    if isinstance(value, dict | list):
        if id(value) in inside:
            from makeflux.cluster_schema.messages import self_containing

            return None, [self_containing(path)]
        inside = inside | {id(value)}
    if isinstance(value, dict):
        view: dict[str, Any] = {}
        for key, child in value.items():
            name = key
            if not isinstance(key, str):
                from makeflux.cluster_schema.messages import non_string_key
                from makeflux.cluster_schema.words import key_text

                name = key_text(key)
                mistakes.append(non_string_key(path, key))
            view[name], child_mistakes = json_view(child, (*path, name), inside)
            mistakes += child_mistakes
        return view, mistakes
    if isinstance(value, list):
        items = []
        for index, child in enumerate(value):
            item, child_mistakes = json_view(child, (*path, index), inside)
            items.append(item)
            mistakes += child_mistakes
        return items, mistakes
    return value, mistakes


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


def _json_pointer(path: Iterable[Any]) -> str:
    steps = [str(p) for p in path]
    return "/" + "/".join(steps) if steps else "the top level"
