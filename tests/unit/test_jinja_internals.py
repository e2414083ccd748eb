"""makeflux.jinja_internals: each contact with Jinja's internals behaves as Jinja does, and
falls back to Jinja's own behaviour when the Jinja in use looks different."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
from jinja2 import nodes

from makeflux import cache, jinja_internals
from makeflux.environment import syntax_options
from makeflux.settings import load_settings
from tests.conftest import REPO_ROOT, run_cli
from tests.helpers.plugin_project import make_project as make_cache_project
from tests.helpers.plugin_project import read_tree

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


def test_every_contact_fits_the_pinned_jinja() -> None:
    assert jinja_internals.contacts() == dict.fromkeys(jinja_internals.contacts(), True)
    assert set(jinja_internals.contacts()) == {
        "walks",
        "globals",
        "render_time_filters",
        "reuse_hooks",
        "render_in_place",
        "output_marks",
    }


def test_the_walks_are_ours_only_while_makeflux_compiles() -> None:
    seen: list[bool] = []

    class Spy(jinja_internals._ResolveRecorder):
        def visit_Template(self, node: nodes.Template, frame: object = None) -> None:
            seen.append(nodes.Node.find_all is jinja_internals.find_all)
            super().visit_Template(node, frame)  # type: ignore[arg-type]

    class SpyEnvironment(jinja_internals.MakefluxEnvironment):
        code_generator_class = Spy

    assert nodes.Node.find_all is jinja_internals.JINJA_FIND_ALL
    assert SpyEnvironment().from_string("{{ a }}").render(a=1) == "1"
    assert seen == [True]
    assert nodes.Node.find_all is jinja_internals.JINJA_FIND_ALL
    assert nodes.Node.iter_child_nodes is jinja_internals.JINJA_ITER_CHILD_NODES
    # A plain Jinja environment in the same process never sees them.
    plain = jinja2.Environment()
    plain.code_generator_class = Spy
    plain.from_string("{{ a }}")
    assert seen == [True, False]


def test_every_shipped_template_is_walked_as_jinja_walks_it(env: jinja2.Environment) -> None:
    checked = 0
    for name, source in all_templates():
        tree = parse(env, name, source)
        if tree is None:
            continue
        everything = list(jinja_internals.JINJA_FIND_ALL(tree, nodes.Node))
        ours = list(jinja_internals.find_all(tree, nodes.Node))
        assert len(ours) == len(everything), name
        assert all(a is b for a, b in zip(ours, everything, strict=True)), name
        for wanted in (nodes.Block, nodes.Name, (nodes.Filter, nodes.Test), nodes.Extends):
            expected = list(jinja_internals.JINJA_FIND_ALL(tree, wanted))
            assert list(jinja_internals.find_all(tree, wanted)) == expected, (name, wanted)
        for node in [tree, *everything]:
            expected = list(jinja_internals.JINJA_ITER_CHILD_NODES(node))
            assert list(jinja_internals.iter_child_nodes(node)) == expected, (name, node)
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

    with jinja_internals.faster_walks():
        assert nodes.Node.find_all is jinja_internals.find_all
        with_ours = generated()
    assert nodes.Node.find_all is jinja_internals.JINJA_FIND_ALL
    assert generated() == with_ours
    assert "block_head" in with_ours["everything"]  # the blocks were found
    assert sum(not code.startswith("Template") for code in with_ours.values()) > 30


def test_exclude_and_only_are_left_to_jinja(env: jinja2.Environment) -> None:
    tree = parse(env, "everything", EVERYTHING)
    assert tree is not None
    for node in tree.find_all(nodes.Node):
        for kwargs in ({"exclude": ("body",)}, {"only": ("test", "node", "args")}):
            expected = list(jinja_internals.JINJA_ITER_CHILD_NODES(node, **kwargs))
            assert list(jinja_internals.iter_child_nodes(node, **kwargs)) == expected


def test_a_removed_field_is_skipped_as_jinja_skips_it() -> None:
    output = nodes.Output([nodes.Const(1), nodes.Name("x", "load")])
    node = nodes.If(nodes.Name("flag", "load"), [output], [], [])
    del node.test  # what a NodeTransformer does to a child it drops
    ours = jinja_internals.iter_child_nodes(node)
    assert list(ours) == list(jinja_internals.JINJA_ITER_CHILD_NODES(node))
    ours = jinja_internals.find_all(node, nodes.Name)
    assert list(ours) == list(jinja_internals.JINJA_FIND_ALL(node, nodes.Name))


def test_nothing_is_replaced_when_jinjas_methods_are_not_the_expected_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def find_all(self, kinds):  # a different signature: some other Jinja
        yield from ()

    monkeypatch.setattr(jinja_internals, "JINJA_FIND_ALL", find_all)
    assert not jinja_internals._walks_fit()
    monkeypatch.setattr(jinja_internals, "WALKS_FIT", False)
    with jinja_internals.faster_walks():
        assert nodes.Node.find_all is not jinja_internals.find_all


def test_a_jinja_that_would_fold_plugin_filters_keeps_no_compiled_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the probe says a plugin's result could end up in the code, nothing compiled is
    written to the cache: every run compiles, as makejinja does, and reads the file anew."""
    project = make_cache_project(tmp_path / "project")
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(cache_dir))
    monkeypatch.setenv("MAKEFLUX_JOBS", "1")
    monkeypatch.setattr(jinja_internals, "plugin_filters_wait_for_render", lambda: False)
    expected = run_cli(["--no-cache", "render", "--no-lint", "-o", "expected"], project)
    assert expected.exit_code == 0, expected.output
    result = run_cli(["render", "--no-lint", "-o", "out"], project)
    assert result.exit_code == 0, result.output
    assert not list(cache_dir.rglob(f"*{cache.PACK_SUFFIX}"))
    assert read_tree(project / "out") == read_tree(project / "expected")


def test_the_probe_sees_a_filter_folded_at_compile_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """plugin_filters_wait_for_render is a real check: with the stand-ins gone (Jinja calling
    the plugin's filter while compiling), it says no."""
    jinja_internals.plugin_filters_wait_for_render.cache_clear()
    monkeypatch.setattr(
        jinja_internals, "_compile_time_view", lambda functions, builtins: functions
    )
    try:
        assert not jinja_internals.plugin_filters_wait_for_render()
    finally:
        jinja_internals.plugin_filters_wait_for_render.cache_clear()
    monkeypatch.undo()
    assert jinja_internals.plugin_filters_wait_for_render()


def test_render_in_place_gives_what_template_render_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = jinja2.Environment(**syntax_options(load_settings(REPO_ROOT)))
    env.globals.update({"a": 1, "c": [2, 3]})
    template = env.from_string(
        "#{ a }#-#{ b | default('none') }#-#% for x in c %##{ x }##% endfor %#"
    )
    expected = template.render(b="file")
    assert expected == "1-file-23"
    assert jinja_internals.render_in_place(template, env.globals, {"b": "file"}) == expected
    assert jinja_internals.render_in_place(template, env.globals, {}) == "1-none-23"
    assert "b" not in env.globals  # read, never written
    monkeypatch.setattr(jinja_internals, "RENDER_IN_PLACE_FITS", False)
    assert jinja_internals.render_in_place(template, env.globals, {"b": "file"}) == expected


def test_without_output_marks_lint_names_no_template(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tracing falls back to naming nothing, never a wrong line."""
    from makeflux.lint.origins import marking_environment

    assert marking_environment(jinja2.Environment()) is not None
    monkeypatch.setattr(jinja_internals, "OUTPUT_MARKS_FIT", False)
    assert marking_environment(jinja2.Environment()) is None
    broken = REPO_ROOT / "tests" / "fixtures" / "lint" / "broken"
    result = run_cli(["lint"], broken)
    assert result.exit_code == 1
    assert not re.search(r"\([^)]*\.j2:\d+\)", result.stdout)  # no rendered line names one
    assert "kubernetes/apps/monitoring/tempo/ks.yaml:14 " in result.stdout  # all still there


def test_the_contact_report_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "makeflux.jinja_internals"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Jinja {jinja2.__version__}\n")
    assert result.stdout.count(": fits") == 6
