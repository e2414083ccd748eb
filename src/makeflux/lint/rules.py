"""Every lint rule, declared once: its id, default severity, what it checks, and its family.

RULES, the README's rule table, `makeflux lint --rules` and the tests that every rule is
tripped and every family reports only its own rules all derive from RULE_LIST below. A new
rule is one declaration here, plus the code in its family that reports it (through `finding`)
and a line in the broken fixture that trips it.

Settings loading imports this module to check lint.disable for every command, so it stays
light: a family is named by "module:function" and imported only when lint runs.

    python -m makeflux.lint.rules     # prints the README's rule table, to paste
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from makeflux.lint.findings import ERROR, WARNING, Finding

if TYPE_CHECKING:
    from makeflux.lint.config import LintConfig
    from makeflux.lint.placement import Placements
    from makeflux.lint.yamldocs import ParsedTree


@dataclass(frozen=True)
class TreeContext:
    """What a tree family is given: the parsed tree, which of its files are manifests
    (kustomize's own inputs excluded), the project's lint settings and where objects land."""

    tree: ParsedTree
    manifests: set[str]
    config: LintConfig
    placed: Placements


# The one calling convention of the families that check the rendered tree.
TreeFamily = Callable[[TreeContext], list[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # what its findings are, unless the family says otherwise (see also_warns)
    checks: str  # one line, as the README's rule table shows it (Markdown)
    family: str  # "module:function" under makeflux.lint, the function that reports it
    # "tree": the family takes a TreeContext; "templates": it checks the templates, not the
    # tree (makeflux lint DIR has none), and lint_templates calls it with what it needs.
    scope: Literal["tree", "templates"] = "tree"
    # an error rule whose milder case is a warning (the family asks for it explicitly)
    also_warns: bool = False


_YAML = "yamldocs:check_yaml"
_FLUX = "flux:check_flux"
_PROMQL = "promql:check_prometheus_rules"
_TEMPLATES = "templates:check_templates"
_SCHEMAS = "apischema:check_schemas"

# Also the README's order. Ids (and their order, which lint.disable's error lists) are stable:
# settings' lint.disable and users' scripts rely on them.
RULE_LIST: tuple[Rule, ...] = (
    Rule("yaml-invalid", ERROR, "every `.yaml` parses", _YAML),
    Rule("yaml-duplicate-key", ERROR, "a key given twice in a mapping is an error", _YAML),
    Rule(
        "k8s-missing-field",
        ERROR,
        "manifests under `kubernetes/` have apiVersion, kind, metadata.name",
        _YAML,
    ),
    Rule(
        "kustomize-resource-missing",
        ERROR,
        "`resources`/`components` entries exist (a file, or a directory with a kustomization.yaml)",
        "kustomize:check_entries",
    ),
    Rule(
        "unreachable",
        WARNING,
        "every manifest is reached from the Flux roots through `spec.path` and kustomize"
        " `resources`",
        "placement:check_reachability",
    ),
    Rule(
        "namespace-duplicate",
        ERROR,
        "two objects with the same group/kind/namespace/name after kustomize `namespace:` and"
        " Flux `targetNamespace`",
        "namespaces:check_namespaces",
    ),
    Rule(
        "namespace-overridden",
        WARNING,
        "an explicit `metadata.namespace` that `targetNamespace` replaces",
        "namespaces:check_namespaces",
    ),
    Rule(
        "flux-path-missing",
        ERROR,
        "a Flux Kustomization's `spec.path` is a directory in the tree (relative to the"
        " repository root)",
        _FLUX,
    ),
    Rule(
        "flux-dependency-missing",
        ERROR,
        "`dependsOn` names a Kustomization/HelmRelease (namespace defaults to the dependent's)",
        _FLUX,
    ),
    Rule("flux-dependency-cycle", ERROR, "no `dependsOn` cycles", _FLUX),
    Rule(
        "flux-source-missing",
        ERROR,
        "`sourceRef` and `postBuild.substituteFrom` are in the tree or declared external",
        _FLUX,
    ),
    Rule(
        "flux-api-removed",
        ERROR,
        "no API versions Flux no longer serves (source/kustomize `v1beta2`, helm"
        " `v2beta1`/`v2beta2` …)",
        _FLUX,
    ),
    Rule(
        "flux-substitute-undeclared",
        ERROR,
        "under `postBuild` (its own, or one the parent's `spec.patches` add), every `${VAR}` has"
        " a default or is declared; `$${VAR}` is a literal",
        _FLUX,
    ),
    Rule(
        "helmrelease-source-missing",
        ERROR,
        "`chartRef` → OCIRepository/HelmChart, `chart.spec.sourceRef` → HelmRepository, in the"
        " effective namespace",
        _FLUX,
    ),
    Rule(
        "helmrelease-source-dependency",
        ERROR,
        "a source applied by another Kustomization is reachable through `dependsOn`",
        _FLUX,
    ),
    Rule("promql-invalid", ERROR, "PrometheusRule exprs parse as PromQL", _PROMQL),
    Rule(
        "promql-duration-invalid",
        ERROR,
        "PrometheusRule durations (`interval`, `for`, `keep_firing_for`) are valid",
        _PROMQL,
    ),
    Rule("promql-alert-duplicate", WARNING, "PrometheusRule alert names are unique", _PROMQL),
    Rule(
        "template-variable-undeclared",
        ERROR,
        "a template uses a variable the schema's `properties` do not declare",
        _TEMPLATES,
        scope="templates",
    ),
    Rule(
        "template-variable-unused",
        WARNING,
        "a schema variable no template uses (a use inside `is defined` counts)",
        _TEMPLATES,
        scope="templates",
    ),
    Rule(
        "template-comment-multiline",
        ERROR,
        "a `#|` comment running across lines; an error when its first line holds `|#`",
        _TEMPLATES,
        scope="templates",
        also_warns=True,  # a comment meant to run across lines is only suspicious
    ),
    Rule(
        "schema-unknown-field",
        ERROR,
        "a field the kind's schema does not have (the API server's field validation `Strict`;"
        " suggests the closest name)",
        _SCHEMAS,
    ),
    Rule(
        "schema-type",
        ERROR,
        'a value of the wrong type (`replicas: "3"`, `tag: 1.0`, `port: http`); int-or-string'
        " fields take both",
        _SCHEMAS,
    ),
    Rule(
        "schema-required", ERROR, "a required field is missing (reported at its parent)", _SCHEMAS
    ),
    Rule("schema-enum", ERROR, "a value outside the schema's enum", _SCHEMAS),
    Rule("schema-pattern", ERROR, "a value not matching the schema's pattern", _SCHEMAS),
    Rule(
        "schema-format",
        ERROR,
        "a value that is not a valid quantity, duration, base64 or date-time",
        _SCHEMAS,
    ),
    Rule(
        "schema-range",
        ERROR,
        "minimum/maximum, length, item and property counts, int32/int64",
        _SCHEMAS,
    ),
    Rule(
        "schema-list-unique",
        ERROR,
        "`x-kubernetes-list-type: set` items and `map` keys (e.g. Service ports by"
        " port/protocol) appear once",
        _SCHEMAS,
    ),
    Rule(
        "schema-cel",
        ERROR,
        "the CRD's `x-kubernetes-validations` CEL rules (HelmRelease `chart` xor `chartRef`,"
        " kubeConfig refs, Bucket providers …), with the rule's own message",
        _SCHEMAS,
    ),
    Rule(
        "schema-metadata",
        ERROR,
        "`metadata.name` a DNS-1123 subdomain (Namespace: DNS-1123 label, Service: DNS-1035"
        " label), namespace a DNS-1123 label, label keys and values, annotation keys and their"
        " 256 KiB total",
        _SCHEMAS,
    ),
    Rule(
        "schema-missing",
        WARNING,
        "a kind with no schema, once per kind; `--strict` makes it fail",
        _SCHEMAS,
    ),
)

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULE_LIST}
RULES: tuple[str, ...] = tuple(RULES_BY_ID)


def rule(rule_id: str) -> Rule:
    """The declared rule; an id nobody declared is a bug in the family, so it fails loudly."""
    try:
        return RULES_BY_ID[rule_id]
    except KeyError:
        raise LookupError(
            f"lint rule {rule_id!r} is not declared in makeflux.lint.rules.RULE_LIST"
        ) from None


def finding(
    rule_id: str, path: str, line: int, message: str, *, severity: str | None = None
) -> Finding:
    """A finding of a declared rule, with the rule's severity; only a rule declared
    `also_warns` may pass severity=WARNING, for its milder case."""
    declared = rule(rule_id)
    if severity is None or severity == declared.severity:
        return Finding(path, line, declared.severity, rule_id, message)
    if severity == WARNING and declared.also_warns:
        return Finding(path, line, WARNING, rule_id, message)
    raise ValueError(f"lint rule {rule_id!r} is declared {declared.severity}, not {severity}")


def families(scope: str = "tree") -> list[str]:
    """The families of a scope, each once, in the order their first rule is declared."""
    return list(dict.fromkeys(r.family for r in RULE_LIST if r.scope == scope))


def load_family(family: str) -> Callable[..., list[Finding]]:
    """The function a "module:function" family names; its module is imported now."""
    module, _, function = family.partition(":")
    found: Callable[..., list[Finding]] = getattr(
        importlib.import_module(f"makeflux.lint.{module}"), function
    )
    return found


def readme_table() -> str:
    """The README's rule table, one row per rule."""
    rows = ["| rule | checks |", "| --- | --- |"]
    for declared in RULE_LIST:
        marker = " (warning)" if declared.severity == WARNING else ""
        checks = declared.checks.replace("|", "\\|")  # a pipe would end the cell
        rows.append(f"| `{declared.id}`{marker} | {checks} |")
    return "\n".join(rows)


def rules_text() -> str:
    """`makeflux lint --rules`: one aligned line per rule, id, severity, what it checks."""
    width = max(len(r.id) for r in RULE_LIST)
    return "\n".join(f"{r.id:<{width}}  {r.severity:<7}  {r.checks}" for r in RULE_LIST)


def rules_json() -> list[dict[str, str]]:
    """`makeflux lint --rules --format json`: a list of objects."""
    return [
        {"rule": r.id, "severity": r.severity, "scope": r.scope, "checks": r.checks}
        for r in RULE_LIST
    ]


if __name__ == "__main__":
    print(readme_table())
