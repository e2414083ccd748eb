"""kustomize: what a kustomization.yaml points at, and whether each entry exists."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

from makeflux.lint.findings import Finding
from makeflux.lint.rules import TreeContext, finding
from makeflux.lint.yamldocs import KUSTOMIZATION_NAMES, Document, ParsedTree, join


@dataclass(frozen=True)
class Entry:
    """One path a kustomization names: where it points, and the line that names it."""

    field: str  # resources, components, or a support field (patches, configMapGenerator …)
    target: str  # tree path
    line: int
    written: str  # the entry as the kustomization spells it

    @property
    def builds(self) -> bool:
        """True for entries kustomize builds (resources/components), not files it just reads."""
        return self.field in ("resources", "components", "bases")


def is_remote(entry: str) -> bool:
    return "://" in entry or entry.startswith(("github.com/", "git@", "gitlab.com/"))


def kustomization_document(tree: ParsedTree, path: str) -> Document | None:
    parsed = tree.yaml_files.get(path)
    if parsed is None or not parsed.documents:
        return None
    doc = parsed.documents[0]
    return doc if isinstance(doc.data, dict) else None


def entries(doc: Document) -> Iterator[Entry]:
    """Every local path the kustomization names, resolved against its directory."""
    directory = posixpath.dirname(doc.path)
    data = doc.data

    def entry(field_name: str, value: object, *keys: str | int) -> Iterator[Entry]:
        if isinstance(value, str) and value and not is_remote(value):
            yield Entry(field_name, join(directory, value), doc.line_of(*keys), value)

    for field_name in (
        "resources",
        "components",
        "bases",
        "crds",
        "configurations",
        "transformers",
        "generators",
        "validators",
        "patchesStrategicMerge",
    ):
        items = data.get(field_name)
        if isinstance(items, list):
            for index, item in enumerate(items):
                yield from entry(field_name, item, field_name, index)
    for field_name in ("patches", "patchesJson6902", "replacements"):
        items = data.get(field_name)
        if isinstance(items, list):
            for index, item in enumerate(items):
                if isinstance(item, dict):
                    yield from entry(field_name, item.get("path"), field_name, index, "path")
    for field_name in ("configMapGenerator", "secretGenerator"):
        generators = data.get(field_name)
        if not isinstance(generators, list):
            continue
        for index, generator in enumerate(generators):
            if not isinstance(generator, dict):
                continue
            files = generator.get("files")
            if isinstance(files, list):
                for position, item in enumerate(files):
                    if isinstance(item, str):
                        # 'key=path' names the key the file becomes; the path follows '='.
                        yield from entry(
                            field_name,
                            item.rpartition("=")[2],
                            field_name,
                            index,
                            "files",
                            position,
                        )
            envs = generator.get("envs")
            if isinstance(envs, list):
                for position, item in enumerate(envs):
                    yield from entry(field_name, item, field_name, index, "envs", position)
            yield from entry(field_name, generator.get("env"), field_name, index, "env")
    helm_charts = data.get("helmCharts")
    if isinstance(helm_charts, list):
        for index, chart in enumerate(helm_charts):
            if isinstance(chart, dict):
                yield from entry(
                    "helmCharts", chart.get("valuesFile"), "helmCharts", index, "valuesFile"
                )


def check_entries(context: TreeContext) -> list[Finding]:
    """kustomize-resource-missing: every resources/components entry is a file or a kustomize dir."""
    tree = context.tree
    findings: list[Finding] = []
    for path in tree.files:
        if posixpath.basename(path) not in KUSTOMIZATION_NAMES:
            continue
        doc = kustomization_document(tree, path)
        if doc is None:
            continue
        for item in entries(doc):
            if item.target in tree.files:
                continue
            if item.builds and tree.is_dir(item.target):
                if tree.kustomization_file(item.target) is None:
                    findings.append(
                        finding(
                            "kustomize-resource-missing",
                            path,
                            item.line,
                            f"{item.field} entry '{item.written}' is a "
                            "directory without a kustomization.yaml",
                        )
                    )
                continue
            what = "file or directory" if item.builds else "file"
            findings.append(
                finding(
                    "kustomize-resource-missing",
                    path,
                    item.line,
                    f"{item.field} entry '{item.written}' names no {what} in the tree",
                )
            )
    return findings


def kustomize_inputs(tree: ParsedTree) -> set[str]:
    """Files kustomize reads but does not apply as resources: kustomization files themselves,
    and every file they name for generators, patches, Helm values …"""
    found: set[str] = set()
    for path in tree.files:
        if posixpath.basename(path) not in KUSTOMIZATION_NAMES:
            continue
        found.add(path)
        doc = kustomization_document(tree, path)
        if doc is not None:
            found.update(item.target for item in entries(doc) if not item.builds)
    return found
