"""The schema-* rules applied: each manifest document prepared as the API server receives it,
its metadata checked, and validated against its kind's schema (see makeflux.lint.apischema).
Imported only when the tree's verdict is not in the cache."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

import yaml

from makeflux.errors import MakefluxError, Problem
from makeflux.lint.catalog import Catalog, tree_crd_schemas
from makeflux.lint.config import LintConfig
from makeflux.lint.findings import Finding
from makeflux.lint.openapi import Encrypted, Placeholder, Violation
from makeflux.lint.rules import finding
from makeflux.lint.yamldocs import Document, ParsedTree, line_of

# ${name}, ${name:=default} and ${name:-default}, as Flux's envsubst reads them.
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[=-])([^}]*))?\}")
_ENCRYPTED = re.compile(r"^ENC\[[A-Z0-9_]+,.*\]$", re.DOTALL)

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ANNOTATIONS_LIMIT = 256 * 1024
# Kinds whose names the API server checks as DNS labels rather than subdomains.
_LABEL_NAMED = {("", "Namespace"): _DNS1123_LABEL, ("", "Service"): _DNS1035_LABEL}


def check_documents(
    tree: ParsedTree,
    manifests: set[str],
    config: LintConfig,
    renamed: set[tuple[str, int]],
) -> list[Finding]:
    """schema-* findings for the documents of the manifest files; `renamed` holds the
    (path, index) of Namespace documents whose name kustomize replaces."""
    documents = [
        doc
        for path in sorted(manifests)
        if tree.yaml_files[path].error is None
        for doc in tree.yaml_files[path].documents
        if isinstance(doc.data, dict) and doc.api_version and doc.kind
    ]
    catalog = Catalog(
        config.schema_locations,
        config.kubernetes_version,
        tree_crd_schemas((doc.data, f"{doc.path}:{doc.line}") for doc in documents),
    )
    findings: list[Finding] = []
    missing: set[tuple[str, str]] = set()
    for doc in documents:
        if _skipped(doc, config):
            continue
        group, _, version = doc.api_version.rpartition("/")
        sops = "sops" in doc.data or _matches(doc.path, config.sops_patterns)
        value = prepare(doc.data, doc.node, sops=sops)
        findings.extend(_metadata(doc, value, check_name=(doc.path, doc.index) not in renamed))
        validator = catalog.validator(group, version, doc.kind)
        if validator is None:
            if (doc.api_version, doc.kind) not in missing:
                missing.add((doc.api_version, doc.kind))
                findings.append(_missing(doc))
            continue
        try:
            violations = validator.validate(value)
        except (AttributeError, TypeError, KeyError, ValueError, RecursionError) as exc:
            # Only a schema from a user catalog or a CRD in the tree can be malformed.
            raise MakefluxError(
                Problem(
                    f"the schema for {doc.kind} {doc.api_version} is not a usable OpenAPI"
                    f" schema ({type(exc).__name__}: {exc}); regenerate it with makeflux"
                    " schemas extract",
                    f"{doc.path}:{doc.line}",
                )
            ) from None
        findings.extend(_finding(doc, v) for v in violations)
    return findings


def _skipped(doc: Document, config: LintConfig) -> bool:
    return doc.kind in config.skip_kinds or f"{doc.group}/{doc.kind}" in config.skip_kinds


def _matches(path: str, patterns: Iterable[str]) -> bool:
    name = posixpath.basename(path)
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in patterns)


def _missing(doc: Document) -> Finding:
    return finding(
        "schema-missing",
        doc.path,
        doc.line_of("apiVersion"),
        f"no schema for {doc.kind} {doc.api_version}, so its documents are not checked; add"
        " its CRD to the tree or a schema_locations catalog (makeflux schemas extract), or list"
        " the kind in lint.skip_kinds",
    )


def _finding(doc: Document, violation: Violation) -> Finding:
    field_path = _field_path(violation.path) or "(document)"
    return finding(
        violation.rule,
        doc.path,
        line_of(doc.node, *violation.path),
        f"{doc.kind} {field_path}: {violation.message}",
    )


def _field_path(path: tuple[str | int, ...]) -> str:
    shown = ""
    for part in path:
        if isinstance(part, int):
            shown += f"[{part}]"
        else:
            shown += f".{part}" if shown else part
    return shown


def prepare(value: Any, node: yaml.Node | None = None, *, sops: bool = False) -> Any:
    """The value Flux would apply: defaults substituted, placeholders and ENC[...] marked.
    `node` is the value's YAML node, when known (a quoted placeholder stays a string)."""
    if isinstance(value, dict):
        children: dict[Any, yaml.Node] = {}
        if isinstance(node, yaml.MappingNode):
            children = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        return {
            _json_key(key): prepare(item, children.get(str(key)), sops=sops)
            for key, item in value.items()
            if not (sops and key == "sops")
        }
    if isinstance(value, list):
        items = node.value if isinstance(node, yaml.SequenceNode) else []
        if len(items) != len(value):
            items = [None] * len(value)
        return [prepare(item, child, sops=sops) for item, child in zip(value, items, strict=True)]
    if isinstance(value, date):
        # Kubernetes' YAML reader keeps an unquoted 2026-01-31 a string; PyYAML makes a date.
        return value.isoformat()
    if isinstance(value, str):
        if sops and _ENCRYPTED.match(value):
            return Encrypted(value)
        if "${" in value:
            quoted = isinstance(node, yaml.ScalarNode) and node.style in ("'", '"', "|", ">")
            return _substitute(value, quoted=quoted)
    return value


def _json_key(key: Any) -> Any:
    """A mapping key as JSON has it: Kubernetes' YAML reader turns 1 or true into "1", "true"."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, date):
        return key.isoformat()
    return "null" if key is None else str(key)


def _substitute(text: str, *, quoted: bool) -> Any:
    unresolved = False

    def replace(match: re.Match[str]) -> str:
        nonlocal unresolved
        if match.group(2) is None:
            unresolved = True
            return match.group(0)
        return match.group(3)

    result = _VARIABLE.sub(replace, text)
    if unresolved or "${" in result:
        return Placeholder(text)
    if _VARIABLE.fullmatch(text) and not quoted:
        # Flux substitutes in the YAML text: a plain `${N:=2}` becomes the integer 2, a quoted
        # "${N:=2}" the string "2".
        try:
            return yaml.safe_load(result)
        except yaml.YAMLError:
            return result
    return result


def _metadata(doc: Document, value: dict[str, Any], *, check_name: bool) -> list[Finding]:
    """Names, namespaces, label and annotation syntax as the API server checks them."""
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        return []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for field in ("name", "generateName") if check_name else ():
        name = metadata.get(field)
        if isinstance(name, str) and not isinstance(name, Placeholder):
            problem = _name_problem(doc, name, prefix=field == "generateName")
            if problem:
                problems.append((("metadata", field), problem))
    namespace = metadata.get("namespace")
    if (
        isinstance(namespace, str)
        and not isinstance(namespace, Placeholder)
        and (len(namespace) > 63 or not _DNS1123_LABEL.match(namespace))
    ):
        problems.append(
            (
                ("metadata", "namespace"),
                f"{namespace!r} is not a DNS-1123 label; use at most 63 lowercase letters,"
                " digits and '-', starting and ending alphanumeric",
            )
        )
    for table in ("labels", "annotations"):
        entries = metadata.get(table)
        if not isinstance(entries, dict):
            continue
        for key, item in entries.items():
            problem = _key_problem(str(key))
            if problem:
                problems.append((("metadata", table, key), f"{table[:-1]} key {key!r} {problem}"))
            if (
                table == "labels"
                and isinstance(item, str)
                and not isinstance(item, Placeholder)
                and (len(item) > 63 or not _LABEL_VALUE.match(item))
            ):
                problems.append(
                    (
                        ("metadata", table, key),
                        f"label value {item!r} is not valid; use at most 63 letters, digits,"
                        " '-', '_' and '.', starting and ending alphanumeric (or empty)",
                    )
                )
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        size = sum(len(f"{k}{v or ''}".encode()) for k, v in annotations.items())
        if size > _ANNOTATIONS_LIMIT:
            problems.append(
                (
                    ("metadata", "annotations"),
                    f"annotations total {size} bytes; the API server takes at most"
                    f" {_ANNOTATIONS_LIMIT} (256 KiB): move large data to a ConfigMap",
                )
            )
    return [
        finding(
            "schema-metadata",
            doc.path,
            line_of(doc.node, *path),
            f"{doc.kind} {_field_path(path)}: {message}",
        )
        for path, message in problems
    ]


def _name_problem(doc: Document, name: str, *, prefix: bool) -> str:
    """What the API server says about a name; a generateName prefix may end in '-'."""
    checked = name[:-1] + "a" if prefix and name.endswith("-") else name
    pattern = _LABEL_NAMED.get((doc.group, doc.kind))
    if pattern is not None:
        if len(checked) <= 63 and pattern.match(checked):
            return ""
        first = "start with a letter, " if pattern is _DNS1035_LABEL else ""
        return (
            f"{name!r} is not a valid {doc.kind} name; use at most 63 lowercase letters, digits"
            f" and '-', {first}starting and ending alphanumeric"
        )
    if len(checked) <= 253 and _DNS1123_SUBDOMAIN.match(checked):
        return ""
    return (
        f"{name!r} is not a DNS-1123 subdomain; use lowercase letters, digits, '-' and '.',"
        " starting and ending alphanumeric"
    )


def _key_problem(key: str) -> str:
    if "${" in key:
        return ""
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return "has an invalid prefix; the part before '/' must be a DNS-1123 subdomain"
    if len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            "is not valid; the name part takes at most 63 letters, digits, '-', '_' and '.',"
            " starting and ending alphanumeric"
        )
    return ""
