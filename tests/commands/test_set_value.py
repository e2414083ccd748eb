"""makeflux set KEY=VALUE: edits cluster.yaml in place, validated first, everything else kept."""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from makeflux.cli import cli
from tests.conftest import REPO_ROOT

REPO = REPO_ROOT

# A hand-edited cluster.yaml in the sample's style, with formatting ruamel would not write itself:
# a list indented at column 0, a wider mapping indent, trailing comments, a commented-out key.
CLUSTER_YAML = """\
---
# yaml-language-server: $schema=./schemas/cluster.schema.json

# -- Name of the cluster
cluster_name: "home"    # shown in alerts

# -- Deploy the monitoring stack
monitoring_enabled: true

# -- This cluster's network
cluster_gateway_addr: "192.168.1.72"
cluster_pod_cidr: "10.42.0.0/16"

# -- Talos control-plane nodes
control_plane_addrs:
- 192.168.1.10
- 192.168.1.11
# (add the third node when it joins)

# -- Alert when a node's memory use is above this percentage
node_memory_threshold:   90

# -- Slack channel for alerts
# alertmanager_slack_channel: "#alerts"

monitoring_stack: 'victoriametrics'
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped settings and schema, with the hand-edited cluster.yaml above."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("schemas", "templates"):
        shutil.copytree(REPO / name, root / name)
    shutil.copy2(REPO / "makeflux.toml", root / "makeflux.toml")  # no sample: listed below
    (root / "cluster.yaml").write_text(CLUSTER_YAML)
    monkeypatch.chdir(root)
    return root


def set_values(*assignments: str) -> Result:
    return CliRunner().invoke(cli, ["set", *assignments])


def changed_lines(before: str, after: str) -> list[str]:
    """The -/+ lines of a diff, without context."""
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_set_changes_only_the_line_of_that_key(project: Path) -> None:
    result = set_values("node_memory_threshold=85")
    assert result.exit_code == 0, result.output
    assert "cluster.yaml: set node_memory_threshold=85" in result.output
    after = (project / "cluster.yaml").read_text()
    assert changed_lines(CLUSTER_YAML, after) == [
        "-node_memory_threshold:   90",
        "+node_memory_threshold:   85",
    ]


def test_set_keeps_quote_style_and_trailing_comment(project: Path) -> None:
    assert set_values("cluster_name=lab").exit_code == 0
    after = (project / "cluster.yaml").read_text()
    assert changed_lines(CLUSTER_YAML, after) == [
        '-cluster_name: "home"    # shown in alerts',
        '+cluster_name: "lab"     # shown in alerts',
    ]


def test_set_uncomments_the_commented_out_key_in_place(project: Path) -> None:
    result = set_values("alertmanager_slack_channel=#ops")
    assert result.exit_code == 0, result.output
    after = (project / "cluster.yaml").read_text()
    # '#ops' would read as a YAML comment; set keeps it as the text the user typed.
    assert changed_lines(CLUSTER_YAML, after) == [
        '-# alertmanager_slack_channel: "#alerts"',
        '+alertmanager_slack_channel: "#ops"',
    ]
    assert yaml.safe_load(after)["alertmanager_slack_channel"] == "#ops"


def test_set_appends_a_declared_key_the_file_does_not_have(project: Path) -> None:
    assert set_values("loki_enabled=true").exit_code == 0
    after = (project / "cluster.yaml").read_text()
    assert after == CLUSTER_YAML + "loki_enabled: true\n"


def test_set_replaces_a_list_and_keeps_the_comment_after_it(project: Path) -> None:
    result = set_values("control_plane_addrs=[10.0.0.1, 10.0.0.2, 10.0.0.3]")
    assert result.exit_code == 0, result.output
    after = (project / "cluster.yaml").read_text()
    assert yaml.safe_load(after)["control_plane_addrs"] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert "# (add the third node when it joins)\n" in after
    untouched = [line for line in changed_lines(CLUSTER_YAML, after) if "192.168" not in line]
    assert all("10.0.0." in line for line in untouched)


def test_values_are_read_as_yaml_then_fitted_to_the_schema_type(project: Path) -> None:
    result = set_values(
        "cluster_name=1234", "monitoring_alerts_enabled=false", "pv_usage_threshold=80"
    )
    assert result.exit_code == 0, result.output
    values = yaml.safe_load((project / "cluster.yaml").read_text())
    assert values["cluster_name"] == "1234"  # the schema says string: not the number 1234
    assert values["monitoring_alerts_enabled"] is False
    assert values["pv_usage_threshold"] == 80


def test_several_assignments_apply_together(project: Path) -> None:
    result = set_values("hubble_enabled=true", "hubble_ui_enabled=true")
    assert result.exit_code == 0, result.output
    values = yaml.safe_load((project / "cluster.yaml").read_text())
    assert values["hubble_enabled"] is True and values["hubble_ui_enabled"] is True


@pytest.mark.parametrize(
    ("assignments", "expected"),
    [
        (
            ["node_memory_threshold=150"],
            "cluster.yaml:21:26: node_memory_threshold: 150 is greater",
        ),
        (["monitoring_stack=thanos"], "monitoring_stack"),
        (["tracing_enabld=true"], "did you mean 'tracing_enabled'?"),
        (["monitoring_enabled=false", "hubble_enabled=true"], "hubble_enabled requires"),
        # one good and one bad value: neither is saved
        (["cluster_name=lab", "pv_usage_threshold=0"], "pv_usage_threshold"),
    ],
)
def test_an_invalid_value_is_refused_and_the_file_stays_byte_identical(
    project: Path, assignments: list[str], expected: str
) -> None:
    cluster = project / "cluster.yaml"
    os.utime(cluster, ns=(1_000_000_000, 1_000_000_000))
    result = set_values(*assignments)
    assert result.exit_code == 2
    assert expected in result.output
    assert result.output.rstrip().endswith(
        "cluster.yaml: not changed; fix the value and run 'makeflux set' again"
    )
    assert cluster.read_text() == CLUSTER_YAML
    assert cluster.stat().st_mtime_ns == 1_000_000_000
    assert sorted(p.name for p in project.iterdir()) == [
        "cluster.yaml",
        "makeflux.toml",
        "schemas",
        "templates",
    ]


def test_malformed_assignment_and_missing_file_are_usage_errors(project: Path) -> None:
    result = set_values("monitoring_enabled")
    assert result.exit_code == 2
    assert "expected KEY=VALUE" in result.output
    (project / "cluster.yaml").unlink()
    result = set_values("monitoring_enabled=true")
    assert result.exit_code == 2
    assert "cluster.yaml: not found; run 'makeflux init'" in result.output
    assert not (project / "cluster.yaml").exists()


def test_set_replaces_the_file_atomically_and_keeps_its_mode(project: Path) -> None:
    cluster = project / "cluster.yaml"
    cluster.chmod(0o600)
    inode_before = cluster.stat().st_ino
    assert set_values("node_cpu_threshold=80").exit_code == 0
    # A new inode: the content arrived by rename of a fully written file, never in place.
    assert cluster.stat().st_ino != inode_before
    assert cluster.stat().st_mode & 0o777 == 0o600


def test_set_as_a_real_process_then_render_sees_the_value(project: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "makeflux"]
    done = subprocess.run(
        [*command, "set", "metrics_retention=30d"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = subprocess.run(
        [*command, "explain", "metrics_retention"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "current:  30d (cluster.yaml)" in shown.stdout


@pytest.mark.parametrize(
    ("assignment", "key"),
    [
        ("node_memory_threshold=85", "node_memory_threshold"),
        ("cluster_name=lab", "cluster_name"),
        ("monitoring_stack=prometheus", "monitoring_stack"),
        ("grafana_ingress_class=nginx", "grafana_ingress_class"),
    ],
)
def test_on_the_shipped_sample_only_the_key_line_changes(
    project: Path, assignment: str, key: str
) -> None:
    sample = (REPO / "cluster.sample.yaml").read_text()
    (project / "cluster.yaml").write_text(sample)
    result = set_values(assignment)
    assert result.exit_code == 0, result.output
    after = (project / "cluster.yaml").read_text()
    changes = changed_lines(sample, after)
    assert len(changes) == 2
    assert changes[0].startswith(f"-{key}: ") and changes[1].startswith(f"+{key}: ")
    assert yaml.safe_load(after)[key] == yaml.safe_load(f"v: {assignment.split('=')[1]}")["v"]


def test_ruamel_is_imported_only_by_set() -> None:
    """Every command loads the CLI; only `set` should pay for importing ruamel.yaml."""
    probe = "import sys, makeflux.cli; print('ruamel.yaml' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    ran = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )
    assert ran.stdout.strip() == "False", ran.stderr


@pytest.mark.parametrize(
    "assignment",
    [
        'control_plane_addrs=["10.0.0.1", "10.0.0.2"]',
        "control_plane_addrs=[]",
        "cluster_name=1234",
        "cluster_name=true",
        "alertmanager_slack_channel=#ops",
        "pv_usage_threshold=80",
        "monitoring_alerts_enabled=false",
        "metrics_retention=30d",
        "grafana_ingress_class=",
    ],
)
def test_set_and_the_set_option_read_a_value_the_same_way(project: Path, assignment: str) -> None:
    """`plan --set X` previews exactly the `makeflux set X` about to run."""
    from makeflux import pipeline

    key = assignment.partition("=")[0]
    previewed = pipeline.load(pipeline.RunOptions(cwd=project, overrides=(assignment,)))
    validated = CliRunner().invoke(cli, ["validate", "--set", assignment])
    assert validated.exit_code == 0, validated.output
    result = set_values(assignment)
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((project / "cluster.yaml").read_text())
    assert previewed.data.values[key] == saved[key]
    assert type(previewed.data.values[key]) is type(saved[key])


def test_set_on_a_linked_cluster_yaml_edits_the_file_it_links_to(project: Path) -> None:
    shared = project.parent / "shared"
    shared.mkdir()
    real = shared / "cluster.yaml"
    (project / "cluster.yaml").rename(real)
    (project / "cluster.yaml").symlink_to(real)
    result = set_values("node_memory_threshold=85")
    assert result.exit_code == 0, result.output
    assert result.output == "makeflux: cluster.yaml: set node_memory_threshold=85\n"
    assert (project / "cluster.yaml").is_symlink()
    assert (project / "cluster.yaml").readlink() == real
    assert changed_lines(CLUSTER_YAML, real.read_text()) == [
        "-node_memory_threshold:   90",
        "+node_memory_threshold:   85",
    ]
    assert sorted(p.name for p in shared.iterdir()) == ["cluster.yaml"]  # no temporary left
    refused = set_values("node_memory_threshold=150")
    assert refused.exit_code == 2
    assert refused.output.startswith("cluster.yaml:21:26: node_memory_threshold: 150")
