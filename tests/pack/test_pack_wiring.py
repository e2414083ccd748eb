"""The wiring contract: every connection between the shipped components, with the Service and
port each side uses and where in the pinned chart release that port comes from.

For every flag combination the test checks, connection by connection, that
- the client side of the render (a Grafana datasource, Alloy's config, Tempo's remote write) uses
  exactly the contract's endpoint, or leaves the URL to the chart where the chart fills it in;
- the contract's Service name is what the serving chart calls it for the rendered release name;
- the contract's port is the serving release's effective port: the render's own value for the
  port's values key, or else that key's default in the pinned release's values.yaml
  (tests/data/chart-values/, refreshed by scripts/chart_values_keys.py);
- the serving chart is pinned at the release the contract was read from, so bumping a chart fails
  here until its ports have been checked again.
Alerts that match on a scrape job (`up{job=...}`) are checked against the job names each stack's
chart gives its targets. Two links that need no port are checked too: Grafana's dashboard
providers are not hidden under the sidecar's mount, and Tempo's metrics generator runs the
processors whose metrics the Tempo datasource queries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from tests.conftest import TESTS_DIR
from tests.helpers.pack import (
    PINNED_RELEASES,
    SUBCHARTS,
    Release,
    alert_expressions,
    cluster_values,
    helm_fullname,
    helm_releases,
    lookup,
    render_pack,
    rendered_combinations,
)

CHART_VALUES_DIR = TESTS_DIR / "data" / "chart-values"

# What each chart names the Service a connection reaches, from Helm's fullname of the release.
SERVICE_NAMES: dict[str, Callable[[Release], str]] = {
    # victoria-metrics-k8s-stack: the operator names a VMSingle's Service vmsingle-<CR name> and
    # the CR is named after the release's fullname (templates/.../vmsingle/vmsingle.yml).
    "vmsingle": lambda release: f"vmsingle-{helm_fullname(release)}",
    "vmalertmanager": lambda release: f"vmalertmanager-{helm_fullname(release)}",
    # kube-prometheus-stack truncates its fullname to 26 characters (_helpers.tpl).
    "prometheus": lambda release: f"{helm_fullname(release, 26)}-prometheus",
    "alertmanager": lambda release: f"{helm_fullname(release, 26)}-alertmanager",
    # loki: the monolithic Service is the fullname (templates/monolithic/service.yaml).
    "loki": helm_fullname,
    # tempo: the single-binary Service is the fullname (templates/service.yaml).
    "tempo": helm_fullname,
}


def victoriametrics(values: Mapping[str, Any]) -> bool:
    return values["monitoring_stack"] == "victoriametrics"


def prometheus(values: Mapping[str, Any]) -> bool:
    return values["monitoring_stack"] == "prometheus"


@dataclass(frozen=True)
class Wire:
    """One connection: `client` reaches `service` of `chart` on `port`."""

    client: str
    chart: str
    service: str  # key of SERVICE_NAMES
    port: int
    port_key: str  # the values key of `chart` that sets the port
    port_source: str  # where in the pinned chart the port reaches the Service
    endpoint: str | None  # what the client must use; None: the chart fills the URL in itself
    when: Callable[[Mapping[str, Any]], bool]
    requires: str = ""  # a values key of the server release that must be true (default false)


WIRING: tuple[Wire, ...] = (
    Wire(
        client="Grafana datasource victoriametrics",
        chart="victoria-metrics-k8s-stack",
        service="vmsingle",
        port=8428,
        port_key="vmsingle.spec.port",
        port_source="templates/grafana/datasource.yaml adds vm.read.endpoint (vmsingle's URL)",
        endpoint=None,
        when=victoriametrics,
    ),
    Wire(
        client="Grafana datasource alertmanager (VictoriaMetrics)",
        chart="victoria-metrics-k8s-stack",
        service="vmalertmanager",
        port=9093,
        port_key="alertmanager.spec.port",
        port_source="templates/grafana/datasource.yaml adds the VMAlertmanager's URL",
        endpoint=None,
        when=victoriametrics,
    ),
    Wire(
        client="Grafana datasource prometheus",
        chart="kube-prometheus-stack",
        service="prometheus",
        port=9090,
        port_key="prometheus.service.port",
        port_source="templates/grafana/configmaps-datasources.yaml, unless sidecar.datasources.url",
        endpoint=None,
        when=prometheus,
    ),
    Wire(
        client="Grafana datasource alertmanager (Prometheus)",
        chart="kube-prometheus-stack",
        service="alertmanager",
        port=9093,
        port_key="alertmanager.service.port",
        port_source="templates/grafana/configmaps-datasources.yaml (unless alertmanager.url)",
        endpoint=None,
        when=prometheus,
    ),
    Wire(
        client="Grafana datasource loki",
        chart="loki",
        service="loki",
        port=3100,
        port_key="loki.server.http_listen_port",
        port_source="templates/_service.tpl: port http-metrics = loki.server.http_listen_port",
        endpoint="http://loki.monitoring.svc:3100",
        when=lambda values: values["loki_enabled"],
    ),
    Wire(
        client="Grafana datasource tempo",
        chart="tempo",
        service="tempo",
        port=3200,
        port_key="tempo.server.http_listen_port",
        port_source="templates/_ports.tpl: tempo-prom-metrics 3200",
        endpoint="http://tempo.monitoring.svc:3200",
        when=lambda values: values["tracing_enabled"],
    ),
    Wire(
        client="Alloy loki.write",
        chart="loki",
        service="loki",
        port=3100,
        port_key="loki.server.http_listen_port",
        port_source="templates/_service.tpl: port http-metrics = loki.server.http_listen_port",
        endpoint="http://loki.monitoring.svc:3100/loki/api/v1/push",
        when=lambda values: values["loki_enabled"],
    ),
    Wire(
        client="Alloy otelcol.exporter.otlp",
        chart="tempo",
        service="tempo",
        port=4317,
        port_key="tempo.receivers.otlp.protocols.grpc.endpoint",
        port_source="templates/_ports.tpl: grpc-tempo-otlp, the endpoint's port",
        endpoint="tempo.monitoring.svc:4317",
        when=lambda values: values["tracing_enabled"],
    ),
    Wire(
        client="Tempo metrics-generator remote write",
        chart="victoria-metrics-k8s-stack",
        service="vmsingle",
        port=8428,
        port_key="vmsingle.spec.port",
        port_source="VMSingle spec.port, the operator's Service port",
        endpoint="http://vmsingle-victoria-metrics-k8s-stack.monitoring.svc:8428/api/v1/write",
        when=lambda values: values["tracing_enabled"] and victoriametrics(values),
    ),
    Wire(
        client="Tempo metrics-generator remote write",
        chart="kube-prometheus-stack",
        service="prometheus",
        port=9090,
        port_key="prometheus.service.port",
        port_source="templates/prometheus/service.yaml: http-web = prometheus.service.port",
        endpoint="http://kube-prometheus-stack-prometheus.monitoring.svc:9090/api/v1/write",
        when=lambda values: values["tracing_enabled"] and prometheus(values),
        requires="prometheus.prometheusSpec.enableRemoteWriteReceiver",
    ),
)


@dataclass(frozen=True)
class Job:
    """The scrape job an alert's `up{job=...}` must select, as the stack's chart names it."""

    alert: str
    stack: str
    job: str
    source: str


VM = "victoria-metrics-k8s-stack 0.91.2"
KPS = "kube-prometheus-stack 88.5.3"
# victoria-metrics-k8s-stack labels each scrape Service app.kubernetes.io/component: <kebab-cased
# values key> and its vmScrape jobLabel reads that label (templates/servicemonitors.yaml).
VM_KEBAB = f"{VM} templates/servicemonitors.yaml: the kebab-cased values key"
# The pack's own pod scrapes (macros/observability.j2 pod_scrapes): either operator names the
# job <namespace>/<name> unless jobLabel is set.
VM_POD_SCRAPE = (
    f"{VM} runs VictoriaMetrics operator v0.74.0: internal/controller/operator/factory/vmscrapes/"
    "podscrape.go generatePodScrapeConfig"
)
KPS_POD_MONITOR = (
    f"{KPS} runs prometheus-operator v0.93.1; v0.93.0 pkg/prometheus/promcfg.go "
    "generatePodMonitorConfig"
)
JOBS: tuple[Job, ...] = (
    Job("NodeDown", "victoriametrics", "node-exporter",
        f"{VM} values.yaml: prometheus-node-exporter.service.labels.jobLabel"),
    Job("NodeDown", "prometheus", "node-exporter",
        f"{KPS} values.yaml: prometheus-node-exporter.podLabels.jobLabel"),
    Job("KubeAPIDown", "victoriametrics", "apiserver",
        f"{VM} values.yaml: kubeApiServer.vmScrape.spec.jobLabel: component"),
    Job("KubeAPIDown", "prometheus", "apiserver",
        f"{KPS} values.yaml: kubeApiServer.serviceMonitor.jobLabel: component"),
    Job("KubeControllerManagerDown", "victoriametrics", "kube-controller-manager", VM_KEBAB),
    Job("KubeControllerManagerDown", "prometheus", "kube-controller-manager",
        f"{KPS} templates/exporters/kube-controller-manager/service.yaml: jobLabel"),
    Job("KubeSchedulerDown", "victoriametrics", "kube-scheduler", VM_KEBAB),
    Job("KubeSchedulerDown", "prometheus", "kube-scheduler",
        f"{KPS} templates/exporters/kube-scheduler/service.yaml: jobLabel"),
    Job("etcdMemberUnhealthy", "victoriametrics", "kube-etcd", VM_KEBAB),
    Job("etcdMemberUnhealthy", "prometheus", "kube-etcd",
        f"{KPS} templates/exporters/kube-etcd/service.yaml: jobLabel: kube-etcd"),
    Job("EnvoyGatewayDown", "victoriametrics", "monitoring/envoy-proxy", VM_POD_SCRAPE),
    Job("EnvoyGatewayDown", "prometheus", "monitoring/envoy-proxy", KPS_POD_MONITOR),
    Job("CoreDNSDown", "victoriametrics", "core-dns", VM_KEBAB),
    Job("CoreDNSDown", "prometheus", "coredns",
        f"{KPS} templates/exporters/core-dns/service.yaml: jobLabel: coredns"),
)  # fmt: skip

# Jobs of components the pack neither deploys nor scrapes: the user's own scrape config names
# them (none today: Envoy Gateway's proxies are scraped by the pack's envoy-proxy pod scrape).
EXTERNAL_JOBS: dict[str, str] = {}


@cache
def chart_defaults(chart: str, release: str) -> dict[str, Any]:
    """key path → default of every scalar in the release's values.yaml (stored list)."""
    path = CHART_VALUES_DIR / f"{chart}-{release}.txt"
    defaults = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "\t" in line and not line.startswith("#"):
            key, value = line.split("\t", 1)
            defaults[key] = json.loads(value)
    return defaults


def effective_port(release: Release, key: str) -> int:
    """The port `release` serves on: the render's value for `key`, else the chart's default."""
    value = lookup(release.values, tuple(key.split(".")), None)
    if value is None:
        value = chart_defaults(release.chart, release.version)[key]
    return int(str(value).rsplit(":", 1)[-1])


def datasources(release: Release) -> dict[str, dict[str, Any]]:
    """uid → datasource of the ones our values write out in full (Loki, Tempo)."""
    if release.chart == "victoria-metrics-k8s-stack":
        listed = lookup(release.values, ("defaultDatasources", "extra"), []) or []
    else:
        listed = lookup(release.values, ("grafana", "additionalDataSources"), []) or []
    return {str(ds.get("uid")): ds for ds in listed}


def alloy_endpoint(config: str, component: str) -> str | None:
    """The url/endpoint of one component block of Alloy's config, e.g. `loki.write "default"`."""
    match = re.search(
        re.escape(component) + r'\s+"[^"]+"\s*\{.*?(?:url|endpoint)\s*=\s*"([^"]+)"', config, re.S
    )
    return match.group(1) if match else None


def client_endpoint(wire: Wire, stack: Release, releases: dict[str, Release]) -> str | None:
    """What the render's client side of `wire` uses (None: nothing set)."""
    if wire.client.startswith("Grafana datasource"):
        uid = wire.client.split()[2]
        if wire.endpoint is None:
            return chart_filled_override(wire, stack)
        return datasources(stack).get(uid, {}).get("url")
    if wire.client.startswith("Alloy"):
        config = lookup(releases["alloy"].values, ("alloy", "configMap", "content"), "")
        return alloy_endpoint(config, wire.client.split()[1])
    return lookup(releases["tempo"].values, ("tempo", "metricsGenerator", "remoteWriteUrl"), None)


def chart_filled_override(wire: Wire, stack: Release) -> str | None:
    """A URL our values would force on a datasource the chart fills in (there must be none)."""
    if stack.chart == "kube-prometheus-stack":
        sidecar = ("grafana", "sidecar", "datasources")
        key = (
            (*sidecar, "alertmanager", "url")
            if "alertmanager" in wire.client
            else (*sidecar, "url")
        )
        return lookup(stack.values, key, None)
    group = "alertmanager" if "alertmanager" in wire.client else "victoriametrics"
    listed = lookup(stack.values, ("defaultDatasources", group, "datasources"), []) or []
    return next((ds["url"] for ds in listed if ds.get("url")), None)


def wiring_problems(values: Mapping[str, Any], tree: Path) -> tuple[list[str], int]:
    """Every way the rendered tree breaks the contract, and how many wires were checked."""
    releases = {release.chart: release for release in helm_releases(tree)}
    stack = releases.get("victoria-metrics-k8s-stack") or releases.get("kube-prometheus-stack")
    problems, checked = [], 0
    for wire in WIRING:
        if not (values["monitoring_enabled"] and wire.when(values)):
            continue
        checked += 1
        server = releases.get(wire.chart)
        if stack is None or server is None:
            problems.append(f"{wire.client}: no {wire.chart} HelmRelease to connect to")
            continue
        if server.version != PINNED_RELEASES[wire.chart]:
            problems.append(
                f"{wire.chart} is pinned at {server.version} but the contract was read from "
                f"{PINNED_RELEASES[wire.chart]}: check {wire.port_key} and {wire.port_source}"
            )
            continue
        host = f"{SERVICE_NAMES[wire.service](server)}.{server.namespace}.svc"
        port = effective_port(server, wire.port_key)
        if port != wire.port:
            problems.append(
                f"{wire.client}: {wire.chart} serves on {port}, contract says {wire.port}"
            )
        if (
            wire.requires
            and lookup(server.values, tuple(wire.requires.split(".")), False) is not True
        ):
            problems.append(f"{wire.client}: {wire.chart} needs {wire.requires}: true")
        actual = client_endpoint(wire, stack, releases)
        if wire.endpoint is None:
            if actual is not None:
                problems.append(f"{wire.client}: sets url {actual}; the chart fills it in")
            continue
        if f"{host}:{wire.port}" not in wire.endpoint:
            problems.append(
                f"{wire.client}: contract endpoint {wire.endpoint} is not {host}:{port}"
            )
        if actual != wire.endpoint:
            problems.append(f"{wire.client}: renders {actual!r}, contract says {wire.endpoint!r}")
    return problems, checked


def up_job_matchers(expr: str) -> list[tuple[str, str]]:
    """(operator, value) of every `job` matcher on an `up` selector in a PromQL expression."""
    found: list[tuple[str, str]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name == "up":
            for matcher in node.matchers.matchers:
                if matcher.name == "job":
                    found.append((str(matcher.op).rsplit(".", 1)[-1], matcher.value))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def selects(matchers: list[tuple[str, str]], job: str) -> bool:
    """Whether every job matcher (=, =~) selects the job name `job`."""
    tests = {"Equal": lambda v: v == job, "Re": lambda v: re.fullmatch(v, job) is not None}
    return bool(matchers) and all(tests.get(op, lambda _v: False)(v) for op, v in matchers)


def job_problems(values: Mapping[str, Any], tree: Path) -> tuple[list[str], int]:
    """Alerts on `up{job=...}` that miss the job their stack's chart names."""
    rules = alert_expressions(tree)
    problems, checked = [], 0
    contracted = {job.alert for job in JOBS} | set(EXTERNAL_JOBS)
    for alert, expr in rules.items():
        if up_job_matchers(expr) and alert not in contracted:
            problems.append(f"{alert} matches a scrape job the contract does not list: add it")
    for job in JOBS:
        if job.stack != values["monitoring_stack"] or job.alert not in rules:
            continue
        checked += 1
        matchers = up_job_matchers(rules[job.alert])
        if not selects(matchers, job.job):
            problems.append(
                f"{job.alert}: {matchers} does not select job {job.job!r} ({job.source})"
            )
    return problems, checked


@pytest.fixture(scope="module")
def rendered_trees(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict, Path]]:
    return rendered_combinations(tmp_path_factory)


def test_every_combination_keeps_the_wiring_contract(
    rendered_trees: list[tuple[str, dict, Path]],
) -> None:
    failures, checked = [], 0
    for combination, values, tree in rendered_trees:
        problems, count = wiring_problems(values, tree)
        failures += [f"[{combination}] {problem}" for problem in problems]
        checked += count
    # Every wire is live in some combination (none of the table is dead).
    live = {
        wire
        for wire in WIRING
        for _, v, _ in rendered_trees
        if v["monitoring_enabled"] and wire.when(v)
    }
    assert live == set(WIRING), f"wires no combination uses: {set(WIRING) - live}"
    assert checked > len(WIRING)
    assert not failures, "\n".join(failures)


def test_every_job_alert_selects_the_chart_job(
    rendered_trees: list[tuple[str, dict, Path]],
) -> None:
    failures, checked = [], 0
    for combination, values, tree in rendered_trees:
        problems, count = job_problems(values, tree)
        failures += [f"[{combination}] {problem}" for problem in problems]
        checked += count
    assert checked >= len(JOBS), "no combination rendered the alerts"
    assert not failures, "\n".join(failures)


# Envoy Gateway v1.5.3 (cluster-template's pin), internal/infrastructure/kubernetes/proxy/
# resource.go: EnvoyAppLabel() on every proxy pod, and the stats port named "metrics" (19001).
ENVOY_PROXY_LABELS = {
    "app.kubernetes.io/name": "envoy",
    "app.kubernetes.io/component": "proxy",
    "app.kubernetes.io/managed-by": "envoy-gateway",
}
POD_SCRAPE_KIND = {"victoriametrics": "VMPodScrape", "prometheus": "PodMonitor"}
STACK_CHART = {
    "victoriametrics": "victoria-metrics-k8s-stack",
    "prometheus": "kube-prometheus-stack",
}
EXTRA_OBJECTS = {"victoriametrics": "extraObjects", "prometheus": "extraManifests"}


@pytest.mark.parametrize("stack", ["victoriametrics", "prometheus"])
def test_envoy_gateway_proxies_are_scraped_under_the_job_their_alert_reads(
    stack: str, tmp_path: Path
) -> None:
    """EnvoyGatewayDown's absent(up{job=...}) fired forever while nothing scraped the proxies
    under that job: the stack's release now ships the scrape, and the alert reads its job."""
    tree = render_pack(tmp_path, cluster_values(monitoring_enabled=True, monitoring_stack=stack))
    (release,) = [r for r in helm_releases(tree) if r.chart == STACK_CHART[stack]]
    scrapes = {
        obj["metadata"]["name"]: obj
        for obj in release.values.get(EXTRA_OBJECTS[stack], [])
        if obj.get("kind") == POD_SCRAPE_KIND[stack]
    }
    assert set(scrapes) == {"flux-system", "envoy-proxy"}, sorted(scrapes)
    envoy = scrapes["envoy-proxy"]
    assert envoy["spec"]["namespaceSelector"] == {"any": True}
    assert envoy["spec"]["selector"] == {"matchLabels": ENVOY_PROXY_LABELS}
    assert envoy["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/stats/prometheus"}
    ]
    assert "jobLabel" not in envoy["spec"]
    job = f"{envoy['metadata']['namespace']}/{envoy['metadata']['name']}"  # VM_POD_SCRAPE
    assert selects(up_job_matchers(alert_expressions(tree)["EnvoyGatewayDown"]), job)


def test_the_contract_ports_are_the_pinned_chart_defaults() -> None:
    """Each contract port is its key's default in the pinned release (the render overrides none
    of them), so the contract says what the chart itself serves."""
    for wire in WIRING:
        default = chart_defaults(wire.chart, PINNED_RELEASES[wire.chart])[wire.port_key]
        assert int(str(default).rsplit(":", 1)[-1]) == wire.port, wire


def test_a_moved_port_or_a_wrong_job_is_caught(tmp_path: Path) -> None:
    """The checks fail on the audit's findings: Tempo on 3100, vmsingle on 8429, job coredns."""
    values = cluster_values(monitoring_enabled=True, loki_enabled=True, tracing_enabled=True)
    tree = render_pack(tmp_path, values)
    assert wiring_problems(values, tree)[0] == []
    for path in tree.rglob("helmrelease.yaml"):
        text = path.read_text()
        text = text.replace("tempo.monitoring.svc:3200", "tempo.monitoring.svc:3100")
        vmsingle = "    vmsingle:\n      enabled: true\n      spec:\n"
        text = text.replace(vmsingle, vmsingle + '        port: "8429"\n')
        path.write_text(text)
    helm_releases.cache_clear()
    problems = "\n".join(wiring_problems(values, tree)[0])
    assert "renders 'http://tempo.monitoring.svc:3100'" in problems
    assert "victoria-metrics-k8s-stack serves on 8429" in problems
    assert not selects(up_job_matchers('absent(up{job=~".*coredns.*"} == 1)'), "core-dns")
    assert selects(up_job_matchers('absent(up{job="core-dns"} == 1)'), "core-dns")


def sidecar_folder(stack: Release) -> str:
    """Where Grafana mounts the dashboard sidecar's emptyDir: the render's value, else the stack
    chart's default for its grafana subchart, else the grafana chart's own default."""
    key = "grafana.sidecar.dashboards.folder"
    rendered = lookup(stack.values, tuple(key.split(".")), None)
    if rendered is not None:
        return str(rendered)
    parent = chart_defaults(stack.chart, stack.version)
    if key in parent:
        return str(parent[key])
    grafana = SUBCHARTS[(stack.chart, stack.version)]["grafana"]
    return str(chart_defaults("grafana", grafana)["sidecar.dashboards.folder"])


def dashboard_problems(tree: Path) -> list[str]:
    """Dashboard providers whose files the sidecar's emptyDir hides (audit finding 4), and a
    Tempo datasource that queries span metrics or a service graph no processor produces (3)."""
    releases = {release.chart: release for release in helm_releases(tree)}
    stack = releases.get("victoria-metrics-k8s-stack") or releases.get("kube-prometheus-stack")
    if stack is None:
        return []
    problems = []
    folder = sidecar_folder(stack).rstrip("/")
    providers = lookup(stack.values, ("grafana", "dashboardProviders"), {}) or {}
    for provider_file in providers.values():
        for provider in provider_file.get("providers", []):
            path = str(provider["options"]["path"])
            if path == folder or path.startswith(folder + "/"):
                problems.append(
                    f"provider {provider['name']}: {path} is under the sidecar's {folder}"
                )
    tempo = releases.get("tempo")
    if tempo is not None:
        wanted = {"span-metrics", "service-graphs"}
        key = ("tempo", "overrides", "defaults", "metrics_generator", "processors")
        missing = wanted - set(lookup(tempo.values, key, None) or [])
        if missing:
            problems.append(f"Tempo's metrics generator runs no {sorted(missing)}")
    return problems


def test_no_dashboard_or_span_metric_is_left_out(
    rendered_trees: list[tuple[str, dict, Path]],
) -> None:
    failures = [
        f"[{combination}] {problem}"
        for combination, values, tree in rendered_trees
        if values["monitoring_enabled"]
        for problem in dashboard_problems(tree)
    ]
    assert not failures, "\n".join(failures)


def test_the_audit_findings_on_dashboards_and_span_metrics_are_caught(tmp_path: Path) -> None:
    """Without the folder override, VictoriaMetrics' default hides the downloaded dashboards;
    without the overrides, Tempo produces no span metrics."""
    values = cluster_values(monitoring_enabled=True, tracing_enabled=True)
    tree = render_pack(tmp_path, values)
    assert dashboard_problems(tree) == []
    for path in tree.rglob("helmrelease.yaml"):
        text = path.read_text().replace("          folder: /tmp/dashboards\n", "")
        path.write_text(text.replace("              - span-metrics\n", ""))
    helm_releases.cache_clear()
    problems = "\n".join(dashboard_problems(tree))
    assert "/var/lib/grafana/dashboards/gitops is under the sidecar's" in problems
    assert "runs no ['span-metrics']" in problems
