"""Cohesion: across all HelmReleases of a rendered combination, exactly one Grafana, one
Alertmanager, one node-exporter and one kube-state-metrics are enabled (none with monitoring off),
and Loki's chart deploys neither Grafana nor promtail.

Each chart switches its components with its own values keys and defaults; the table below is taken
from the charts' values.yaml / Chart.yaml dependency conditions:
- victoria-metrics-k8s-stack: grafana.enabled, alertmanager.enabled,
  prometheus-node-exporter.enabled, kube-state-metrics.enabled (all default true);
- kube-prometheus-stack: grafana.enabled, alertmanager.enabled, nodeExporter.enabled,
  kubeStateMetrics.enabled (all default true);
- loki (grafana-community 18.x): no Grafana or promtail subchart at all, so only an explicit
  `enabled: true` would be a mistake worth catching.

Where each component's Service and port are wired is tests/pack/test_pack_wiring.py's contract.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.pack import (
    all_valid_combinations,
    cached_render,
    cluster_values,
    combination_id,
    helm_releases,
    load_schema,
    lookup,
    render_pack,
    sample_values,
    schema_errors,
)

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: much faster
COMPONENTS = ("grafana", "alertmanager", "node-exporter", "kube-state-metrics")

# chart → component → (values path, default when the path is absent). A chart that *is* the
# component (e.g. the grafana chart) has an empty path: it is on whenever it is released.
CHART_COMPONENTS: dict[str, dict[str, tuple[tuple[str, ...], bool]]] = {
    "victoria-metrics-k8s-stack": {
        "grafana": (("grafana", "enabled"), True),
        "alertmanager": (("alertmanager", "enabled"), True),
        "node-exporter": (("prometheus-node-exporter", "enabled"), True),
        "kube-state-metrics": (("kube-state-metrics", "enabled"), True),
    },
    "kube-prometheus-stack": {
        "grafana": (("grafana", "enabled"), True),
        "alertmanager": (("alertmanager", "enabled"), True),
        "node-exporter": (("nodeExporter", "enabled"), True),
        "kube-state-metrics": (("kubeStateMetrics", "enabled"), True),
    },
    "loki": {
        "grafana": (("grafana", "enabled"), False),
        "promtail": (("promtail", "enabled"), False),
    },
    "grafana": {"grafana": ((), True)},
    "alertmanager": {"alertmanager": ((), True)},
    "prometheus-node-exporter": {"node-exporter": ((), True)},
    "kube-state-metrics": {"kube-state-metrics": ((), True)},
    "promtail": {"promtail": ((), True)},
}


def enabled_components(tree: Path) -> tuple[Counter[str], dict[str, list[str]]]:
    """How many of each component are on across all HelmReleases, and which releases."""
    counts: Counter[str] = Counter()
    where: dict[str, list[str]] = {}
    for release in helm_releases(tree):
        for component, (path, default) in CHART_COMPONENTS.get(release.chart, {}).items():
            if lookup(release.values, path, default) is True:
                counts[component] += 1
                where.setdefault(component, []).append(f"{release.file} ({release.chart})")
    return counts, where


@pytest.fixture(scope="module")
def rendered_trees(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict, Path]]:
    return [
        (combination_id(values), values, cached_render(tmp_path_factory, values))
        for values in all_valid_combinations()
    ]


def test_exactly_one_of_each_shared_component(
    rendered_trees: list[tuple[str, dict, Path]],
) -> None:
    failures = []
    for combination, values, tree in rendered_trees:
        counts, where = enabled_components(tree)
        expected = 1 if values["monitoring_enabled"] else 0
        for component in COMPONENTS:
            if counts[component] != expected:
                failures.append(
                    f"[{combination}] {counts[component]} × {component} enabled "
                    f"(expected {expected}): {where.get(component, [])}"
                )
        if counts["promtail"]:
            failures.append(f"[{combination}] promtail is deployed: {where['promtail']}")
    assert not failures, "\n".join(failures)


def test_the_chosen_metrics_stack_is_the_only_one(
    rendered_trees: list[tuple[str, dict, Path]],
) -> None:
    failures = []
    for combination, values, tree in rendered_trees:
        charts = Counter(release.chart for release in helm_releases(tree))
        stacks = {
            "victoriametrics": "victoria-metrics-k8s-stack",
            "prometheus": "kube-prometheus-stack",
        }
        for choice, chart in stacks.items():
            wanted = int(values["monitoring_enabled"] and values["monitoring_stack"] == choice)
            if charts[chart] != wanted:
                failures.append(f"[{combination}] {charts[chart]} × {chart} (expected {wanted})")
        if charts["loki"] != int(values["loki_enabled"]):
            failures.append(f"[{combination}] {charts['loki']} × loki")
        if charts["tempo"] != int(values["tracing_enabled"]):
            failures.append(f"[{combination}] {charts['tempo']} × tempo")
    assert not failures, "\n".join(failures)


def test_loki_deploys_neither_grafana_nor_promtail(
    rendered_trees: list[tuple[str, dict, Path]],
) -> None:
    seen_loki = False
    for combination, _values, tree in rendered_trees:
        for release in helm_releases(tree):
            if release.chart != "loki":
                continue
            seen_loki = True
            for component in ("grafana", "promtail"):
                assert lookup(release.values, (component, "enabled"), False) is False, (
                    f"[{combination}] {release.file}: loki's {component}.enabled must be false"
                )
    assert seen_loki, "no combination rendered a loki HelmRelease"


# Alternatives for variables whose schema examples offer none besides the default.
ALTERNATIVE_VALUES = {"cluster_gateway_addr": "192.168.1.99", "cluster_pod_cidr": "10.244.0.0/16"}


def alternative_value(name: str, spec: dict[str, Any], current: Any) -> Any:
    """A valid value other than `current`, from the schema itself where it can say one."""
    if name in ALTERNATIVE_VALUES:
        return ALTERNATIVE_VALUES[name]
    if spec.get("type") == "boolean":
        return not current
    if spec.get("type") == "array" and current:
        return current[:-1]
    if spec.get("type") == "integer":
        return current + 1 if current + 1 <= spec.get("maximum", current + 1) else current - 1
    for choice in [*spec.get("enum", []), *spec.get("examples", [])]:
        if choice != current:
            return choice
    raise AssertionError(f"no alternative value known for {name}: add one to ALTERNATIVE_VALUES")


def test_every_variable_changes_the_output(tmp_path: Path) -> None:
    """Every variable the schema declares does something: with the whole stack on, changing it
    alone (to another valid value) changes the rendered tree."""
    switches = (
        "monitoring_enabled",
        "monitoring_alerts_enabled",
        "loki_enabled",
        "tracing_enabled",
        "hubble_enabled",
        "hubble_ui_enabled",
        "alertmanager_slack_enabled",
        "alertmanager_pagerduty_enabled",
    )
    everything = {**sample_values(), **dict.fromkeys(switches, True)}
    assert schema_errors(everything) == []
    (tmp_path / "baseline").mkdir()
    baseline = tree_bytes(render_pack(tmp_path / "baseline", everything))
    idle, skipped = [], []
    for name, spec in load_schema()["properties"].items():
        variant = {**everything, name: alternative_value(name, spec, everything[name])}
        if schema_errors(variant):  # e.g. monitoring off while Loki is on: flags are proven above
            skipped.append(name)
            continue
        (tmp_path / name).mkdir()
        if tree_bytes(render_pack(tmp_path / name, variant)) == baseline:
            idle.append(f"{name}: {everything[name]!r} → {variant[name]!r}")
    assert not idle, "variables that change nothing in the rendered tree:\n" + "\n".join(idle)
    assert skipped == ["monitoring_enabled", "hubble_enabled"], skipped


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("stack", ["victoriametrics", "prometheus"])
def test_control_plane_addrs_fill_every_control_plane_scrape(stack: str, tmp_path: Path) -> None:
    """Talos runs etcd, the controller-manager and the scheduler outside pods: the chart can only
    scrape them at the addresses cluster.yaml lists."""
    addresses = ["192.168.1.10", "192.168.1.11", "192.168.1.12"]
    values = cluster_values(
        monitoring_enabled=True, monitoring_stack=stack, control_plane_addrs=addresses
    )
    (stack_values,) = [
        v
        for _, chart, v, *_ in helm_releases(render_pack(tmp_path, values))
        if chart in ("victoria-metrics-k8s-stack", "kube-prometheus-stack")
    ]
    for component in ("kubeEtcd", "kubeControllerManager", "kubeScheduler"):
        assert lookup(stack_values, (component, "enabled"), True) is True, component
        assert lookup(stack_values, (component, "endpoints"), None) == addresses, component


# --- the counting itself must catch what it claims to catch -------------------------------------


def write_release(tree: Path, name: str, chart: str, values: dict[str, Any]) -> None:
    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": "monitoring"},
        "spec": {"chartRef": {"kind": "OCIRepository", "name": name}, "values": values},
    }
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": name, "namespace": "monitoring"},
        "spec": {"url": f"oci://ghcr.io/example/charts/{chart}", "ref": {"tag": "1.0.0"}},
    }
    (tree / name).mkdir(parents=True)
    (tree / name / "helmrelease.yaml").write_text(yaml.safe_dump_all([release, source]))


def test_counting_sees_chart_defaults_and_overrides(tmp_path: Path) -> None:
    write_release(tmp_path, "vm", "victoria-metrics-k8s-stack", {"grafana": {"enabled": False}})
    write_release(tmp_path, "kps", "kube-prometheus-stack", {"nodeExporter": {"enabled": False}})
    write_release(tmp_path, "loki", "loki", {"grafana": {"enabled": True}})
    counts, _ = enabled_components(tmp_path)
    # vm: grafana off by override, the rest on by default; kps: node-exporter off; loki: grafana on
    assert counts == Counter(
        {"grafana": 2, "alertmanager": 2, "node-exporter": 1, "kube-state-metrics": 2}
    )
