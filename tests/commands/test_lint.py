"""makeflux lint end to end: the broken and clean fixture projects, output formats, exit codes,
DIR mode, settings, and (when present) the shipped template pack."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO_ROOT, run_cli, run_subprocess

from makeflux.lint.rules import RULE_LIST
from tests.conftest import TESTS_DIR

FIXTURES = TESTS_DIR / "fixtures" / "lint"
BROKEN = FIXTURES / "broken"
CLEAN = FIXTURES / "clean"


def undeclared(where: str, name: str) -> str:
    """The line lint prints for a variable the clean project's schema does not declare."""
    return (
        f"{where}: error: template-variable-undeclared: '{name}' is used here but the schema "
        "(cluster.schema.json) does not declare it; add it to the schema's properties"
    )


# Every line `makeflux lint` prints for the broken project; each rule fires at least once.
BROKEN_FINDINGS = [
    "cluster.schema.json:6: warning: template-variable-unused: 'unused_flag' is declared but "
    "no template uses it; remove it or use it",
    "kubernetes/apps/monitoring/alerts/app/configmap.yaml:8 "
    "(templates/kubernetes/apps/monitoring/alerts/app/configmap.yaml.j2:10): error: "
    "yaml-invalid: invalid YAML: did not find expected key (while parsing a block mapping "
    "started at line 2)",
    "kubernetes/apps/monitoring/alerts/app/prometheusrule.yaml:10 "
    "(templates/kubernetes/apps/monitoring/alerts/app/prometheusrule.yaml:10): error: "
    "promql-duration-invalid: interval: '1 minute' is not a Prometheus duration (e.g. 30s, "
    "5m, 1h30m)",
    "kubernetes/apps/monitoring/alerts/app/prometheusrule.yaml:16 "
    "(templates/kubernetes/apps/monitoring/alerts/app/prometheusrule.yaml:16): error: "
    "promql-invalid: expr is not valid PromQL: unclosed left parenthesis",
    "kubernetes/apps/monitoring/alerts/app/prometheusrule.yaml:18 "
    "(templates/kubernetes/apps/monitoring/alerts/app/prometheusrule.yaml:18): warning: "
    "promql-alert-duplicate: alert 'NodeDown' is also defined at "
    "kubernetes/apps/monitoring/alerts/app/prometheusrule.yaml:12; give each alert its own "
    "name",
    "kubernetes/apps/monitoring/alerts/app/prometheusrule.yaml:20 "
    "(templates/kubernetes/apps/monitoring/alerts/app/prometheusrule.yaml:20): error: "
    "promql-duration-invalid: for: '5 minutes' is not a Prometheus duration (e.g. 30s, 5m, "
    "1h30m)",
    "kubernetes/apps/monitoring/broken.yaml:8 "
    "(templates/kubernetes/apps/monitoring/broken.yaml:8): error: yaml-invalid: invalid YAML:"
    " did not find expected ',' or ']' (while parsing a flow sequence started at line 7)",
    "kubernetes/apps/monitoring/grafana/app/nameless.yaml:2 "
    "(templates/kubernetes/apps/monitoring/grafana/app/nameless.yaml:2): error: "
    "k8s-missing-field: document has no metadata.name; every Kubernetes manifest needs "
    "apiVersion, kind and metadata.name",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:6 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:6): error: "
    "schema-metadata: Deployment metadata.labels.tier: label value 'platform_' is not valid; "
    "use at most 63 letters, digits, '-', '_' and '.', starting and ending alphanumeric (or "
    "empty)",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:8 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:8): error: schema-type: "
    "Deployment spec.replicas: '2' is a string; expected a whole number (remove the quotes)",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:9 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:9): error: schema-type: "
    "Deployment spec.revisionHistoryLimit: 1.5 is a number; expected a whole number",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:19 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:19): error: "
    "schema-required: Deployment spec.template.spec.containers[0]: missing required field "
    "'name' in spec.template.spec.containers.0",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:20 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:20): error: schema-enum: "
    "Deployment spec.template.spec.containers[0].imagePullPolicy: 'Sometimes' is not one of: "
    "'Always', 'IfNotPresent', 'Never'",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:23 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:23): error: schema-format:"
    " Deployment spec.template.spec.containers[0].resources.limits.memory: 'lots' is not a "
    "quantity; write e.g. 100m, 1.5, 128Mi or 2Gi",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:27 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:27): error: "
    "schema-list-unique: Deployment spec.template.spec.containers[0].ports[1]: duplicate "
    "containerPort/protocol 3000/TCP (first at item 0); each must appear once",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:32 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:32): error: "
    "schema-unknown-field: Deployment spec.template.spec.dnsConfig.options[0].nam: unknown "
    "field 'nam'; did you mean 'name'?",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:38 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:38): error: schema-cel: "
    "HelmRelease spec: either chart or chartRef must be set",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:39 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:39): error: "
    "schema-pattern: HelmRelease spec.interval: 'ten minutes' does not match "
    "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:40 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:40): error: "
    "helmrelease-source-missing: chartRef OCIRepository 'grafana-chart' (namespace default) "
    "is not in the tree; fix the name or namespace, or declare it in lint.externals as "
    "'OCIRepository default/grafana-chart'",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:46 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:46): error: "
    "helmrelease-source-missing: chart.spec.sourceRef HelmRepository 'grafana' (namespace "
    "default) is not in the tree; fix the name or namespace, or declare it in lint.externals "
    "as 'HelmRepository default/grafana'",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:51 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:51): error: schema-type: "
    "HelmRelease spec.install.remediation.retries: 'three' is a string; expected a whole number",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:52 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:52): error: schema-range: "
    "HelmRelease spec.releaseName: "
    "'grafana-release-name-that-goes-on-and-on-past-fifty-thre... is 68 characters long; at "
    "most 53 allowed",
    "kubernetes/apps/monitoring/grafana/app/schema.yaml:56 "
    "(templates/kubernetes/apps/monitoring/grafana/app/schema.yaml:56): warning: "
    "schema-missing: no schema for GrafanaDashboard grafana.integreatly.org/v1beta1, so its "
    "documents are not checked; add its CRD to the tree or a schema_locations catalog "
    "(makeflux schemas extract), or list the kind in lint.skip_kinds",
    "kubernetes/apps/monitoring/grafana/ks.yaml:8 "
    "(templates/kubernetes/apps/monitoring/grafana/ks.yaml:8): error: flux-dependency-cycle: "
    "dependsOn cycle flux-system/grafana → flux-system/loki → flux-system/grafana; Flux will "
    "wait forever",
    "kubernetes/apps/monitoring/kustomization.yaml:11 "
    "(templates/kubernetes/apps/monitoring/kustomization.yaml:11): error: "
    "kustomize-resource-missing: resources entry './missing.yaml' names no file or directory "
    "in the tree",
    "kubernetes/apps/monitoring/kustomization.yaml:12 "
    "(templates/kubernetes/apps/monitoring/kustomization.yaml:12): error: "
    "kustomize-resource-missing: resources entry './empty-dir' is a directory without a "
    "kustomization.yaml",
    "kubernetes/apps/monitoring/loki/app/helmrelease.yaml:9 "
    "(templates/kubernetes/apps/monitoring/loki/app/helmrelease.yaml:9): error: "
    "helmrelease-source-missing: chartRef OCIRepository 'loki-chart' (namespace monitoring) "
    "is not in the tree; fix the name or namespace, or declare it in lint.externals as "
    "'OCIRepository monitoring/loki-chart'",
    "kubernetes/apps/monitoring/loki/app/helmrelease.yaml:15 "
    "(templates/kubernetes/apps/monitoring/loki/app/helmrelease.yaml:15): error: "
    "flux-substitute-undeclared: ${LOKI_RETENTION} has no default and Kustomization "
    "flux-system/loki does not declare it; add it to postBuild.substitute or lint.variables, "
    "or write ${LOKI_RETENTION:=default} (or $${LOKI_RETENTION} for a literal)",
    "kubernetes/apps/monitoring/orphan/ks.yaml:1 "
    "(templates/kubernetes/apps/monitoring/orphan/ks.yaml:1): warning: unreachable: no Flux "
    "Kustomization under kubernetes/flux leads here through spec.path or kustomize resources;"
    " include it or delete it",
    "kubernetes/apps/monitoring/tempo/app/configmap.yaml:5 "
    "(templates/kubernetes/apps/monitoring/tempo/app/configmap.yaml:5): error: "
    "namespace-duplicate: ConfigMap 'dashboards' (namespace monitoring) is also defined at "
    "kubernetes/apps/monitoring/grafana/app/configmap.yaml:5; the two collapse into one "
    "object in the cluster",
    "kubernetes/apps/monitoring/tempo/app/configmap.yaml:8 "
    "(templates/kubernetes/apps/monitoring/tempo/app/configmap.yaml:8): error: "
    "yaml-duplicate-key: duplicate key 'tempo.json' (first at line 7); remove one of them",
    "kubernetes/apps/monitoring/tempo/app/helmrelease.yaml:2 "
    "(templates/kubernetes/apps/monitoring/tempo/app/helmrelease.yaml.j2:3): error: "
    "flux-api-removed: HelmRelease uses helm.toolkit.fluxcd.io/v2beta2, which Flux no longer "
    "serves; use helm.toolkit.fluxcd.io/v2",
    "kubernetes/apps/monitoring/tempo/app/helmrelease.yaml:6 "
    "(templates/kubernetes/apps/monitoring/tempo/app/helmrelease.yaml.j2:7): warning: "
    "namespace-overridden: namespace 'observability' is replaced by 'monitoring' from "
    "targetNamespace of Kustomization flux-system/tempo "
    "(kubernetes/apps/monitoring/tempo/ks.yaml:8); remove it or make them agree",
    "kubernetes/apps/monitoring/tempo/app/helmrelease.yaml:12 "
    "(templates/kubernetes/apps/monitoring/tempo/app/helmrelease.yaml.j2:13): error: "
    "helmrelease-source-dependency: HelmRepository 'grafana' is applied by Kustomization "
    "flux-system/loki, but this HelmRelease's Kustomization flux-system/tempo has no "
    "dependsOn path to it; add dependsOn 'loki'",
    "kubernetes/apps/monitoring/tempo/ks.yaml:14 "
    "(templates/kubernetes/apps/monitoring/tempo/ks.yaml:14): error: flux-dependency-missing:"
    " dependsOn 'victoria-metrics-k8s-stack' (namespace flux-system) matches no Kustomization"
    " in the tree",
    "kubernetes/apps/monitoring/tempo/ks.yaml:15 "
    "(templates/kubernetes/apps/monitoring/tempo/ks.yaml:15): error: flux-source-missing: "
    "sourceRef GitRepository 'home-kubernetes' (namespace flux-system) is not in the tree; "
    "fix the name or declare it in lint.externals as 'GitRepository "
    "flux-system/home-kubernetes'",
    "kubernetes/flux/cluster/ks.yaml:25 (templates/kubernetes/flux/cluster/ks.yaml:25): "
    "error: flux-path-missing: spec.path './kubernetes/nowhere' is not a directory in the "
    "tree (paths are relative to the repository root)",
    "templates/kubernetes/apps/monitoring/alerts/app/configmap.yaml.j2:8: error: "
    "template-comment-multiline: comment opened here is closed by '|#', which is not the "
    "comment end '#|': everything up to line 10 is swallowed; close it with '#|'",
    undeclared(
        "templates/kubernetes/apps/monitoring/tempo/app/helmrelease.yaml.j2:18", "retention_days"
    ),
]

# The rules a tree on disk can trip: the others check templates, which it has none of.
TREE_RULES = {rule.id for rule in RULE_LIST if rule.scope == "tree"}


def test_broken_project_trips_every_rule_at_the_expected_line():
    result = run_cli(["lint"], BROKEN)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == BROKEN_FINDINGS
    assert result.stderr.strip() == "makeflux: lint: 34 error(s), 5 warning(s)"
    # The registry's every rule: a new rule needs a line of the fixture that trips it.
    tripped = {line.split(": ")[2] for line in BROKEN_FINDINGS}
    assert tripped == {rule.id for rule in RULE_LIST}


def test_broken_tree_on_disk_gives_the_same_findings_without_template_rules(tmp_path):
    rendered = tmp_path / "repo"
    assert run_cli(["render", "--no-lint", "-o", str(rendered)], BROKEN).exit_code == 0
    result = run_cli(["lint", str(rendered)], BROKEN)
    assert result.exit_code == 1
    # The same findings, without the template rules and without the template each line
    # came from (a tree on disk has no templates).
    expected = [
        re.sub(r" \(templates/[^)]*\)", "", line)
        for line in BROKEN_FINDINGS
        if line.split(": ")[2] in TREE_RULES
    ]
    assert result.stdout.splitlines() == expected


def test_clean_project_has_no_findings_rendered_or_on_disk(tmp_path):
    result = run_cli(["lint"], CLEAN)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    rendered = tmp_path / "repo"
    assert run_cli(["render", "--no-lint", "-o", str(rendered)], CLEAN).exit_code == 0
    result = run_cli(["lint", str(rendered)], CLEAN)
    assert (result.exit_code, result.stdout) == (0, "")


def test_lint_writes_nothing(tmp_path):
    project = shutil.copytree(CLEAN, tmp_path / "project")
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    assert run_cli(["lint"], project).exit_code == 0
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before


def test_json_format_is_a_list_of_findings():
    result = run_cli(["lint", "--format", "json"], BROKEN)
    assert result.exit_code == 1
    findings = json.loads(result.stdout)
    assert findings[0] == {
        "path": "cluster.schema.json",
        "line": 6,
        "severity": "warning",
        "rule": "template-variable-unused",
        "message": "'unused_flag' is declared but no template uses it; remove it or use it",
        "template": None,
        "template_line": None,
    }
    assert {
        "path": "kubernetes/apps/monitoring/tempo/app/helmrelease.yaml",
        "line": 2,
        "template": "templates/kubernetes/apps/monitoring/tempo/app/helmrelease.yaml.j2",
        "template_line": 3,
    }.items() <= next(f for f in findings if f["line"] == 2 and "tempo/app" in f["path"]).items()
    assert len(findings) == len(BROKEN_FINDINGS)


def test_json_format_of_a_clean_tree_is_an_empty_list():
    result = run_cli(["lint", "--format", "json"], CLEAN)
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])


def test_github_format_annotates_file_and_line():
    result = run_cli(["lint", "--format", "github"], BROKEN)
    lines = result.stdout.splitlines()
    assert (
        "::error file=templates/kubernetes/apps/monitoring/tempo/ks.yaml,line=14,"
        "title=flux-dependency-missing::kubernetes/apps/monitoring/tempo/ks.yaml:14: "
        "flux-dependency-missing: dependsOn "
        "'victoria-metrics-k8s-stack' (namespace flux-system) matches no Kustomization in the "
        "tree"
    ) in lines
    assert lines[0].startswith("::warning file=cluster.schema.json,line=6,")
    assert len(lines) == len(BROKEN_FINDINGS)


def _project_with_only_warnings(tmp_path: Path) -> Path:
    project = shutil.copytree(CLEAN, tmp_path / "project")
    orphan = project / "templates/kubernetes/apps/monitoring/old.yaml"
    orphan.write_text("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: old\n")
    return project


def test_warnings_exit_0_unless_strict(tmp_path):
    project = _project_with_only_warnings(tmp_path)
    result = run_cli(["lint"], project)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "kubernetes/apps/monitoring/old.yaml:1 (templates/kubernetes/apps/monitoring/old.yaml:1): "
        "warning: unreachable: no Flux Kustomization under kubernetes/flux leads here through "
        "spec.path or kustomize resources; include it or delete it"
    ]
    assert run_cli(["lint", "--strict"], project).exit_code == 1


def test_disabled_rule_in_settings_is_silent(tmp_path):
    project = _project_with_only_warnings(tmp_path)
    settings = project / "makeflux.toml"
    settings.write_text(settings.read_text() + 'disable = ["unreachable"]\n')
    result = run_cli(["lint", "--strict"], project)
    assert (result.exit_code, result.stdout) == (0, "")


def test_externals_and_variables_come_from_settings(tmp_path):
    project = shutil.copytree(CLEAN, tmp_path / "project")
    settings = project / "makeflux.toml"
    settings.write_text(
        settings.read_text()
        .replace('variables = ["SECRET_DOMAIN"]\n', "")
        .replace(', "Secret flux-system/cluster-secrets"', "")
    )
    result = run_cli(["lint"], project)
    assert result.exit_code == 1
    assert [line.split(": ")[2] for line in result.stdout.splitlines()] == [
        "flux-substitute-undeclared",
        "flux-source-missing",
    ]


def test_bad_lint_settings_exit_2_with_one_line(tmp_path):
    project = shutil.copytree(CLEAN, tmp_path / "project")
    settings = project / "makeflux.toml"
    settings.write_text(settings.read_text() + 'disable = ["no-such-rule"]\n')
    result = run_subprocess(["lint"], project)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert "makeflux.toml: 'lint.disable' names unknown rule 'no-such-rule'" in lines[0]
    assert "Traceback" not in result.stderr


def test_render_options_do_not_apply_to_a_directory(tmp_path):
    result = run_cli(["lint", str(tmp_path), "--set", "a=b"], CLEAN)
    assert result.exit_code == 2
    assert "don't apply to DIR" in result.stderr


def test_missing_directory_is_bad_input(tmp_path):
    result = run_cli(["lint", str(tmp_path / "nope")], tmp_path)
    assert result.exit_code == 2


def test_broken_data_is_bad_input_not_findings(tmp_path):
    project = shutil.copytree(CLEAN, tmp_path / "project")
    (project / "cluster.yaml").write_text("podinfo_replicas: [\n")
    result = run_cli(["lint"], project)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("cluster.yaml:")


def test_directory_without_settings_uses_defaults(tmp_path):
    rendered = tmp_path / "repo"
    assert run_cli(["render", "--no-lint", "-o", str(rendered)], CLEAN).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_subprocess(["lint", str(rendered)], elsewhere)
    # No settings: flux bootstrap's GitRepository flux-system/flux-system is the one object
    # assumed to exist outside the tree; the cluster-secrets Secret is not.
    assert result.returncode == 1
    assert {line.split(": ")[2] for line in result.stdout.splitlines()} == {
        "flux-source-missing",
        "flux-substitute-undeclared",
    }
    assert "Secret 'cluster-secrets'" in result.stdout
    assert "GitRepository" not in result.stdout


def test_only_flux_bootstraps_git_repository_is_external_by_default(tmp_path):
    """A plain Flux repository, as `flux bootstrap` leaves it, with no makeflux settings."""
    repo = tmp_path / "fleet"
    cluster = repo / "kubernetes" / "flux"
    (cluster / "flux-system").mkdir(parents=True)
    (cluster / "apps.yaml").write_text(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        "metadata:\n  name: apps\n  namespace: flux-system\n"
        "spec:\n  interval: 10m\n  path: ./kubernetes/flux/flux-system\n  prune: true\n"
        "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
    )
    (cluster / "flux-system" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n"
    )
    clean = run_subprocess(["lint", "fleet"], tmp_path)
    assert "GitRepository" not in clean.stdout
    assert (clean.returncode, clean.stdout) == (0, ""), clean.stdout + clean.stderr
    # Any other source is still checked.
    apps = cluster / "apps.yaml"
    apps.write_text(apps.read_text().replace("name: flux-system\n", "name: home-ops\n"))
    missing = run_subprocess(["lint", "fleet"], tmp_path)
    assert missing.returncode == 1
    assert "flux-source-missing: sourceRef GitRepository 'home-ops'" in missing.stdout
    # Settings that list their externals replace the default, an empty list included.
    apps.write_text(apps.read_text().replace("name: home-ops\n", "name: flux-system\n"))
    (tmp_path / "makeflux.toml").write_text(
        '[makeflux]\ninputs = ["fleet"]\noutput = "out"\n[makeflux.lint]\nexternals = []\n'
    )
    declared_none = run_subprocess(["lint", "fleet"], tmp_path)
    assert "flux-source-missing: sourceRef GitRepository 'flux-system'" in declared_none.stdout


def test_variable_used_only_in_a_defined_guard_counts_as_used(tmp_path):
    project = shutil.copytree(CLEAN, tmp_path / "project")
    # tempo_enabled appears only in '#% if tempo_enabled is defined and tempo_enabled %#'
    assert "tempo_enabled" not in (project / "cluster.yaml").read_text().replace(
        "tempo_enabled: true", ""
    )
    result = run_cli(["lint", "--strict"], project)
    assert (result.exit_code, result.stdout) == (0, "")
    # and an undeclared one is an error even when guarded
    template = project / "templates/kubernetes/apps/monitoring/namespace.yaml"
    template.rename(template.with_suffix(".yaml.j2"))
    guarded = template.with_suffix(".yaml.j2")
    guarded.write_text(guarded.read_text() + "#% if extra_labels is defined %#\n#% endif %#\n")
    result = run_cli(["lint"], project)
    assert result.stdout.splitlines() == [
        undeclared("templates/kubernetes/apps/monitoring/namespace.yaml.j2:6", "extra_labels")
    ]


def test_intended_multiline_comment_is_only_a_warning(tmp_path):
    project = shutil.copytree(CLEAN, tmp_path / "project")
    template = project / "templates/kubernetes/apps/monitoring/kustomization.yaml.j2"
    template.write_text(
        "#| this kustomization lists\n   every monitoring app #|\n" + template.read_text()
    )
    result = run_cli(["lint"], project)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "templates/kubernetes/apps/monitoring/kustomization.yaml.j2:1: warning: "
        "template-comment-multiline: comment runs from here to line 2; if that is meant, "
        "ignore this, otherwise close it on this line"
    ]


PACK_SETTINGS = REPO_ROOT / "makeflux.toml"
PACK_SAMPLE = REPO_ROOT / "cluster.sample.yaml"


@pytest.mark.skipif(
    not (PACK_SAMPLE.is_file() and (REPO_ROOT / "templates" / "config").is_dir()),
    reason="the template pack is not in this checkout",
)
def test_shipped_pack_is_lint_clean_for_the_sample_config():
    result = run_cli(["lint", "--data", str(PACK_SAMPLE)], REPO_ROOT)
    assert result.stdout == ""
    assert result.exit_code == 0, result.stderr


@pytest.mark.skipif(
    not (PACK_SAMPLE.is_file() and (REPO_ROOT / "templates" / "config").is_dir()),
    reason="the template pack is not in this checkout",
)
def test_shipped_pack_is_lint_clean_in_every_flag_combination(tmp_path):
    import yaml

    from makeflux import lint, pipeline
    from tests.helpers.pack import all_valid_combinations, combination_id

    unclean = {}
    for values in all_valid_combinations():
        data = tmp_path / f"{combination_id(values)}.yaml"
        data.write_text(yaml.safe_dump(values), encoding="utf-8")
        run = pipeline.build(
            pipeline.RunOptions(cwd=REPO_ROOT, config=PACK_SETTINGS, data_files=(data,))
        )
        findings = lint.run(run)
        if findings:
            unclean[combination_id(values)] = [str(f) for f in findings]
    assert unclean == {}


def test_linting_the_kubernetes_directory_itself_keeps_repository_paths(tmp_path):
    rendered = tmp_path / "repo"
    assert run_cli(["render", "--no-lint", "-o", str(rendered)], BROKEN).exit_code == 0
    whole = run_cli(["lint", str(rendered)], BROKEN)
    inner = run_cli(["lint", str(rendered / "kubernetes")], BROKEN)
    assert inner.exit_code == 1
    assert inner.stdout == whole.stdout


def test_unused_schema_variable_points_at_its_top_level_declaration(tmp_path):
    project = shutil.copytree(CLEAN, tmp_path / "project")
    (project / "cluster.schema.json").write_text(
        "{\n"
        '  "type": "object",\n'
        '  "properties": {\n'
        '    "podinfo_replicas": {"type": "integer",\n'
        '      "properties": {"retention": {"description": "nested, \\"retention\\": not it"}}},\n'
        '    "tempo_enabled": {"type": "boolean"},\n'
        '    "retention": {"type": "string"}\n'
        "  }\n"
        "}\n"
    )
    result = run_cli(["lint"], project)
    assert result.stdout.splitlines() == [
        "cluster.schema.json:7: warning: template-variable-unused: 'retention' is declared but "
        "no template uses it; remove it or use it"
    ]


def test_quiet_keeps_the_findings_and_drops_the_summary():
    result = run_cli(["--quiet", "lint"], BROKEN)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == BROKEN_FINDINGS
    assert result.stderr == ""


def test_template_facts_are_cached_between_runs_and_follow_edits(tmp_path):
    project = shutil.copytree(BROKEN, tmp_path / "project")
    env = {"env": {"MAKEFLUX_CACHE_DIR": str(tmp_path / "cache")}}
    cold = run_subprocess(["lint"], project, **env)
    assert cold.stdout.splitlines() == BROKEN_FINDINGS
    assert list((tmp_path / "cache").glob("facts/*/*"))
    warm = run_subprocess(["lint"], project, **env)
    assert warm.stdout == cold.stdout
    # an edited template is parsed again: the undeclared variable moves with it
    template = project / "templates/kubernetes/apps/monitoring/tempo/app/helmrelease.yaml.j2"
    template.write_text(template.read_text().replace("  values:\n", "  values:\n    a: b\n"))
    edited = run_subprocess(["lint"], project, **env)
    assert (
        "templates/kubernetes/apps/monitoring/tempo/app/helmrelease.yaml.j2:19: error: "
        "template-variable-undeclared: 'retention_days'" in edited.stdout
    )
    uncached = run_subprocess(["--no-cache", "lint"], project, **env)
    assert uncached.stdout == edited.stdout


def test_findings_name_rendered_files_as_seen_from_the_working_directory(tmp_path):
    # With --output elsewhere, a finding must point at the file on disk, not at its place in
    # the tree: CI annotations and editors open that path.
    result = run_cli(["lint", "--output", str(tmp_path / "rendered")], BROKEN)
    shown = str(tmp_path / "rendered")
    assert (
        f"{shown}/kubernetes/apps/monitoring/tempo/ks.yaml:14 "
        "(templates/kubernetes/apps/monitoring/tempo/ks.yaml:14): error: "
    ) in result.stdout
    assert "\ncluster.schema.json:6: warning:" in "\n" + result.stdout  # templates stay relative


def clean_project_with_partials(tmp_path):
    """The clean fixture, with *.partial.j2 templates kept out of the output."""
    project = shutil.copytree(CLEAN, tmp_path / "project")
    settings = project / "makeflux.toml"
    settings.write_text(
        settings.read_text().replace(
            'schema = "cluster.schema.json"\n',
            'schema = "cluster.schema.json"\nexclude_patterns = ["*.partial.j2"]\n',
        )
    )
    return project


def test_variable_used_only_in_an_excluded_partial_counts_as_used(tmp_path):
    project = clean_project_with_partials(tmp_path)
    # The only use of tempo_enabled moves into a partial that is never rendered on its own.
    template = project / "templates/kubernetes/apps/monitoring/namespace.yaml"
    partial = project / "templates/kubernetes/apps/monitoring/labels.partial.j2"
    partial.write_text("#% if tempo_enabled %#\n#% endif %#\n")
    template.rename(template.with_suffix(".yaml.j2"))
    guarded = template.with_suffix(".yaml.j2")
    guarded.write_text(
        guarded.read_text() + '#% include "kubernetes/apps/monitoring/labels.partial.j2" %#\n'
    )
    for path in (project / "templates").rglob("*"):
        if path.is_file() and path != partial and "tempo_enabled" in path.read_text():
            path.write_text(path.read_text().replace("tempo_enabled is defined and ", ""))
            path.write_text(path.read_text().replace("#% if tempo_enabled %#", "#% if true %#"))
    result = run_cli(["lint", "--strict"], project)
    assert (result.exit_code, result.stdout) == (0, "")


def test_a_name_the_template_sets_in_each_branch_is_not_undeclared(tmp_path):
    """Jinja's find_undeclared_variables reports a name `set` in both branches of an `if` as
    read from the context: lint refused the render, asking to add it to the schema."""
    project = shutil.copytree(CLEAN, tmp_path / "project")
    template = project / "templates/kubernetes/apps/monitoring/namespace.yaml"
    template.rename(template.with_suffix(".yaml.j2"))
    branches = template.with_suffix(".yaml.j2")
    branches.write_text(
        branches.read_text() + "#% if tempo_enabled %#\n#% set kind, api = 'A', 'v1' %#\n"
        "#% else %#\n#% set kind, api = 'B', 'v2' %#\n#% endif %#\n"
        "#% if tempo_enabled %##% set label %#x#% endset %##% endif %#\n"
        "# #{ kind }# #{ api }# #{ label }# #{ still_missing | default('') }#\n"
    )
    result = run_cli(["lint"], project)
    assert result.stdout.splitlines() == [
        undeclared("templates/kubernetes/apps/monitoring/namespace.yaml.j2:12", "still_missing")
    ]


def test_a_variable_set_by_the_including_template_is_not_undeclared(tmp_path):
    project = clean_project_with_partials(tmp_path)
    (project / "templates" / "partials").mkdir()
    (project / "templates" / "partials" / "note.partial.j2").write_text(
        "# #{ note }# #{ nowhere_set | default('') }#\n"
    )
    kustomization = project / "templates/kubernetes/apps/monitoring/kustomization.yaml.j2"
    kustomization.write_text(
        "#% set note = 'managed' %#\n#% include 'partials/note.partial.j2' %#\n"
        + kustomization.read_text()
    )
    result = run_cli(["lint"], project)
    # `note` comes from the includer; `nowhere_set` from nowhere, so it is still reported.
    assert result.stdout.splitlines() == [
        undeclared("templates/partials/note.partial.j2:1", "nowhere_set")
    ]
