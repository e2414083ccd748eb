"""Every Flux reference in every rendered flag combination resolves inside the tree, and every
rendered file is reachable from kubernetes/flux/cluster/ks.yaml the way Flux itself walks it.

These checks are written here on purpose, independently of makeflux's lint module: they are the
proof the template pack is right, so they must not share a bug with the code they judge.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.pack import all_valid_combinations, cached_render, combination_id

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: much faster
ROOT_KUSTOMIZATION = "kubernetes/flux/cluster/ks.yaml"
# What Flux bootstrap and the user provide outside the rendered tree: (kind, namespace, name).
EXTERNAL_OBJECTS = {
    ("GitRepository", "flux-system", "flux-system"),
    ("Secret", "flux-system", "cluster-secrets"),
}
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
FLUX_KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/"
FLUX_HELM_API = "helm.toolkit.fluxcd.io/"
FLUX_SOURCE_API = "source.toolkit.fluxcd.io/"


@dataclass(frozen=True)
class Applied:
    """One Kubernetes object as Flux would apply it: where it came from and who applies it."""

    kind: str
    api_version: str
    namespace: str | None
    name: str
    doc: dict[str, Any] = field(hash=False, compare=False)
    file: str
    # (namespace, name) of the Flux Kustomization that applies it; None: applied at bootstrap
    owner: tuple[str | None, str] | None

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.kind, self.namespace, self.name)

    def where(self) -> str:
        return f"{self.file}: {self.kind} {self.namespace}/{self.name}"


@dataclass
class FluxWalk:
    """What walking the tree from the root Kustomization found."""

    reached: set[str] = field(default_factory=set)  # tree-relative file paths
    objects: list[Applied] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    docs = yaml.load_all(path.read_text(), Loader=SafeLoader)
    return [doc for doc in docs if isinstance(doc, dict)]


def kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def is_remote(entry: str) -> bool:
    return "://" in entry or entry.startswith(("github.com/", "git@"))


def walk_flux(tree: Path) -> FluxWalk:
    """Follow Flux from the root ks.yaml: every Flux Kustomization's spec.path, kustomize
    resources, and Flux's own generator for a path without kustomization.yaml."""
    walk = FluxWalk()
    seen: set[tuple[str, str | None, Any]] = set()

    def relative(path: Path) -> str:
        return path.relative_to(tree).as_posix()

    def apply_file(path: Path, namespace: str | None, owner: tuple[str | None, str] | None) -> None:
        if ("file", relative(path), namespace, owner) in seen:
            return
        seen.add(("file", relative(path), namespace, owner))
        walk.reached.add(relative(path))
        for doc in yaml_documents(path):
            meta = doc.get("metadata") or {}
            obj = Applied(
                kind=str(doc.get("kind")),
                api_version=str(doc.get("apiVersion")),
                namespace=namespace or meta.get("namespace"),
                name=str(meta.get("name")),
                doc=doc,
                file=relative(path),
                owner=owner,
            )
            walk.objects.append(obj)
            if obj.api_version.startswith(FLUX_KUSTOMIZE_API) and obj.kind == "Kustomization":
                follow_flux_path(obj)

    def follow_flux_path(ks: Applied) -> None:
        spec = ks.doc.get("spec") or {}
        source = spec.get("sourceRef") or {}
        namespace = source.get("namespace") or ks.namespace
        if (source.get("kind"), namespace, source.get("name")) != (
            "GitRepository",
            "flux-system",
            "flux-system",
        ):
            return  # another repository: its path is not in this tree
        path = str(spec.get("path", ""))
        target = (tree / path).resolve()
        if not target.is_dir() or not target.is_relative_to(tree.resolve()):
            walk.problems.append(f"{ks.where()}: spec.path {path!r} is not a directory in the tree")
            return
        apply_path(target, spec.get("targetNamespace"), (ks.namespace, ks.name))

    def apply_path(directory: Path, namespace: str | None, owner: tuple[str | None, str]) -> None:
        """A Flux spec.path: its kustomization.yaml, or what Flux generates when there is none."""
        if kustomization_file(directory):
            build_kustomization(directory, namespace, owner)
            return
        for path in sorted(directory.iterdir()):
            if path.is_dir():
                apply_path(path, namespace, owner)
            elif path.suffix in (".yaml", ".yml"):
                apply_file(path, namespace, owner)

    def build_kustomization(
        directory: Path, namespace: str | None, owner: tuple[str | None, str] | None
    ) -> None:
        kfile = kustomization_file(directory)
        assert kfile is not None
        if ("dir", relative(directory), namespace, owner) in seen:
            return
        seen.add(("dir", relative(directory), namespace, owner))
        walk.reached.add(relative(kfile))
        kustomization = yaml.load(kfile.read_text(), Loader=SafeLoader) or {}
        # An outer kustomization's namespace wins over an inner one's.
        effective = namespace or kustomization.get("namespace")
        for entry in [*kustomization.get("resources", []), *kustomization.get("components", [])]:
            if is_remote(entry):
                continue
            target = directory / entry
            if target.is_dir() and kustomization_file(target):
                build_kustomization(target.resolve(), effective, owner)
            elif target.is_file():
                apply_file(target.resolve(), effective, owner)
            else:
                walk.problems.append(f"{relative(kfile)}: resource {entry!r} does not exist")
        for entry in kustomization_file_refs(kustomization):
            target = directory / entry
            if target.is_file():
                walk.reached.add(relative(target.resolve()))
            else:
                walk.problems.append(f"{relative(kfile)}: file {entry!r} does not exist")

    root = tree / ROOT_KUSTOMIZATION
    if not root.is_file():
        walk.problems.append(f"{ROOT_KUSTOMIZATION} was not rendered")
        return walk
    apply_file(root, None, None)
    return walk


def kustomization_file_refs(kustomization: dict[str, Any]) -> Iterator[str]:
    """Plain files a kustomization.yaml reads besides resources: patches and generator inputs."""
    for patch in kustomization.get("patches", []) or []:
        if isinstance(patch, dict) and patch.get("path"):
            yield patch["path"]
    for patch in kustomization.get("patchesStrategicMerge", []) or []:
        if isinstance(patch, str) and "\n" not in patch:
            yield patch
    for generator in [
        *(kustomization.get("configMapGenerator") or []),
        *(kustomization.get("secretGenerator") or []),
    ]:
        for entry in generator.get("files", []) or []:
            yield entry.split("=", 1)[-1]
        yield from generator.get("envs", []) or []
        if generator.get("env"):
            yield generator["env"]


def reference_problems(walk: FluxWalk) -> list[str]:
    """Every dependsOn, sourceRef, chartRef, substituteFrom and valuesFrom names a real object, and
    no HelmRelease uses a source another Flux Kustomization applies without depending on it."""
    problems: list[str] = []
    index: dict[tuple[str, str | None, str], Applied] = {}
    flux_kustomizations: dict[tuple[str | None, str], Applied] = {}
    for obj in walk.objects:
        if obj.kind == "Kustomization" and not obj.api_version.startswith(FLUX_KUSTOMIZE_API):
            continue
        if obj.key in index:
            problems.append(f"{obj.where()}: also defined in {index[obj.key].file}")
        index[obj.key] = obj
        is_flux = obj.api_version.startswith((FLUX_KUSTOMIZE_API, FLUX_HELM_API, FLUX_SOURCE_API))
        if is_flux and not obj.namespace:
            problems.append(f"{obj.where()}: has no namespace")
        if obj.kind == "Kustomization":
            flux_kustomizations[(obj.namespace, obj.name)] = obj

    def resolve(obj: Applied, ref: Any, what: str, kind: str | None = None) -> Applied | None:
        if not isinstance(ref, dict) or not ref.get("name"):
            problems.append(f"{obj.where()}: {what} has no name")
            return None
        key = (kind or ref.get("kind"), ref.get("namespace") or obj.namespace, ref["name"])
        if key in index:
            return index[key]
        if key not in EXTERNAL_OBJECTS and not ref.get("optional"):
            problems.append(f"{obj.where()}: {what} {key[0]} {key[1]}/{key[2]} is not in the tree")
        return None

    def depends_on(owner: tuple[str | None, str], other: tuple[str | None, str]) -> bool:
        """Does Flux Kustomization `owner` wait for `other`, directly or through others?"""
        pending, visited = [owner], set()
        while pending:
            current = pending.pop()
            if current == other:
                return True
            if current in visited or current not in flux_kustomizations:
                continue
            visited.add(current)
            ks = flux_kustomizations[current]
            for dep in (ks.doc.get("spec") or {}).get("dependsOn") or []:
                pending.append((dep.get("namespace") or ks.namespace, dep.get("name")))
        return False

    for obj in walk.objects:
        spec = obj.doc.get("spec") or {}
        if obj.api_version.startswith(FLUX_KUSTOMIZE_API) and obj.kind == "Kustomization":
            resolve(obj, spec.get("sourceRef"), "sourceRef")
            for dep in spec.get("dependsOn") or []:
                resolve(obj, dep, "dependsOn", kind="Kustomization")
            for ref in (spec.get("postBuild") or {}).get("substituteFrom") or []:
                resolve(obj, {**ref, "namespace": obj.namespace}, "substituteFrom")
            if depends_on_cycle(obj, flux_kustomizations):
                problems.append(f"{obj.where()}: dependsOn forms a cycle")
        elif obj.api_version.startswith(FLUX_HELM_API) and obj.kind == "HelmRelease":
            chart_spec = (spec.get("chart") or {}).get("spec")
            if chart_spec is None and spec.get("chartRef") is None:
                problems.append(f"{obj.where()}: has neither chart nor chartRef")
            source = None
            if chart_spec is not None:
                source = resolve(obj, chart_spec.get("sourceRef"), "chart.spec.sourceRef")
            if spec.get("chartRef") is not None:
                source = resolve(obj, spec["chartRef"], "chartRef")
            for dep in spec.get("dependsOn") or []:
                resolve(obj, dep, "dependsOn", kind="HelmRelease")
            for ref in spec.get("valuesFrom") or []:
                resolve(obj, {**ref, "namespace": obj.namespace}, "valuesFrom")
            if (
                source is not None
                and source.owner
                and obj.owner
                and source.owner != obj.owner
                and not depends_on(obj.owner, source.owner)
            ):
                problems.append(
                    f"{obj.where()}: uses {source.kind} {source.namespace}/{source.name}, which "
                    f"Flux Kustomization {source.owner[1]} applies, without a dependsOn on it"
                )
        elif obj.api_version.startswith(FLUX_SOURCE_API) and spec.get("secretRef"):
            resolve(obj, {**spec["secretRef"], "kind": "Secret"}, "secretRef")
    return problems


def depends_on_cycle(
    start: Applied, flux_kustomizations: dict[tuple[str | None, str], Applied]
) -> bool:
    origin = (start.namespace, start.name)
    pending = [origin]
    visited: set[tuple[str | None, str]] = set()
    while pending:
        current = pending.pop()
        ks = flux_kustomizations.get(current)
        if ks is None or current in visited:
            continue
        visited.add(current)
        for dep in (ks.doc.get("spec") or {}).get("dependsOn") or []:
            target = (dep.get("namespace") or ks.namespace, dep.get("name"))
            if target == origin:
                return True
            pending.append(target)
    return False


def unreached_files(tree: Path, walk: FluxWalk) -> list[str]:
    rendered = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()}
    return sorted(rendered - walk.reached)


@pytest.fixture(scope="module")
def rendered_trees(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    return [
        (combination_id(values), cached_render(tmp_path_factory, values))
        for values in all_valid_combinations()
    ]


def test_every_flux_reference_resolves_and_every_file_is_reachable(
    rendered_trees: list[tuple[str, Path]],
) -> None:
    failures: list[str] = []
    for combination, tree in rendered_trees:
        walk = walk_flux(tree)
        problems = walk.problems + reference_problems(walk)
        problems += [
            f"{path}: not reachable from {ROOT_KUSTOMIZATION}"
            for path in unreached_files(tree, walk)
        ]
        failures += [f"[{combination}] {problem}" for problem in problems]
    assert not failures, "\n".join(failures[:60])


# --- the checker itself must catch what it claims to catch ---------------------------------------


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def flux_ks(name: str, path: str, depends: tuple[str, ...] = ()) -> str:
    deps = "".join(f"\n    - name: {d}" for d in depends)
    return (
        "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        f"metadata:\n  name: {name}\n  namespace: flux-system\nspec:\n"
        + (f"  dependsOn:{deps}\n" if depends else "")
        + f"  path: {path}\n  interval: 1h\n  prune: true\n"
        "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n    namespace: flux-system\n"
        "  postBuild:\n    substituteFrom:\n      - kind: Secret\n        name: cluster-secrets\n"
    )


HELM_REPOSITORY = (
    "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\n"
    "metadata:\n  name: grafana\n  namespace: monitoring\nspec:\n  url: https://example.com\n"
)
HELM_RELEASE = (
    "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: tempo\n"
    "  namespace: monitoring\nspec:\n  chart:\n    spec:\n      chart: tempo\n"
    "      sourceRef:\n        kind: HelmRepository\n        name: grafana\n"
)


MONITORING = "kubernetes/apps/monitoring"


def resources(*entries: str) -> str:
    return "resources:\n" + "".join(f"  - {entry}\n" for entry in entries)


def small_tree(root: Path, tempo_depends: tuple[str, ...]) -> Path:
    """Alloy's Kustomization owns the HelmRepository that Tempo's HelmRelease uses."""
    return write_tree(
        root,
        {
            ROOT_KUSTOMIZATION: flux_ks("cluster-apps", "./kubernetes/apps"),
            f"{MONITORING}/kustomization.yaml": resources("./alloy/ks.yaml", "./tempo/ks.yaml"),
            "kubernetes/apps/monitoring/alloy/ks.yaml": flux_ks(
                "alloy", "./kubernetes/apps/monitoring/alloy/app"
            ),
            f"{MONITORING}/alloy/app/kustomization.yaml": resources("./helmrepository.yaml"),
            "kubernetes/apps/monitoring/alloy/app/helmrepository.yaml": HELM_REPOSITORY,
            "kubernetes/apps/monitoring/tempo/ks.yaml": flux_ks(
                "tempo", "./kubernetes/apps/monitoring/tempo/app", tempo_depends
            ),
            f"{MONITORING}/tempo/app/kustomization.yaml": resources("./helmrelease.yaml"),
            "kubernetes/apps/monitoring/tempo/app/helmrelease.yaml": HELM_RELEASE,
        },
    )


def all_problems(tree: Path) -> list[str]:
    walk = walk_flux(tree)
    return walk.problems + reference_problems(walk) + unreached_files(tree, walk)


def test_checker_accepts_a_sound_tree(tmp_path: Path) -> None:
    assert all_problems(small_tree(tmp_path, ("alloy",))) == []


def test_checker_catches_a_source_owned_by_another_kustomization(tmp_path: Path) -> None:
    problems = all_problems(small_tree(tmp_path, ()))
    assert len(problems) == 1 and "without a dependsOn" in problems[0], problems


def test_checker_catches_dangling_references_and_unreachable_files(tmp_path: Path) -> None:
    tree = small_tree(tmp_path, ("victoria-metrics-k8s-stack",))
    (tree / "kubernetes/apps/monitoring/tempo/ks.yaml").write_text(
        flux_ks(
            "tempo", "./kubernetes/apps/monitoring/tempo/app", ("victoria-metrics-k8s-stack",)
        ).replace("name: flux-system\n    namespace", "name: home-kubernetes\n    namespace")
    )
    (tree / "kubernetes/apps/monitoring/orphan/ks.yaml").parent.mkdir(parents=True)
    (tree / "kubernetes/apps/monitoring/orphan/ks.yaml").write_text(flux_ks("orphan", "./nowhere"))
    problems = all_problems(tree)
    text = "\n".join(problems)
    assert (
        "dependsOn Kustomization flux-system/victoria-metrics-k8s-stack is not in the tree" in text
    )
    assert "sourceRef GitRepository flux-system/home-kubernetes is not in the tree" in text
    assert "kubernetes/apps/monitoring/orphan/ks.yaml" in text
    # tempo's path is no longer followed (foreign source), so its app files are unreachable too
    assert "kubernetes/apps/monitoring/tempo/app/helmrelease.yaml" in text


def test_flux_generator_walks_a_path_without_kustomization_yaml(tmp_path: Path) -> None:
    tree = small_tree(tmp_path, ("alloy",))
    (tree / "kubernetes/apps/monitoring/kustomization.yaml").unlink()
    walk = walk_flux(tree)
    # Without the namespace kustomization, Flux's generator applies both ks.yaml files itself and
    # also every app/ directory a second time: the checker must see the duplicates.
    assert {
        "kubernetes/apps/monitoring/alloy/ks.yaml",
        "kubernetes/apps/monitoring/tempo/ks.yaml",
    } <= walk.reached
    problems = reference_problems(walk)
    assert any("HelmRepository monitoring/grafana: also defined" in p for p in problems), problems
