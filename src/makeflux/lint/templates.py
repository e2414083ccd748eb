"""Templates against the schema: variables used but not declared, declared but never used, and
comments that run across lines (a comment closed with the wrong delimiter)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta, nodes

from makeflux import cache
from makeflux.lint.findings import WARNING, Finding
from makeflux.lint.rules import finding


@dataclass(frozen=True)
class TemplateSource:
    """One template to check: its name for the Jinja loader, where to point the user, its text."""

    name: str
    shown: str
    text: str


def check_templates(
    env: jinja2.Environment,
    templates: Iterable[TemplateSource],
    *,
    schema: Mapping[str, int] | None,
    schema_shown: str,
    provided: set[str],
    cache_dir: Path | None = None,
) -> list[Finding]:
    """`env` must have no globals (find_undeclared_variables skips them); `provided`: the names
    the environment supplies without the schema (Jinja's and the plugins' globals); what each
    template uses is kept in `cache_dir` by its text."""
    findings: list[Finding] = []
    used: set[str] = set()
    templates = list(templates)
    # Parsing every template is most of lint's cost: keep the result between runs.
    facts = {
        template.name: cache.memoize(
            cache_dir,
            env,
            "lint-template-variables-3",
            template.name,
            template.text,
            functools.partial(variable_facts, env, template),
        )
        for template in templates
    }
    from_includers = _names_from_includers(facts)
    for template in templates:
        findings.extend(_comments(env, template))
        if schema is None:
            continue  # nothing to compare the variables with
        first_uses = facts[template.name]["free"]
        given = from_includers.get(template.name, set())
        names = {
            name: line
            for name, line in first_uses.items()
            if name not in provided and name not in given
        }
        used.update(names)
        for name in sorted(set(names) - set(schema)):
            findings.append(
                finding(
                    "template-variable-undeclared",
                    template.shown,
                    names[name],
                    f"'{name}' is used here but the schema ({schema_shown}) does "
                    "not declare it; add it to the schema's properties",
                )
            )
    if schema is not None:
        for name, line in sorted(schema.items()):
            if name not in used:
                findings.append(
                    finding(
                        "template-variable-unused",
                        schema_shown,
                        line,
                        f"'{name}' is declared but no template uses it; remove it or use it",
                    )
                )
    return findings


def variable_facts(env: jinja2.Environment, template: TemplateSource) -> dict[str, Any]:
    """What lint needs to know of a template's variables, as JSON data:

    "free": every variable it reads but does not define → the line of its first use;
    "assigned": the names it defines (set, for, macro, import), which a template it
    includes can read; "includes": the templates it includes by a constant name.
    All empty when it does not parse (rendering reports that, with its line).
    """
    try:
        ast = env.parse(template.text, template.name, template.shown)
    except jinja2.TemplateSyntaxError:
        return {"free": {}, "assigned": [], "includes": []}
    # Jinja counts a name `set` in every branch of an `if` (or only inside a block) as read
    # from the context; it is the template's own, not a variable the data must supply.
    names = meta.find_undeclared_variables(ast) - _set_names(ast)
    lines: dict[str, int] = {}
    for name_node in ast.find_all(nodes.Name):
        if name_node.name in names and name_node.ctx == "load":
            lines[name_node.name] = min(
                lines.get(name_node.name, name_node.lineno), name_node.lineno
            )
    assigned = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for node in ast.find_all((nodes.Import, nodes.FromImport, nodes.Macro)):
        if isinstance(node, nodes.Import):
            assigned.add(node.target)
        elif isinstance(node, nodes.Macro):
            assigned.add(node.name)
        elif isinstance(node, nodes.FromImport):
            assigned.update(n[1] if isinstance(n, tuple) else n for n in node.names)
    includes: set[str] = set()
    for include in ast.find_all(nodes.Include):
        targets = include.template
        for target in targets.items if isinstance(targets, nodes.List | nodes.Tuple) else [targets]:
            if isinstance(target, nodes.Const) and isinstance(target.value, str):
                includes.add(target.value)
    return {
        "free": {name: lines.get(name, 1) for name in names},
        "assigned": sorted(assigned),
        "includes": sorted(includes),
    }


def _set_names(ast: nodes.Template) -> set[str]:
    """The names a template assigns with `set` (a name, a tuple of names, or a block set)."""
    names: set[str] = set()
    for node in ast.find_all((nodes.Assign, nodes.AssignBlock)):
        assert isinstance(node, nodes.Assign | nodes.AssignBlock)  # for the type checker
        target = node.target
        if isinstance(target, nodes.Name):
            names.add(target.name)
        else:
            names.update(name.name for name in target.find_all(nodes.Name))
    return names


def _names_from_includers(facts: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """Template name → the names the templates including it (directly or further up) define.

    An included template reads the including template's variables, so a name set there and
    read here is not a variable the data must supply.
    """
    given: dict[str, set[str]] = {}
    changed = True
    while changed:  # to a fixed point: includes of includes
        changed = False
        for name, fact in facts.items():
            passed_on = set(fact["assigned"]) | given.get(name, set())
            for included in fact["includes"]:
                before = len(given.setdefault(included, set()))
                given[included] |= passed_on
                changed = changed or len(given[included]) != before
    return given


def _comments(env: jinja2.Environment, template: TemplateSource) -> list[Finding]:
    """template-comment-multiline: a comment that runs on past the end of its line."""
    start, end = env.comment_start_string, env.comment_end_string
    reversed_end = end[::-1]
    if not _may_have_multiline_comment(template.text, start, end):
        return []
    findings = []
    try:
        tokens: list[Any] = list(env.lex(template.text, template.name, template.shown))
    except jinja2.TemplateSyntaxError:
        return []
    text_lines = template.text.splitlines()
    opened: int | None = None
    for line, token, _ in tokens:
        if token == "comment_begin":
            opened = line
        elif token == "comment_end" and opened is not None:
            if line > opened:
                first = text_lines[opened - 1] if opened <= len(text_lines) else ""
                after = first.split(start, 1)[1] if start in first else first
                if reversed_end != end and reversed_end in after:
                    findings.append(
                        finding(
                            "template-comment-multiline",
                            template.shown,
                            opened,
                            f"comment opened here is closed by '{reversed_end}', which is not the "
                            f"comment end '{end}': everything up to line {line} is swallowed; "
                            f"close it with '{end}'",
                        )
                    )
                else:
                    findings.append(
                        finding(
                            "template-comment-multiline",
                            template.shown,
                            opened,
                            f"comment runs from here to line {line}; if that is meant, ignore "
                            "this, otherwise close it on this line",
                            severity=WARNING,
                        )
                    )
            opened = None
    return findings


def _may_have_multiline_comment(text: str, start: str, end: str) -> bool:
    """A quick scan for a comment that spans a newline; only those templates get lexed."""
    position = text.find(start)
    while position != -1:
        closing = text.find(end, position + len(start))
        if closing == -1 or "\n" in text[position:closing]:
            return True
        position = text.find(start, closing + len(end))
    return False
