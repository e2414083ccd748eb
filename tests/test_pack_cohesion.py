"""Cohesion: across all HelmReleases of a rendered combination, exactly one Grafana, one
Alertmanager, one node-exporter and one kube-state-metrics are enabled (none with monitoring off),
and Loki's chart deploys neither Grafana nor promtail.

Each chart switches its components with its own values keys and defaults; the table below is taken
from the charts' values.yaml / Chart.yaml dependency conditions:
- victoria-metrics-k8s-stack: grafana.enabled, alertmanager.enabled,
  prometheus-node-exporter.enabled, kube-state-metrics.enabled (all default true);
- kube-prometheus-stack: grafana.enabled, alertmanager.enabled, nodeExporter.enabled,
  kubeStateMetrics.enabled (all default true);
- loki (6.x): no Grafana or promtail subchart at all, so only an explicit `enabled: true` would be
  a mistake worth catching (the guide sets both to false).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pack import (
    all_valid_combinations,
    cached_render,
    cluster_values,
    combination_id,
    load_schema,
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


def documents(tree: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(tree.rglob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=SafeLoader):
            if isinstance(doc, dict):
                yield path.relative_to(tree).as_posix(), doc


def lookup(values: Any, path: tuple[str, ...], default: Any) -> Any:
    for key in path:
        if not isinstance(values, dict) or key not in values:
            return default
        values = values[key]
    return values


def chart_name(release: dict[str, Any], sources: dict[tuple[str, str], dict[str, Any]]) -> str:
    """The chart a HelmRelease installs: chart.spec.chart, or the chart its chartRef names."""
    spec = release.get("spec") or {}
    if (spec.get("chart") or {}).get("spec"):
        return str(spec["chart"]["spec"]["chart"]).rsplit("/", 1)[-1]
    ref = spec.get("chartRef") or {}
    source = sources.get((str(ref.get("kind")), str(ref.get("name"))), {})
    if ref.get("kind") == "OCIRepository":
        return str((source.get("spec") or {}).get("url", "")).rstrip("/").rsplit("/", 1)[-1]
    return str((source.get("spec") or {}).get("chart", ""))


@cache
def helm_releases(tree: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(file, chart, values) of every HelmRelease in the tree."""
    docs = list(documents(tree))
    sources = {
        (str(d.get("kind")), str((d.get("metadata") or {}).get("name"))): d
        for _, d in docs
        if str(d.get("apiVersion", "")).startswith("source.toolkit")
    }
    return [
        (file, chart_name(d, sources), (d.get("spec") or {}).get("values") or {})
        for file, d in docs
        if d.get("kind") == "HelmRelease"
    ]


def enabled_components(tree: Path) -> tuple[Counter[str], dict[str, list[str]]]:
    """How many of each component are on across all HelmReleases, and which releases."""
    counts: Counter[str] = Counter()
    where: dict[str, list[str]] = {}
    for file, chart, values in helm_releases(tree):
        for component, (path, default) in CHART_COMPONENTS.get(chart, {}).items():
            if lookup(values, path, default) is True:
                counts[component] += 1
                where.setdefault(component, []).append(f"{file} ({chart})")
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
        charts = Counter(chart for _, chart, _ in helm_releases(tree))
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
        for file, chart, values in helm_releases(tree):
            if chart != "loki":
                continue
            seen_loki = True
            for component in ("grafana", "promtail"):
                assert lookup(values, (component, "enabled"), False) is False, (
                    f"[{combination}] {file}: loki's {component}.enabled must be false"
                )
    assert seen_loki, "no combination rendered a loki HelmRelease"


def helm_fullname(release: dict[str, Any], chart: str, limit: int) -> str:
    """Helm's `<chart>.fullname` helper: what the chart names its objects after."""
    spec, values = release.get("spec") or {}, (release.get("spec") or {}).get("values") or {}
    if values.get("fullnameOverride"):
        return str(values["fullnameOverride"])[:limit].rstrip("-")
    release_name = spec.get("releaseName") or str(release["metadata"]["name"])
    name = str(values.get("nameOverride") or chart)
    full = release_name if name in release_name else f"{release_name}-{name}"
    return full[:limit].rstrip("-")


def metrics_receiver(tree: Path) -> tuple[str, str] | None:
    """(expected remote-write URL, problem or '') for the stack's metrics store, or None."""
    docs = [doc for _, doc in documents(tree)]
    sources = {
        (str(d.get("kind")), str(d["metadata"]["name"])): d
        for d in docs
        if str(d.get("apiVersion", "")).startswith("source.toolkit")
    }
    for doc in docs:
        if doc.get("kind") != "HelmRelease":
            continue
        chart, values = chart_name(doc, sources), doc["spec"].get("values") or {}
        namespace = doc["spec"].get("targetNamespace") or doc["metadata"].get("namespace")
        if chart == "victoria-metrics-k8s-stack":
            # The operator names vmsingle's Service vmsingle-<VMSingle name>; it listens on 8428.
            port = lookup(values, ("vmsingle", "spec", "port"), "8428")
            host = f"vmsingle-{helm_fullname(doc, chart, 63)}.{namespace}.svc"
            off = lookup(values, ("vmsingle", "enabled"), True) is not True
            return f"http://{host}:{port}/api/v1/write", "vmsingle is disabled" if off else ""
        if chart == "kube-prometheus-stack":
            # kube-prometheus-stack truncates its fullname to 26 characters.
            host = f"{helm_fullname(doc, chart, 26)}-prometheus.{namespace}.svc"
            receiver = ("prometheus", "prometheusSpec", "enableRemoteWriteReceiver")
            off = lookup(values, receiver, False) is not True
            problem = "Prometheus has no remote-write receiver (enableRemoteWriteReceiver)"
            return f"http://{host}:9090/api/v1/write", problem if off else ""
    return None


def test_tempo_remote_writes_to_the_chosen_metrics_stack(
    rendered_trees: list[tuple[str, dict, Path]],
) -> None:
    """Tempo's span metrics go to the metrics store that exists: vmsingle on 8428 (not vmagent's
    8429), or Prometheus with its remote-write receiver on."""
    failures, checked = [], 0
    for combination, values, tree in rendered_trees:
        if not values["tracing_enabled"]:
            continue
        receiver = metrics_receiver(tree)
        tempo = [v for _, chart, v in helm_releases(tree) if chart == "tempo"]
        if receiver is None or len(tempo) != 1:
            failures.append(f"[{combination}] no metrics stack or no single Tempo to check")
            continue
        expected, problem = receiver
        actual = lookup(tempo[0], ("tempo", "metricsGenerator", "remoteWriteUrl"), None)
        if actual != expected:
            failures.append(f"[{combination}] Tempo remote-writes to {actual}, not {expected}")
        if problem:
            failures.append(f"[{combination}] {problem}")
        checked += 1
    assert checked, "no combination has tracing on"
    assert not failures, "\n".join(failures)


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
        for _, chart, v in helm_releases(render_pack(tmp_path, values))
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
