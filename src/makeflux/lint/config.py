"""The [makeflux.lint] table of makeflux.toml → LintConfig."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from makeflux.errors import Problem, SettingsError
from makeflux.lint.rules import RULES
from makeflux.settings import DEFAULT_REWRITTEN_PATTERNS, _default_cache_dir

DEFAULT_ROOTS = ("kubernetes/flux",)
DEFAULT_MANIFEST_DIRS = ("kubernetes",)
DEFAULT_KUBERNETES_VERSION = "1.35"
# The GitRepository `flux bootstrap` creates in the cluster, never in the tree: every Flux
# repository relies on it. Nothing else is assumed to exist.
DEFAULT_EXTERNALS = ("GitRepository flux-system/flux-system",)


@dataclass(frozen=True)
class LintConfig:
    """What the project tells lint: rules to skip, objects that live outside the tree, roots."""

    disabled: frozenset[str] = frozenset()
    # (kind, namespace, name) of objects that exist in the cluster but not in the tree
    externals: frozenset[tuple[str, str, str]] = frozenset(
        {("GitRepository", "flux-system", "flux-system")}
    )
    # post-build substitution variables provided from outside (e.g. by a Secret's keys)
    variables: frozenset[str] = frozenset()
    # files or directories whose Flux Kustomizations are applied by bootstrap
    roots: tuple[str, ...] = DEFAULT_ROOTS
    # directories whose YAML files are Kubernetes manifests (reachability, required fields)
    manifest_dirs: tuple[str, ...] = DEFAULT_MANIFEST_DIRS
    # user schema catalogs ({group}/{kind}_{version}.json), searched before the built-in one
    schema_locations: tuple[Path, ...] = ()
    # the Kubernetes release whose schemas check core kinds
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    # kinds ("Kind" or "group/Kind") the schema rules leave alone
    skip_kinds: frozenset[str] = frozenset()
    # file names whose documents are SOPS-encrypted (settings' rewritten_patterns)
    sops_patterns: tuple[str, ...] = DEFAULT_REWRITTEN_PATTERNS
    # where lint keeps what it learned (Settings.cache_dir); None: nothing kept. Not a lint
    # setting: left out of comparisons and repr.
    cache_dir: Path | None = field(default_factory=_default_cache_dir, repr=False, compare=False)

    def is_external(self, kind: str, namespace: str, name: str) -> bool:
        return (kind, namespace, name) in self.externals


_KEYS = {
    "disable": 'rule ids to switch off, e.g. ["template-variable-unused"]',
    "externals": 'objects outside the tree, e.g. ["GitRepository flux-system/flux-system"]',
    "variables": 'post-build substitution variables, e.g. ["SECRET_DOMAIN"]',
    "roots": "files or directories holding the root Flux Kustomizations",
    "manifest_dirs": "directories holding Kubernetes manifests",
    "schema_locations": 'schema catalog directories, e.g. ["schemas/crds"]',
    "kubernetes_version": 'the Kubernetes release for core kinds, e.g. "1.35"',
    "skip_kinds": 'kinds the schema rules skip, e.g. ["VMRule"]',
}


def lint_config(
    table: Mapping[str, Any],
    where: str = "settings",
    base_dir: Path | None = None,
    sops_patterns: tuple[str, ...] = DEFAULT_REWRITTEN_PATTERNS,
) -> LintConfig:
    """Read and check the lint table; every problem is reported, then SettingsError is raised."""
    problems: list[Problem] = []

    def strings(key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = table.get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(Problem(f"'lint.{key}' must be a list of strings: {_KEYS[key]}", where))
            return default
        return tuple(value)

    for key in table:
        if key not in _KEYS:
            problems.append(
                Problem(
                    f"unknown key '{key}' in [makeflux.lint]; known keys: {', '.join(_KEYS)}", where
                )
            )
    disabled = strings("disable")  # read once: a bad value is one problem, said once
    for rule in disabled:
        if rule not in RULES:
            problems.append(
                Problem(
                    f"'lint.disable' names unknown rule {rule!r}; known rules: {', '.join(RULES)}",
                    where,
                )
            )
    externals: set[tuple[str, str, str]] = set()
    for text in strings("externals", DEFAULT_EXTERNALS):
        kind, _, ref = text.strip().partition(" ")
        namespace, slash, name = ref.strip().partition("/")
        if not kind or not slash or not namespace or not name or " " in name:
            problems.append(
                Problem(
                    f"'lint.externals' entry {text!r} is not 'Kind namespace/name',"
                    " e.g. 'GitRepository flux-system/flux-system'",
                    where,
                )
            )
            continue
        externals.add((kind, namespace, name))
    kubernetes_version = table.get("kubernetes_version", DEFAULT_KUBERNETES_VERSION)
    known_versions = kubernetes_versions() if "kubernetes_version" in table else []
    if not isinstance(kubernetes_version, str) or (
        known_versions and kubernetes_version not in known_versions
    ):
        problems.append(
            Problem(
                f"'lint.kubernetes_version' {kubernetes_version!r} has no schemas; known:"
                f" {', '.join(known_versions) or 'none (install kubernetes-validate)'}",
                where,
            )
        )
        kubernetes_version = DEFAULT_KUBERNETES_VERSION
    locations = tuple((base_dir or Path.cwd()) / p for p in strings("schema_locations"))
    for location in locations:
        if not location.is_dir():
            problems.append(
                Problem(
                    f"'lint.schema_locations' directory '{location}' does not exist; create it"
                    " (makeflux schemas extract CRD.yaml -d DIR) or remove it",
                    where,
                )
            )
    config = LintConfig(
        disabled=frozenset(disabled),
        externals=frozenset(externals),
        variables=frozenset(strings("variables")),
        roots=tuple(r.strip("/").removeprefix("./") for r in strings("roots", DEFAULT_ROOTS)),
        manifest_dirs=tuple(
            d.strip("/").removeprefix("./") for d in strings("manifest_dirs", DEFAULT_MANIFEST_DIRS)
        ),
        schema_locations=locations,
        kubernetes_version=kubernetes_version,
        skip_kinds=frozenset(strings("skip_kinds")),
        sops_patterns=sops_patterns,
    )
    if problems:
        raise SettingsError(problems)
    return config


@cache
def kubernetes_schemas_dir(version: str) -> Path | None:
    """kubernetes-validate's strict schemas for a Kubernetes release, if installed."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
    directory = base / f"v{version}.0-local-strict"
    return directory if directory.is_dir() else None


def kubernetes_versions() -> list[str]:
    """The Kubernetes releases kubernetes-validate has schemas for, oldest first."""
    base = kubernetes_schemas_dir(DEFAULT_KUBERNETES_VERSION)
    if base is None:
        return []
    names = (p.name for p in base.parent.glob("v*-local-strict"))
    return sorted(
        (n[1:].split(".0-local")[0] for n in names), key=lambda v: tuple(map(int, v.split(".")))
    )
