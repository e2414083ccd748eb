"""schema-* rules: every manifest against its kind's API schema, CEL rules and metadata syntax.

What is validated is what the API server would receive after Flux's post-build substitution:
`${VAR:=default}` is replaced by its default (a whole plain value re-read as YAML, so
`replicas: ${N:=2}` is the integer 2), and a value still holding a `${VAR}` without default
passes any type and skips pattern, enum, format and CEL checks. SOPS documents are checked with
their `sops:` block removed and `ENC[...]` values accepted wherever a string is.

This module keeps the verdict between runs; makeflux.lint.validation computes it (imported only
on a cache miss, so a no-op check loads neither it nor a schema).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path

from makeflux import cache
from makeflux.lint.config import LintConfig, kubernetes_schemas_dir
from makeflux.lint.findings import Finding
from makeflux.lint.rules import TreeContext
from makeflux.lint.yamldocs import ParsedTree


def check_schemas(context: TreeContext) -> list[Finding]:
    """schema-* findings for every document of the manifest files."""
    tree, manifests, config = context.tree, context.manifests, context.config
    # kustomize's namespace: renames Namespace objects (cluster-template's components ship a
    # placeholder 'Namespace _'), so their own name is not what the API server sees.
    renamed = {
        (p.doc.path, p.doc.index)
        for p in context.placed.placements
        if p.doc.kind == "Namespace" and p.context.namespace
    }
    # The verdict depends only on the manifests, the settings and the schemas: a tree that did
    # not change (a no-op check) reuses the last one without loading a schema.
    name, checksum = _verdict_key(tree, manifests, config, renamed)
    stored = cache.remember(
        config.cache_dir,
        "lint-schemas",
        _VERDICT_KIND,
        name,
        checksum,
        lambda: [asdict(f) for f in _judge(tree, manifests, config, renamed)],
    )
    return [Finding(**item) for item in stored]


_VERDICT_KIND = "lint-schema-verdict-1"
_HERE = Path(__file__).parent
_VALIDATOR_FILES = (
    "apischema.py",
    "rules.py",  # the rules' severities
    "validation.py",
    "catalog.py",
    "openapi.py",
    "cel.py",
    "schemas/SOURCES.json",
)


def _verdict_key(
    tree: ParsedTree, manifests: set[str], config: LintConfig, renamed: set[tuple[str, int]]
) -> tuple[str, str]:
    settings = repr(
        (
            config.kubernetes_version,
            sorted(config.skip_kinds),
            config.sops_patterns,
            [str(p) for p in config.schema_locations],
            sorted(renamed),
        )
    )
    paths = sorted(manifests)
    name = hashlib.sha256("\0".join([settings, *paths]).encode()).hexdigest()
    digest = hashlib.sha256(settings.encode())
    for path in paths:
        digest.update(path.encode() + b"\0" + tree.files[path] + b"\0")
    # Schemas and the code that applies them, by size and mtime (cheap, changes on any edit).
    sources = [_HERE / f for f in _VALIDATOR_FILES]
    k8s = kubernetes_schemas_dir(config.kubernetes_version)
    if k8s is not None:
        sources.append(k8s / "_definitions.json")
    for location in config.schema_locations:
        for directory, _subdirs, names in os.walk(location):
            sources.extend(Path(directory, n) for n in sorted(names))
    for source in sources:
        try:
            stat = source.stat()
        except OSError:
            continue
        digest.update(f"{source}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return name, digest.hexdigest()


def _judge(
    tree: ParsedTree, manifests: set[str], config: LintConfig, renamed: set[tuple[str, int]]
) -> list[Finding]:
    from makeflux.lint.validation import check_documents  # only when no verdict is kept

    return check_documents(tree, manifests, config, renamed)
