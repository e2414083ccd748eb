"""Parse every YAML file of a tree once, keeping node positions for line numbers; YAML rules."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from makeflux.lint.findings import Finding
from makeflux.lint.rules import TreeContext, finding
from makeflux.yamlsource import YAML_SUFFIXES, repeated_keys

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class _LintLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader, recording every duplicate key instead of silently keeping the last."""

    duplicates: list[tuple[str, int, int]]


def _construct_mapping(loader: _LintLoader, node: yaml.MappingNode, deep: bool = False):
    for key, key_node, first in repeated_keys(loader, node, deep):
        loader.duplicates.append((str(key), key_node.start_mark.line + 1, first))
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=deep)


_LintLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass
class Document:
    """One YAML document: its Python value and its node tree (for line numbers)."""

    path: str
    index: int
    data: Any
    node: yaml.Node

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    @property
    def api_version(self) -> str:
        value = self.data.get("apiVersion") if isinstance(self.data, dict) else None
        return value if isinstance(value, str) else ""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def kind(self) -> str:
        value = self.data.get("kind") if isinstance(self.data, dict) else None
        return value if isinstance(value, str) else ""

    @property
    def metadata(self) -> dict[str, Any]:
        value = self.data.get("metadata") if isinstance(self.data, dict) else None
        return value if isinstance(value, dict) else {}

    @property
    def name(self) -> str:
        value = self.metadata.get("name")
        return value if isinstance(value, str) else ""

    @property
    def namespace(self) -> str | None:
        value = self.metadata.get("namespace")
        return value if isinstance(value, str) and value else None

    @property
    def spec(self) -> dict[str, Any]:
        value = self.data.get("spec") if isinstance(self.data, dict) else None
        return value if isinstance(value, dict) else {}

    def is_a(self, group: str, kind: str) -> bool:
        return self.kind == kind and self.group == group

    def line_of(self, *keys: str | int) -> int:
        """The line of the deepest existing node along `keys` (mapping keys or list indices)."""
        return line_of(self.node, *keys)


@dataclass
class ParsedFile:
    path: str
    text: str
    documents: list[Document] = field(default_factory=list)
    error: Finding | None = None
    duplicates: list[tuple[str, int, int]] = field(default_factory=list)


@dataclass
class ParsedTree:
    """Every file of the tree (path → bytes) and every YAML file parsed once."""

    files: Mapping[str, bytes]
    yaml_files: dict[str, ParsedFile]
    directories: set[str]

    def documents(self) -> Iterator[Document]:
        for parsed in self.yaml_files.values():
            yield from parsed.documents

    def is_dir(self, path: str) -> bool:
        return path in self.directories

    def kustomization_file(self, directory: str) -> str | None:
        for name in KUSTOMIZATION_NAMES:
            candidate = join(directory, name)
            if candidate in self.files:
                return candidate
        return None


def join(directory: str, relative: str) -> str:
    """A tree path: `relative` resolved against `directory`, normalised, '' for the root."""
    joined = posixpath.normpath(posixpath.join(directory, relative))
    return "" if joined == "." else joined


def parse_file(path: str, content: bytes) -> ParsedFile:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return ParsedFile(
            path,
            "",
            error=finding("yaml-invalid", path, 1, "not UTF-8 text; save the file as UTF-8"),
        )
    parsed = ParsedFile(path, text)
    loader = _LintLoader(text)
    loader.duplicates = []
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            parsed.documents.append(Document(path, index, data, node))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        message = (exc.problem or str(exc)).strip()
        if exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
            message += f" ({exc.context} started at line {exc.context_mark.line + 1})"
        parsed.error = finding("yaml-invalid", path, line, f"invalid YAML: {message}")
    except yaml.YAMLError as exc:
        parsed.error = finding("yaml-invalid", path, 1, f"invalid YAML: {exc}")
    finally:
        loader.dispose()
    parsed.duplicates = loader.duplicates
    return parsed


def parse_tree(files: Mapping[str, bytes]) -> ParsedTree:
    yaml_files = {
        path: parse_file(path, content)
        for path, content in files.items()
        if path.endswith(YAML_SUFFIXES) or posixpath.basename(path) == "Kustomization"
    }
    directories = {""}
    for path in files:
        parent = posixpath.dirname(path)
        while parent not in directories:
            directories.add(parent)
            parent = posixpath.dirname(parent)
    return ParsedTree(files=files, yaml_files=yaml_files, directories=directories)


def line_of(node: yaml.Node, *keys: str | int) -> int:
    line = node.start_mark.line + 1
    for key in keys:
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if key >= len(node.value):
                return line
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def scalars(node: yaml.Node) -> Iterator[yaml.ScalarNode]:
    """Every scalar node below `node` (keys and values)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.ScalarNode):
            yield current
        elif isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                stack.append(key_node)
                stack.append(value_node)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def check_yaml(context: TreeContext) -> list[Finding]:
    """yaml-invalid, yaml-duplicate-key, and k8s-missing-field for documents in manifest files."""
    tree, manifest_files = context.tree, context.manifests
    findings: list[Finding] = []
    for parsed in tree.yaml_files.values():
        if parsed.error is not None:
            findings.append(parsed.error)
        for key, line, first in parsed.duplicates:
            findings.append(
                finding(
                    "yaml-duplicate-key",
                    parsed.path,
                    line,
                    f"duplicate key '{key}' (first at line {first}); remove one of them",
                )
            )
        if parsed.path not in manifest_files:
            continue
        for doc in parsed.documents:
            findings.extend(_missing_fields(doc))
    return findings


def _missing_fields(doc: Document) -> list[Finding]:
    if doc.data is None:
        return []
    if not isinstance(doc.data, dict):
        return [
            finding(
                "k8s-missing-field",
                doc.path,
                doc.line,
                "document is not a mapping; a Kubernetes manifest needs "
                "apiVersion, kind and metadata.name",
            )
        ]
    missing = [key for key in ("apiVersion", "kind") if not isinstance(doc.data.get(key), str)]
    if not doc.name and "generateName" not in doc.metadata:
        missing.append("metadata.name")
    if not missing:
        return []
    return [
        finding(
            "k8s-missing-field",
            doc.path,
            doc.line,
            f"document has no {', '.join(missing)}; every Kubernetes manifest needs "
            "apiVersion, kind and metadata.name",
        )
    ]
