"""Effective namespaces: two objects that collapse into one, and namespaces silently replaced."""

from __future__ import annotations

from makeflux.lint.findings import ERROR, WARNING, Finding
from makeflux.lint.placement import Placement, Placements


def check_namespaces(placed: Placements) -> list[Finding]:
    findings: list[Finding] = []
    first_seen: dict[tuple[str, str, str, str], Placement] = {}
    for placement in sorted(placed.placements, key=_order):
        if not placement.reached:
            continue
        doc = placement.doc
        if not doc.name:
            continue
        key = (doc.group, doc.kind, placement.namespace, doc.name)
        first = first_seen.setdefault(key, placement)
        same_document = (first.doc.path, first.doc.index) == (doc.path, doc.index)
        if first is not placement and same_document and first.owner != placement.owner:
            findings.append(
                Finding(
                    doc.path,
                    doc.line_of("metadata", "name"),
                    ERROR,
                    "namespace-duplicate",
                    f"{doc.kind} '{doc.name}' is applied by two Flux Kustomizations, "
                    f"{_owner(first)} and {_owner(placement)}; their paths overlap, so keep "
                    "it under only one of them",
                )
            )
        elif first is not placement and not same_document:
            where = f"namespace {placement.namespace}" if placement.namespace else "cluster-wide"
            findings.append(
                Finding(
                    doc.path,
                    doc.line_of("metadata", "name"),
                    ERROR,
                    "namespace-duplicate",
                    f"{doc.kind} '{doc.name}' ({where}) is also defined at "
                    f"{first.doc.path}:{first.doc.line_of('metadata', 'name')}; "
                    "the two collapse into one object in the cluster",
                )
            )
        explicit = doc.namespace
        context = placement.context
        if (
            context.by_target
            and explicit
            and placement.namespace
            and explicit != placement.namespace
        ):
            findings.append(
                Finding(
                    doc.path,
                    doc.line_of("metadata", "namespace"),
                    WARNING,
                    "namespace-overridden",
                    f"namespace '{explicit}' is replaced by '{placement.namespace}' from "
                    f"{context.override}; remove it or make them agree",
                )
            )
    return findings


def _order(placement: Placement) -> tuple[str, int]:
    return placement.doc.path, placement.doc.index


def _owner(placement: Placement) -> str:
    return "/".join(placement.owner) if placement.owner else "the bootstrap"
