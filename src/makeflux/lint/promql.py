"""PrometheusRule: every expr parses as PromQL, durations are valid, alert names are unique."""

from __future__ import annotations

import re

import promql_parser

from makeflux.lint.findings import Finding
from makeflux.lint.rules import TreeContext, finding
from makeflux.lint.yamldocs import Document

# Prometheus' own duration syntax (model.ParseDuration): units largest first, each at most once.
_DURATION = re.compile(r"^(?:0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$")


def valid_duration(text: str) -> bool:
    return bool(text) and _DURATION.match(text) is not None


def check_prometheus_rules(context: TreeContext) -> list[Finding]:
    """promql-*: every PrometheusRule in the tree."""
    documents = context.tree.documents()
    findings: list[Finding] = []
    alerts: dict[str, tuple[str, int]] = {}
    for doc in documents:
        if not doc.is_a("monitoring.coreos.com", "PrometheusRule"):
            continue
        groups = doc.spec.get("groups")
        for g, group in enumerate(groups if isinstance(groups, list) else []):
            if not isinstance(group, dict):
                continue
            findings.extend(_duration(doc, group, "interval", ("spec", "groups", g)))
            rules = group.get("rules")
            for r, rule in enumerate(rules if isinstance(rules, list) else []):
                if not isinstance(rule, dict):
                    continue
                keys = ("spec", "groups", g, "rules", r)
                findings.extend(_expression(doc, rule, keys))
                for field in ("for", "keep_firing_for"):
                    findings.extend(_duration(doc, rule, field, keys))
                alert = rule.get("alert")
                if isinstance(alert, str):
                    line = doc.line_of(*keys, "alert")
                    first = alerts.setdefault(alert, (doc.path, line))
                    if first != (doc.path, line):
                        findings.append(
                            finding(
                                "promql-alert-duplicate",
                                doc.path,
                                line,
                                f"alert '{alert}' is also defined at "
                                f"{first[0]}:{first[1]}; give each alert its "
                                "own name",
                            )
                        )
    return findings


def _expression(doc: Document, rule: dict, keys: tuple[str | int, ...]) -> list[Finding]:
    expr = rule.get("expr")
    line = doc.line_of(*keys, "expr")
    if expr is None or (isinstance(expr, str) and not expr.strip()):
        return [finding("promql-invalid", doc.path, line, "rule has no expr")]
    try:
        promql_parser.parse(str(expr))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # ValueError, or the Rust side's PanicException
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [finding("promql-invalid", doc.path, line, f"expr is not valid PromQL: {message}")]
    return []


def _duration(
    doc: Document, holder: dict, field: str, keys: tuple[str | int, ...]
) -> list[Finding]:
    value = holder.get(field)
    # YAML reads a bare 0 as a number; Prometheus reads it as the text "0".
    if value is None or (isinstance(value, str | int) and valid_duration(str(value))):
        return []
    return [
        finding(
            "promql-duration-invalid",
            doc.path,
            doc.line_of(*keys, field),
            f"{field}: {value!r} is not a Prometheus duration (e.g. 30s, 5m, 1h30m)",
        )
    ]
