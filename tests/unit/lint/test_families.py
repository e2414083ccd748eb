"""Each lint rule on a small tree: one tree that trips it, one that does not.

Trees are real YAML handed to lint_tree; kustomize and PromQL verdicts are cross-checked
against `kubectl kustomize` and `promtool` where those tools can judge the same thing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from textwrap import dedent

import pytest
import yaml

from makeflux.lint import LintConfig, lint_tree

CONFIG = LintConfig(externals=frozenset({("GitRepository", "flux-system", "flux-system")}))

ROOT = "kubernetes/flux/cluster/ks.yaml"


def flux_ks(name: str, path: str, *, namespace: str | None = "flux-system", spec: str = "") -> str:
    """A Flux Kustomization; `spec` adds lines under spec (indented by two)."""
    ns = f"\n  namespace: {namespace}" if namespace else ""
    extra = "".join(f"  {line}\n" for line in dedent(spec).strip("\n").splitlines())
    return (
        f"---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        f"metadata:\n  name: {name}{ns}\nspec:\n  interval: 1h\n  path: {path}\n  prune: true\n"
        f"  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
        f"    namespace: flux-system\n{extra}"
    )


def configmap(name: str, namespace: str | None = None) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    return f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}{ns}\ndata:\n  a: b\n"


def kustomization(*resources: str, namespace: str | None = None, extra: str = "") -> str:
    lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization"]
    if namespace:
        lines.append(f"namespace: {namespace}")
    lines.append("resources:")
    lines += [f"  - {r}" for r in resources]
    return "\n".join(lines) + "\n" + dedent(extra)


def app_tree(**apps: str) -> dict[str, str]:
    """A root Kustomization over kubernetes/apps, plus files given as path=text."""
    return {ROOT: flux_ks("cluster-apps", "./kubernetes/apps"), **apps}


def lint(files: dict[str, str], config: LintConfig = CONFIG) -> list[str]:
    return [str(f) for f in lint_tree({p: t.encode() for p, t in files.items()}, config)]


def only(rule: str, files: dict[str, str], config: LintConfig = CONFIG) -> list[str]:
    return [line for line in lint(files, config) if f": {rule}: " in line]


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return tmp_path


# --- YAML ---------------------------------------------------------------------------------


def test_yaml_invalid_names_file_and_line():
    files = app_tree(**{"kubernetes/apps/a.yaml": "---\nkind: ConfigMap\nmetadata: {name: a\n"})
    assert only("yaml-invalid", files) == [
        "kubernetes/apps/a.yaml:4: error: yaml-invalid: invalid YAML: did not find expected "
        "',' or '}' (while parsing a flow mapping started at line 3)"
    ]


def test_yaml_valid_everywhere_passes():
    files = app_tree(**{"kubernetes/apps/a.yaml": configmap("a", "default"), "x.yml": "a: [1]\n"})
    assert lint(files) == []


def test_yaml_duplicate_key_is_an_error_at_the_second_key():
    text = configmap("a", "default") + "  c: d\n  a: again\n"
    files = app_tree(**{"kubernetes/apps/a.yaml": text})
    assert only("yaml-duplicate-key", files) == [
        "kubernetes/apps/a.yaml:10: error: yaml-duplicate-key: duplicate key 'a' "
        "(first at line 8); remove one of them"
    ]


def test_same_key_in_different_mappings_or_over_a_merge_key_is_fine():
    text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {a: b}\n"
    assert only("yaml-duplicate-key", app_tree(**{"kubernetes/apps/a.yaml": text})) == []
    merged = text + "data:\n  base: &base {a: '1', b: '2'}\n  x:\n    <<: *base\n    a: '3'\n"
    assert only("yaml-duplicate-key", app_tree(**{"kubernetes/apps/a.yaml": merged})) == []


def test_manifest_without_name_or_kind_is_reported():
    text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n---\nmetadata:\n  name: x\n"
    files = app_tree(**{"kubernetes/apps/a.yaml": text})
    assert only("k8s-missing-field", files) == [
        "kubernetes/apps/a.yaml:2: error: k8s-missing-field: document has no metadata.name; "
        "every Kubernetes manifest needs apiVersion, kind and metadata.name",
        "kubernetes/apps/a.yaml:6: error: k8s-missing-field: document has no apiVersion, kind; "
        "every Kubernetes manifest needs apiVersion, kind and metadata.name",
    ]


def test_kustomize_inputs_and_files_outside_manifest_dirs_need_no_name():
    files = app_tree(
        **{
            "kubernetes/apps/kustomization.yaml": kustomization(
                "./a.yaml",
                extra="""\
            configMapGenerator:
              - name: values
                files:
                  - values.yaml=./helm/values.yaml
            """,
            ),
            "kubernetes/apps/a.yaml": configmap("a", "default"),
            "kubernetes/apps/helm/values.yaml": "replicas: 1\n",
            "talos/talconfig.yaml": "clusterName: lab\n",
            "kubernetes/.sops.yaml": "creation_rules:\n  - path_regex: .*\\.sops\\.yaml\n",
        }
    )
    assert lint(files) == []


# --- kustomize ----------------------------------------------------------------------------


def _kubectl_kustomize_ok(directory: Path) -> bool:
    result = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True)
    return result.returncode == 0


KUSTOMIZE_BROKEN = app_tree(
    **{
        "kubernetes/apps/kustomization.yaml": kustomization("./a.yaml", "./gone.yaml", "./plain"),
        "kubernetes/apps/a.yaml": configmap("a", "default"),
        "kubernetes/apps/plain/b.yaml": configmap("b", "default"),
    }
)

KUSTOMIZE_FINE = app_tree(
    **{
        "kubernetes/apps/kustomization.yaml": kustomization("./a.yaml", "./sub"),
        "kubernetes/apps/a.yaml": configmap("a", "default"),
        "kubernetes/apps/sub/kustomization.yaml": kustomization("./b.yaml"),
        "kubernetes/apps/sub/b.yaml": configmap("b", "default"),
    }
)


def test_kustomize_entry_that_is_missing_or_not_a_kustomization(tmp_path):
    assert only("kustomize-resource-missing", KUSTOMIZE_BROKEN) == [
        "kubernetes/apps/kustomization.yaml:5: error: kustomize-resource-missing: resources "
        "entry './gone.yaml' names no file or directory in the tree",
        "kubernetes/apps/kustomization.yaml:6: error: kustomize-resource-missing: resources "
        "entry './plain' is a directory without a kustomization.yaml",
    ]
    # kustomize itself agrees the tree is broken
    assert not _kubectl_kustomize_ok(write(tmp_path, KUSTOMIZE_BROKEN) / "kubernetes/apps")


def test_kustomize_entries_that_exist_pass(tmp_path):
    assert only("kustomize-resource-missing", KUSTOMIZE_FINE) == []
    assert _kubectl_kustomize_ok(write(tmp_path, KUSTOMIZE_FINE) / "kubernetes/apps")


def test_kustomization_file_may_be_named_kustomization():
    files = app_tree(
        **{
            "kubernetes/apps/Kustomization": kustomization("./a.yaml", "./gone.yaml"),
            "kubernetes/apps/a.yaml": configmap("a", "default"),
            "kubernetes/apps/b.yaml": configmap("b", "default"),
        }
    )
    assert lint(files) == [
        "kubernetes/apps/Kustomization:5: error: kustomize-resource-missing: resources entry "
        "'./gone.yaml' names no file or directory in the tree",
        "kubernetes/apps/b.yaml:1: warning: unreachable: no Flux Kustomization under "
        "kubernetes/flux leads here through spec.path or kustomize resources; include it or "
        "delete it",
    ]


# --- reachability -------------------------------------------------------------------------


def test_file_no_root_leads_to_is_unreachable():
    files = app_tree(
        **{
            "kubernetes/apps/kustomization.yaml": kustomization("./a.yaml"),
            "kubernetes/apps/a.yaml": configmap("a", "default"),
            "kubernetes/apps/old.yaml": configmap("old", "default"),
        }
    )
    assert only("unreachable", files) == [
        "kubernetes/apps/old.yaml:1: warning: unreachable: no Flux Kustomization under "
        "kubernetes/flux leads here through spec.path or kustomize resources; include it or "
        "delete it"
    ]


def test_reachable_through_flux_paths_generated_kustomizations_and_components():
    files = app_tree(
        **{
            # no kustomization.yaml in kubernetes/apps: Flux includes every manifest below it,
            # and a subdirectory with its own kustomization.yaml as a whole
            "kubernetes/apps/a.yaml": configmap("a", "default"),
            "kubernetes/apps/deep/b.yaml": configmap("b", "default"),
            "kubernetes/apps/ns/kustomization.yaml": kustomization(
                "./ks.yaml", namespace="ns", extra="components:\n  - ../../components/common\n"
            ),
            "kubernetes/apps/ns/ks.yaml": flux_ks("app", "./kubernetes/apps/ns/app"),
            "kubernetes/apps/ns/app/c.yaml": configmap("c"),
            "kubernetes/components/common/kustomization.yaml": (
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
                "resources:\n  - ./d.yaml\n"
            ),
            "kubernetes/components/common/d.yaml": configmap("d"),
        }
    )
    assert lint(files) == []


def test_custom_roots_from_settings():
    files = {
        "clusters/home/ks.yaml": flux_ks("apps", "./apps/live"),
        "apps/live/a.yaml": configmap("a", "default"),
        "apps/old/b.yaml": configmap("b", "default"),
    }
    config = LintConfig(
        externals=CONFIG.externals, roots=("clusters/home",), manifest_dirs=("apps", "clusters")
    )
    assert only("unreachable", files, config) == [
        "apps/old/b.yaml:1: warning: unreachable: no Flux Kustomization under clusters/home "
        "leads here through spec.path or kustomize resources; include it or delete it"
    ]
    files["clusters/home/ks.yaml"] = flux_ks("apps", "./apps")
    assert lint(files, config) == []


def test_flux_bootstrap_layout_where_the_root_applies_itself():
    # flux bootstrap: clusters/prod/flux-system/gotk-sync.yaml's Kustomization has the path
    # ./clusters/prod, which includes gotk-sync.yaml itself and the other root Kustomizations.
    files = {
        "clusters/prod/flux-system/kustomization.yaml": kustomization("./gotk-sync.yaml"),
        "clusters/prod/flux-system/gotk-sync.yaml": dedent("""\
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: GitRepository
            metadata:
              name: flux-system
              namespace: flux-system
            spec:
              interval: 1h
              url: ssh://git@github.com/example/fleet
            """)
        + flux_ks("flux-system", "./clusters/prod"),
        "clusters/prod/apps.yaml": flux_ks("apps", "./apps/prod"),
        "apps/prod/cm.yaml": configmap("a", "default"),
    }
    config = LintConfig(roots=("clusters/prod",), manifest_dirs=("clusters", "apps"))
    assert lint(files, config) == []
    files["apps/stale/cm.yaml"] = configmap("b", "default")
    assert only("unreachable", files, config) == [
        "apps/stale/cm.yaml:1: warning: unreachable: no Flux Kustomization under clusters/prod "
        "leads here through spec.path or kustomize resources; include it or delete it"
    ]


# --- namespaces ---------------------------------------------------------------------------


def test_objects_collapsed_by_target_namespace_are_duplicates():
    files = app_tree(
        **{
            "kubernetes/apps/a/ks.yaml": flux_ks(
                "a", "./kubernetes/apps/a/app", spec="targetNamespace: shared"
            ),
            "kubernetes/apps/a/app/cm.yaml": configmap("settings", "a"),
            "kubernetes/apps/b/ks.yaml": flux_ks(
                "b", "./kubernetes/apps/b/app", spec="targetNamespace: shared"
            ),
            "kubernetes/apps/b/app/cm.yaml": configmap("settings"),
        }
    )
    assert only("namespace-duplicate", files) == [
        "kubernetes/apps/b/app/cm.yaml:5: error: namespace-duplicate: ConfigMap 'settings' "
        "(namespace shared) is also defined at kubernetes/apps/a/app/cm.yaml:5; the two "
        "collapse into one object in the cluster"
    ]
    assert only("namespace-overridden", files) == [
        "kubernetes/apps/a/app/cm.yaml:6: warning: namespace-overridden: namespace 'a' is "
        "replaced by 'shared' from targetNamespace of Kustomization flux-system/a "
        "(kubernetes/apps/a/ks.yaml:15); remove it or make them agree"
    ]


def test_same_name_in_different_namespaces_and_shared_components_are_fine():
    component = {
        "kubernetes/components/common/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
            "resources:\n  - ./cm.yaml\n"
        ),
        "kubernetes/components/common/cm.yaml": configmap("common"),
    }
    files = app_tree(
        **component,
        **{
            f"kubernetes/apps/{ns}/kustomization.yaml": kustomization(
                "./cm.yaml", namespace=ns, extra="components:\n  - ../../components/common\n"
            )
            for ns in ("a", "b")
        },
        **{f"kubernetes/apps/{ns}/cm.yaml": configmap("settings") for ns in ("a", "b")},
    )
    # an explicit namespace that agrees with targetNamespace is fine
    files["kubernetes/apps/c/ks.yaml"] = flux_ks(
        "c", "./kubernetes/apps/c/app", spec="targetNamespace: c"
    )
    files["kubernetes/apps/c/app/cm.yaml"] = configmap("settings", "c")
    files["kubernetes/apps/c/kustomization.yaml"] = kustomization("./ks.yaml")
    assert lint(files) == []


def test_kustomize_namespace_renames_namespace_objects(tmp_path):
    # cluster-template's common component ships 'Namespace _'; kustomize names it after the
    # including kustomization's namespace, so two namespaces using it don't collide.
    files = app_tree(
        **{
            "kubernetes/components/common/kustomization.yaml": (
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
                "resources:\n  - ./namespace.yaml\n"
            ),
            "kubernetes/components/common/namespace.yaml": (
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: _\n"
            ),
            **{
                f"kubernetes/apps/{ns}/kustomization.yaml": kustomization(
                    "./cm.yaml", namespace=ns, extra="components:\n  - ../../components/common\n"
                )
                for ns in ("a", "b")
            },
            **{f"kubernetes/apps/{ns}/cm.yaml": configmap("settings") for ns in ("a", "b")},
        }
    )
    assert lint(files) == []
    built = subprocess.run(
        ["kubectl", "kustomize", str(write(tmp_path, files) / "kubernetes/apps/a")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "a"}} in list(
        yaml.safe_load_all(built)
    )
    # without the namespace: line both would be the same Namespace '_'
    files["kubernetes/apps/b/kustomization.yaml"] = kustomization(
        "./cm.yaml", extra="components:\n  - ../../components/common\n"
    )
    files["kubernetes/apps/b/cm.yaml"] = configmap("other", "b")
    files["kubernetes/apps/a/kustomization.yaml"] = kustomization(
        "./cm.yaml", extra="components:\n  - ../../components/common\n"
    )
    files["kubernetes/apps/a/cm.yaml"] = configmap("settings", "a")
    assert only("namespace-duplicate", files) == [
        "kubernetes/components/common/namespace.yaml:4: error: namespace-duplicate: Namespace "
        "'_' ends up twice in the build of Kustomization flux-system/cluster-apps, through "
        "kubernetes/apps/a/kustomization.yaml and kubernetes/apps/b/kustomization.yaml; "
        "kustomize rejects the duplicate"
    ]
    # what Flux generates for kubernetes/apps: both directories in one build, which fails
    rebuilt = write(tmp_path / "twice", files)
    (rebuilt / "kubernetes/apps/kustomization.yaml").write_text(kustomization("./a", "./b"))
    assert not _kubectl_kustomize_ok(rebuilt / "kubernetes/apps")


# --- Flux Kustomization -------------------------------------------------------------------


def test_flux_path_missing():
    files = app_tree(**{"kubernetes/apps/ks.yaml": flux_ks("a", "./kubernetes/app")})
    assert only("flux-path-missing", files) == [
        "kubernetes/apps/ks.yaml:9: error: flux-path-missing: spec.path './kubernetes/app' is "
        "not a directory in the tree (paths are relative to the repository root)"
    ]
    files["kubernetes/app/cm.yaml"] = configmap("a", "default")
    assert only("flux-path-missing", files) == []


def test_depends_on_defaults_to_the_dependents_effective_namespace():
    # cluster-template style: ks.yaml has no namespace, the app's kustomization gives it one,
    # so a dependsOn without namespace looks in that namespace, not in flux-system.
    files = app_tree(
        **{
            "kubernetes/apps/db/ks.yaml": flux_ks("db", "./kubernetes/apps/db/app"),
            "kubernetes/apps/db/kustomization.yaml": kustomization("./ks.yaml"),
            "kubernetes/apps/db/app/cm.yaml": configmap("db", "default"),
            "kubernetes/apps/web/kustomization.yaml": kustomization("./ks.yaml", namespace="web"),
            "kubernetes/apps/web/app/cm.yaml": configmap("web"),
            "kubernetes/apps/web/ks.yaml": flux_ks(
                "web", "./kubernetes/apps/web/app", namespace=None, spec="dependsOn:\n  - name: db"
            ),
        }
    )
    assert only("flux-dependency-missing", files) == [
        "kubernetes/apps/web/ks.yaml:15: error: flux-dependency-missing: dependsOn 'db' "
        "(namespace web) matches no Kustomization in the tree"
    ]
    files["kubernetes/apps/web/ks.yaml"] = flux_ks(
        "web",
        "./kubernetes/apps/web/app",
        namespace=None,
        spec="dependsOn:\n  - name: db\n    namespace: flux-system",
    )
    assert lint(files) == []


def test_depends_on_cycle_is_reported_once():
    files = app_tree(
        **{
            "kubernetes/apps/a.yaml": flux_ks(
                "a", "./kubernetes/apps", spec="dependsOn:\n  - name: b"
            ),
            "kubernetes/apps/b.yaml": flux_ks(
                "b", "./kubernetes/apps", spec="dependsOn:\n  - name: a"
            ),
        }
    )
    assert only("flux-dependency-cycle", files) == [
        "kubernetes/apps/a.yaml:15: error: flux-dependency-cycle: dependsOn cycle "
        "flux-system/a → flux-system/b → flux-system/a; Flux will wait forever"
    ]
    files["kubernetes/apps/b.yaml"] = flux_ks("b", "./kubernetes/apps")
    assert only("flux-dependency-cycle", files) == []


def test_source_ref_must_exist_or_be_external():
    text = flux_ks("a", "./kubernetes/apps").replace(
        "name: flux-system\n    namespace", "name: home-kubernetes\n    namespace"
    )
    files = app_tree(**{"kubernetes/apps/ks.yaml": text})
    assert only("flux-source-missing", files) == [
        "kubernetes/apps/ks.yaml:11: error: flux-source-missing: sourceRef GitRepository "
        "'home-kubernetes' (namespace flux-system) is not in the tree; fix the name or declare "
        "it in lint.externals as 'GitRepository flux-system/home-kubernetes'"
    ]
    declared = LintConfig(
        externals=CONFIG.externals | {("GitRepository", "flux-system", "home-kubernetes")}
    )
    assert only("flux-source-missing", files, declared) == []
    # flux bootstrap's GitRepository is external by default; declared away, it is missing too
    assert len(only("flux-source-missing", files, LintConfig())) == 1
    assert len(only("flux-source-missing", files, LintConfig(externals=frozenset()))) == 2


def test_removed_flux_api_versions_name_the_current_one():
    text = configmap("a", "default") + dedent("""\
        ---
        apiVersion: source.toolkit.fluxcd.io/v1beta2
        kind: HelmRepository
        metadata:
          name: r
          namespace: default
        ---
        apiVersion: helm.toolkit.fluxcd.io/v2beta1
        kind: HelmRelease
        metadata:
          name: h
          namespace: default
        """)
    files = app_tree(**{"kubernetes/apps/a.yaml": text})
    assert only("flux-api-removed", files) == [
        "kubernetes/apps/a.yaml:10: error: flux-api-removed: HelmRepository uses "
        "source.toolkit.fluxcd.io/v1beta2, which Flux no longer serves; use "
        "source.toolkit.fluxcd.io/v1",
        "kubernetes/apps/a.yaml:16: error: flux-api-removed: HelmRelease uses "
        "helm.toolkit.fluxcd.io/v2beta1, which Flux no longer serves; use "
        "helm.toolkit.fluxcd.io/v2",
    ]
    current = text.replace("v1beta2", "v1").replace("v2beta1", "v2")
    assert only("flux-api-removed", app_tree(**{"kubernetes/apps/a.yaml": current})) == []


SUBSTITUTED_APP = {
    "kubernetes/flux/meta/settings.yaml": dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: cluster-settings
          namespace: flux-system
        data:
          TZ: UTC
        """),
    "kubernetes/apps/cm.yaml": dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: a
          namespace: default
        data:
          declared: ${APP}
          from-configmap: ${TZ}
          from-settings: ${SECRET_DOMAIN}
          default: ${PORT:=80} ${HOST:-h} ${X=1}
          escaped: $${NOT_A_VARIABLE} and $$$${ALSO_NOT}
          script: |
            echo ${APP}
            echo ${MISSING}
        """),
    "kubernetes/apps/raw.yaml": dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: raw
          namespace: default
          annotations:
            kustomize.toolkit.fluxcd.io/substitute: disabled
        data:
          script: echo ${UNTOUCHED}
        """),
}


def _substituting_root(extra: str) -> str:
    return flux_ks("cluster-apps", "./kubernetes/apps", spec=extra) + flux_ks(
        "cluster-meta", "./kubernetes/flux/meta"
    )


def test_substitution_variable_without_default_or_declaration():
    root = _substituting_root("""\
        postBuild:
          substitute:
            APP: web
          substituteFrom:
            - kind: ConfigMap
              name: cluster-settings
            - kind: Secret
              name: cluster-secrets
        """)
    files = {ROOT: root, **SUBSTITUTED_APP}
    config = LintConfig(externals=CONFIG.externals, variables=frozenset({"SECRET_DOMAIN"}))
    assert only("flux-substitute-undeclared", files, config) == [
        "kubernetes/apps/cm.yaml:14: error: flux-substitute-undeclared: ${MISSING} has no "
        "default and Kustomization flux-system/cluster-apps does not declare it; add it to "
        "postBuild.substitute or lint.variables, or write ${MISSING:=default} "
        "(or $${MISSING} for a literal)"
    ]
    assert only("flux-source-missing", files, config) == [
        "kubernetes/flux/cluster/ks.yaml:21: error: flux-source-missing: "
        "postBuild.substituteFrom Secret 'cluster-secrets' (namespace flux-system) is not in "
        "the tree; declare it in lint.externals as 'Secret flux-system/cluster-secrets'"
    ]


def test_variables_are_not_checked_without_post_build():
    files = {ROOT: _substituting_root(""), **SUBSTITUTED_APP}
    assert only("flux-substitute-undeclared", files) == []


PATCHING_ROOT = flux_ks(
    "cluster-apps",
    "./kubernetes/apps",
    spec="""\
    patches:
      - patch: |-
          apiVersion: kustomize.toolkit.fluxcd.io/v1
          kind: Kustomization
          metadata:
            name: not-used
          spec:
            postBuild:
              substitute:
                CLUSTER: home
              substituteFrom:
                - name: cluster-secrets
                  kind: Secret
        target:
          group: kustomize.toolkit.fluxcd.io
          kind: Kustomization
    """,
)


def test_post_build_added_by_the_parents_patches_is_checked():
    # cluster-template: the root Kustomization patches postBuild into every app Kustomization
    files = {
        ROOT: PATCHING_ROOT,
        "kubernetes/apps/web/kustomization.yaml": kustomization("./ks.yaml", namespace="web"),
        "kubernetes/apps/web/ks.yaml": flux_ks("web", "./kubernetes/apps/web/app", namespace=None),
        "kubernetes/apps/web/app/cm.yaml": configmap("web").replace(
            "a: b", "host: web.${SECRET_DOMAIN}\n  cluster: ${CLUSTER}\n  typo: ${SECRET_DOMIAN}"
        ),
    }
    config = LintConfig(externals=CONFIG.externals, variables=frozenset({"SECRET_DOMAIN"}))
    assert only("flux-substitute-undeclared", files, config) == [
        "kubernetes/apps/web/app/cm.yaml:9: error: flux-substitute-undeclared: "
        "${SECRET_DOMIAN} has no default and Kustomization web/web does not declare it; add it "
        "to postBuild.substitute or lint.variables, or write ${SECRET_DOMIAN:=default} "
        "(or $${SECRET_DOMIAN} for a literal)"
    ]
    # a patch aimed at other Kustomizations leaves this one without postBuild: nothing to check
    elsewhere = PATCHING_ROOT.replace("      target:\n", "      target:\n        name: db\n")
    assert "name: db" in elsewhere
    files[ROOT] = elsewhere
    assert only("flux-substitute-undeclared", files, config) == []


# --- HelmRelease --------------------------------------------------------------------------


def helmrelease(chart: str, namespace: str = "apps") -> str:
    return dedent("""\
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: web
          namespace: {namespace}
        spec:
          interval: 1h
        """).format(namespace=namespace) + "".join(
        f"  {line}\n" for line in dedent(chart).splitlines()
    )


def oci(name: str, namespace: str) -> str:
    return dedent(f"""\
        ---
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: OCIRepository
        metadata:
          name: {name}
          namespace: {namespace}
        spec:
          interval: 1h
          url: oci://ghcr.io/example/{name}
        """)


def test_chart_ref_looks_in_the_helmreleases_namespace():
    files = app_tree(
        **{
            "kubernetes/apps/hr.yaml": helmrelease("chartRef:\n  kind: OCIRepository\n  name: web"),
            "kubernetes/apps/oci.yaml": oci("web", "flux-system"),
        }
    )
    assert only("helmrelease-source-missing", files) == [
        "kubernetes/apps/hr.yaml:8: error: helmrelease-source-missing: chartRef OCIRepository "
        "'web' (namespace apps) is not in the tree; fix the name or namespace, or declare it "
        "in lint.externals as 'OCIRepository apps/web'"
    ]
    files["kubernetes/apps/oci.yaml"] = oci("web", "apps")
    assert lint(files) == []


def test_chart_source_ref_resolves_to_a_helm_repository():
    chart = """\
        chart:
          spec:
            chart: web
            sourceRef:
              kind: HelmRepository
              name: charts
              namespace: flux-system
        """
    repo = oci("charts", "flux-system").replace("OCIRepository", "HelmRepository")
    files = app_tree(**{"kubernetes/apps/hr.yaml": helmrelease(chart)})
    assert only("helmrelease-source-missing", files) == [
        "kubernetes/apps/hr.yaml:11: error: helmrelease-source-missing: chart.spec.sourceRef "
        "HelmRepository 'charts' (namespace flux-system) is not in the tree; fix the name or "
        "namespace, or declare it in lint.externals as 'HelmRepository flux-system/charts'"
    ]
    files["kubernetes/apps/repo.yaml"] = repo
    assert lint(files) == []


def test_source_owned_by_another_kustomization_needs_a_depends_on_path():
    def tree(web_spec: str) -> dict[str, str]:
        return app_tree(
            **{
                "kubernetes/apps/kustomization.yaml": kustomization(
                    "./repos/ks.yaml", "./web/ks.yaml"
                ),
                "kubernetes/apps/repos/ks.yaml": flux_ks("repos", "./kubernetes/apps/repos/app"),
                "kubernetes/apps/repos/app/oci.yaml": oci("web", "apps"),
                "kubernetes/apps/web/ks.yaml": flux_ks(
                    "web", "./kubernetes/apps/web/app", spec=web_spec
                ),
                "kubernetes/apps/web/app/hr.yaml": helmrelease(
                    "chartRef:\n  kind: OCIRepository\n  name: web"
                ),
            }
        )

    assert only("helmrelease-source-dependency", tree("")) == [
        "kubernetes/apps/web/app/hr.yaml:8: error: helmrelease-source-dependency: "
        "OCIRepository 'web' is applied by Kustomization flux-system/repos, but this "
        "HelmRelease's Kustomization flux-system/web has no dependsOn path to it; add "
        "dependsOn 'repos'"
    ]
    assert lint(tree("dependsOn:\n  - name: repos")) == []


def test_helmrelease_depends_on_resolves_to_a_helmrelease():
    text = helmrelease("chartRef:\n  kind: OCIRepository\n  name: web\ndependsOn:\n  - name: db")
    files = app_tree(
        **{"kubernetes/apps/hr.yaml": text, "kubernetes/apps/oci.yaml": oci("web", "apps")}
    )
    assert only("flux-dependency-missing", files) == [
        "kubernetes/apps/hr.yaml:12: error: flux-dependency-missing: dependsOn 'db' "
        "(namespace apps) matches no HelmRelease in the tree"
    ]
    db = helmrelease("chartRef:\n  kind: OCIRepository\n  name: web").replace(
        "name: web\n  n", "name: db\n  n"
    )
    files["kubernetes/apps/db.yaml"] = db
    assert only("flux-dependency-missing", files) == []


# --- PrometheusRule -----------------------------------------------------------------------


def prometheus_rule(rules: str, interval: str = "1m") -> str:
    return dedent("""\
        apiVersion: monitoring.coreos.com/v1
        kind: PrometheusRule
        metadata:
          name: r
          namespace: default
        spec:
          groups:
            - name: g
              interval: {interval}
              rules:
        """).format(interval=interval) + "".join(
        f"        {line}\n" for line in dedent(rules).splitlines()
    )


GOOD_RULES = """\
    - alert: Down
      expr: absent(up{job="a"} == 1)
      for: 5m
      keep_firing_for: 0s
    - alert: Slow
      expr: |
        histogram_quantile(0.99, sum by (le) (rate(d_bucket[5m]))) > 1
      for: 1h30m
    - record: job:up:sum
      expr: sum by (job) (up)
    """

BAD_RULES = """\
    - alert: Down
      expr: sum(rate(x[5m]) by (job)
      for: 5 minutes
    - alert: Down
      expr: up == 0
    """


def _promtool_accepts(tmp_path: Path, text: str) -> bool:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(yaml.safe_load(text)["spec"]))
    result = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True)
    return result.returncode == 0


def test_prometheus_rule_errors(tmp_path):
    text = prometheus_rule(BAD_RULES, interval="1 minute")
    files = app_tree(**{"kubernetes/apps/rules.yaml": text})
    found = [line for line in lint(files) if ": promql-" in line]
    assert found == [
        "kubernetes/apps/rules.yaml:9: error: promql-duration-invalid: interval: '1 minute' "
        "is not a Prometheus duration (e.g. 30s, 5m, 1h30m)",
        "kubernetes/apps/rules.yaml:12: error: promql-invalid: expr is not valid PromQL: "
        "unclosed left parenthesis",
        "kubernetes/apps/rules.yaml:13: error: promql-duration-invalid: for: '5 minutes' is "
        "not a Prometheus duration (e.g. 30s, 5m, 1h30m)",
        "kubernetes/apps/rules.yaml:14: warning: promql-alert-duplicate: alert 'Down' is also "
        "defined at kubernetes/apps/rules.yaml:11; give each alert its own name",
    ]
    if shutil.which("promtool"):
        assert not _promtool_accepts(tmp_path, text)


def test_prometheus_rule_that_promtool_accepts_passes(tmp_path):
    text = prometheus_rule(GOOD_RULES)
    assert lint(app_tree(**{"kubernetes/apps/rules.yaml": text})) == []
    if shutil.which("promtool"):
        assert _promtool_accepts(tmp_path, text)


def test_alert_names_are_unique_across_files():
    one = prometheus_rule("- alert: Down\n  expr: up == 0\n")
    two = one.replace("name: r\n", "name: s\n")
    files = app_tree(**{"kubernetes/apps/a.yaml": one, "kubernetes/apps/b.yaml": two})
    assert only("promql-alert-duplicate", files) == [
        "kubernetes/apps/b.yaml:11: warning: promql-alert-duplicate: alert 'Down' is also "
        "defined at kubernetes/apps/a.yaml:11; give each alert its own name"
    ]


# --- settings -----------------------------------------------------------------------------


def test_disabled_rules_are_not_reported():
    files = app_tree(**{"kubernetes/apps/ks.yaml": flux_ks("a", "./kubernetes/app")})
    config = LintConfig(externals=CONFIG.externals, disabled=frozenset({"flux-path-missing"}))
    assert lint(files, config) == []


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"disabled": []}, "unknown key 'disabled' in [makeflux.lint]"),
        ({"disable": ["no-such-rule"]}, "'lint.disable' names unknown rule 'no-such-rule'"),
        ({"externals": ["GitRepository flux-system"]}, "is not 'Kind namespace/name'"),
        ({"variables": "SECRET_DOMAIN"}, "'lint.variables' must be a list of strings"),
    ],
)
def test_bad_lint_settings_are_one_clear_problem(table, message):
    from makeflux.errors import SettingsError
    from makeflux.lint.config import lint_config

    with pytest.raises(SettingsError) as caught:
        lint_config(table, "makeflux.toml")
    assert len(caught.value.problems) == 1
    assert message in str(caught.value.problems[0])
    assert str(caught.value.problems[0]).startswith("makeflux.toml: ")
