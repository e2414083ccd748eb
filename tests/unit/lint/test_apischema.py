"""schema-* rules: each category with a failing and a passing document, exact findings.

Trees are real YAML handed to lint_tree or to `makeflux lint DIR` (CliRunner and subprocess);
catalogs are built by `makeflux schemas extract` from the upstream CRDs the package ships.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from makeflux.cli import cli
from makeflux.lint import LintConfig, lint_tree
from makeflux.lint.catalog import BUILTIN_DIR
from tests.conftest import TESTS_DIR

PATH = "kubernetes/apps/app.yaml"
SETTINGS_WITH_CATALOG = """\
[makeflux]
inputs = ["templates"]
output = "."
[makeflux.lint]
schema_locations = ["catalog"]
"""


def schema_findings(text: str, config: LintConfig | None = None, path: str = PATH) -> list[str]:
    findings = lint_tree({path: dedent(text).lstrip().encode()}, config or LintConfig())
    return [str(f) for f in findings if f.rule.startswith("schema-")]


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx
          imagePullPolicy: {policy}
          resources:
            limits:
              memory: {memory}
"""


def deployment(replicas: str = "3", policy: str = "IfNotPresent", memory: str = "128Mi") -> str:
    return DEPLOYMENT.format(replicas=replicas, policy=policy, memory=memory)


KUSTOMIZATION = """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: {interval}
  path: ./kubernetes/apps
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


HELMRELEASE = """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: default
spec:
  interval: 1h
{source}
"""
CHART = """\
  chart:
    spec:
      chart: web
      sourceRef:
        kind: HelmRepository
        name: charts"""
CHART_REF = """\
  chartRef:
    kind: OCIRepository
    name: web"""


def test_the_eight_planted_mistakes_each_at_its_own_line(tmp_path: Path) -> None:
    """The issue's tree, through `makeflux lint DIR` as a subprocess: one finding per mistake."""
    apps = tmp_path / "kubernetes" / "apps"
    apps.mkdir(parents=True)
    (apps / "mistakes.yaml").write_text(
        dedent(
            """\
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata:
              name: apps
              namespace: flux-system
              labels:
                tier: platform_
            spec:
              intervall: 10m
              interval: 10m
              path: ./kubernetes/apps
              prune: true
              sourceRef:
                kind: GitRepository
                name: flux-system
            ---
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: GitRepository
            metadata:
              name: repo
              namespace: flux-system
            spec:
              interval: 1h
              url: https://example.com/repo.git
              ref:
                tag: 1.0
            ---
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata:
              name: web
              namespace: flux-system
            spec:
              interval: 1h
              chart:
                spec:
                  chart: web
                  sourceRef:
                    kind: HelmRepository
                    name: charts
              chartRef:
                kind: OCIRepository
                name: web
              install:
                remediation:
                  retries: three
            """
        )
        + "---\n"
        + dedent(deployment(replicas='"3"', policy="Sometimes")).lstrip()
        + dedent(
            """\
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              namespace: default
            spec:
              selector:
                app: web
              ports:
                - port: http
                  targetPort: http
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "makeflux", "lint", "kubernetes", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    found = [
        (f["line"], f["rule"], f["message"])
        for f in json.loads(result.stdout)
        if f["rule"].startswith("schema-")
    ]
    assert found == [
        (
            7,
            "schema-metadata",
            "Kustomization metadata.labels.tier: label value 'platform_' is not valid; use at "
            "most 63 letters, digits, '-', '_' and '.', starting and ending alphanumeric "
            "(or empty)",
        ),
        (
            9,
            "schema-unknown-field",
            "Kustomization spec.intervall: unknown field 'intervall'; did you mean 'interval'?",
        ),
        (
            26,
            "schema-type",
            "GitRepository spec.ref.tag: 1.0 is a number; expected a string (quote it)",
        ),
        (33, "schema-cel", "HelmRelease spec: either chart or chartRef must be set"),
        (
            46,
            "schema-type",
            "HelmRelease spec.install.remediation.retries: 'three' is a string; expected a "
            "whole number",
        ),
        (
            54,
            "schema-type",
            "Deployment spec.replicas: '3' is a string; expected a whole number "
            "(remove the quotes)",
        ),
        (
            66,
            "schema-enum",
            "Deployment spec.template.spec.containers[0].imagePullPolicy: 'Sometimes' is not "
            "one of: 'Always', 'IfNotPresent', 'Never'",
        ),
        (
            80,
            "schema-type",
            "Service spec.ports[0].port: 'http' is a string; expected a whole number",
        ),
    ]

    # The same file as a template in a project: each finding names the template line, one
    # below the rendered line (the template opens with a `#% if %#` line).
    project = tmp_path / "project"
    template = project / "templates/kubernetes/apps/mistakes.yaml.j2"
    template.parent.mkdir(parents=True)
    mistakes = (apps / "mistakes.yaml").read_text()
    template.write_text("#% if true %#\n" + mistakes + "#% endif %#\n")
    (project / "makeflux.toml").write_text('[makeflux]\ninputs = ["templates"]\noutput = "."\n')
    result = subprocess.run(
        [sys.executable, "-m", "makeflux", "lint", "--format", "json"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    named = [
        (f["line"], f["rule"], f["message"], f["template"], f["template_line"])
        for f in json.loads(result.stdout)
        if f["rule"].startswith("schema-")
    ]
    shown = "templates/kubernetes/apps/mistakes.yaml.j2"
    assert named == [(*finding, shown, finding[0] + 1) for finding in found]


def test_valid_documents_of_every_catalog_source_pass() -> None:
    text = (
        deployment()
        + "---"
        + KUSTOMIZATION.format(interval="10m")
        + "---"
        + HELMRELEASE.format(source=CHART_REF)
        + dedent(
            """\
            ---
            apiVersion: monitoring.coreos.com/v1
            kind: PrometheusRule
            metadata:
              name: rules
              namespace: default
            spec:
              groups:
                - name: web
                  rules:
                    - alert: WebDown
                      expr: up == 0
                      for: 5m
            """
        )
    )
    assert schema_findings(text) == []


def test_cel_rule_chart_xor_chart_ref() -> None:
    neither = schema_findings(HELMRELEASE.format(source=""))
    assert neither == [
        f"{PATH}:6: error: schema-cel: HelmRelease spec: either chart or chartRef must be set"
    ]
    assert schema_findings(HELMRELEASE.format(source=CHART)) == []


def test_cel_rule_kube_config_refs() -> None:
    text = (
        KUSTOMIZATION.format(interval="10m") + "  kubeConfig:\n    configMapRef:\n      name: a\n"
    )
    assert schema_findings(text) == []
    both = text + "    secretRef:\n      name: b\n"
    assert schema_findings(both) == [
        f"{PATH}:13: error: schema-cel: Kustomization spec.kubeConfig: exactly one of "
        "spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified"
    ]


def test_required_field_reported_at_its_parent() -> None:
    text = KUSTOMIZATION.format(interval="10m").replace("    name: flux-system\n", "")
    assert schema_findings(text) == [
        f"{PATH}:10: error: schema-required: Kustomization spec.sourceRef: missing required "
        "field 'name' in spec.sourceRef"
    ]


def test_enum_pattern_and_formats() -> None:
    bad_kind = KUSTOMIZATION.format(interval="10m").replace("kind: GitRepository", "kind: Git")
    assert schema_findings(bad_kind) == [
        f"{PATH}:11: error: schema-enum: Kustomization spec.sourceRef.kind: 'Git' is not one "
        "of: 'OCIRepository', 'GitRepository', 'Bucket', 'ExternalArtifact'"
    ]
    pattern = schema_findings(KUSTOMIZATION.format(interval="ten"))
    assert pattern == [
        f"{PATH}:7: error: schema-pattern: Kustomization spec.interval: 'ten' does not match "
        "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
    ]
    assert schema_findings(deployment(memory="lots")) == [
        f"{PATH}:22: error: schema-format: Deployment "
        "spec.template.spec.containers[0].resources.limits.memory: 'lots' is not a quantity; "
        "write e.g. 100m, 1.5, 128Mi or 2Gi"
    ]
    assert schema_findings(deployment(memory="1") + "              cpu: 0.5\n") == []


def test_list_map_keys_must_be_unique() -> None:
    service = dedent(
        """\
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          ports:
            - name: http
              port: 80
            - name: metrics
              port: 80
        """
    )
    assert schema_findings(service) == [
        f"{PATH}:9: error: schema-list-unique: Service spec.ports[1]: duplicate port/protocol "
        "80/unset (first at item 0); each must appear once"
    ]
    assert schema_findings(service.replace("port: 80\n", "port: 81\n", 1)) == []


def test_metadata_names_namespaces_and_annotation_keys() -> None:
    text = dedent(
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: Web_Config
          namespace: My-Apps
          annotations:
            "bad key!": x
            example.com/good: y
        """
    )
    assert schema_findings(text) == [
        f"{PATH}:4: error: schema-metadata: ConfigMap metadata.name: 'Web_Config' is not a "
        "DNS-1123 subdomain; use lowercase letters, digits, '-' and '.', starting and ending "
        "alphanumeric",
        f"{PATH}:5: error: schema-metadata: ConfigMap metadata.namespace: 'My-Apps' is not a "
        "DNS-1123 label; use at most 63 lowercase letters, digits and '-', starting and ending "
        "alphanumeric",
        f"{PATH}:7: error: schema-metadata: ConfigMap metadata.annotations.bad key!: annotation "
        "key 'bad key!' is not valid; the name part takes at most 63 letters, digits, '-', '_' "
        "and '.', starting and ending alphanumeric",
    ]
    assert (
        schema_findings(
            text.replace("Web_Config", "web.config")
            .replace("My-Apps", "my-apps")
            .replace('"bad key!"', "a.b/c")
        )
        == []
    )


@pytest.mark.parametrize(
    ("replicas", "port", "expected"),
    [
        ("${APP_REPLICAS:=2}", "${PORT}", []),
        ("${APP_REPLICAS}", "${PORT:=8080}", []),
        ("${APP_REPLICAS:=two}", "80", ["spec.replicas: 'two' is a string; expected a whole"]),
        ('"${APP_REPLICAS:=2}"', "80", ["spec.replicas: '2' is a string; expected a whole number"]),
        ("x-${SUFFIX}", "${PORT:-http}", ["spec.ports[0].port: 'http' is a string"]),
    ],
)
def test_flux_substitution_validates_what_flux_would_apply(
    replicas: str, port: str, expected: list[str]
) -> None:
    text = deployment(replicas=replicas) + dedent(
        f"""\
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: web-${{CLUSTER:=main}}
          labels:
            tier: ${{TIER}}
        spec:
          ports:
            - port: {port}
        """
    )
    found = schema_findings(text)
    assert len(found) == len(expected)
    for line, part in zip(found, expected, strict=True):
        assert part in line


def test_sops_documents_drop_their_metadata_and_accept_encrypted_strings() -> None:
    secret = dedent(
        """\
        apiVersion: v1
        kind: Secret
        metadata:
          name: app
        stringData:
          token: ENC[AES256_GCM,data:abc=,iv:x=,tag:y=,type:str]
        sops:
          age:
            - recipient: age1xyz
          lastmodified: "2026-01-01T00:00:00Z"
          version: 3.9.0
        """
    )
    assert schema_findings(secret, path="kubernetes/apps/app.sops.yaml") == []
    # Without the sops block and outside rewritten_patterns, `sops` is an unknown field.
    plain = secret.replace("ENC[", "x").replace("sops:", "extra:")
    assert [f.split(": ")[2] for f in schema_findings(plain)] == ["schema-unknown-field"]
    encrypted_int = deployment(replicas="ENC[AES256_GCM,data:Mg==,iv:a=,tag:b=,type:int]")
    found = schema_findings(encrypted_int, path="kubernetes/apps/app.sops.yaml")
    assert found == [
        "kubernetes/apps/app.sops.yaml:7: error: schema-type: Deployment spec.replicas: "
        "'ENC[AES256_GCM,data:Mg==,iv:a=,tag:b=,type:int]' is a string; expected a whole number"
    ]


def test_schema_missing_once_per_kind_and_skip_kinds() -> None:
    doc = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\n"
    text = doc.format(name="a") + "---\n" + doc.format(name="b")
    assert schema_findings(text) == [
        f"{PATH}:1: warning: schema-missing: no schema for Widget example.com/v1, so its "
        "documents are not checked; add its CRD to the tree or a schema_locations catalog "
        "(makeflux schemas extract), or list the kind in lint.skip_kinds"
    ]
    assert schema_findings(text, LintConfig(skip_kinds=frozenset({"Widget"}))) == []


WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names:
    kind: Widget
    plural: widgets
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size:
                  type: integer
"""


def test_crds_in_the_tree_are_used() -> None:
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: a\nspec:\n  size: big\n"
    files = {
        "kubernetes/crds/widget.yaml": dedent(WIDGET_CRD).encode(),
        PATH: widget.encode(),
    }
    found = [str(f) for f in lint_tree(files, LintConfig()) if f.rule.startswith("schema-")]
    assert found == [
        f"{PATH}:6: error: schema-type: Widget spec.size: 'big' is a string; expected a whole "
        "number"
    ]


def test_user_catalog_from_schemas_extract(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "crds.yaml").write_text(dedent(WIDGET_CRD))
    runner = CliRunner()
    result = runner.invoke(cli, ["schemas", "extract", "crds.yaml", "-d", "catalog"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "catalog/example.com/widget_v1.json").is_file()
    (tmp_path / "makeflux.toml").write_text(SETTINGS_WITH_CATALOG)
    apps = tmp_path / "kubernetes" / "apps"
    apps.mkdir(parents=True)
    (apps / "w.yaml").write_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: a\nspec:\n  sise: 1\n"
    )
    result = runner.invoke(cli, ["lint", "kubernetes"])
    assert "kubernetes/apps/w.yaml:6: error: schema-unknown-field: Widget spec.sise: unknown " in (
        result.output
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("kind: ConfigMap\n", "crds.yaml: holds no CustomResourceDefinition"),
        (
            dedent(WIDGET_CRD).replace("      schema:\n", "      schemaa:\n"),
            "crds.yaml: CRD Widget.example.com version v1 has no openAPIV3Schema",
        ),
        ("a: [\n", "crds.yaml:2: invalid YAML"),
    ],
)
def test_schemas_extract_bad_input_is_one_line_exit_2(
    tmp_path: Path, monkeypatch, content: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "crds.yaml").write_text(content)
    result = CliRunner().invoke(cli, ["schemas", "extract", "crds.yaml", "-d", "out"])
    assert result.exit_code == 2
    assert expected in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "'lint.schema_locations' directory"),
        ("invalid-json", "catalog/example.com/widget_v1.json:1: invalid JSON"),
    ],
)
def test_bad_user_catalog_is_one_line_exit_2(
    tmp_path: Path, monkeypatch, setup: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "makeflux.toml").write_text(SETTINGS_WITH_CATALOG)
    if setup == "invalid-json":
        (tmp_path / "catalog/example.com").mkdir(parents=True)
        (tmp_path / "catalog/example.com/widget_v1.json").write_text("{nope")
    apps = tmp_path / "kubernetes" / "apps"
    apps.mkdir(parents=True)
    (apps / "w.yaml").write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: a\n")
    result = CliRunner().invoke(cli, ["lint", "kubernetes"])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_extracting_a_flux_crd_round_trips_to_the_built_in_schema(tmp_path: Path) -> None:
    """kustomize-controller's own CRD file, through `makeflux schemas extract`, gives the
    built-in schema, which accepts and rejects the same documents."""
    crd = TESTS_DIR / "fixtures/crds/kustomize.toolkit.fluxcd.io_kustomizations.yaml"
    catalog = tmp_path / "catalog"
    result = CliRunner().invoke(cli, ["schemas", "extract", str(crd), "-d", str(catalog)])
    assert result.exit_code == 0, result.output
    relative = "kustomize.toolkit.fluxcd.io/kustomization_v1.json"
    assert json.loads((catalog / relative).read_text()) == json.loads(
        (BUILTIN_DIR / relative).read_text()
    )
    valid = KUSTOMIZATION.format(interval="10m")
    documents = [
        valid,
        KUSTOMIZATION.format(interval="soon"),
        valid.replace("  prune: true\n", "  prune: maybe\n  intervall: 1m\n"),
        valid + "  kubeConfig:\n    configMapRef:\n      name: a\n    secretRef:\n      name: b\n",
    ]
    with_user = LintConfig(schema_locations=(catalog,))
    verdicts = [schema_findings(document, with_user) for document in documents]
    assert verdicts == [schema_findings(document) for document in documents]
    assert [len(v) for v in verdicts] == [0, 1, 2, 1]


def test_verdict_is_kept_between_runs_and_follows_edits(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MAKEFLUX_CACHE_DIR", str(tmp_path / "cache"))
    bad = {PATH: dedent(deployment(replicas='"3"')).lstrip().encode()}
    first = [str(f) for f in lint_tree(bad, LintConfig())]
    stored = list((tmp_path / "cache" / "facts" / "lint-schemas").iterdir())
    assert len(stored) == 1
    assert [str(f) for f in lint_tree(bad, LintConfig())] == first
    assert any("schema-type" in line for line in first)
    fixed = {PATH: dedent(deployment()).lstrip().encode()}
    assert lint_tree(fixed, LintConfig()) == []
    # The same files under other settings are a different verdict.
    skipped = LintConfig(skip_kinds=frozenset({"Deployment"}))
    assert [f for f in lint_tree(bad, skipped) if f.rule.startswith("schema-")] == []


def test_generate_name_is_a_prefix_of_a_valid_name() -> None:
    job = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: {prefix}\n"
    assert schema_findings(job.format(prefix="backup-")) == []
    assert schema_findings(job.format(prefix="Backup_")) == [
        f"{PATH}:4: error: schema-metadata: ConfigMap metadata.generateName: 'Backup_' is not a "
        "DNS-1123 subdomain; use lowercase letters, digits, '-' and '.', starting and ending "
        "alphanumeric"
    ]


def test_cel_comprehension_macros_of_prometheus_operator() -> None:
    """ScrapeConfig's rule uses a list literal, filter() and size()."""
    scrape = dedent(
        """\
        apiVersion: monitoring.coreos.com/v1alpha1
        kind: ScrapeConfig
        metadata:
          name: nodes
        spec:
          basicAuth:
            username:
              name: creds
              key: user
        """
    )
    assert schema_findings(scrape) == []
    both = scrape + "  authorization:\n    type: Bearer\n"
    assert schema_findings(both) == [
        f"{PATH}:5: error: schema-cel: ScrapeConfig spec: at most one of basicAuth, "
        "authorization, or oauth2 can be configured"
    ]


def test_every_cel_rule_of_the_built_in_catalog_is_in_the_evaluated_subset() -> None:
    """A rule outside the subset would be skipped silently: keep the catalog fully covered."""
    from makeflux.lint.cel import compile_rule

    rules: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            rules.extend(r["rule"] for r in node.get("x-kubernetes-validations") or [])
            for child in node.values():
                collect(child)
        elif isinstance(node, list):
            for child in node:
                collect(child)

    for path in BUILTIN_DIR.rglob("*_*.json"):
        collect(json.loads(path.read_text()))
    # Transition rules compare with the object's previous state, which an offline check has not.
    rules = [rule for rule in rules if "oldSelf" not in rule]
    assert len(rules) > 300
    for rule in rules:
        compile_rule(rule)  # raises Unsupported for an expression outside the subset


def test_unknown_kubernetes_version_is_one_line_exit_2(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "makeflux.toml").write_text(
        '[makeflux]\ninputs = ["templates"]\noutput = "."\n'
        '[makeflux.lint]\nkubernetes_version = "1.99"\n'
    )
    (tmp_path / "kubernetes").mkdir()
    result = CliRunner().invoke(cli, ["lint", "kubernetes"])
    assert result.exit_code == 2
    assert result.output.strip().endswith(
        "makeflux.toml: 'lint.kubernetes_version' '1.99' has no schemas; known: 1.25, 1.26, "
        "1.27, 1.28, 1.29, 1.30, 1.31, 1.32, 1.33, 1.34, 1.35, 1.36, 1.37"
    )
    assert len(result.output.strip().splitlines()) == 1


def test_values_read_as_kubernetes_reads_yaml() -> None:
    """An unquoted date stays a string and non-string keys become strings, as in Kubernetes."""
    text = dedent(
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: dates
          annotations:
            example.com/released: 2026-01-31
        data:
          1: one
          true: yes-string
          released: 2026-01-31
        """
    )
    assert schema_findings(text) == []


def test_cel_rules_see_the_schema_defaults() -> None:
    """Bucket's provider defaults to 'generic', whose only STS provider is 'ldap': the API
    server defaults before it evaluates the rules, and so does lint."""
    bucket = dedent(
        """\
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: Bucket
        metadata:
          name: b
        spec:
          interval: 1h
          bucketName: b
          endpoint: minio.example.com
          sts:
            provider: {provider}
            endpoint: https://sts.example.com
        """
    )
    assert schema_findings(bucket.format(provider="ldap")) == []
    assert schema_findings(bucket.format(provider="aws")) == [
        f"{PATH}:5: error: schema-cel: Bucket spec: 'ldap' is the only supported STS provider "
        "for the 'generic' Bucket provider"
    ]


HTTPROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
  namespace: default
spec:
  hostnames: ["web.${SECRET_DOMAIN}"]
  parentRefs:
    - name: envoy-external
      namespace: network
      sectionName: https
  rules:
    - backendRefs:
        - name: web
          port: 80
      matches:
        - path:
            type: PathPrefix
            value: /
"""


def test_gateway_api_routes() -> None:
    assert schema_findings(HTTPROUTE) == []
    redirect_and_backend = HTTPROUTE.replace(
        "      matches:\n",
        "      filters:\n"
        "        - type: RequestRedirect\n"
        "          requestRedirect:\n"
        "            scheme: https\n"
        "      matches:\n",
    )
    assert schema_findings(redirect_and_backend) == [
        f"{PATH}:13: error: schema-cel: HTTPRoute spec.rules[0]: RequestRedirect filter must not "
        "be used together with backendRefs"
    ]


def test_annotations_fit_in_256_kib() -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    a: {value}\n"
    assert schema_findings(doc.format(value="x" * (256 * 1024 - 1))) == []
    assert schema_findings(doc.format(value="x" * (256 * 1024))) == [
        f"{PATH}:5: error: schema-metadata: ConfigMap metadata.annotations: annotations total "
        "262145 bytes; the API server takes at most 262144 (256 KiB): move large data to a "
        "ConfigMap"
    ]


def test_cel_raw_triple_quoted_patterns_of_gateway_addresses() -> None:
    gateway = dedent(
        """\
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata:
          name: external
        spec:
          gatewayClassName: envoy
          addresses:
            - type: Hostname
              value: {host}
          listeners:
            - name: https
              protocol: HTTPS
              port: 443
              tls:
                certificateRefs:
                  - name: cert
        """
    )
    assert schema_findings(gateway.format(host="gw.example.com")) == []
    assert schema_findings(gateway.format(host="Bad_Host")) == [
        f"{PATH}:8: error: schema-cel: Gateway spec.addresses[0]: Hostname value must be empty "
        "or contain only valid characters (matching "
        "^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)"
    ]


def test_alerts_on_flux_operator_kinds_are_valid() -> None:
    """The Flux Operator, which installs Flux for cluster-template, widens Alert's kinds."""
    alert = dedent(
        """\
        apiVersion: notification.toolkit.fluxcd.io/v1beta3
        kind: Alert
        metadata:
          name: flux
          namespace: flux-system
        spec:
          providerRef:
            name: alertmanager
          eventSeverity: error
          eventSources:
            - kind: {kind}
              name: "*"
        """
    )
    assert schema_findings(alert.format(kind="FluxInstance")) == []
    assert [f.split(": ")[2] for f in schema_findings(alert.format(kind="Flux"))] == ["schema-enum"]


def test_render_with_a_broken_user_catalog_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "makeflux.toml").write_text(SETTINGS_WITH_CATALOG)
    (tmp_path / "catalog/example.com").mkdir(parents=True)
    (tmp_path / "catalog/example.com/widget_v1.json").write_text("[1, 2")
    template = tmp_path / "templates/kubernetes/apps/w.yaml"
    template.parent.mkdir(parents=True)
    template.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: a\n")
    result = CliRunner().invoke(cli, ["render"])
    assert result.exit_code == 2, result.output
    assert "catalog/example.com/widget_v1.json:1: invalid JSON" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "kubernetes").exists()


def test_schemas_extract_reads_a_kubectl_list(tmp_path: Path, monkeypatch) -> None:
    """`kubectl get crds -o yaml` prints a List: its CRDs are extracted like separate ones."""
    monkeypatch.chdir(tmp_path)
    crd = yaml.safe_load(dedent(WIDGET_CRD))
    gadget = json.loads(json.dumps(crd).replace("Widget", "Gadget").replace("widget", "gadget"))
    listed = {"apiVersion": "v1", "kind": "List", "items": [crd, gadget]}
    (tmp_path / "crds.yaml").write_text(yaml.safe_dump(listed))
    result = CliRunner().invoke(cli, ["schemas", "extract", "crds.yaml", "-d", "catalog"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "catalog/example.com").iterdir()) == [
        "gadget_v1.json",
        "widget_v1.json",
    ]


def test_a_malformed_user_schema_is_one_line_exit_2(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "makeflux.toml").write_text(SETTINGS_WITH_CATALOG)
    (tmp_path / "catalog/example.com").mkdir(parents=True)
    (tmp_path / "catalog/example.com/widget_v1.json").write_text('{"properties": ["spec"]}')
    apps = tmp_path / "kubernetes" / "apps"
    apps.mkdir(parents=True)
    (apps / "w.yaml").write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: a\n")
    result = CliRunner().invoke(cli, ["lint", "kubernetes"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(
        "kubernetes/apps/w.yaml:1: the schema for Widget example.com/v1 is not a usable OpenAPI "
        "schema (AttributeError:"
    )
    assert len(result.output.strip().splitlines()) == 1


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.sampled_from(["", "x", "10m", "128Mi", "${VAR}", "ENC[AES256_GCM,data:x]", "a.b/c"]),
)
_KEYS = st.sampled_from(
    [
        "spec",
        "name",
        "kind",
        "type",
        "value",
        "provider",
        "sts",
        "chart",
        "chartRef",
        "ports",
        "port",
        "interval",
        "selector",
        "rules",
        "parentRefs",
        "eventSources",
        "x",
    ]
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=25,
)
_BUILT_IN_KINDS = sorted(
    p.relative_to(BUILTIN_DIR).as_posix() for p in BUILTIN_DIR.rglob("*_*.json")
)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(_BUILT_IN_KINDS), spec=_DOCUMENTS)
def test_the_validator_judges_any_document_without_failing(kind: str, spec: object) -> None:
    """Whatever a document holds, each built-in schema (and its CEL rules) gives findings,
    never an exception."""
    from makeflux.lint.openapi import Validator
    from makeflux.lint.validation import prepare

    validator = Validator(json.loads((BUILTIN_DIR / kind).read_text()))
    violations = validator.validate(prepare({"spec": spec}, sops=True))
    assert all(v.rule.startswith("schema-") for v in violations)
