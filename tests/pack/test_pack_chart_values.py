"""Values checked against the chart: every key path under `spec.values` of every rendered
HelmRelease is one the pinned chart release reads.

The key lists under tests/data/chart-values/ are written by scripts/chart_values_keys.py from each
release's values.yaml (release and source in each file's header); a subchart's keys (grafana,
kube-state-metrics, prometheus-node-exporter) are checked against that subchart at the version
the parent release locks (its Chart.lock or Chart.yaml).

A values.yaml cannot list every key a chart reads. ALLOWED names the rest, each with the reason:
- open maps (`{}` or null defaults: podAnnotations, tempo.overrides.defaults) accept anything
  below them, as the lists mark them;
- blocks the chart hands whole to something else (a CRD spec, a Loki/Tempo config section,
  Alertmanager's config) that its values.yaml fills with examples, so the list holds only those;
- keys the templates read that values.yaml only mentions in a comment.
An allowance no rendered key needs fails a test, so the list cannot outgrow the templates.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from scripts.chart_values_keys import OPEN_SUFFIX, format_path, key_paths
from tests.conftest import TESTS_DIR
from tests.helpers.pack import (
    SUBCHARTS,
    Release,
    all_valid_combinations,
    cluster_values,
    helm_releases,
    render_pack,
    rendered_combinations,
)

CHART_VALUES_DIR = TESTS_DIR / "data" / "chart-values"

# Charts whose release has no values.yaml in the stored upstream sources to check against.
UNCHECKED = {
    "cilium": "cilium/cilium holds no 1.18.x values.yaml in the stored sources",
}

_CRD_SPEC = "a CRD spec the chart passes whole to the VictoriaMetrics operator"
# chart → key path (and everything below it) → why the chart accepts it.
ALLOWED: dict[str, dict[str, str]] = {
    "victoria-metrics-k8s-stack": {
        "vmsingle.spec": _CRD_SPEC,
        "vmagent.spec": _CRD_SPEC,
        "alertmanager.spec": _CRD_SPEC,
        "alertmanager.config": "Alertmanager's configuration file, written whole",
    },
    "grafana": {
        "persistence.storageClassName": "templates/pvc.yaml reads it; values.yaml comments it",
        "ingress.ingressClassName": "templates/ingress.yaml reads it; values.yaml comments it",
    },
    "tempo": {
        "persistence.storageClassName": "templates/statefulset.yaml reads it; not in values.yaml",
        "tempo.receivers": "Tempo's distributor.receivers config, written whole (values: config)",
    },
    "loki": {
        "loki.limits_config": "Loki's limits_config, written whole (values.yaml: config)",
    },
}


@cache
def chart_keys(chart: str, release: str) -> frozenset[str]:
    """The key paths (no defaults) of a stored list; a missing list fails with what to run."""
    path = CHART_VALUES_DIR / f"{chart}-{release}.txt"
    if not path.is_file():
        pytest.fail(f"{path} is missing: write it with scripts/chart_values_keys.py (see its help)")
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.split("\t", 1)[0] for line in lines if not line.startswith("#"))


def value_paths(values: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key path of a values mapping (lists are leaves, as in the stored lists)."""
    if isinstance(values, dict):
        for key, value in values.items():
            path = (*prefix, str(key))
            yield path
            yield from value_paths(value, path)


def known(path: tuple[str, ...], keys: frozenset[str], allowed: dict[str, str]) -> bool:
    """Whether the chart reads `path`: listed, or below an open map or an allowed block."""
    if format_path(path) in keys:
        return True
    prefixes = [format_path(path[:i]) for i in range(1, len(path))]
    return any(p + OPEN_SUFFIX in keys for p in prefixes) or any(
        format_path(path[:i]) in allowed for i in range(1, len(path) + 1)
    )


def unknown_keys(release: Release) -> list[str]:
    """The key paths of `release`'s values its pinned chart (or subchart) does not read."""
    keys = chart_keys(release.chart, release.version)
    subcharts = SUBCHARTS.get((release.chart, release.version), {})
    unknown = []
    for path in value_paths(release.values):
        if known(path, keys, ALLOWED.get(release.chart, {})):
            continue
        sub = path[0]
        if sub in subcharts and len(path) > 1:
            sub_keys = chart_keys(sub, subcharts[sub])
            if known(path[1:], sub_keys, ALLOWED.get(sub, {})):
                continue
        unknown.append(format_path(path))
    return unknown


@pytest.fixture(scope="module")
def rendered_trees(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict, Path]]:
    """Every flag combination, and both stacks with the optional values that add keys
    (control_plane_addrs: endpoints and scrape specs; grafana_ingress_class)."""
    options = {"control_plane_addrs": ["10.0.0.10"], "grafana_ingress_class": "internal"}
    combinations = all_valid_combinations() + [
        cluster_values(monitoring_enabled=True, monitoring_stack=stack, **options)
        for stack in ("victoriametrics", "prometheus")
    ]
    return rendered_combinations(tmp_path_factory, combinations)


def test_every_values_key_is_read_by_the_pinned_chart(
    rendered_trees: list[tuple[str, dict, Path]],
) -> None:
    failures, checked = set(), set()
    for combination, _values, tree in rendered_trees:
        for release in helm_releases(tree):
            if release.chart in UNCHECKED:
                continue
            checked.add(f"{release.chart}-{release.version}")
            for path in unknown_keys(release):
                failures.add(
                    f"[{combination}] {release.file}: {path} is not a values key of "
                    f"{release.chart} {release.version}"
                )
    assert {"victoria-metrics-k8s-stack-0.91.2", "tempo-2.2.4", "loki-18.11.0"} <= checked
    assert not failures, "\n".join(sorted(failures))


def test_a_dead_key_is_reported(tmp_path: Path) -> None:
    """The audit's dead keys (loki grafana.enabled) and a misspelt key fail the check."""
    tree = render_pack(tmp_path, cluster_values(monitoring_enabled=True, loki_enabled=True))
    (loki,) = [release for release in helm_releases(tree) if release.chart == "loki"]
    dead = {**loki.values, "grafana": {"enabled": False}, "singleBinary": {"replica": 1}}
    assert sorted(unknown_keys(loki._replace(values=dead))) == [
        "grafana",
        "grafana.enabled",
        "singleBinary.replica",
    ]


def test_the_key_lists_match_the_script(tmp_path: Path) -> None:
    """The stored format is the script's: a list written now from a values.yaml reads back."""
    values = {"a": {"b": 1, "open": {}, "dotted.key": "x"}, "items": [1, 2]}
    lines = sorted(set(key_paths(values)))
    assert lines == ["a", 'a."dotted.key"\t"x"', "a.b\t1", "a.open", "a.open.*", "items"]


def test_every_allowance_is_needed(rendered_trees: list[tuple[str, dict, Path]]) -> None:
    """An allowance that no rendered key needs would only hide a future dead key: drop it."""
    needed: set[tuple[str, str]] = set()
    for _combination, _values, tree in rendered_trees:
        for release in helm_releases(tree):
            if release.chart in UNCHECKED:
                continue
            subcharts = SUBCHARTS.get((release.chart, release.version), {})
            for path in value_paths(release.values):
                chart, version, inner = release.chart, release.version, path
                if path[0] in subcharts and len(path) > 1:
                    chart, version, inner = path[0], subcharts[path[0]], path[1:]
                if known(inner, chart_keys(chart, version), {}):
                    continue
                for i in range(1, len(inner) + 1):
                    if format_path(inner[:i]) in ALLOWED.get(chart, {}):
                        needed.add((chart, format_path(inner[:i])))
    unneeded = [
        f"{chart}: {key}"
        for chart, keys in ALLOWED.items()
        for key in keys
        if (chart, key) not in needed
    ]
    assert not unneeded, f"allowances no rendered key needs: {unneeded}"
