"""Every metric an alert reads is one the variant's exporters produce.

tests/data/exported-metrics.yaml lists, per exporter, the metric names the alerts use, where they
were read, and for each metrics stack the values switch that deploys (or scrapes) the exporter.
For every flag combination with alerts on, each alert expression's metric names must come from
an exporter whose switch is on in that render, or from a component the pack leaves to the cluster
(Envoy Gateway, cert-manager), declared there with the alerts that depend on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from tests.conftest import TESTS_DIR
from tests.helpers.pack import (
    alert_expressions,
    all_valid_combinations,
    cluster_values,
    helm_releases,
    lookup,
    render_pack,
    rendered_combinations,
)

EXPORTED_METRICS = TESTS_DIR / "data" / "exported-metrics.yaml"


@cache
def exported() -> dict[str, Any]:
    return yaml.safe_load(EXPORTED_METRICS.read_text(encoding="utf-8"))


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def variant_metrics(values: Mapping[str, Any], tree: Path) -> tuple[set[str], list[str]]:
    """The metrics the deployed exporters produce in this render, and exporters listed for the
    variant whose switch is off."""
    releases = {release.chart: release.values for release in helm_releases(tree)}
    stack = values["monitoring_stack"]
    metrics, off = set(), []
    for name, exporter in exported()["exporters"].items():
        chart, key = exporter["deployed"][stack]
        if lookup(releases.get(chart, {}), tuple(key.split(".")), False) is True:
            metrics |= set(exporter["metrics"])
        else:
            off.append(f"{name} ({chart} {key} is not true)")
    return metrics, off


def metric_problems(values: Mapping[str, Any], tree: Path) -> list[str]:
    produced, off = variant_metrics(values, tree)
    problems = [f"exporter switched off: {exporter}" for exporter in off]
    external = exported()["external"]
    for alert, expr in alert_expressions(tree).items():
        for name in sorted(metric_names(expr) - produced):
            owners = [c for c, entry in external.items() if name in entry["metrics"]]
            if not owners:
                problems.append(f"{alert}: no deployed exporter produces {name}")
            elif not any(alert in external[owner]["alerts"] for owner in owners):
                problems.append(f"{alert}: reads {name} of {owners[0]}, which lists not this alert")
    return problems


@pytest.fixture(scope="module")
def rendered_trees(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict, Path]]:
    with_alerts = [
        values
        for values in all_valid_combinations()
        if values["monitoring_enabled"] and values["monitoring_alerts_enabled"]
    ]
    return rendered_combinations(tmp_path_factory, with_alerts)


def test_every_alert_reads_metrics_its_variant_exports(
    rendered_trees: list[tuple[str, dict, Path]],
) -> None:
    failures = []
    for combination, values, tree in rendered_trees:
        failures += [f"[{combination}] {p}" for p in metric_problems(values, tree)]
    assert rendered_trees and not failures, "\n".join(failures)


def test_every_listed_metric_is_read_by_an_alert(
    rendered_trees: list[tuple[str, dict, Path]],
) -> None:
    """The list is the alerts' dependencies, nothing more: a name no alert reads is stale."""
    read = {
        name
        for _, _, tree in rendered_trees
        for expr in alert_expressions(tree).values()
        for name in metric_names(expr)
    }
    listed = {
        name
        for section in ("exporters", "external")
        for entry in exported()[section].values()
        for name in entry["metrics"]
    }
    assert listed - read == set(), f"listed but read by no alert: {sorted(listed - read)}"


def test_an_unexported_metric_is_reported(tmp_path: Path) -> None:
    """The audit's Flux finding: gotk_reconcile_condition is exported by nothing deployed, and an
    exporter switched off takes its metrics with it."""
    values = cluster_values(monitoring_enabled=True, monitoring_alerts_enabled=True)
    tree = render_pack(tmp_path, values)
    assert metric_problems(values, tree) == []
    rule = next(tree.rglob("prometheusrule.yaml"))
    rule.write_text(rule.read_text().replace("gotk_resource_info", "gotk_reconcile_condition"))
    release = next(tree.rglob("victoria-metrics/app/helmrelease.yaml"))
    release.write_text(
        release.read_text().replace(
            "    coreDns:\n      enabled: true", "    coreDns:\n      enabled: false"
        )
    )
    helm_releases.cache_clear()
    problems = "\n".join(metric_problems(values, tree))
    assert "FluxSuspended: no deployed exporter produces gotk_reconcile_condition" in problems
    assert "exporter switched off: coredns" in problems
