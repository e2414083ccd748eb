"""makeflux.jinja_walks finds exactly what Jinja's own tree walks find, in the same order."""

from __future__ import annotations

import jinja2
import pytest
from jinja2 import nodes

from makeflux import jinja_walks
from makeflux.environment import syntax_options
from makeflux.settings import load_settings
from tests.conftest import REPO_ROOT

# Every kind of statement and expression the code generator walks differently.
EVERYTHING = """\
#% extends "base.j2" if layout is defined else "other.j2" %#
#% import "macros.j2" as m %#
#% from "macros.j2" import host as h, port %#
#% block head scoped %#title: #{ title | default("x") | upper }##% endblock %#
#% block body %#
#% set items = [1, 2.5, "three", (4, 5), {"k": v}, none, true] %#
#% set block_value %#captured #{ items[1:3] }##% endset %#
#% for key, value in mapping.items() if value is not none recursive %#
  #{ loop.index }#: #{ key ~ "=" ~ value }# #{ loop(value.children) if value.children }#
#% else %#
  empty
#% endfor %#
#% macro row(name, width=10) -%#
#{ name | center(width) }# #{ caller() if caller }#
#%- endmacro %#
#% call(x) row("a") %#inner #{ x }##% endcall %#
#% filter indent(2) %#filtered #{ -a + b * c // d % e ** f }##% endfilter %#
#% with scoped = a if b else c, other = not d %##{ scoped and other or a in b }##% endwith %#
#% if a < b <= c != d %#lt#% elif e is divisibleby 3 %#div#% else %#none#% endif %#
#% include ["missing.j2", "fallback.j2"] ignore missing %#
#{ ns.value | map(attribute="name") | join(",") }# #{ obj.method(1, *args, k=2, **kwargs) }#
#% endblock %#
"""


def shipped_templates() -> list[tuple[str, str]]:
    return sorted(
        (p.relative_to(REPO_ROOT).as_posix(), p.read_text())
        for root in (REPO_ROOT / "templates", REPO_ROOT / "tests" / "fixtures")
        for p in root.rglob("*.j2")
    )


def all_templates() -> list[tuple[str, str]]:
    return [("everything", EVERYTHING), *shipped_templates()]


def parse(env: jinja2.Environment, name: str, source: str) -> nodes.Template | None:
    try:
        return env.parse(source, name)
    except jinja2.TemplateSyntaxError:
        return None  # the fixtures include broken templates on purpose


@pytest.fixture(scope="module")
def env() -> jinja2.Environment:
    # makeflux.toml: the cluster-template delimiters
    return jinja2.Environment(**syntax_options(load_settings(REPO_ROOT)))


def test_the_walks_are_installed_on_the_jinja_in_use() -> None:
    import makeflux.environment  # noqa: F401  (installs them)

    assert jinja_walks.install()
    assert nodes.Node.find_all is jinja_walks.find_all
    assert nodes.Node.iter_child_nodes is jinja_walks.iter_child_nodes


def test_every_shipped_template_is_walked_as_jinja_walks_it(env: jinja2.Environment) -> None:
    checked = 0
    for name, source in all_templates():
        tree = parse(env, name, source)
        if tree is None:
            continue
        everything = list(jinja_walks.JINJA_FIND_ALL(tree, nodes.Node))
        ours = list(jinja_walks.find_all(tree, nodes.Node))
        assert len(ours) == len(everything), name
        assert all(a is b for a, b in zip(ours, everything, strict=True)), name
        for wanted in (nodes.Block, nodes.Name, (nodes.Filter, nodes.Test), nodes.Extends):
            expected = list(jinja_walks.JINJA_FIND_ALL(tree, wanted))
            assert list(jinja_walks.find_all(tree, wanted)) == expected, (name, wanted)
        for node in [tree, *everything]:
            expected = list(jinja_walks.JINJA_ITER_CHILD_NODES(node))
            assert list(jinja_walks.iter_child_nodes(node)) == expected, (name, node)
        checked += 1
    assert checked > 30


def test_the_generated_code_is_the_same_with_jinjas_walks(
    env: jinja2.Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    def generated() -> dict[str, str]:
        code = {}
        for name, source in all_templates():
            tree = parse(env, name, source)
            if tree is None:
                continue
            try:
                code[name] = env.compile(tree, name, raw=True)
            except jinja2.TemplateError as exc:  # a plugin's filter, say: fails the same way
                code[name] = f"{type(exc).__name__}: {exc}"
        return code

    with_ours = generated()
    monkeypatch.setattr(nodes.Node, "find_all", jinja_walks.JINJA_FIND_ALL)
    monkeypatch.setattr(nodes.Node, "iter_child_nodes", jinja_walks.JINJA_ITER_CHILD_NODES)
    assert generated() == with_ours
    assert "block_head" in with_ours["everything"]  # the blocks were found
    assert sum(not code.startswith("Template") for code in with_ours.values()) > 30


def test_exclude_and_only_are_left_to_jinja(env: jinja2.Environment) -> None:
    tree = parse(env, "everything", EVERYTHING)
    assert tree is not None
    for node in tree.find_all(nodes.Node):
        for kwargs in ({"exclude": ("body",)}, {"only": ("test", "node", "args")}):
            expected = list(jinja_walks.JINJA_ITER_CHILD_NODES(node, **kwargs))
            assert list(node.iter_child_nodes(**kwargs)) == expected


def test_a_removed_field_is_skipped_as_jinja_skips_it() -> None:
    output = nodes.Output([nodes.Const(1), nodes.Name("x", "load")])
    node = nodes.If(nodes.Name("flag", "load"), [output], [], [])
    del node.test  # what a NodeTransformer does to a child it drops
    assert list(node.iter_child_nodes()) == list(jinja_walks.JINJA_ITER_CHILD_NODES(node))
    assert list(node.find_all(nodes.Name)) == list(jinja_walks.JINJA_FIND_ALL(node, nodes.Name))


def test_nothing_is_replaced_when_jinjas_methods_are_not_the_expected_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def find_all(self, kinds):  # a different signature: some other Jinja
        yield from ()

    monkeypatch.setattr(jinja_walks, "JINJA_FIND_ALL", find_all)
    monkeypatch.setattr(nodes.Node, "find_all", find_all)
    monkeypatch.setattr(nodes.Node, "iter_child_nodes", jinja_walks.JINJA_ITER_CHILD_NODES)
    assert not jinja_walks.install()
    assert nodes.Node.find_all is find_all
