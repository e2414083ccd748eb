"""Generate a realistic cluster-template-style tree, deterministically from a seed.

At scale 1 the tree has about 340 templates (1.1 MB), a cluster.yaml with about 430 keys, most
files wrapped in feature conditions, cluster-template delimiters, loops, filters, macros,
includes of partials (excluded from the output via exclude_patterns) and a loader plugin,
plus a makejinja.toml that makejinja and makeflux both read the same way.

Two shapes: "bench" (the default; heavy charts, plugin filters in about 40% of the templates)
and "home-ops", shaped like a real home-ops repository: data split over cluster.yaml and a
nodes.yaml of several nodes with dozens of keys each, smaller charts, and plugin filters called
by a handful of templates only.
"""

from __future__ import annotations

import random
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

NAMESPACES_PER_SCALE = 12
APPS_PER_SCALE = 60
GLOBAL_FLAGS = 20
WORDS = [
    "grafana",
    "loki",
    "tempo",
    "mimir",
    "alloy",
    "cilium",
    "coredns",
    "cert-manager",
    "external-dns",
    "ingress",
    "spegel",
    "reloader",
    "flux",
    "echo",
    "whoami",
    "home",
    "media",
    "paperless",
    "immich",
    "gatus",
    "kromgo",
    "cloudflared",
    "volsync",
    "rook",
    "openebs",
    "snapshot",
    "metrics",
    "kube-state",
    "node-exporter",
    "blackbox",
    "smartctl",
    "unpoller",
    "prometheus",
    "alertmanager",
    "vector",
    "fluent-bit",
    "authelia",
    "lldap",
    "dragonfly",
    "postgres",
    "redis",
    "minio",
]
NAMESPACE_WORDS = [
    "observability",
    "network",
    "storage",
    "security",
    "media",
    "home",
    "database",
    "system",
    "tools",
    "default",
    "flux",
    "infra",
]

MAKEJINJA_TOML = """\
[makejinja]
inputs = ["./templates"]
output = "./kubernetes"
exclude_patterns = ["*.partial.yaml.j2"]
data = ["./cluster.yaml"]
import_paths = ["./scripts"]
loaders = ["plugin:Plugin"]
jinja_suffix = ".j2"
force = true
undefined = "chainable"
quiet = true

[makejinja.delimiter]
block_start = "#%"
block_end = "%#"
comment_start = "#|"
comment_end = "#|"
variable_start = "#{"
variable_end = "}#"
"""

# A loader plugin like cluster-template's: extra filters and derived data.
PLUGIN_PY = '''\
"""Bench plugin: cluster-template-style filters and derived data."""

import ipaddress
from pathlib import PurePosixPath

import makejinja


def nthhost(value: str, query: int) -> str:
    network = ipaddress.ip_network(value, strict=False)
    return str(network[query])


def basename(value: str) -> str:
    return PurePosixPath(value).stem


class Plugin(makejinja.plugin.Plugin):
    def __init__(self, data):
        self._data = data

    def data(self):
        controllers = [n for n in self._data.get("nodes", []) if n.get("controller")]
        return {"controller_count": len(controllers)}

    def filters(self):
        return [nthhost, basename]
'''


@dataclass(frozen=True)
class Shape:
    name: str
    chart_lines: tuple[int, int]  # config lines in a HelmRelease
    configmap_lines: tuple[int, int]
    plugin_everywhere: bool  # plugin filters in common expressions (else in a few templates)
    split_data: bool  # nodes in nodes.yaml, beside cluster.yaml


SHAPES = {
    "bench": Shape("bench", (120, 250), (80, 200), plugin_everywhere=True, split_data=False),
    "home-ops": Shape("home-ops", (15, 45), (10, 40), plugin_everywhere=False, split_data=True),
}


@dataclass(frozen=True)
class TreeStats:
    templates: int  # rendered templates (.j2 files that are not partials)
    partials: int
    plain_files: int  # copied verbatim
    template_bytes: int  # all .j2 files, partials included
    data_keys: int  # every key in the data files, nested ones included
    data_nodes: int = 0  # YAML nodes in the data files (mappings, lists and scalars)
    data_files: int = 1


def generate(root: Path, scale: float = 1.0, seed: int = 7, shape: str = "bench") -> TreeStats:
    """Write makejinja.toml, the data, scripts/plugin.py and templates/ under `root`."""
    form = SHAPES[shape]
    rng = random.Random(seed)
    n_namespaces = max(1, round(NAMESPACES_PER_SCALE * scale))
    n_apps = max(2, round(APPS_PER_SCALE * scale))
    namespaces = [_name(NAMESPACE_WORDS, i) for i in range(n_namespaces)]
    apps = [
        {"name": _name(WORDS, i), "namespace": namespaces[rng.randrange(n_namespaces)]}
        for i in range(n_apps)
    ]
    data = _cluster_data(rng, apps)
    root.mkdir(parents=True, exist_ok=True)
    (root / "scripts").mkdir(exist_ok=True)
    (root / "scripts" / "plugin.py").write_text(PLUGIN_PY)
    data_files = {"cluster.yaml": data}
    if form.split_data:
        data["nodes"] = [_rich_node(rng, i) for i in range(max(6, round(6 * scale)))]
        data_files = {"cluster.yaml": data, "nodes.yaml": {"nodes": data.pop("nodes")}}
        for app in data["apps"].values():
            app.update(_app_settings(rng))
    toml = MAKEJINJA_TOML.replace(
        'data = ["./cluster.yaml"]', "data = [" + ", ".join(f'"./{n}"' for n in data_files) + "]"
    )
    (root / "makejinja.toml").write_text(toml)
    for name, content in data_files.items():
        (root / name).write_text(yaml.safe_dump(content, sort_keys=False, width=1000))

    files: dict[str, str] = {}
    files.update(_partials())
    files.update(_components())
    files.update(_flux_files())
    if not form.plugin_everywhere:
        files.update(_network_files())
    for namespace in namespaces:
        members = [a for a in apps if a["namespace"] == namespace]
        files.update(_namespace_files(namespace, members))
    for index, app in enumerate(apps):
        earlier = apps[:index]  # depending only on earlier apps keeps the graph acyclic
        depends = rng.sample(earlier, min(2, len(earlier)))
        files.update(_app_files(rng, app, depends, form))
    templates_dir = root / "templates"
    for relative, text in files.items():
        target = templates_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    j2 = [name for name in files if name.endswith(".j2")]
    partials = [name for name in j2 if name.endswith(".partial.yaml.j2")]
    return TreeStats(
        templates=len(j2) - len(partials),
        partials=len(partials),
        plain_files=len(files) - len(j2),
        template_bytes=sum(len(files[name].encode()) for name in j2),
        data_keys=sum(_count_keys(content) for content in data_files.values()),
        data_nodes=sum(_count_nodes(content) for content in data_files.values()),
        data_files=len(data_files),
    )


def _name(words: tuple[str, ...] | list[str], index: int) -> str:
    word = words[index % len(words)]
    return word if index < len(words) else f"{word}-{index // len(words)}"


def _ident(name: str) -> str:
    return name.replace("-", "_")


def _cluster_data(rng: random.Random, apps: list[dict[str, str]]) -> dict[str, Any]:
    """cluster.yaml: flat settings and feature flags (as cluster-template has), nodes, apps."""
    data: dict[str, Any] = {
        "cluster_name": "bench",
        "cluster_domain": "example.com",
        "timezone": "Europe/Berlin",
        "node_cidr": "10.10.0.0/24",
        "pod_cidr": "10.42.0.0/16",
        "service_cidr": "10.43.0.0/16",
        "cluster_api_addr": "10.10.0.25",
        "cluster_dns_gateway_addr": "10.10.0.26",
        "cluster_gateway_addr": "10.10.0.27",
        "cloudflare_gateway_addr": "10.10.0.28",
        "repository_name": "bench/home-ops",
        "repository_branch": "main",
        "repository_visibility": "public",
        "storage_class": "openebs-hostpath",
        "retention_days": 14,
        "log_level": "info",
        "scrape_interval": "30s",
        "alert_receiver": "pushover",
        "oidc_issuer": "https://auth.example.com",
        "registry_mirror": "mirror.gcr.io",
        "default_memory": "256Mi",
        "default_cpu": "50m",
    }
    for i in range(GLOBAL_FLAGS):
        data[f"feature_{i}_enabled"] = rng.random() < 0.7
    data["tracing_enabled"] = True
    data["observability_enabled"] = True
    data["nodes"] = [_node(rng, i) for i in range(6)]
    for app in apps:
        data[f"{_ident(app['name'])}_enabled"] = rng.random() < 0.8
    data["apps"] = {
        _ident(app["name"]): {
            "version": f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
            "replicas": rng.randint(1, 3),
            "memory": f"{rng.choice([128, 256, 512, 1024])}Mi",
            **({"hostname": app["name"]} if rng.random() < 0.5 else {}),
            **({"storage": f"{rng.choice([1, 5, 10, 50])}Gi"} if rng.random() < 0.5 else {}),
        }
        for app in apps
    }
    return data


def _node(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "name": f"k8s-{i}",
        "address": f"10.10.0.{10 + i}",
        "controller": i < 3,
        "disk": f"/dev/nvme{i % 2}n1",
        "mac_addr": f"aa:bb:cc:dd:ee:{i:02x}",
        "schematic_id": f"{rng.getrandbits(64):016x}",
    }


def _rich_node(rng: random.Random, i: int) -> dict[str, Any]:
    """A node as talhelper-style repositories describe one: dozens of keys, some nested."""
    return {
        **_node(rng, i),
        "mtu": 1500,
        "vlan": 10 + i % 3,
        "gateway": "10.10.0.1",
        "dns": ["10.10.0.1", "1.1.1.1"],
        "ntp": ["time.cloudflare.com"],
        "kernel_args": ["mitigations=off", "apparmor=0", f"net.ifnames={i % 2}"],
        "labels": {f"topology.example.com/{k}": f"{k}-{i % 3}" for k in ("zone", "rack", "row")},
        "taints": [{"key": "dedicated", "value": "ingress", "effect": "NoSchedule"}]
        if i % 4 == 0
        else [],
        "disks": [
            {"device": f"/dev/sd{chr(97 + d)}", "size": f"{rng.choice([256, 512, 1024])}G"}
            for d in range(rng.randint(1, 3))
        ],
        "interfaces": [
            {
                "name": f"enp{n}s0",
                "dhcp": n > 0,
                "addresses": [f"10.1{n}.0.{10 + i}/24"],
                "routes": [{"network": "0.0.0.0/0", "gateway": f"10.1{n}.0.1"}],
            }
            for n in range(2)
        ],
        "secureboot": i % 2 == 0,
        "encrypt_disk": i % 3 == 0,
        "gpu": i == 5,
        "cpu_cores": rng.choice([4, 8, 16]),
        "memory_gb": rng.choice([16, 32, 64]),
        "patches": [f"patches/node-{i}/{name}.yaml" for name in ("kubelet", "network")],
    }


def _app_settings(rng: random.Random) -> dict[str, Any]:
    return {
        "cpu": f"{rng.choice([10, 50, 100, 500])}m",
        "gateway": rng.choice(["internal", "external"]),
        "backup": rng.random() < 0.3,
        "uid": 1000 + rng.randrange(100),
    }


def _count_nodes(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(1 + _count_nodes(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_count_nodes(v) for v in value)
    return 1


def _count_keys(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_count_keys(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_keys(v) for v in value)
    return 0


def _partials() -> dict[str, str]:
    return {
        "partials/labels.partial.yaml.j2": textwrap.dedent("""\
            app.kubernetes.io/name: #{ app_name }#
            app.kubernetes.io/instance: #{ app_name }#
            app.kubernetes.io/part-of: #{ cluster_name }#
            #% if observability_enabled %#
            observability.bench/scrape: "true"
            #% endif %#
            """),
        "partials/macros.partial.yaml.j2": textwrap.dedent("""\
            #% macro resources(app) -%#
            requests:
              cpu: #{ default_cpu }#
              memory: #{ app.memory | default(default_memory) }#
            limits:
              memory: #{ app.memory | default(default_memory) }#
            #%- endmacro %#
            #% macro probes(port) -%#
            liveness: &probes
              enabled: true
              custom: true
              spec:
                httpGet:
                  path: /healthz
                  port: #{ port }#
                initialDelaySeconds: 0
                periodSeconds: 10
                timeoutSeconds: 1
                failureThreshold: 3
            readiness: *probes
            #%- endmacro %#
            """),
    }


def _components() -> dict[str, str]:
    """The kustomize components the namespaces and apps refer to."""
    return {
        f"kubernetes/components/{name}/kustomization.yaml.j2": (
            "---\n"
            "apiVersion: kustomize.config.k8s.io/v1alpha1\n"
            "kind: Component\n"
            "resources:\n"
            f"  - ./{name}.yaml\n"
        )
        for name in ("common", "volsync")
    } | {
        f"kubernetes/components/{name}/{name}.yaml.j2": (
            "---\n"
            "apiVersion: v1\n"
            "kind: ConfigMap\n"
            "metadata:\n"
            f"  name: {name}-settings\n"
            "data:\n"
            "  CLUSTER_NAME: #{ cluster_name }#\n"
            "  TIMEZONE: #{ timezone }#\n"
        )
        for name in ("common", "volsync")
    }


def _flux_files() -> dict[str, str]:
    """The flux-system GitRepository that every Kustomization's sourceRef names."""
    return {
        "kubernetes/flux/namespace.yaml.j2": (
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n"
        ),
        "kubernetes/flux/gitrepository.yaml.j2": (
            "---\n"
            "apiVersion: source.toolkit.fluxcd.io/v1\n"
            "kind: GitRepository\n"
            "metadata:\n"
            "  name: flux-system\n"
            "  namespace: flux-system\n"
            "spec:\n"
            "  interval: 1h\n"
            "  ref:\n"
            "    branch: #{ repository_branch }#\n"
            '  url: "https://github.com/#{ repository_name }#.git"\n'
        ),
        "kubernetes/flux/kustomization.yaml.j2": (
            "---\n"
            "apiVersion: kustomize.config.k8s.io/v1beta1\n"
            "kind: Kustomization\n"
            "resources:\n"
            "  - ./namespace.yaml\n"
            "  - ./gitrepository.yaml\n"
        ),
    }


def _namespace_files(namespace: str, members: list[dict[str, str]]) -> dict[str, str]:
    entries = "\n".join(
        f"  #% if {_ident(a['name'])}_enabled %#\n  - ./{a['name']}/ks.yaml\n  #% endif %#"
        for a in members
    )
    return {
        f"kubernetes/apps/{namespace}/namespace.yaml.j2": textwrap.dedent(f"""\
            ---
            apiVersion: v1
            kind: Namespace
            metadata:
              name: {namespace}
              annotations:
                kustomize.toolkit.fluxcd.io/prune: disabled
                bench/cluster: "#{{ cluster_name }}#"
            """),
        f"kubernetes/apps/{namespace}/kustomization.yaml.j2": (
            "---\n"
            "apiVersion: kustomize.config.k8s.io/v1beta1\n"
            "kind: Kustomization\n"
            f"namespace: {namespace}\n"
            "components:\n"
            "  - ../../components/common\n"
            "resources:\n"
            "  - ./namespace.yaml\n"
            f"{entries}\n"
        ),
    }


def _app_files(
    rng: random.Random, app: dict[str, str], depends: list[dict[str, str]], form: Shape
) -> dict[str, str]:
    name, namespace = app["name"], app["namespace"]
    ident = _ident(name)
    flag = f"{ident}_enabled"
    base = f"kubernetes/apps/{namespace}/{name}"
    extras = [x for x in ("secret", "configmap", "httproute") if rng.random() < 0.45]
    names = {"secret": "secret.sops", "configmap": "configmap", "httproute": "httproute"}
    resources = ["./ocirepository.yaml", "./helmrelease.yaml"]
    resources += [f"./{names[x]}.yaml" for x in extras]
    files = {
        f"{base}/ks.yaml.j2": _wrap(flag, _ks(name, namespace, depends)),
        f"{base}/app/kustomization.yaml.j2": _wrap(flag, _kustomization(resources)),
        f"{base}/app/ocirepository.yaml.j2": _wrap(flag, _ocirepository(name, ident, form)),
        f"{base}/app/helmrelease.yaml.j2": _wrap(flag, _helmrelease(rng, name, ident, form)),
    }
    if "secret" in extras:
        files[f"{base}/app/secret.sops.yaml.j2"] = _wrap(flag, _secret(rng, name))
    if "configmap" in extras:
        files[f"{base}/app/configmap.yaml.j2"] = _wrap(flag, _configmap(rng, name, ident, form))
    if "httproute" in extras:
        files[f"{base}/app/httproute.yaml.j2"] = _httproute(name, ident)  # unconditional
    if rng.random() < 0.1:
        files[f"{base}/app/README.md"] = f"# {name}\n\nCopied verbatim (not a template).\n"
    return files


def _wrap(flag: str, body: str) -> str:
    """Most files are wrapped in a feature condition, as in cluster-template."""
    return f"#% if {flag} %#\n{body}#% endif %#\n"


def _ks(name: str, namespace: str, depends: list[dict[str, str]]) -> str:
    """A Flux Kustomization, depending on the other apps that are enabled."""
    pairs = [(d["name"], d["namespace"], f"{_ident(d['name'])}_enabled") for d in depends]
    any_enabled = " or ".join(flag for _, _, flag in pairs) or "false"
    entries = "\n".join(
        f"    #% if {flag} %#\n    - name: {dep}\n      namespace: {dep_namespace}\n    #% endif %#"
        for dep, dep_namespace, flag in pairs
    )
    return textwrap.dedent(f"""\
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: &app {name}
          namespace: &namespace {namespace}
        spec:
          commonMetadata:
            labels:
              app.kubernetes.io/name: *app
          #% if {any_enabled} %#
          dependsOn:
        {{entries}}
          #% endif %#
          interval: 1h
          path: ./kubernetes/apps/{namespace}/{name}/app
          postBuild:
            substitute:
              APP: *app
              VOLSYNC_CAPACITY: #{{ apps.{_ident(name)}.storage | default("1Gi") }}#
          prune: true
          retryInterval: 2m
          sourceRef:
            kind: GitRepository
            name: flux-system
            namespace: flux-system
          targetNamespace: *namespace
          timeout: 5m
          wait: false
        """).replace("{entries}", entries)


def _kustomization(resources: list[str]) -> str:
    lines = "\n".join(f"  - {r}" for r in resources)
    return (
        "---\n"
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "resources:\n"
        f"{lines}\n"
        "#% if feature_3_enabled %#\n"
        "components:\n"
        "  - ../../../../components/volsync\n"
        "#% endif %#\n"
    )


def _ocirepository(name: str, ident: str, form: Shape) -> str:
    chart = f'#{{ "{name}" | basename }}#' if form.plugin_everywhere else name
    return textwrap.dedent(f"""\
        ---
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: OCIRepository
        metadata:
          name: {name}
        spec:
          interval: 15m
          layerSelector:
            mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
            operation: copy
          ref:
            tag: #{{ apps.{ident}.version }}#
          url: oci://#{{ registry_mirror }}#/bench-charts/{chart}
        """)


def _helmrelease(rng: random.Random, name: str, ident: str, form: Shape) -> str:
    settings = "\n".join(
        _config_line(rng, i, ident, form) for i in range(rng.randint(*form.chart_lines))
    )
    expressions = _ENV_EXPRESSIONS if form.plugin_everywhere else _PLAIN_ENV_EXPRESSIONS
    env_lines = "\n".join(
        f"                      {key}: #{{ {expr} }}#" for key, expr in rng.sample(expressions, k=6)
    )
    return (
        textwrap.dedent(f"""\
        #| {name}: a chart rendered from cluster.yaml #|
        #% import 'partials/macros.partial.yaml.j2' as macros %#
        #% set app = apps.{ident} %#
        #% set app_name = "{name}" %#
        ---
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: {name}
          labels:
            #% filter indent(4, first=true) %#
            #% include 'partials/labels.partial.yaml.j2' %#
            #% endfilter %#
        spec:
          chartRef:
            kind: OCIRepository
            name: {name}
          interval: 1h
          install:
            remediation:
              retries: -1
          upgrade:
            cleanupOnFail: true
            remediation:
              retries: 3
          values:
            replicaCount: #{{ app.replicas }}#
            controllers:
              {name}:
                annotations:
                  reloader.stakater.com/auto: "true"
                containers:
                  app:
                    image:
                      repository: ghcr.io/bench/{name}
                      tag: #{{ app.version }}#
                    env:
{env_lines}
                    probes:
                      #{{ macros.probes(8080) | indent(14) }}#
                    resources:
                      #{{ macros.resources(app) | indent(14) }}#
            defaultPodOptions:
              securityContext:
                runAsNonRoot: true
                runAsUser: 1000
                fsGroup: 1000
              #% if controller_count > 1 %#
              affinity:
                nodeAffinity:
                  preferredDuringSchedulingIgnoredDuringExecution:
                    #% for node in nodes if node.controller %#
                    - weight: #{{ loop.index * 10 }}#
                      preference:
                        matchExpressions:
                          - key: kubernetes.io/hostname
                            operator: In
                            values: ["#{{ node.name }}#"]
                    #% endfor %#
              #% endif %#
            service:
              app:
                ports:
                  http:
                    port: 8080
            route:
              app:
                hostnames: ["#{{ app.hostname | default(app_name) }}#.#{{ cluster_domain }}#"]
                parentRefs:
                  - name: #{{ "internal" if feature_1_enabled else "external" }}#
                    namespace: kube-system
                    sectionName: https
            persistence:
              data:
                #% if app.storage is defined %#
                existingClaim: {name}
                size: #{{ app.storage }}#
                #% else %#
                type: emptyDir
                #% endif %#
            config:
        """)
        + settings
        + "\n"
    )


_ENV_EXPRESSIONS = [
    ("TZ", "timezone"),
    ("LOG_LEVEL", "log_level | upper"),
    ("CLUSTER", "cluster_name | title"),
    ("DOMAIN", "cluster_domain | lower"),
    ("RETENTION", '(retention_days ~ "d") | tojson'),
    ("NODES", 'nodes | map(attribute="name") | join(",") | tojson'),
    ("API", "cluster_api_addr | tojson"),
    ("GATEWAY", "node_cidr | nthhost(1) | tojson"),
    ("OIDC", 'oidc_issuer ~ "/oidc"'),
    ("CONTROLLERS", "controller_count"),
    ("SCRAPE", "scrape_interval | tojson"),
    ("STORAGE", "storage_class | replace('-', '_') | upper"),
]


_PLAIN_ENV_EXPRESSIONS = [e for e in _ENV_EXPRESSIONS if "nthhost" not in e[1]]


def _config_line(rng: random.Random, index: int, ident: str, form: Shape) -> str:
    """One line of a chart's values: mostly literal, some interpolated, some conditional."""
    indent = " " * 6
    choice = rng.random()
    key = f"setting_{index:03d}"
    if choice < 0.55:
        number, token = str(rng.randint(1, 10_000)), f'"{rng.getrandbits(48):012x}"'
        value = rng.choice(["true", "false", number, token])
        return f"{indent}{key}: {value}"
    if choice < 0.75:
        expr = rng.choice(
            [
                "cluster_name",
                f"apps.{ident}.replicas * 2",
                f"apps.{ident}.memory | default(default_memory)",
                '"%s-%03d" | format(cluster_name, ' + str(index) + ")",
                "retention_days + " + str(index),
                "service_cidr | nthhost(10)" if form.plugin_everywhere else "service_cidr",
            ]
        )
        return f"{indent}{key}: #{{ {expr} }}#"
    if choice < 0.9:
        flag = f"feature_{rng.randrange(GLOBAL_FLAGS)}_enabled"
        return (
            f"{indent}#% if {flag} %#\n"
            f"{indent}{key}: enabled-{index}\n"
            f"{indent}#% else %#\n"
            f"{indent}{key}: disabled-{index}\n"
            f"{indent}#% endif %#"
        )
    return (
        f"{indent}{key}:\n"
        f"{indent}#% for node in nodes %#\n"
        f"{indent}  - #{{ node.name }}#=#{{ node.address }}#:#{{ 9000 + loop.index0 }}#\n"
        f"{indent}#% endfor %#"
    )


def _secret(rng: random.Random, name: str) -> str:
    lines = "\n".join(
        f"  KEY_{i:02d}: ENC[AES256_GCM,data:{rng.getrandbits(256):064x},type:str]"
        for i in range(rng.randint(4, 12))
    )
    return (
        "---\n"
        "apiVersion: v1\n"
        "kind: Secret\n"
        "metadata:\n"
        f"  name: {name}-secret\n"
        "stringData:\n"
        f"{lines}\n"
        "  CLUSTER: #{ cluster_name }#\n"
    )


def _configmap(rng: random.Random, name: str, ident: str, form: Shape) -> str:
    body = "\n".join(
        _config_line(rng, i, ident, form) for i in range(rng.randint(*form.configmap_lines))
    )
    return (
        "---\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        f"  name: {name}-config\n"
        "data:\n"
        "  config.yaml: |\n"
        f"{body}\n"
    )


def _httproute(name: str, ident: str) -> str:
    return textwrap.dedent(f"""\
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata:
          name: {name}
        spec:
          hostnames:
            - "#{{ apps.{ident}.hostname | default(\"{name}\") }}#.#{{ cluster_domain }}#"
          parentRefs:
            - name: internal
              namespace: kube-system
          rules:
            - backendRefs:
                - name: {name}
                  port: 8080
        """)


def _network_files() -> dict[str, str]:
    """The handful of templates that call the plugin's filters (home-ops shape)."""
    files = {}
    for index, (kind, network) in enumerate(
        [("node", "node_cidr"), ("pod", "pod_cidr"), ("service", "service_cidr")]
    ):
        key = '#{ node.name | upper | replace("-", "_") }#'
        address = f"#{{ {network} | nthhost({index + 10} + loop.index) }}#"
        files[f"kubernetes/flux/network/{kind}-addresses.yaml.j2"] = textwrap.dedent(f"""\
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {kind}-addresses
              namespace: flux-system
            data:
              GATEWAY: "#{{ {network} | nthhost(1) }}#"
              #% for node in nodes %#
              {key}: "{address}"
              #% endfor %#
            """)
    files["kubernetes/flux/network/patches.yaml.j2"] = textwrap.dedent("""\
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: node-patches
          namespace: flux-system
        data:
          #% for node in nodes %#
          #% for patch in node.patches %#
          #{ node.name }#-#{ patch | basename }#: "#{ patch }#"
          #% endfor %#
          #% endfor %#
        """)
    return files
