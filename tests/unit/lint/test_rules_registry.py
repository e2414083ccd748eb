"""The lint rule registry (makeflux.lint.rules): every rule declared once, and what derives from
it — RULES, the README's table, `makeflux lint --rules`, the families lint runs."""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import REPO_ROOT, run_cli

from makeflux import lint, pipeline
from makeflux.commands.common import run_options
from makeflux.lint.engine import _SPECIFIC_RULES, tree_context
from makeflux.lint.findings import ERROR, WARNING
from makeflux.lint.rules import (
    RULE_LIST,
    RULES,
    RULES_BY_ID,
    TreeContext,
    families,
    finding,
    load_family,
    readme_table,
    rules_json,
)
from tests.conftest import TESTS_DIR

BROKEN = TESTS_DIR / "fixtures" / "lint" / "broken"
LINT_SOURCES = REPO_ROOT / "src" / "makeflux" / "lint"


def test_rules_are_the_registry_ids_each_declared_once() -> None:
    assert tuple(r.id for r in RULE_LIST) == RULES == lint.RULES
    assert len(set(RULES)) == len(RULES)
    for declared in RULE_LIST:
        assert declared.severity in (ERROR, WARNING), declared.id
        assert declared.checks.strip() and "\n" not in declared.checks, declared.id
        assert declared.scope in ("tree", "templates"), declared.id
        assert not declared.also_warns or declared.severity == ERROR, declared.id


def test_every_family_reference_resolves_to_its_function() -> None:
    for declared in RULE_LIST:
        function = load_family(declared.family)
        assert callable(function), declared.family
    # The tree families share one calling convention: a TreeContext, nothing else.
    for family in families("tree"):
        parameters = list(inspect.signature(load_family(family)).parameters.values())
        assert [p.annotation for p in parameters] == ["TreeContext"], family
    assert families("templates") == ["templates:check_templates"]


def test_each_family_reports_exactly_the_rules_declared_for_it(monkeypatch) -> None:
    """Run each family alone on the broken project (which trips every rule): what it reports
    is what the registry says it reports, and together they cover every rule."""
    monkeypatch.chdir(BROKEN)
    run = pipeline.build(run_options(None, (), (), None))
    config = lint.config_from_settings(run.settings)
    context = tree_context(run.tree.files, config)
    assert isinstance(context, TreeContext)
    reported: dict[str, set[str]] = defaultdict(set)
    for family in families("tree"):
        reported[family] = {f.rule for f in load_family(family)(context)}
    templates = lint.lint_templates(run.settings, run.data.values, config, setup=run.setup)
    reported["templates:check_templates"] = {f.rule for f in templates}
    declared: dict[str, set[str]] = defaultdict(set)
    for rule in RULE_LIST:
        declared[rule.family].add(rule.id)
    assert reported == declared


def test_a_finding_takes_its_severity_from_the_declaration() -> None:
    assert finding("unreachable", "a.yaml", 3, "m").severity == WARNING
    assert finding("flux-path-missing", "a.yaml", 3, "m").severity == ERROR
    # The one rule with a milder case asks for it explicitly.
    comment = finding("template-comment-multiline", "t.j2", 1, "m", severity=WARNING)
    assert comment.severity == WARNING
    assert RULES_BY_ID["template-comment-multiline"].also_warns


def test_an_undeclared_rule_or_severity_fails_loudly() -> None:
    with pytest.raises(LookupError, match="'no-such-rule' is not declared"):
        finding("no-such-rule", "a.yaml", 1, "m")
    with pytest.raises(ValueError, match="declared warning, not error"):
        finding("unreachable", "a.yaml", 1, "m", severity=ERROR)
    with pytest.raises(ValueError, match="declared error, not warning"):
        finding("flux-path-missing", "a.yaml", 1, "m", severity=WARNING)


def _written_rule_ids() -> list[tuple[str, str]]:
    """(file, id) of every rule id the lint sources name literally: finding("id", …),
    Violation(path, "id", …), and the rule pairs the engine keeps one of."""
    found = []
    for source in sorted(LINT_SOURCES.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            position = {"finding": 0, "Violation": 1}.get(node.func.id)
            if position is None or len(node.args) <= position:
                continue
            argument = node.args[position]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                found.append((source.name, argument.value))
    for specific, general in _SPECIFIC_RULES.items():
        found += [("engine.py", rule) for rule in (specific, *general)]
    return found


def test_every_rule_id_the_sources_write_is_declared() -> None:
    written = _written_rule_ids()
    assert len(written) > 30  # the scan finds the calls (a rename would make it find none)
    assert [(name, rule) for name, rule in written if rule not in RULES_BY_ID] == []


def test_readme_rule_table_is_the_registry() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index("| rule | checks |\n")
    table = readme[start : readme.index("\n\n", start)]
    assert table == readme_table(), "paste the output of: python -m makeflux.lint.rules"


def test_lint_rules_lists_every_rule_in_text_and_json(tmp_path: Path) -> None:
    text = run_cli(["lint", "--rules"], tmp_path)  # no project needed
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [[r.id, r.severity] for r in RULE_LIST]
    assert all(line.endswith(r.checks) for line, r in zip(lines, RULE_LIST, strict=True))
    listed = run_cli(["lint", "--rules", "--format", "json"], tmp_path)
    assert listed.exit_code == 0
    assert json.loads(listed.stdout) == rules_json()
    assert [item["rule"] for item in rules_json()] == list(RULES)
    assert set(rules_json()[0]) == {"rule", "severity", "scope", "checks"}


def test_lint_rules_takes_no_tree_and_no_annotations(tmp_path: Path) -> None:
    for args in (["--rules", str(tmp_path)], ["--rules", "--format", "github"]):
        result = run_cli(["lint", *args], tmp_path)
        assert result.exit_code == 2, args
        assert "--rules" in result.stderr, args


def test_settings_load_imports_the_registry_but_no_family() -> None:
    """lint.disable is checked against RULES at every command's settings load: the registry
    must not pull in Jinja or the rules' code."""
    probe = "import sys, makeflux.lint.config; print(' '.join(sorted(sys.modules)))"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
    ran = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    modules = set(ran.stdout.split())
    assert "makeflux.lint.rules" in modules
    heavy = {"jinja2", "makeflux.lint.engine"}
    heavy |= {f"makeflux.lint.{r.family.partition(':')[0]}" for r in RULE_LIST}
    assert modules & heavy == set()
