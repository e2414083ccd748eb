"""`kubectl kustomize` builds every directory with a kustomization.yaml, in every valid flag
combination of the template pack."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.helpers.pack import all_valid_combinations, cached_render, combination_id

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: much faster
KUBECTL = shutil.which("kubectl")
# Debian's kubernetes-client is kubectl 1.20, whose built-in kustomize (v2.0.3) predates directory
# entries in `resources:`; Flux's kustomize-controller (kustomize v5) accepts them.
OLD_KUSTOMIZE_HINT = (
    "this kubectl embeds a kustomize older than v3 (kubectl < 1.21), which rejects directories "
    "in resources:; install a kubectl >= 1.21 (Flux itself builds with kustomize v5)"
)


def kustomization_dirs(tree: Path) -> list[Path]:
    return sorted({p.parent for name in KUSTOMIZATION_FILES for p in tree.rglob(name)})


def build_inputs(directory: Path, seen: set[Path] | None = None) -> list[Path]:
    """Every file `kubectl kustomize directory` can read: the directory itself, plus other
    kustomizations it includes by directory (kustomize loads no loose file outside its root)."""
    seen = set() if seen is None else seen
    directory = directory.resolve()
    if directory in seen:
        return []
    seen.add(directory)
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    for kfile in (directory / name for name in KUSTOMIZATION_FILES):
        if not kfile.is_file():
            continue
        kustomization = yaml.load(kfile.read_text(), Loader=SafeLoader) or {}
        for entry in [*kustomization.get("resources", []), *kustomization.get("components", [])]:
            target = (directory / entry).resolve()
            if target.is_dir() and not target.is_relative_to(directory):
                files += build_inputs(target, seen)
    return files


def input_digest(tree: Path, directory: Path) -> str:
    """Same digest ⇒ same kustomize output: lets identical directories across combinations
    share one kubectl run."""
    digest = hashlib.sha256(directory.relative_to(tree).as_posix().encode())
    for path in build_inputs(directory):
        digest.update(path.relative_to(tree.resolve()).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None, "kubectl is required: run .ci/run or install kubernetes-client"
    return subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )


def output_problems(output: str) -> list[str]:
    problems = []
    for doc in yaml.load_all(output, Loader=SafeLoader):
        if not isinstance(doc, dict):
            continue
        name = (doc.get("metadata") or {}).get("name")
        if not (doc.get("apiVersion") and doc.get("kind") and name):
            problems.append(f"object without apiVersion/kind/metadata.name: {doc!r:.120}")
    return problems


@pytest.fixture(scope="module")
def rendered_trees(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict, Path]]:
    return [
        (combination_id(values), values, cached_render(tmp_path_factory, values))
        for values in all_valid_combinations()
    ]


def test_kubectl_kustomize_builds_every_kustomization(
    rendered_trees: list[tuple[str, dict, Path]],
) -> None:
    jobs: dict[str, tuple[Path, list[str]]] = {}  # digest → (directory to build, where it occurs)
    for combination, _values, tree in rendered_trees:
        for directory in kustomization_dirs(tree):
            digest = input_digest(tree, directory)
            where = f"[{combination}] {directory.relative_to(tree).as_posix()}"
            jobs.setdefault(digest, (directory, []))[1].append(where)
    with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 1) * 2)) as pool:
        results = dict(zip(jobs, pool.map(kustomize, [d for d, _ in jobs.values()]), strict=True))
    failures = []
    for digest, result in results.items():
        first = jobs[digest][1][0]
        also = len(jobs[digest][1]) - 1
        context = f"{first}" + (f" (and {also} identical elsewhere)" if also else "")
        if result.returncode != 0:
            failures.append(f"{context}: kubectl kustomize failed:\n{result.stderr.strip()}")
            if "must be a file" in result.stderr:
                failures.append(OLD_KUSTOMIZE_HINT)
        else:
            failures += [f"{context}: {problem}" for problem in output_problems(result.stdout)]
    assert not failures, "\n".join(failures)


def test_every_app_directory_is_a_kustomization(
    rendered_trees: list[tuple[str, dict, Path]],
) -> None:
    """Guards the build test against passing on an empty tree: the directories Flux points at
    are there, and each has a kustomization.yaml."""
    failures = []
    for combination, values, tree in rendered_trees:
        built = {d.relative_to(tree).as_posix() for d in kustomization_dirs(tree)}
        expected = {"kubernetes/apps/kube-system"} if values["hubble_enabled"] else set()
        if values["monitoring_enabled"]:
            expected |= {"kubernetes/apps/monitoring"}
            stack = (
                "victoria-metrics"
                if values["monitoring_stack"] == "victoriametrics"
                else "kube-prometheus-stack"
            )
            expected |= {f"kubernetes/apps/monitoring/{stack}/app"}
            if values["loki_enabled"]:
                expected |= {"kubernetes/apps/monitoring/loki/app"}
            if values["tracing_enabled"]:
                expected |= {"kubernetes/apps/monitoring/tempo/app"}
            if values["loki_enabled"] or values["tracing_enabled"]:
                expected |= {"kubernetes/apps/monitoring/alloy/app"}
        for ks in tree.rglob("ks.yaml"):
            if ks.parent.name != "cluster":
                expected.add(ks.parent.relative_to(tree).as_posix() + "/app")
        missing = sorted(expected - built)
        if missing:
            failures.append(f"[{combination}] no kustomization.yaml in: {', '.join(missing)}")
    assert not failures, "\n".join(failures)


def test_a_broken_kustomization_fails_the_build(tmp_path: Path) -> None:
    """The build check must catch a kustomization listing a file that is not there."""
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - ./missing.yaml\n")
    assert kustomize(tmp_path).returncode != 0
