"""Effective namespaces: two objects that collapse into one, and namespaces silently replaced."""

from __future__ import annotations

from makeflux.lint.findings import Finding
from makeflux.lint.placement import Placement
from makeflux.lint.rules import TreeContext, finding


def check_namespaces(context: TreeContext) -> list[Finding]:
    """namespace-duplicate and namespace-overridden, for every object a Flux root reaches."""
    placed = context.placed
    findings: list[Finding] = []
    first_seen: dict[tuple[str, str, str, str], Placement] = {}
    for placement in sorted(placed.placements, key=_order):
        if not placement.reached:
            continue
        doc = placement.doc
        if not placement.name:
            continue
        key = (doc.group, doc.kind, placement.namespace, placement.name)
        first = first_seen.setdefault(key, placement)
        if first is not placement:
            findings.append(_duplicate(first, placement))
        explicit = doc.namespace
        # where the namespace comes from (kustomize namespace:, Flux targetNamespace)
        namespacing = placement.context
        if (
            namespacing.by_target
            and explicit
            and placement.namespace
            and explicit != placement.namespace
        ):
            findings.append(
                finding(
                    "namespace-overridden",
                    doc.path,
                    doc.line_of("metadata", "namespace"),
                    f"namespace '{explicit}' is replaced by '{placement.namespace}' from "
                    f"{namespacing.override}; remove it or make them agree",
                )
            )
    return findings


def _order(placement: Placement) -> tuple[str, int]:
    return placement.doc.path, placement.doc.index


def _duplicate(first: Placement, again: Placement) -> Finding:
    doc = again.doc
    shown = f"{doc.kind} '{again.name}'"
    if (first.doc.path, first.doc.index) != (doc.path, doc.index):
        where = f"namespace {again.namespace}" if again.namespace else "cluster-wide"
        message = (
            f"{shown} ({where}) is also defined at "
            f"{first.doc.path}:{first.doc.line_of('metadata', 'name')}; "
            "the two collapse into one object in the cluster"
        )
    elif first.owner != again.owner:
        message = (
            f"{shown} is applied by two Flux Kustomizations, {_owner(first)} and "
            f"{_owner(again)}; their paths overlap, so keep it under only one of them"
        )
    else:
        routes = zip(first.route, again.route, strict=False)
        common = next((i for i, (a, b) in enumerate(routes) if a != b), 0)
        first_route, again_route = first.route[common:], again.route[common:]
        message = (
            f"{shown} ends up twice in the build of Kustomization {_owner(again)}, through "
            f"{_route(first_route)} and {_route(again_route)}; kustomize rejects the duplicate"
        )
    return finding("namespace-duplicate", doc.path, doc.line_of("metadata", "name"), message)


def _owner(placement: Placement) -> str:
    return "/".join(placement.owner) if placement.owner else "the bootstrap"


def _route(route: tuple[str, ...]) -> str:
    """Where two routes part: the first kustomization that differs."""
    return route[0] if route else "its spec.path"
