"""The [makeflux.lint] table of makeflux.toml → LintConfig."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from makeflux.errors import Problem, SettingsError
from makeflux.lint.findings import RULES

DEFAULT_ROOTS = ("kubernetes/flux",)
DEFAULT_MANIFEST_DIRS = ("kubernetes",)
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

    def is_external(self, kind: str, namespace: str, name: str) -> bool:
        return (kind, namespace, name) in self.externals


_KEYS = {
    "disable": 'rule ids to switch off, e.g. ["template-variable-unused"]',
    "externals": 'objects outside the tree, e.g. ["GitRepository flux-system/flux-system"]',
    "variables": 'post-build substitution variables, e.g. ["SECRET_DOMAIN"]',
    "roots": "files or directories holding the root Flux Kustomizations",
    "manifest_dirs": "directories holding Kubernetes manifests",
}


def lint_config(table: Mapping[str, Any], where: str = "settings") -> LintConfig:
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
    config = LintConfig(
        disabled=frozenset(disabled),
        externals=frozenset(externals),
        variables=frozenset(strings("variables")),
        roots=tuple(r.strip("/").removeprefix("./") for r in strings("roots", DEFAULT_ROOTS)),
        manifest_dirs=tuple(
            d.strip("/").removeprefix("./") for d in strings("manifest_dirs", DEFAULT_MANIFEST_DIRS)
        ),
    )
    if problems:
        raise SettingsError(problems)
    return config
