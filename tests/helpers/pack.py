"""Shared helpers for the template-pack tests: flag combinations, cluster.yaml values, rendering.

Every pack test renders through the real CLI (`makeflux render`) with the repo's makeflux.toml,
so a test sees exactly what a user's `makeflux render` would write.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from makeflux.cli import cli
from tests.conftest import REPO_ROOT

REPO_ROOT = REPO_ROOT
SETTINGS_FILE = REPO_ROOT / "makeflux.toml"
SCHEMA_FILE = REPO_ROOT / "schemas" / "cluster.schema.json"
SAMPLE_FILE = REPO_ROOT / "cluster.sample.yaml"

# The flags whose every valid combination the pack must render correctly.
FLAG_CHOICES: dict[str, tuple[Any, ...]] = {
    "monitoring_enabled": (False, True),
    "monitoring_stack": ("victoriametrics", "prometheus"),
    "loki_enabled": (False, True),
    "tracing_enabled": (False, True),
    "hubble_enabled": (False, True),
    "hubble_ui_enabled": (False, True),
    "monitoring_alerts_enabled": (False, True),
}

# Short names for test ids: "mon-vm-loki-trace-hub-ui-alerts".
_ID_PARTS = {
    "loki_enabled": "loki",
    "tracing_enabled": "trace",
    "hubble_enabled": "hub",
    "hubble_ui_enabled": "ui",
    "monitoring_alerts_enabled": "alerts",
}


@cache
def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


# The values the schema requires with no default (the user's own network): the test cluster's.
TEST_NETWORK: dict[str, Any] = {
    "cluster_gateway_addr": "192.168.1.72",
    "cluster_pod_cidr": "10.42.0.0/16",
    "control_plane_addrs": [],
}


def schema_defaults() -> dict[str, Any]:
    """Every top-level variable at its schema default (what validation fills in), and the
    required network values at TEST_NETWORK's."""
    properties = load_schema()["properties"]
    defaults = {name: spec["default"] for name, spec in properties.items() if "default" in spec}
    return {**defaults, **TEST_NETWORK}


def schema_errors(values: Mapping[str, Any]) -> list[str]:
    """The schema's complaints about `values` (empty when valid)."""
    validator = jsonschema.Draft202012Validator(
        load_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [error.message for error in validator.iter_errors(dict(values))]


def cluster_values(**overrides: Any) -> dict[str, Any]:
    """Schema defaults with `overrides` applied: a complete cluster.yaml mapping."""
    unknown = set(overrides) - set(load_schema()["properties"])
    if unknown:
        raise KeyError(f"not pack variables: {sorted(unknown)}")
    return {**schema_defaults(), **overrides}


def sample_values() -> dict[str, Any]:
    """cluster.sample.yaml's values with schema defaults for anything it leaves out."""
    return {**schema_defaults(), **(yaml.safe_load(SAMPLE_FILE.read_text(encoding="utf-8")) or {})}


def all_valid_combinations() -> list[dict[str, Any]]:
    """Every flag combination the schema accepts, as complete cluster.yaml mappings.

    With monitoring off, the stack choice still matters to nothing, but it is a valid input,
    so it is rendered too (it must produce the same empty monitoring tree).
    """
    combinations = []
    names = list(FLAG_CHOICES)
    for choice in itertools.product(*FLAG_CHOICES.values()):
        values = cluster_values(**dict(zip(names, choice, strict=True)))
        if not schema_errors(values):
            combinations.append(values)
    return combinations


def combination_id(values: Mapping[str, Any]) -> str:
    """A readable pytest id for one combination."""
    if not values["monitoring_enabled"]:
        parts = ["off", "vm" if values["monitoring_stack"] == "victoriametrics" else "prom"]
    else:
        parts = ["vm" if values["monitoring_stack"] == "victoriametrics" else "prom"]
    parts += [short for flag, short in _ID_PARTS.items() if values[flag]]
    return "-".join(parts)


def render_pack(tmp_path: Path, values: Mapping[str, Any]) -> Path:
    """Render the pack for `values` through `makeflux render`; returns the output root.

    The tree lands in `tmp_path / "out"` (so `out/kubernetes/...`); cluster.yaml is written
    next to it. Raises AssertionError with the CLI's output when the render fails.
    """
    data_file = tmp_path / "cluster.yaml"
    data_file.write_text(yaml.safe_dump(dict(values), sort_keys=False), encoding="utf-8")
    output = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "render",
            "--config",
            str(SETTINGS_FILE),
            "--data",
            str(data_file),
            "--output",
            str(output),
        ],
    )
    assert result.exit_code == 0, f"makeflux render failed ({result.exit_code}):\n{result.output}"
    return output


def cached_render(factory: pytest.TempPathFactory, values: Mapping[str, Any]) -> Path:
    """Render once per session per distinct values; every pack test module reuses the tree."""
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]
    slot = factory.getbasetemp() / "pack-trees" / f"{combination_id(values)}-{digest}"
    if not (slot / ".rendered").exists():
        shutil.rmtree(slot, ignore_errors=True)
        slot.mkdir(parents=True)
        render_pack(slot, values)
        (slot / ".rendered").touch()
    return slot / "out"


def rendered_files(root: Path) -> Iterator[Path]:
    """Every file of a rendered tree, sorted."""
    return iter(sorted(p for p in root.rglob("*") if p.is_file()))


def rendered_paths(root: Path) -> set[str]:
    """The rendered tree as a set of POSIX paths relative to `root`."""
    return {p.relative_to(root).as_posix() for p in rendered_files(root)}


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that fails on duplicate mapping keys instead of keeping the last one."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def load_documents(path: Path) -> list[Any]:
    """All YAML documents of a file (empty ones dropped); duplicate keys raise."""
    text = path.read_text(encoding="utf-8")
    return [doc for doc in yaml.load_all(text, Loader=_UniqueKeyLoader) if doc is not None]


def kubernetes_documents(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(file, document) for every document in every YAML file of a rendered tree."""
    for path in rendered_files(root):
        if path.suffix in (".yaml", ".yml"):
            for doc in load_documents(path):
                yield path, doc


# --- The chart releases the pack pins (tests/data/chart-values/ holds their values keys) ---------

# The releases the wiring contract and the values key lists were read from.
PINNED_RELEASES = {
    "victoria-metrics-k8s-stack": "0.91.2",
    "kube-prometheus-stack": "88.5.3",
    "loki": "18.11.0",
    "tempo": "2.2.4",
    "alloy": "1.11.1",
}

# parent chart release → its subcharts' versions (victoria-metrics-k8s-stack 0.91.2 Chart.lock;
# kube-prometheus-stack 88.5.3 Chart.yaml, which pins exact versions).
SUBCHARTS: dict[tuple[str, str], dict[str, str]] = {
    ("victoria-metrics-k8s-stack", "0.91.2"): {
        "grafana": "12.7.3",
        "kube-state-metrics": "7.5.3",
        "prometheus-node-exporter": "4.55.1",
    },
    ("kube-prometheus-stack", "88.5.3"): {
        "grafana": "12.11.1",
        "kube-state-metrics": "8.4.0",
        "prometheus-node-exporter": "4.56.1",
    },
}


# --- HelmReleases of a rendered tree: which chart at which release, with which values ---------

_FastLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: much faster


def documents(tree: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path relative to `tree`, document) for every mapping document of every YAML file."""
    for path in sorted(tree.rglob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=_FastLoader):
            if isinstance(doc, dict):
                yield path.relative_to(tree).as_posix(), doc


def lookup(values: Any, path: tuple[str, ...], default: Any) -> Any:
    """The value at `path` in nested mappings, or `default` when any key is missing."""
    for key in path:
        if not isinstance(values, dict) or key not in values:
            return default
        values = values[key]
    return values


class Release(NamedTuple):
    """One rendered HelmRelease: the chart and release it installs and the values it passes."""

    file: str
    chart: str
    values: dict[str, Any]
    version: str
    name: str
    namespace: str
    document: dict[str, Any]


def _chart_and_version(
    release: dict[str, Any], sources: dict[tuple[str, str], dict[str, Any]]
) -> tuple[str, str]:
    """chart.spec's chart and version, or the chart and tag of the OCIRepository chartRef names."""
    spec = release.get("spec") or {}
    if (spec.get("chart") or {}).get("spec"):
        chart_spec = spec["chart"]["spec"]
        return str(chart_spec["chart"]).rsplit("/", 1)[-1], str(chart_spec.get("version", ""))
    ref = spec.get("chartRef") or {}
    source = (sources.get((str(ref.get("kind")), str(ref.get("name"))), {})).get("spec") or {}
    if ref.get("kind") == "OCIRepository":
        chart = str(source.get("url", "")).rstrip("/").rsplit("/", 1)[-1]
        return chart, str((source.get("ref") or {}).get("tag", ""))
    return str(source.get("chart", "")), str(source.get("version", ""))


@cache
def helm_releases(tree: Path) -> list[Release]:
    """Every HelmRelease in the tree, with the chart and version it installs."""
    docs = list(documents(tree))
    sources = {
        (str(d.get("kind")), str((d.get("metadata") or {}).get("name"))): d
        for _, d in docs
        if str(d.get("apiVersion", "")).startswith("source.toolkit")
    }
    releases = []
    for file, doc in docs:
        if doc.get("kind") != "HelmRelease":
            continue
        spec, metadata = doc.get("spec") or {}, doc.get("metadata") or {}
        chart, version = _chart_and_version(doc, sources)
        releases.append(
            Release(
                file=file,
                chart=chart,
                values=spec.get("values") or {},
                version=version,
                name=str(spec.get("releaseName") or metadata.get("name")),
                namespace=str(spec.get("targetNamespace") or metadata.get("namespace")),
                document=doc,
            )
        )
    return releases


def helm_fullname(release: Release, limit: int = 63) -> str:
    """Helm's `<chart>.fullname` helper: what a chart names its objects after."""
    override = release.values.get("fullnameOverride")
    if override:
        return str(override)[:limit].rstrip("-")
    name = str(release.values.get("nameOverride") or release.chart)
    full = release.name if name in release.name else f"{release.name}-{name}"
    return full[:limit].rstrip("-")


def rendered_combinations(
    factory: pytest.TempPathFactory, combinations: list[dict[str, Any]] | None = None
) -> list[tuple[str, dict[str, Any], Path]]:
    """(id, values, tree) for each combination (default: every valid one), each rendered once."""
    return [
        (combination_id(values), values, cached_render(factory, values))
        for values in (all_valid_combinations() if combinations is None else combinations)
    ]


def alert_expressions(tree: Path) -> dict[str, str]:
    """alert name → expression of every alerting rule in the tree's PrometheusRules."""
    return {
        rule["alert"]: str(rule["expr"])
        for _, doc in documents(tree)
        if doc.get("kind") == "PrometheusRule"
        for group in doc["spec"]["groups"]
        for rule in group.get("rules", [])
        if "alert" in rule
    }
