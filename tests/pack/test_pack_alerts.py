"""The infrastructure alerts: present with either metrics stack and absent when switched off, all
33 of the guide's alerts complete, `promtool check rules` clean, and `promtool test rules` unit
tests proving each threshold alert fires just above its threshold from cluster.yaml and stays quiet
just below it, and that the Flux alerts (kube-state-metrics' gotk_resource_info) and the CoreDNS
alerts (each stack's CoreDNS job) fire when, and only when, they should.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.pack import (
    all_valid_combinations,
    cached_render,
    cluster_values,
    combination_id,
    render_pack,
)

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: much faster
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")

# The guide's table (Part 5): 33 alerts in 10 categories.
GUIDE_ALERTS = {
    "NodeDown",
    "NodeMemoryHighUtilization",
    "NodeCPUHighUtilization",
    "NodeFilesystemSpaceFillingUp",
    "NodeFilesystemAlmostOutOfSpace",
    "KubeAPIDown",
    "KubeAPILatencyHigh",
    "KubeControllerManagerDown",
    "KubeSchedulerDown",
    "etcdMemberUnhealthy",
    "etcdNoLeader",
    "etcdHighCommitDurations",
    "etcdHighFsyncDurations",
    "CiliumAgentDown",
    "CiliumEndpointNotReady",
    "CiliumPolicyImportErrors",
    "CoreDNSDown",
    "CoreDNSHighErrorRate",
    "CoreDNSHighLatency",
    "EnvoyGatewayDown",
    "EnvoyHighErrorRate",
    "EnvoyHighLatency",
    "CertificateExpiringSoon",
    "CertificateExpiryCritical",
    "CertificateNotReady",
    "FluxReconciliationFailure",
    "FluxSuspended",
    "FluxSourceNotReady",
    "KubePodCrashLooping",
    "KubePodNotReady",
    "KubeDeploymentReplicasMismatch",
    "PersistentVolumeFillingUp",
    "PersistentVolumeAlmostFull",
}

# Non-default thresholds, so a hard-coded 90 in a template cannot pass.
THRESHOLDS = {
    "node_memory_threshold": 83,
    "node_cpu_threshold": 77,
    "node_filesystem_threshold": 86,
    "pv_usage_threshold": 88,
}
MARGIN = 0.5  # percentage points either side of a threshold
INTERVAL_SECONDS = 60


@cache
def prometheus_rules(tree: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file, document) of every PrometheusRule in the tree."""
    found = []
    for path in sorted(tree.rglob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=SafeLoader):
            if isinstance(doc, dict) and doc.get("kind") == "PrometheusRule":
                found.append((path.relative_to(tree).as_posix(), doc))
    return found


def alert_rules(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["alert"]: r
        for group in rule["spec"]["groups"]
        for r in group.get("rules", [])
        if "alert" in r
    }


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None, "promtool is required: run .ci/run or apt-get install prometheus"
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def seconds(duration: str) -> int:
    """A Prometheus duration such as '15m' or '1h30m' in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return int(sum(int(n) * units[u] for n, u in parts))


@pytest.fixture(scope="module")
def rendered_trees(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict, Path]]:
    return [
        (combination_id(values), values, cached_render(tmp_path_factory, values))
        for values in all_valid_combinations()
    ]


def test_alerts_follow_their_switches(rendered_trees: list[tuple[str, dict, Path]]) -> None:
    failures = []
    for combination, values, tree in rendered_trees:
        rules = prometheus_rules(tree)
        wanted = int(values["monitoring_enabled"] and values["monitoring_alerts_enabled"])
        if len(rules) != wanted:
            failures.append(
                f"[{combination}] {len(rules)} PrometheusRule(s), expected {wanted}: "
                f"{[file for file, _ in rules]}"
            )
    assert not failures, "\n".join(failures)


def test_every_guide_alert_is_complete(rendered_trees: list[tuple[str, dict, Path]]) -> None:
    failures = []
    for combination, _values, tree in rendered_trees:
        for file, rule in prometheus_rules(tree):
            alerts = alert_rules(rule)
            missing = sorted(GUIDE_ALERTS - alerts.keys())
            if missing:
                failures.append(f"[{combination}] {file}: missing alerts {missing}")
            for name, alert in alerts.items():
                lacks = [
                    what
                    for what, present in (
                        ("severity", (alert.get("labels") or {}).get("severity")),
                        ("for", alert.get("for")),
                        ("summary", (alert.get("annotations") or {}).get("summary")),
                        ("description", (alert.get("annotations") or {}).get("description")),
                    )
                    if not present
                ]
                if lacks:
                    failures.append(f"[{combination}] {file}: {name} has no {', '.join(lacks)}")
    assert not failures, "\n".join(failures[:40])


def test_promtool_check_rules(rendered_trees: list[tuple[str, dict, Path]], tmp_path: Path) -> None:
    """`promtool check rules` on the PrometheusRule's spec, once per distinct rule set."""
    checked: dict[str, str] = {}
    for combination, _values, tree in rendered_trees:
        for file, rule in prometheus_rules(tree):
            text = yaml.safe_dump(rule["spec"], sort_keys=False)
            digest = hashlib.sha256(text.encode()).hexdigest()
            if digest in checked:
                continue
            (tmp_path / f"{digest}.yaml").write_text(text)
            result = promtool("check", "rules", f"{digest}.yaml", cwd=tmp_path)
            assert result.returncode == 0, (
                f"[{combination}] {file}: promtool check rules failed:\n"
                f"{result.stdout}{result.stderr}"
            )
            checked[digest] = combination
    assert checked, "no combination rendered a PrometheusRule"


# --- threshold unit tests ------------------------------------------------------------------------

Series = list[dict[str, str]]
NODE = 'instance="node-1:9100",job="node-exporter"'


def constant(value: float, samples: int) -> str:
    return f"{value:g}+0x{samples}"


def memory_series(used_percent: float, samples: int) -> Series:
    total = 10_000_000
    available = total * (100 - used_percent) / 100
    return [
        {"series": f"node_memory_MemTotal_bytes{{{NODE}}}", "values": constant(total, samples)},
        {
            "series": f"node_memory_MemAvailable_bytes{{{NODE}}}",
            "values": constant(available, samples),
        },
    ]


def cpu_series(used_percent: float, samples: int) -> Series:
    """Two CPUs, counters growing so that the busy share of each second is `used_percent`."""
    series = []
    for cpu in ("0", "1"):
        idle = INTERVAL_SECONDS * (100 - used_percent) / 100
        busy = INTERVAL_SECONDS * used_percent / 100
        series.append(
            {
                "series": f'node_cpu_seconds_total{{{NODE},cpu="{cpu}",mode="idle"}}',
                "values": f"0+{idle:g}x{samples}",
            }
        )
        series.append(
            {
                "series": f'node_cpu_seconds_total{{{NODE},cpu="{cpu}",mode="user"}}',
                "values": f"0+{busy:g}x{samples}",
            }
        )
    return series


def filesystem_series(used_percent: float, samples: int) -> Series:
    size = 10_000_000
    labels = f'{NODE},device="/dev/sda1",fstype="ext4",mountpoint="/"'
    return [
        {"series": f"node_filesystem_size_bytes{{{labels}}}", "values": constant(size, samples)},
        {
            "series": f"node_filesystem_avail_bytes{{{labels}}}",
            "values": constant(size * (100 - used_percent) / 100, samples),
        },
        {
            "series": f"node_filesystem_free_bytes{{{labels}}}",
            "values": constant(size * (100 - used_percent) / 100, samples),
        },
        {"series": f"node_filesystem_readonly{{{labels}}}", "values": constant(0, samples)},
    ]


def volume_series(used_percent: float, samples: int) -> Series:
    capacity = 10_000_000
    labels = 'job="kubelet",namespace="monitoring",persistentvolumeclaim="data"'
    used = capacity * used_percent / 100
    return [
        {
            "series": f"kubelet_volume_stats_capacity_bytes{{{labels}}}",
            "values": constant(capacity, samples),
        },
        {
            "series": f"kubelet_volume_stats_available_bytes{{{labels}}}",
            "values": constant(capacity - used, samples),
        },
        {
            "series": f"kubelet_volume_stats_used_bytes{{{labels}}}",
            "values": constant(used, samples),
        },
    ]


# alert → (cluster.yaml threshold variable, series builder for a given utilisation percentage)
THRESHOLD_ALERTS: dict[str, tuple[str, Callable[[float, int], Series]]] = {
    "NodeMemoryHighUtilization": ("node_memory_threshold", memory_series),
    "NodeCPUHighUtilization": ("node_cpu_threshold", cpu_series),
    "NodeFilesystemAlmostOutOfSpace": ("node_filesystem_threshold", filesystem_series),
    "PersistentVolumeAlmostFull": ("pv_usage_threshold", volume_series),
}

# Certificate alerts have the guide's fixed thresholds (days left), not cluster.yaml variables.
CERTIFICATE_ALERTS = {"CertificateExpiringSoon": 7, "CertificateExpiryCritical": 1}


def certificate_series(days_left_at_start: float, samples: int) -> Series:
    labels = 'name="wildcard",namespace="network",issuer_name="letsencrypt-production"'
    expiry = days_left_at_start * 86400  # promtool's clock starts at 0
    return [
        {
            "series": f"certmanager_certificate_expiration_timestamp_seconds{{{labels}}}",
            "values": constant(expiry, samples),
        }
    ]


def firing_count(alert: str) -> str:
    return f'count(ALERTS{{alertname="{alert}",alertstate="firing"}}) or vector(0)'


def unit_test(
    name: str, alert: str, series: Series, eval_seconds: int, fires: bool
) -> dict[str, Any]:
    eval_time = f"{eval_seconds}s"
    test: dict[str, Any] = {
        "name": name,
        "interval": f"{INTERVAL_SECONDS}s",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": firing_count(alert),
                "eval_time": eval_time,
                "exp_samples": [{"labels": "{}", "value": int(fires)}],
            }
        ],
    }
    if not fires:
        test["alert_rule_test"] = [{"eval_time": eval_time, "alertname": alert, "exp_alerts": []}]
    return test


def threshold_tests(
    alerts: dict[str, dict[str, Any]], values: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """promtool unit tests: each threshold alert just above and just below its threshold, held
    past its `for` duration. The thresholds come from the cluster.yaml values."""
    tests = []
    for alert, (variable, build) in THRESHOLD_ALERTS.items():
        eval_seconds = seconds(alerts[alert].get("for", "0s")) + 10 * INTERVAL_SECONDS
        samples = eval_seconds // INTERVAL_SECONDS + 10
        threshold = values[variable]
        for used, fires in ((threshold + MARGIN, True), (threshold - MARGIN, False)):
            name = f"{alert} at {used}% ({variable}={threshold}) {'fires' if fires else 'quiet'}"
            tests.append(unit_test(name, alert, build(used, samples), eval_seconds, fires))
    for alert, days in CERTIFICATE_ALERTS.items():
        eval_seconds = seconds(alerts[alert].get("for", "0s")) + 10 * INTERVAL_SECONDS
        samples = eval_seconds // INTERVAL_SECONDS + 10
        hour = 3600 / 86400
        # Fires: under `days` left from the start. Quiet: still over `days` left at eval time.
        cases = ((days - hour, True), (days + hour + eval_seconds / 86400, False))
        for days_left, fires in cases:
            name = f"{alert} with {days_left:.3f} days left {'fires' if fires else 'quiet'}"
            tests.append(
                unit_test(name, alert, certificate_series(days_left, samples), eval_seconds, fires)
            )
    return tests


@pytest.mark.parametrize("stack", ["victoriametrics", "prometheus"])
def test_threshold_alerts_fire_just_above_and_not_below(stack: str, tmp_path: Path) -> None:
    values = cluster_values(
        monitoring_enabled=True,
        monitoring_stack=stack,
        monitoring_alerts_enabled=True,
        **THRESHOLDS,
    )
    (tmp_path / "render").mkdir()
    rules = prometheus_rules(render_pack(tmp_path / "render", values))
    assert len(rules) == 1, f"expected one PrometheusRule, found {[f for f, _ in rules]}"
    file, rule = rules[0]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    unit_tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": f"{INTERVAL_SECONDS}s",
        "tests": threshold_tests(alert_rules(rule), values),
    }
    # Kept next to the rules so a failure can be rerun by hand: promtool test rules tests.yaml
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(unit_tests, sort_keys=False))
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, (
        f"{file}: promtool test rules failed (files in {tmp_path}):\n{result.stdout}{result.stderr}"
    )


def test_unit_tests_catch_a_hard_coded_threshold(tmp_path: Path) -> None:
    """The generated tests must fail against a rule that ignores cluster.yaml's threshold."""
    rule = {
        "groups": [
            {
                "name": "nodes",
                "rules": [
                    {
                        "alert": "NodeMemoryHighUtilization",
                        "expr": "(1 - node_memory_MemAvailable_bytes"
                        " / node_memory_MemTotal_bytes) * 100 > 90",
                        "for": "15m",
                        "labels": {"severity": "critical"},
                    }
                ],
            }
        ]
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule))
    alert = rule["groups"][0]["rules"][0]
    tests = [
        t
        for t in threshold_tests(
            {
                **{name: {"for": "5m"} for name in [*THRESHOLD_ALERTS, *CERTIFICATE_ALERTS]},
                "NodeMemoryHighUtilization": alert,
            },
            {**THRESHOLDS},
        )
        if t["name"].startswith("NodeMemoryHighUtilization")
    ]
    (tmp_path / "tests.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "60s", "tests": tests})
    )
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


# --- Flux and CoreDNS unit tests ----------------------------------------------------------------


def firing_with(alert: str, labels: Mapping[str, str]) -> str:
    """How many firing alerts named `alert` carry `labels` (0 when none)."""
    matchers = "".join(f',{name}="{value}"' for name, value in labels.items())
    return f'count(ALERTS{{alertname="{alert}",alertstate="firing"{matchers}}}) or vector(0)'


def series_test(
    name: str, series: Series, eval_seconds: int, expected: dict[str, int]
) -> dict[str, Any]:
    """A promtool test: at `eval_seconds`, each expression in `expected` has that value."""
    return {
        "name": name,
        "interval": f"{INTERVAL_SECONDS}s",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": expr,
                "eval_time": f"{eval_seconds}s",
                "exp_samples": [{"labels": "{}", "value": value}],
            }
            for expr, value in expected.items()
        ],
    }


def flux_info(kind: str, name: str, ready: str, suspended: str, samples: int) -> Series:
    """kube-state-metrics' gotk_resource_info for one Flux object, as the stack configures it."""
    labels = (
        f'customresource_group="x",customresource_kind="{kind}",customresource_version="v1",'
        f'exported_namespace="flux-system",name="{name}",ready="{ready}",suspended="{suspended}"'
    )
    return [{"series": f"gotk_resource_info{{{labels}}}", "values": constant(1, samples)}]


def flux_tests(alerts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """A failing Kustomization, a failing OCIRepository and a suspended HelmRelease each raise
    their alert (with the object's kind and name) past `for`; healthy objects raise none."""
    wait = max(seconds(alerts[a]["for"]) for a in ("FluxReconciliationFailure", "FluxSuspended"))
    eval_seconds = wait + 5 * INTERVAL_SECONDS
    samples = eval_seconds // INTERVAL_SECONDS + 5
    broken = [
        *flux_info("Kustomization", "apps", "False", "false", samples),
        *flux_info("OCIRepository", "loki", "False", "false", samples),
        *flux_info("HelmRelease", "tempo", "True", "true", samples),
        *flux_info("GitRepository", "flux-system", "True", "false", samples),
    ]
    healthy = [
        *flux_info("Kustomization", "apps", "True", "false", samples),
        *flux_info("OCIRepository", "loki", "True", "false", samples),
        *flux_info("HelmRelease", "tempo", "True", "false", samples),
    ]
    kustomization = {"customresource_kind": "Kustomization", "name": "apps"}
    oci = {"customresource_kind": "OCIRepository", "name": "loki"}
    release = {"customresource_kind": "HelmRelease", "name": "tempo"}
    return [
        series_test(
            "Flux objects not Ready or suspended raise their alerts",
            broken,
            eval_seconds,
            {
                firing_with("FluxReconciliationFailure", kustomization): 1,
                firing_with("FluxReconciliationFailure", oci): 1,
                firing_with("FluxReconciliationFailure", {}): 2,
                firing_with("FluxSourceNotReady", oci): 1,
                firing_with("FluxSourceNotReady", {}): 1,
                firing_with("FluxSuspended", release): 1,
                firing_with("FluxSuspended", {}): 1,
            },
        ),
        series_test(
            "Ready, running Flux objects raise nothing",
            healthy,
            eval_seconds,
            {
                firing_with(a, {}): 0
                for a in ("FluxReconciliationFailure", "FluxSourceNotReady", "FluxSuspended")
            },
        ),
    ]


# The CoreDNS scrape job each stack's chart names (see tests/pack/test_pack_wiring.py JOBS).
COREDNS_JOB = {"victoriametrics": "core-dns", "prometheus": "coredns"}


def target_down_tests(
    alerts: dict[str, dict[str, Any]], alert: str, what: str, target: str
) -> list[dict[str, Any]]:
    """An absent(up{...} == 1) alert: quiet while the `target` series is up, fires once it is
    down or gone."""
    eval_seconds = seconds(alerts[alert]["for"]) + 5 * INTERVAL_SECONDS
    samples = eval_seconds // INTERVAL_SECONDS + 5
    firing = firing_with(alert, {})
    up, down = constant(1, samples), constant(0, samples)
    return [
        series_test(f"{what} up: {alert} quiet", [{"series": target, "values": up}],
                    eval_seconds, {firing: 0}),
        series_test(f"{what} down: {alert} fires", [{"series": target, "values": down}],
                    eval_seconds, {firing: 1}),
        series_test(f"no {what} target: {alert} fires", [], eval_seconds, {firing: 1}),
    ]  # fmt: skip


def coredns_tests(alerts: dict[str, dict[str, Any]], stack: str) -> list[dict[str, Any]]:
    """CoreDNSDown stays quiet while the stack's CoreDNS job is up and fires once it is down or
    gone; CoreDNSHighErrorRate fires at 10% SERVFAIL and not at 1%."""
    target = f'up{{job="{COREDNS_JOB[stack]}",instance="10.244.0.10:9153"}}'
    tests = target_down_tests(alerts, "CoreDNSDown", "CoreDNS", target)
    error_seconds = seconds(alerts["CoreDNSHighErrorRate"]["for"]) + 10 * INTERVAL_SECONDS
    error_samples = error_seconds // INTERVAL_SECONDS + 5
    for servfail_percent, fires in ((10, True), (1, False)):
        responses = 'coredns_dns_responses_total{{job="{job}",rcode="{rcode}"}}'
        series = [
            {
                "series": responses.format(job=COREDNS_JOB[stack], rcode="SERVFAIL"),
                "values": f"0+{servfail_percent}x{error_samples}",
            },
            {
                "series": responses.format(job=COREDNS_JOB[stack], rcode="NOERROR"),
                "values": f"0+{100 - servfail_percent}x{error_samples}",
            },
        ]
        verdict = "fires" if fires else "quiet"
        tests.append(
            series_test(
                f"{servfail_percent}% SERVFAIL: CoreDNSHighErrorRate {verdict}",
                series,
                error_seconds,
                {firing_with("CoreDNSHighErrorRate", {}): int(fires)},
            )
        )
    return tests


def etcd_tests(alerts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """etcdMemberUnhealthy: quiet for a member that is up, probed or not (its health counters
    only count requests to /health); fires for a member down or failing health checks."""
    eval_seconds = seconds(alerts["etcdMemberUnhealthy"]["for"]) + 10 * INTERVAL_SECONDS
    samples = eval_seconds // INTERVAL_SECONDS + 5
    member = 'job="kube-etcd",instance="192.168.1.10:2381"'

    def series(up: int, successes: str, failures: str) -> Series:
        scraped = [{"series": f"up{{{member}}}", "values": constant(up, samples)}]
        if up:  # a member that is down has no etcd_* series, only its target's up == 0
            scraped += [
                {"series": f"etcd_server_health_success{{{member}}}", "values": successes},
                {"series": f"etcd_server_health_failures{{{member}}}", "values": failures},
            ]
        return scraped

    unhealthy = firing_with("etcdMemberUnhealthy", {})
    never, growing = constant(0, samples), f"0+2x{samples}"
    return [
        series_test("member up, never probed: quiet", series(1, never, never), eval_seconds,
                    {unhealthy: 0}),
        series_test("member up, passing probes: quiet", series(1, growing, never), eval_seconds,
                    {unhealthy: 0}),
        series_test("member down: fires", series(0, never, never), eval_seconds, {unhealthy: 1}),
        series_test("member failing probes: fires", series(1, never, growing), eval_seconds,
                    {unhealthy: 1}),
    ]  # fmt: skip


def envoy_tests(alerts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """EnvoyGatewayDown: quiet while a proxy of the pack's envoy-proxy pod scrape is up, fires
    once none is (down, or no proxy found at all)."""
    proxy = 'up{job="monitoring/envoy-proxy",instance="10.244.1.7:19001"}'
    return target_down_tests(alerts, "EnvoyGatewayDown", "Envoy proxy", proxy)


@pytest.mark.parametrize("stack", ["victoriametrics", "prometheus"])
def test_flux_coredns_etcd_and_envoy_alerts_fire_when_they_should(
    stack: str, tmp_path: Path
) -> None:
    values = cluster_values(monitoring_enabled=True, monitoring_stack=stack)
    (tmp_path / "render").mkdir()
    ((file, rule),) = prometheus_rules(render_pack(tmp_path / "render", values))
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    alerts = alert_rules(rule)
    unit_tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": f"{INTERVAL_SECONDS}s",
        "tests": [
            *flux_tests(alerts),
            *coredns_tests(alerts, stack),
            *etcd_tests(alerts),
            *envoy_tests(alerts),
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(unit_tests, sort_keys=False))
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, (
        f"{file}: promtool test rules failed (files in {tmp_path}):\n{result.stdout}{result.stderr}"
    )


def test_the_old_flux_coredns_and_etcd_rules_fail_these_tests(tmp_path: Path) -> None:
    """The rules the audit found dead (gotk_reconcile_condition, job=~".*coredns.*" under
    VictoriaMetrics' core-dns job, the guide's etcd_server_health_success < 1 on a counter)
    fail the same unit tests."""
    by_object = "max by (kind, name, exported_namespace)"
    not_ready = 'gotk_reconcile_condition{type="Ready", status="False"}'
    servfail = 'sum(rate(coredns_dns_responses_total{rcode="SERVFAIL"}[5m]))'
    old = {
        "FluxReconciliationFailure": f"{by_object} ({not_ready}) == 1",
        "FluxSourceNotReady": f"{by_object} ({not_ready}) == 1",
        "FluxSuspended": f"{by_object} (gotk_suspend_status) == 1",
        "CoreDNSDown": 'absent(up{job=~".*coredns.*"} == 1)',
        # unchanged: kept so the same tests run; the error-rate cases must still pass
        "CoreDNSHighErrorRate": f"{servfail} / sum(rate(coredns_dns_responses_total[5m])) > 0.05",
        "etcdMemberUnhealthy": "etcd_server_health_success < 1",  # the guide's, on a counter
    }
    durations = {
        "FluxSuspended": "1h",
        "CoreDNSDown": "2m",
        "CoreDNSHighErrorRate": "5m",
        "etcdMemberUnhealthy": "5m",
    }
    rules = [{"alert": a, "expr": e, "for": durations.get(a, "15m")} for a, e in old.items()]
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "old", "rules": rules}]})
    )
    alerts = {rule["alert"]: rule for rule in rules}
    tests = [*flux_tests(alerts), *coredns_tests(alerts, "victoriametrics")]
    (tmp_path / "tests.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "60s", "tests": tests})
    )
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # promtool names the failing expressions: the Flux alerts never fire, CoreDNSDown always does.
    assert 'alertname=\\"FluxReconciliationFailure\\"' in output
    assert 'alertname=\\"FluxSuspended\\"' in output
    assert 'alertname=\\"CoreDNSDown\\"' in output
    assert "CoreDNSHighErrorRate" not in output
    # The guide's etcd rule fires for a member nobody probes (expected 0, got 1) and stays
    # quiet for one that is down (expected 1, got 0); the other two cases pass.
    (tmp_path / "etcd.yaml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yaml"],
                "evaluation_interval": "60s",
                "tests": etcd_tests(alerts),
            }
        )
    )
    etcd = promtool("test", "rules", "etcd.yaml", cwd=tmp_path)
    etcd_output = etcd.stdout + etcd.stderr
    assert etcd.returncode != 0
    assert etcd_output.count("expr:") == 2, etcd_output  # two of the four cases fail
    assert re.search(r"exp: \{\} 0E\+00\s+got: \{\} 1E\+00", etcd_output), etcd_output
    assert re.search(r"exp: \{\} 1E\+00\s+got: \{\} 0E\+00", etcd_output), etcd_output


# --- Alertmanager routing ------------------------------------------------------------------------

# Stand-ins for the secrets Flux substitutes from the cluster-secrets Secret.
FLUX_SECRETS = {
    "${SLACK_WEBHOOK_URL}": "https://hooks.slack.com/services/T000/B000/XXXX",
    "${PAGERDUTY_ROUTING_KEY}": "0123456789abcdef0123456789abcdef",
}


def alertmanager_config(tree: Path) -> dict[str, Any]:
    """The Alertmanager configuration the metrics stack's HelmRelease carries."""
    for path in sorted(tree.rglob("helmrelease.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=SafeLoader):
            config = (((doc or {}).get("spec") or {}).get("values") or {}).get("alertmanager")
            if config and config.get("config"):
                return config["config"]
    raise AssertionError("no HelmRelease carries alertmanager.config")


def amtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert AMTOOL is not None, (
        "amtool is required: run .ci/run or apt-get install prometheus-alertmanager"
    )
    return subprocess.run([AMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("stack", ["victoriametrics", "prometheus"])
@pytest.mark.parametrize(
    ("slack", "pagerduty"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_alertmanager_routes_to_the_enabled_receivers(
    stack: str, slack: bool, pagerduty: bool, tmp_path: Path
) -> None:
    """`amtool check-config` accepts the configuration, and `amtool config routes test` sends a
    critical alert to PagerDuty and Slack, a warning to Slack, and the Watchdog to 'null'. The
    receivers' secrets are Flux variables from cluster-secrets, never values from cluster.yaml."""
    values = cluster_values(
        monitoring_enabled=True,
        monitoring_stack=stack,
        alertmanager_slack_enabled=slack,
        alertmanager_pagerduty_enabled=pagerduty,
    )
    (tmp_path / "render").mkdir()
    config = alertmanager_config(render_pack(tmp_path / "render", values))
    text = yaml.safe_dump(config, sort_keys=False)
    for variable, stand_in in FLUX_SECRETS.items():
        wanted = slack if "SLACK" in variable else pagerduty
        assert (variable in text) is wanted, f"{variable} in the Alertmanager config: {text}"
        text = text.replace(variable, stand_in)
    (tmp_path / "alertmanager.yaml").write_text(text)
    checked = amtool("check-config", "alertmanager.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def receivers(*labels: str) -> set[str]:
        routed = amtool(
            "config", "routes", "test", "--config.file=alertmanager.yaml", *labels, cwd=tmp_path
        )
        assert routed.returncode == 0, routed.stdout + routed.stderr
        return set(routed.stdout.strip().split(","))

    nowhere = {"null"}
    critical = ({"pagerduty"} if pagerduty else set()) | ({"slack"} if slack else set())
    assert receivers("alertname=NodeDown", "severity=critical") == (critical or nowhere)
    assert receivers("alertname=NodeCPUHighUtilization", "severity=warning") == (
        {"slack"} if slack else nowhere
    )
    assert receivers("alertname=Watchdog", "severity=none") == nowhere
