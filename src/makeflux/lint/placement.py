"""Walk the tree as Flux would: from the root Kustomizations through spec.path and kustomize
resources, recording for every document which Flux Kustomization applies it and in which
namespace it lands. Also the reachability rule (files nothing applies)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from makeflux.lint.config import LintConfig
from makeflux.lint.findings import Finding
from makeflux.lint.kustomize import entries, kustomization_document
from makeflux.lint.rules import TreeContext, finding
from makeflux.lint.yamldocs import (
    KUSTOMIZATION_NAMES,
    YAML_SUFFIXES,
    Document,
    ParsedTree,
    join,
)

FLUX_KUSTOMIZE = "kustomize.toolkit.fluxcd.io"

# Kinds kustomize and the API server never put in a namespace.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CertificateSigningRequest",
        "CiliumBGPAdvertisement",
        "CiliumBGPClusterConfig",
        "CiliumBGPPeerConfig",
        "CiliumClusterwideEnvoyConfig",
        "CiliumClusterwideNetworkPolicy",
        "CiliumL2AnnouncementPolicy",
        "CiliumLoadBalancerIPPool",
        "ClusterExternalSecret",
        "ClusterIssuer",
        "ClusterPolicy",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterSecretStore",
        "CSIDriver",
        "CSINode",
        "CustomResourceDefinition",
        "FlowSchema",
        "GatewayClass",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
        "VolumeSnapshotClass",
    }
)

FluxId = tuple[str, str]  # (namespace, name) of a Flux Kustomization


@dataclass(frozen=True)
class Context:
    """What the enclosing builds impose on a document."""

    namespace: str | None = None  # the outermost namespace override
    override: str = ""  # who sets it: "targetNamespace of …" or "namespace: in …"
    by_target: bool = False  # True when a Flux targetNamespace sets it
    owner: FluxId | None = None  # the Flux Kustomization that applies the document


@dataclass(frozen=True)
class Placement:
    """One document as it lands in the cluster."""

    doc: Document
    namespace: str  # effective namespace, '' for cluster-scoped kinds
    context: Context
    reached: bool  # False for documents in files nothing applies
    route: tuple[str, ...] = ()  # the kustomization files that included it, outermost first

    @property
    def owner(self) -> FluxId | None:
        return self.context.owner

    @property
    def name(self) -> str:
        """metadata.name, except that kustomize's namespace: renames Namespace objects too
        (cluster-template's components rely on it with a placeholder name)."""
        if self.doc.kind == "Namespace" and self.context.namespace:
            return self.context.namespace
        return self.doc.name


@dataclass
class Placements:
    placements: list[Placement] = field(default_factory=list)
    reached_files: set[str] = field(default_factory=set)
    root_files: set[str] = field(default_factory=set)
    # Flux Kustomization → the Flux Kustomization that applies it
    parents: dict[FluxId, FluxId | None] = field(default_factory=dict)


def effective_namespace(doc: Document, context: Context) -> str:
    if doc.kind in CLUSTER_SCOPED_KINDS:
        return ""
    return context.namespace or doc.namespace or "default"


def is_flux_kustomization(doc: Document) -> bool:
    return doc.is_a(FLUX_KUSTOMIZE, "Kustomization")


def is_manifest_file(path: str, config: LintConfig) -> bool:
    """A YAML file under a manifest directory; hidden files (.sops.yaml …) are tool config."""
    if not path.endswith(YAML_SUFFIXES) or posixpath.basename(path).startswith("."):
        return False
    return any(path.startswith(d + "/") or not d for d in config.manifest_dirs)


def root_files(tree: ParsedTree, config: LintConfig) -> list[str]:
    roots = []
    for path, parsed in sorted(tree.yaml_files.items()):
        if not any(path == r or path.startswith(r + "/") for r in config.roots):
            continue
        if any(is_flux_kustomization(doc) for doc in parsed.documents):
            roots.append(path)
    return roots


def place(tree: ParsedTree, config: LintConfig) -> Placements:
    """Every document of every manifest file, placed as Flux would apply it."""
    result = Placements()
    walker = _Walker(tree, result)
    result.root_files.update(root_files(tree, config))
    for path in sorted(result.root_files):
        walker.file(path, Context())
    # Files nothing applies are still checked, with the namespace their own directory's
    # kustomization would give them, so one missing link doesn't hide every other finding.
    listed_namespace = _namespaces_of_listed_files(tree)
    for path, parsed in sorted(tree.yaml_files.items()):
        if path in result.reached_files or not is_manifest_file(path, config):
            continue
        if posixpath.basename(path) in KUSTOMIZATION_NAMES:
            continue
        namespace = listed_namespace.get(path)
        context = Context(namespace=namespace, override="namespace: in a kustomization")
        for doc in parsed.documents:
            if isinstance(doc.data, dict) and doc.kind:
                result.placements.append(
                    Placement(doc, effective_namespace(doc, context), context, reached=False)
                )
    return result


class _Walker:
    def __init__(self, tree: ParsedTree, result: Placements) -> None:
        self.tree = tree
        self.result = result
        # what is being walked right now: a kustomization that includes itself stops here
        self.active: set[tuple[str, str, Context]] = set()
        # each Flux Kustomization's path is walked once, however often the object is included
        self.walked: set[FluxId] = set()

    def file(self, path: str, context: Context, route: tuple[str, ...] = ()) -> None:
        self._once(("file", path, context), self._file, path, context, route)

    def _once(self, key: tuple[str, str, Context], walk: Callable[..., None], *args: Any) -> None:
        """walk(*args) unless the same walk is already under way further up (a cycle)."""
        if key in self.active:
            return
        self.active.add(key)
        try:
            walk(*args)
        finally:
            self.active.discard(key)

    def _file(self, path: str, context: Context, route: tuple[str, ...]) -> None:
        self.result.reached_files.add(path)
        if context.owner is not None and path in self.result.root_files:
            return  # a root Kustomization that manages itself (flux bootstrap's gotk-sync.yaml)
        parsed = self.tree.yaml_files.get(path)
        if parsed is None:
            return
        for doc in parsed.documents:
            if not isinstance(doc.data, dict) or not doc.kind:
                continue
            namespace = effective_namespace(doc, context)
            self.result.placements.append(Placement(doc, namespace, context, True, route))
            if is_flux_kustomization(doc) and doc.name:
                self.flux_kustomization(doc, namespace, context)

    def flux_kustomization(self, doc: Document, namespace: str, context: Context) -> None:
        flux_id = (namespace, doc.name)
        if flux_id in self.walked:
            return
        self.walked.add(flux_id)
        self.result.parents[flux_id] = context.owner
        spec = doc.spec
        path = spec.get("path")
        directory = join("", path) if isinstance(path, str) else ""
        target = spec.get("targetNamespace")
        inner = Context(owner=flux_id)
        if isinstance(target, str) and target:
            inner = Context(
                namespace=target,
                override=f"targetNamespace of Kustomization {namespace}/{doc.name} "
                f"({doc.path}:{doc.line_of('spec', 'targetNamespace')})",
                by_target=True,
                owner=flux_id,
            )
        self.flux_path(directory, inner)
        components = spec.get("components")
        if isinstance(components, list):
            for component in components:
                if isinstance(component, str):
                    self.kustomize_dir(join(directory, component), inner, ())

    def flux_path(self, directory: str, context: Context) -> None:
        """A Flux Kustomization's path: its kustomization.yaml, or every manifest below it."""
        if self.tree.kustomization_file(directory) is not None:
            self.kustomize_dir(directory, context, ())
            return
        for path in self._generated_resources(directory):
            if path.endswith(YAML_SUFFIXES):
                self.file(path, context, ())
            else:
                self.kustomize_dir(path, context, ())

    def _generated_resources(self, directory: str) -> Iterator[str]:
        """What kustomize-controller's generator includes: YAML files, and subdirectories with
        their own kustomization.yaml as a whole."""
        prefix = directory + "/" if directory else ""
        below = [p for p in sorted(self.tree.files) if p.startswith(prefix)]
        kustomize_dirs = sorted(
            {
                posixpath.dirname(p)
                for p in below
                if posixpath.basename(p) in KUSTOMIZATION_NAMES
                and posixpath.dirname(p) != directory
            }
        )
        # the outermost kustomize directories stand for everything below them
        outermost = [
            d
            for d in kustomize_dirs
            if not any(d.startswith(other + "/") for other in kustomize_dirs)
        ]
        yield from outermost
        for path in below:
            if not path.endswith(YAML_SUFFIXES):
                continue
            if any(path.startswith(d + "/") for d in outermost):
                continue
            yield path

    def kustomize_dir(self, directory: str, context: Context, route: tuple[str, ...]) -> None:
        self._once(("dir", directory, context), self._kustomize_dir, directory, context, route)

    def _kustomize_dir(self, directory: str, context: Context, route: tuple[str, ...]) -> None:
        kfile = self.tree.kustomization_file(directory)
        if kfile is None:
            return
        self.result.reached_files.add(kfile)
        doc = kustomization_document(self.tree, kfile)
        if doc is None:
            return
        namespace = doc.data.get("namespace")
        inner = context
        if context.namespace is None and isinstance(namespace, str) and namespace:
            inner = Context(
                namespace=namespace,
                override=f"namespace: in {kfile}:{doc.line_of('namespace')}",
                owner=context.owner,
            )
        for item in entries(doc):
            if not item.builds:
                if item.target in self.tree.files:
                    self.result.reached_files.add(item.target)
                continue
            if item.target in self.tree.files:
                self.file(item.target, inner, (*route, kfile))
            elif self.tree.kustomization_file(item.target) is not None:
                self.kustomize_dir(item.target, inner, (*route, kfile))


def _namespaces_of_listed_files(tree: ParsedTree) -> dict[str, str]:
    """File → the namespace: of a kustomization that lists it in resources."""
    found: dict[str, str] = {}
    for path in tree.files:
        if posixpath.basename(path) not in KUSTOMIZATION_NAMES:
            continue
        doc = kustomization_document(tree, path)
        namespace = doc.data.get("namespace") if doc else None
        if not doc or not isinstance(namespace, str):
            continue
        for item in entries(doc):
            if item.builds:
                found.setdefault(item.target, namespace)
    return found


def check_reachability(context: TreeContext) -> list[Finding]:
    """unreachable: manifest files that no Flux root leads to (stale or orphaned features)."""
    tree, config, placed = context.tree, context.config, context.placed
    if not placed.root_files:
        return []
    findings = []
    roots = ", ".join(config.roots)
    for path in sorted(tree.yaml_files):
        if path in placed.reached_files or not is_manifest_file(path, config):
            continue
        findings.append(
            finding(
                "unreachable",
                path,
                1,
                f"no Flux Kustomization under {roots} leads here through "
                "spec.path or kustomize resources; include it or delete it",
            )
        )
    return findings
