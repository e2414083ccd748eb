"""The template pack renders for every valid flag combination, and each flag adds exactly its files.

One render per combination, through the real `makeflux render`; each test checks one property.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from makeflux.lint import LintConfig, lint_tree, read_directory
from tests.helpers.pack import (
    FLAG_CHOICES,
    SAMPLE_FILE,
    all_valid_combinations,
    cached_render,
    cluster_values,
    combination_id,
    kubernetes_documents,
    load_documents,
    load_schema,
    render_pack,
    rendered_files,
    rendered_paths,
    sample_values,
    schema_errors,
)

COMBINATIONS = all_valid_combinations()
APPS = "kubernetes/apps"
MON = f"{APPS}/monitoring"

# The files each app writes, relative to its directory under kubernetes/apps.
APP_FILES = {
    "kube-system/cilium": [
        "ks.yaml",
        "app/kustomization.yaml",
        "app/helmrepository.yaml",
        "app/helmrelease.yaml",
    ],
    "monitoring/victoria-metrics": [
        "ks.yaml",
        "app/kustomization.yaml",
        "app/ocirepository.yaml",
        "app/helmrelease.yaml",
    ],
    "monitoring/kube-prometheus-stack": [
        "ks.yaml",
        "app/kustomization.yaml",
        "app/ocirepository.yaml",
        "app/helmrelease.yaml",
    ],
    "monitoring/infrastructure-alerts": [
        "ks.yaml",
        "app/kustomization.yaml",
        "app/prometheusrule.yaml",
    ],
    "monitoring/loki": [
        "ks.yaml",
        "app/kustomization.yaml",
        "app/ocirepository.yaml",
        "app/helmrelease.yaml",
    ],
    "monitoring/alloy": [
        "ks.yaml",
        "app/kustomization.yaml",
        "app/helmrepository.yaml",
        "app/helmrelease.yaml",
    ],
    "monitoring/tempo": [
        "ks.yaml",
        "app/kustomization.yaml",
        "app/helmrepository.yaml",
        "app/helmrelease.yaml",
    ],
}


def expected_apps(values: dict[str, Any]) -> set[str]:
    """Which app directories a combination deploys, as the guide states it in words."""
    apps = {"kube-system/cilium"}
    if values["monitoring_enabled"]:
        if values["monitoring_stack"] == "victoriametrics":
            apps.add("monitoring/victoria-metrics")
        else:
            apps.add("monitoring/kube-prometheus-stack")
        if values["monitoring_alerts_enabled"]:
            apps.add("monitoring/infrastructure-alerts")
        if values["loki_enabled"]:
            apps.add("monitoring/loki")
        if values["tracing_enabled"]:
            apps.add("monitoring/tempo")
        # Alloy only runs when it has a pipeline to feed.
        if values["loki_enabled"] or values["tracing_enabled"]:
            apps.add("monitoring/alloy")
    return apps


def expected_paths(values: dict[str, Any]) -> set[str]:
    paths = {
        "kubernetes/flux/cluster/ks.yaml",
        f"{APPS}/kustomization.yaml",
        f"{APPS}/kube-system/namespace.yaml",
        f"{APPS}/kube-system/kustomization.yaml",
    }
    if values["monitoring_enabled"]:
        paths |= {f"{MON}/namespace.yaml", f"{MON}/kustomization.yaml"}
    for app in expected_apps(values):
        paths |= {f"{APPS}/{app}/{name}" for name in APP_FILES[app]}
    return paths


@pytest.fixture(scope="module", params=COMBINATIONS, ids=combination_id)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(values, output root) for one combination, rendered once for all tests below."""
    values = request.param
    return values, cached_render(tmp_path_factory, values)


def test_every_flag_combination_is_covered() -> None:
    # 4 with monitoring off (stack × alerts), 48 with it on (stack × loki × tracing ×
    # 3 valid hubble/ui pairs × alerts): the cross-field rules remove the rest.
    assert len(COMBINATIONS) == 52
    for flag, choices in FLAG_CHOICES.items():
        assert {values[flag] for values in COMBINATIONS} == set(choices), flag


@pytest.mark.parametrize(
    ("flag", "needs"),
    [
        ("hubble_enabled", "monitoring_enabled"),
        ("loki_enabled", "monitoring_enabled"),
        ("tracing_enabled", "monitoring_enabled"),
        ("hubble_ui_enabled", "hubble_enabled"),
    ],
)
def test_schema_rejects_a_flag_without_what_it_needs(flag: str, needs: str) -> None:
    values = cluster_values(monitoring_enabled=True, hubble_enabled=True)
    values.update({flag: True, needs: False})
    assert schema_errors(values)


def test_rendered_files_match_the_enabled_features(rendered) -> None:
    values, root = rendered
    assert rendered_paths(root) == expected_paths(values)


def test_every_file_is_yaml_without_duplicate_keys(rendered) -> None:
    _, root = rendered
    for path in rendered_files(root):
        try:
            documents = load_documents(path)
        except yaml.YAMLError as exc:
            pytest.fail(f"{path.relative_to(root)}: {exc}")
        assert documents, f"{path.relative_to(root)} has no YAML document"


def test_every_kubernetes_document_is_identified(rendered) -> None:
    _, root = rendered
    for path, doc in kubernetes_documents(root):
        where = path.relative_to(root)
        assert isinstance(doc, dict), f"{where}: a document is not a mapping"
        assert doc.get("apiVersion"), f"{where}: no apiVersion"
        assert doc.get("kind"), f"{where}: no kind"
        if doc["kind"] == "Kustomization" and doc["apiVersion"].startswith("kustomize.config"):
            continue  # kustomize's own kustomization.yaml has no metadata
        assert (doc.get("metadata") or {}).get("name"), f"{where}: no metadata.name"


def test_only_current_flux_apis_are_used(rendered) -> None:
    _, root = rendered
    current = {
        "kustomize.toolkit.fluxcd.io": "v1",
        "helm.toolkit.fluxcd.io": "v2",
        "source.toolkit.fluxcd.io": "v1",
    }
    for path, doc in kubernetes_documents(root):
        group, _, version = doc["apiVersion"].rpartition("/")
        if group in current:
            assert version == current[group], f"{path.relative_to(root)}: {doc['apiVersion']}"


def test_kustomizations_list_exactly_their_files(rendered) -> None:
    """Every kustomization.yaml lists each sibling manifest once, and nothing that is missing."""
    _, root = rendered
    for path in root.rglob("kustomization.yaml"):
        (doc,) = load_documents(path)
        listed = [Path(entry).as_posix().removeprefix("./") for entry in doc["resources"]]
        assert len(listed) == len(set(listed)), f"{path.relative_to(root)} lists a file twice"
        for entry in listed:
            assert (path.parent / entry).exists(), f"{path.relative_to(root)} lists {entry}"
        siblings = {p.name for p in path.parent.glob("*.yaml") if p.name != "kustomization.yaml"}
        nested = {f"{p.parent.name}/{p.name}" for p in path.parent.glob("*/ks.yaml")}
        subdirs = {p.parent.name for p in path.parent.glob("*/kustomization.yaml")}
        # A directory's own manifests, its apps' ks.yaml, and (for kubernetes/apps) its
        # namespace directories: whatever of these exists must be listed.
        expected = siblings | nested | (subdirs if path.parent == root / APPS else set())
        assert set(listed) == expected, f"{path.relative_to(root)}"


def test_hubble_http_metric_follows_tracing(rendered) -> None:
    values, root = rendered
    (release,) = load_documents(root / APPS / "kube-system/cilium/app/helmrelease.yaml")
    hubble = release["spec"]["values"]["hubble"]
    assert hubble["enabled"] is values["hubble_enabled"]
    if not values["hubble_enabled"]:
        return
    assert hubble["ui"]["enabled"] is values["hubble_ui_enabled"]
    metrics = hubble["metrics"]["enabled"]
    http = [m for m in metrics if m.split(":")[0] in ("http", "httpV2")]
    if values["tracing_enabled"]:
        assert len(http) == 1 and http[0].startswith("httpV2:exemplars=true;")
    else:
        assert http == ["http"]


def test_alerts_follow_their_flag(rendered) -> None:
    values, root = rendered
    rules = [doc for _, doc in kubernetes_documents(root) if doc["kind"] == "PrometheusRule"]
    if not (values["monitoring_enabled"] and values["monitoring_alerts_enabled"]):
        assert rules == []
        return
    (rule,) = rules
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert len(rule["spec"]["groups"]) == 10
    assert len({a["alert"] for a in alerts}) == len(alerts) == 33
    for alert in alerts:
        assert alert["labels"]["severity"] in ("critical", "warning", "info"), alert["alert"]
        assert alert["for"], alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        assert alert["annotations"]["description"], alert["alert"]


def test_datasource_links_name_existing_uids(rendered) -> None:
    values, root = rendered
    if not values["monitoring_enabled"]:
        return
    releases = {
        doc["metadata"]["name"]: doc
        for _, doc in kubernetes_documents(root)
        if doc["kind"] == "HelmRelease"
    }
    if values["monitoring_stack"] == "victoriametrics":
        chart = releases["victoria-metrics-k8s-stack"]["spec"]["values"]
        defaults = chart["defaultDatasources"]
        declared = [
            *defaults["victoriametrics"]["datasources"],
            *defaults["alertmanager"]["datasources"],
            *defaults["extra"],
        ]
    else:
        chart = releases["kube-prometheus-stack"]["spec"]["values"]
        sidecar = chart["grafana"]["sidecar"]["datasources"]
        declared = [
            {"uid": sidecar["uid"]},
            {"uid": sidecar["alertmanager"]["uid"]},
            *chart["grafana"]["additionalDataSources"],
        ]
    uids = [ds["uid"] for ds in declared]
    assert len(uids) == len(set(uids))
    assert ("loki" in uids) is values["loki_enabled"]
    assert ("tempo" in uids) is values["tracing_enabled"]
    links = _datasource_uid_links(declared) + _datasource_uid_links(chart["grafana"])
    for link in links:
        assert link in uids, f"a datasource links to uid {link!r}, which no datasource declares"


def _datasource_uid_links(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k == "datasourceUid"]
        return found + [link for v in node.values() for link in _datasource_uid_links(v)]
    if isinstance(node, list):
        return [link for item in node for link in _datasource_uid_links(item)]
    return []


def test_sample_is_valid_and_renders_the_whole_stack(tmp_path: Path) -> None:
    text = SAMPLE_FILE.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=./schemas/cluster.schema.json\n")
    raw = yaml.safe_load(text)
    # The sample documents every variable, so a user sees them all in one place.
    assert set(raw) == set(load_schema()["properties"])
    values = sample_values()
    assert schema_errors(values) == []
    root = render_pack(tmp_path, values)
    everything = {
        **values,
        "monitoring_enabled": True,
        "hubble_enabled": True,
        "loki_enabled": True,
        "tracing_enabled": True,
        "monitoring_alerts_enabled": True,
    }
    assert expected_apps(values) == expected_apps(everything)
    assert rendered_paths(root) == expected_paths(values)


def _flux_post_build(text: str, variables: dict[str, str]) -> str:
    """What Flux's post-build substitution does to a manifest: ${VAR} → value, $$ → $."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = text.index("}", i)
            name = text[i + 2 : end].split("/")[0].split(":")[0]
            out.append(variables[name])
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def test_prometheus_and_grafana_templates_survive_flux_substitution(rendered) -> None:
    """Alert templates ({{ $labels.x }}) and Grafana's $__tags reach their consumers intact."""
    values, root = rendered
    secrets = {
        name: "x" for name in ("SECRET_DOMAIN", "SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY")
    }
    for path, doc in kubernetes_documents(root):
        before = yaml.safe_dump(doc)
        after = _flux_post_build(before, secrets)
        if doc["kind"] == "PrometheusRule":
            assert after == before
        stacks = ("victoria-metrics-k8s-stack", "kube-prometheus-stack")
        name = (doc.get("metadata") or {}).get("name")
        if values["tracing_enabled"] and doc["kind"] == "HelmRelease" and name in stacks:
            # Grafana's provisioning then expands $name and ${name} from its environment
            # (here: empty) and reads $$ as a literal $.
            grafana_sees = re.sub(r"\$\$|\$\{?\w+\}?", lambda m: "$" if m[0] == "$$" else "", after)
            assert "traces_spanmetrics_calls_total{$__tags}" in grafana_sees, path


def test_every_document_is_schema_clean(rendered) -> None:
    """Each manifest against its kind's API schema and CEL rules: not one schema-* finding,
    not even a kind without a schema (the built-in catalog covers all the pack renders)."""
    _, root = rendered
    findings = lint_tree(read_directory(root), LintConfig())
    assert [str(f) for f in findings if f.rule.startswith("schema-")] == []
