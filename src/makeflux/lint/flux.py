"""Flux wiring: Kustomization paths, dependsOn, sources, HelmRelease charts, removed API
versions and post-build substitution variables."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import yaml

from makeflux.lint.config import LintConfig
from makeflux.lint.findings import Finding
from makeflux.lint.placement import FLUX_KUSTOMIZE, FluxId, Placement, Placements
from makeflux.lint.rules import TreeContext, finding
from makeflux.lint.yamldocs import Document, ParsedTree, join, scalars

FLUX_SOURCE = "source.toolkit.fluxcd.io"
FLUX_HELM = "helm.toolkit.fluxcd.io"

# group → (removed versions, the version to use instead)
REMOVED_API_VERSIONS: dict[str, tuple[frozenset[str], str]] = {
    FLUX_SOURCE: (frozenset({"v1alpha1", "v1beta1", "v1beta2"}), "v1"),
    FLUX_KUSTOMIZE: (frozenset({"v1alpha1", "v1beta1", "v1beta2"}), "v1"),
    FLUX_HELM: (frozenset({"v2alpha1", "v2beta1", "v2beta2"}), "v2"),
}

ObjectKey = tuple[str, str, str]  # (kind, namespace, name)


@dataclass
class Index:
    """Every placed object by kind/namespace/name, plus the Flux Kustomization graph."""

    objects: dict[ObjectKey, list[Placement]]
    parents: dict[FluxId, FluxId | None]
    depends_on: dict[FluxId, list[FluxId]]

    def find(self, kind: str, namespace: str, name: str) -> list[Placement]:
        return self.objects.get((kind, namespace, name), [])


def build_index(placed: Placements) -> Index:
    objects: dict[ObjectKey, list[Placement]] = defaultdict(list)
    for placement in placed.placements:
        doc = placement.doc
        objects[(doc.kind, placement.namespace, placement.name)].append(placement)
    depends_on: dict[FluxId, list[FluxId]] = {}
    for placement in placed.placements:
        if placement.doc.is_a(FLUX_KUSTOMIZE, "Kustomization"):
            own = (placement.namespace, placement.doc.name)
            depends_on.setdefault(own, []).extend(
                (namespace, name) for name, namespace, _ in _dependencies(placement)
            )
    return Index(dict(objects), placed.parents, depends_on)


def _dependencies(placement: Placement) -> Iterable[tuple[str, str, int]]:
    """(name, namespace, line) of each dependsOn entry; the namespace defaults to the object's."""
    items = placement.doc.spec.get("dependsOn")
    if not isinstance(items, list):
        return
    for index, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            namespace = item.get("namespace")
            namespace = namespace if isinstance(namespace, str) and namespace else None
            yield (
                item["name"],
                namespace or placement.namespace,
                placement.doc.line_of("spec", "dependsOn", index),
            )


def check_flux(context: TreeContext) -> list[Finding]:
    """flux-* and helmrelease-*: the Flux objects' paths, sources, dependencies, API versions
    and post-build variables."""
    tree, config, placed = context.tree, context.config, context.placed
    index = build_index(placed)
    findings: list[Finding] = []
    for doc in tree.documents():
        findings.extend(_removed_api_version(doc))
    done: set[tuple[str, int, str]] = set()
    for placement in placed.placements:
        doc = placement.doc
        # A document reached twice in the same namespace is checked once.
        key = (doc.path, doc.index, placement.namespace)
        if key in done:
            continue
        done.add(key)
        if doc.is_a(FLUX_KUSTOMIZE, "Kustomization"):
            findings.extend(_kustomization(tree, config, index, placement))
            findings.extend(_substitution(tree, config, index, placed, placement))
        elif doc.is_a(FLUX_HELM, "HelmRelease"):
            findings.extend(_dependencies_resolve(index, placement, FLUX_HELM, "HelmRelease"))
            findings.extend(_helmrelease_sources(config, index, placement))
    findings.extend(_cycles(placed, index))
    return findings


def _removed_api_version(doc: Document) -> list[Finding]:
    group, _, version = doc.api_version.rpartition("/")
    removed = REMOVED_API_VERSIONS.get(group)
    if removed is None or version not in removed[0]:
        return []
    current = f"{group}/{removed[1]}"
    return [
        finding(
            "flux-api-removed",
            doc.path,
            doc.line_of("apiVersion"),
            f"{doc.kind or 'object'} uses {doc.api_version}, which Flux no longer serves; "
            f"use {current}",
        )
    ]


def _kustomization(
    tree: ParsedTree, config: LintConfig, index: Index, placement: Placement
) -> list[Finding]:
    doc = placement.doc
    findings: list[Finding] = []
    path = doc.spec.get("path")
    if isinstance(path, str):
        directory = join("", path)
        if directory.startswith("..") or not tree.is_dir(directory):
            findings.append(
                finding(
                    "flux-path-missing",
                    doc.path,
                    doc.line_of("spec", "path"),
                    f"spec.path '{path}' is not a directory in the tree "
                    "(paths are relative to the repository root)",
                )
            )
    findings.extend(_dependencies_resolve(index, placement, FLUX_KUSTOMIZE, "Kustomization"))
    source = doc.spec.get("sourceRef")
    if isinstance(source, dict) and isinstance(source.get("name"), str):
        kind = source["kind"] if isinstance(source.get("kind"), str) else "GitRepository"
        namespace = source.get("namespace") or placement.namespace
        if not index.find(kind, namespace, source["name"]) and not config.is_external(
            kind, namespace, source["name"]
        ):
            findings.append(
                finding(
                    "flux-source-missing",
                    doc.path,
                    doc.line_of("spec", "sourceRef"),
                    f"sourceRef {kind} '{source['name']}' (namespace "
                    f"{namespace}) is not in the tree; fix the name or declare "
                    f"it in lint.externals as '{kind} {namespace}/"
                    f"{source['name']}'",
                )
            )
    return findings


def _dependencies_resolve(
    index: Index, placement: Placement, group: str, kind: str
) -> list[Finding]:
    findings = []
    for name, namespace, line in _dependencies(placement):
        if not any(p.doc.group == group for p in index.find(kind, namespace, name)):
            findings.append(
                finding(
                    "flux-dependency-missing",
                    placement.doc.path,
                    line,
                    f"dependsOn '{name}' (namespace {namespace}) matches no {kind} in the tree",
                )
            )
    return findings


def _cycles(placed: Placements, index: Index) -> list[Finding]:
    """flux-dependency-cycle, reported once per cycle at the first member's dependsOn."""
    graph = index.depends_on
    findings: list[Finding] = []
    reported: set[frozenset[FluxId]] = set()
    location = {
        (p.namespace, p.doc.name): p
        for p in placed.placements
        if p.doc.is_a(FLUX_KUSTOMIZE, "Kustomization")
    }
    for start in sorted(graph):
        cycle = _find_cycle(graph, start)
        if cycle is None or frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        first = min(cycle)
        rotated = cycle[cycle.index(first) :] + cycle[: cycle.index(first)]
        shown = " → ".join(f"{ns}/{name}" for ns, name in [*rotated, first])
        placement = location[first]
        findings.append(
            finding(
                "flux-dependency-cycle",
                placement.doc.path,
                placement.doc.line_of("spec", "dependsOn"),
                f"dependsOn cycle {shown}; Flux will wait forever",
            )
        )
    return findings


def _find_cycle(graph: dict[FluxId, list[FluxId]], start: FluxId) -> list[FluxId] | None:
    """A dependsOn cycle through `start`, as the list of its members, or None."""
    stack: list[tuple[FluxId, list[FluxId]]] = [(start, [start])]
    seen: set[FluxId] = set()
    while stack:
        node, trail = stack.pop()
        for target in graph.get(node, ()):
            if target == start:
                return trail
            if target not in seen and target in graph:
                seen.add(target)
                stack.append((target, [*trail, target]))
    return None


def _applied_before(index: Index, owner: FluxId) -> set[FluxId]:
    """Flux Kustomizations that are ready before `owner` applies: its dependsOn, its
    parents, and theirs, transitively."""
    before: set[FluxId] = set()
    stack = [owner]
    while stack:
        current = stack.pop()
        following = list(index.depends_on.get(current, ()))
        parent = index.parents.get(current)
        if parent is not None:
            following.append(parent)
        for item in following:
            if item not in before:
                before.add(item)
                stack.append(item)
    return before


def _helmrelease_sources(config: LintConfig, index: Index, placement: Placement) -> list[Finding]:
    doc = placement.doc
    refs: list[tuple[dict, tuple[str, ...], tuple[str, ...]]] = []
    chart_ref = doc.spec.get("chartRef")
    if isinstance(chart_ref, dict):
        refs.append((chart_ref, ("spec", "chartRef"), ("OCIRepository", "HelmChart")))
    chart = doc.spec.get("chart")
    chart_spec = chart.get("spec") if isinstance(chart, dict) else None
    source_ref = chart_spec.get("sourceRef") if isinstance(chart_spec, dict) else None
    if isinstance(source_ref, dict):
        refs.append(
            (
                source_ref,
                ("spec", "chart", "spec", "sourceRef"),
                ("HelmRepository", "GitRepository", "Bucket"),
            )
        )
    findings: list[Finding] = []
    for ref, keys, kinds in refs:
        name = ref.get("name")
        if not isinstance(name, str):
            continue
        kind = ref.get("kind") if isinstance(ref.get("kind"), str) else kinds[0]
        namespace = ref.get("namespace") or placement.namespace
        line = doc.line_of(*keys)
        field = ".".join(keys[1:])
        if kind not in kinds:
            findings.append(
                finding(
                    "helmrelease-source-missing",
                    doc.path,
                    line,
                    f"{field} kind {kind} is not one of {', '.join(kinds)}",
                )
            )
            continue
        sources = index.find(kind, namespace, name)
        if not sources:
            if not config.is_external(kind, namespace, name):
                findings.append(
                    finding(
                        "helmrelease-source-missing",
                        doc.path,
                        line,
                        f"{field} {kind} '{name}' (namespace {namespace}) is "
                        "not in the tree; fix the name or namespace, or declare "
                        f"it in lint.externals as '{kind} {namespace}/{name}'",
                    )
                )
            continue
        owner = placement.owner
        if owner is None or any(s.owner is None or s.owner == owner for s in sources):
            continue
        before = _applied_before(index, owner)
        if not any(s.owner in before for s in sources):
            source_owner = sources[0].owner
            assert source_owner is not None
            findings.append(
                finding(
                    "helmrelease-source-dependency",
                    doc.path,
                    line,
                    f"{kind} '{name}' is applied by Kustomization {'/'.join(source_owner)}, "
                    f"but this HelmRelease's Kustomization {'/'.join(owner)} has no dependsOn "
                    f"path to it; add dependsOn '{source_owner[1]}'",
                )
            )
    return findings


# ${VAR}, with the run of dollars before it: an even number means the reference is escaped.
_REFERENCE = re.compile(r"(\$+)\{([^}]*)\}")
_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_DEFAULT_OPERATORS = (":=", ":-", "=", "-")


def _substitution(
    tree: ParsedTree, config: LintConfig, index: Index, placed: Placements, placement: Placement
) -> list[Finding]:
    """flux-substitute-undeclared, plus flux-source-missing for substituteFrom."""
    doc = placement.doc
    post_build, patched = _effective_post_build(index, placement)
    if post_build is None:
        return []
    findings: list[Finding] = []
    declared = set(config.variables)
    substitute = post_build.get("substitute")
    if isinstance(substitute, dict):
        declared.update(str(k) for k in substitute)
    sources = post_build.get("substituteFrom")
    for position, ref in enumerate(sources if isinstance(sources, list) else []):
        if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
            continue
        kind = ref["kind"] if isinstance(ref.get("kind"), str) else "ConfigMap"
        name = ref["name"]
        found = index.find(kind, placement.namespace, name)
        for source in found:
            for field in ("data", "stringData"):
                values = source.doc.data.get(field)
                if isinstance(values, dict):
                    declared.update(str(k) for k in values)
        if (
            not found
            and not patched  # written in the parent's patch, not here
            and not ref.get("optional")
            and not config.is_external(kind, placement.namespace, name)
        ):
            findings.append(
                finding(
                    "flux-source-missing",
                    doc.path,
                    doc.line_of("spec", "postBuild", "substituteFrom", position),
                    f"postBuild.substituteFrom {kind} '{name}' (namespace "
                    f"{placement.namespace}) is not in the tree; declare it in "
                    f"lint.externals as '{kind} {placement.namespace}/{name}'",
                )
            )
    own = (placement.namespace, doc.name)
    for built in placed.placements:
        if built.owner != own or _substitution_disabled(built.doc):
            continue
        for node in scalars(built.doc.node):
            if "${" not in node.value:
                continue
            for match in _REFERENCE.finditer(node.value):
                if len(match.group(1)) % 2 == 0:
                    continue  # $${VAR} is Flux's escape for a literal ${VAR}
                name_match = _NAME.match(match.group(2))
                if name_match is None:
                    continue
                name, rest = name_match.group(0), match.group(2)[name_match.end() :]
                if rest.startswith(_DEFAULT_OPERATORS) or name in declared:
                    continue
                findings.append(
                    finding(
                        "flux-substitute-undeclared",
                        built.doc.path,
                        _scalar_line(node, match.start()),
                        f"${{{name}}} has no default and Kustomization {own[0]}/{own[1]} does not "
                        f"declare it; add it to postBuild.substitute or lint.variables, or write "
                        f"${{{name}:=default}} (or $${{{name}}} for a literal)",
                    )
                )
    return findings


def _effective_post_build(index: Index, placement: Placement) -> tuple[dict | None, bool]:
    """spec.postBuild as Flux applies it: the Kustomization's own, merged with what the
    parent's spec.patches add (cluster-template gives every app Kustomization its
    substituteFrom that way). The flag says whether a patch contributed."""
    own = placement.doc.spec.get("postBuild")
    post_build = dict(own) if isinstance(own, dict) else None
    patched = False
    for patch in _parent_patches(index, placement):
        spec = patch.get("spec")
        added = spec.get("postBuild") if isinstance(spec, dict) else None
        if not isinstance(added, dict):
            continue
        merged = dict(post_build or {})
        for key, value in added.items():
            if key == "substitute" and isinstance(value, dict):
                current = merged.get(key)
                merged[key] = {**(current if isinstance(current, dict) else {}), **value}
            else:
                merged[key] = value  # lists are replaced, as a strategic merge of a CRD does
        post_build, patched = merged, True
    return post_build, patched


def _parent_patches(index: Index, placement: Placement) -> list[dict]:
    """The strategic-merge patches of the parent Kustomization that target this one."""
    parent_id = placement.owner
    if parent_id is None:
        return []
    parents = [
        p
        for p in index.find("Kustomization", *parent_id)
        if p.doc.is_a(FLUX_KUSTOMIZE, "Kustomization")
    ]
    patches = parents[0].doc.spec.get("patches") if parents else None
    found = []
    for item in patches if isinstance(patches, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("patch"), str):
            continue
        try:
            patch = yaml.safe_load(item["patch"])
        except yaml.YAMLError:
            continue
        if isinstance(patch, dict) and _targets(item.get("target"), patch, placement):
            found.append(patch)
    return found


def _targets(target: object, patch: dict, placement: Placement) -> bool:
    doc = placement.doc
    if not isinstance(target, dict):
        metadata = patch.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return patch.get("kind") == "Kustomization" and name == doc.name
    if target.get("labelSelector") or target.get("annotationSelector"):
        return False  # not evaluated: better to check too little than to guess
    wanted = {
        "group": FLUX_KUSTOMIZE,
        "kind": "Kustomization",
        "version": doc.api_version.rpartition("/")[2],
    }
    if any(k in target and target[k] != v for k, v in wanted.items()):
        return False
    for field, value in (("name", doc.name), ("namespace", placement.namespace)):
        pattern = target.get(field)
        try:
            if isinstance(pattern, str) and not re.fullmatch(pattern, value):
                return False
        except re.error:
            return False
    return True


def _substitution_disabled(doc: Document) -> bool:
    for field in ("annotations", "labels"):
        values = doc.metadata.get(field)
        if (
            isinstance(values, dict)
            and values.get("kustomize.toolkit.fluxcd.io/substitute") == "disabled"
        ):
            return True
    return False


def _scalar_line(node: yaml.ScalarNode, offset: int) -> int:
    line = node.start_mark.line + 1
    if node.style in ("|", ">"):
        # A block scalar's text starts on the line after its indicator.
        return line + 1 + node.value.count("\n", 0, offset)
    return line + node.value.count("\n", 0, offset)
