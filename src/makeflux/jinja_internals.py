"""Every place makeflux relies on Jinja's internals, each checked against the Jinja in use.

Jinja's public API renders templates; makeflux goes further in six places, for speed and for
the guarantee that nothing stale is served from its caches. Each is written against Jinja 3.1
(pyproject pins `jinja2<3.2`), and each has a check that falls back to Jinja's own behaviour
when the Jinja in use looks different (`python -m makeflux.jinja_internals` prints them):

- walks: iterative Node.iter_child_nodes and find_all while makeflux compiles (else Jinja's);
- globals: templates get env.globals as a plain dict, not a ChainMap (else Jinja's ChainMap);
- render_time_filters: plugin filters and tests never fold into compiled code (else no
  compiled code is kept between runs);
- reuse_hooks: the compile reports every name a template resolves (else every template
  renders on every run);
- render_in_place: a template reads env.globals without a copy per template (else
  Template.render);
- output_marks: lint's tracing marks each piece of output (else no template is named).

tests/unit/test_jinja_internals.py compares each with Jinja's own behaviour, and
scripts/check_newest_jinja.py runs those tests against Jinja's newest release.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Container, Iterator, Mapping, MutableMapping
from inspect import signature
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, generate
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS

Node = nodes.Node
JINJA_ITER_CHILD_NODES = Node.iter_child_nodes
JINJA_FIND_ALL = Node.find_all


def _parameters(function: Any) -> list[str] | None:
    try:
        return list(signature(function).parameters)
    except (TypeError, ValueError):
        return None


# ---- walks: faster tree walks, only while makeflux compiles --------------------------------
#
# Compiling one template walks its tree several times: the code generator looks for `extends`,
# blocks and imported names, and collects the filters and tests used, each in a walk of its
# own, through Node.iter_child_nodes (a generator over another generator, per node) and
# Node.find_all (generators nested as deep as the tree): about 5% of a cold render's CPU. These
# read the same fields and yield the same nodes in the same order; iter_child_nodes with
# `exclude` or `only` is left to Jinja.


def child_nodes(node: Node) -> list[Node]:
    """The direct child nodes of `node`, in Jinja's order (fields in order, lists in order)."""
    children: list[Node] = []
    for name in node.fields:
        try:
            item = getattr(node, name)
        except AttributeError:  # a field a transformer removed
            continue
        if isinstance(item, list):
            children += [n for n in item if isinstance(n, Node)]
        elif isinstance(item, Node):
            children.append(item)
    return children


def iter_child_nodes(
    self: Node, exclude: Container[str] | None = None, only: Container[str] | None = None
) -> Iterator[Node]:
    if exclude is None and only is None:
        return iter(child_nodes(self))
    return JINJA_ITER_CHILD_NODES(self, exclude, only)


def find_all(self: Node, node_type: Any) -> Iterator[Any]:
    """Every node below `self` that is a `node_type`, depth first, parents before children."""
    stack = child_nodes(self)[::-1]  # the next node to visit last
    while stack:
        node = stack.pop()
        if isinstance(node, node_type):
            yield node
        stack += reversed(child_nodes(node))  # read after the yield, as Jinja's recursion does


def _walks_fit() -> bool:
    """Whether Node has the methods (and signatures) these walks were written against."""
    return (
        JINJA_ITER_CHILD_NODES.__module__ == nodes.__name__
        and JINJA_FIND_ALL.__module__ == nodes.__name__
        and (_parameters(JINJA_ITER_CHILD_NODES) or [])[:3] == ["self", "exclude", "only"]
        and (_parameters(JINJA_FIND_ALL) or [])[:2] == ["self", "node_type"]
        and isinstance(getattr(Node, "fields", None), tuple)
    )


WALKS_FIT = _walks_fit()


@contextlib.contextmanager
def faster_walks() -> Iterator[None]:
    """These walks on every Node for the duration (makeflux compiles in one thread; other
    Jinja users in the process see Jinja's own methods before and after)."""
    if not WALKS_FIT or Node.find_all is find_all:
        yield
        return
    Node.iter_child_nodes = iter_child_nodes  # type: ignore[method-assign]
    Node.find_all = find_all  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Node.iter_child_nodes = JINJA_ITER_CHILD_NODES  # type: ignore[method-assign]
        Node.find_all = JINJA_FIND_ALL  # type: ignore[method-assign]


# ---- the environment ---------------------------------------------------------------------

GLOBALS_FIT = _parameters(jinja2.Environment.make_globals) == ["self", "d"]
_GENERATE_FITS = _parameters(jinja2.Environment._generate) == [
    "self",
    "source",
    "name",
    "filename",
    "defer_init",
]


class MakefluxEnvironment(jinja2.Environment):
    """jinja2.Environment with changes that leave the output as makejinja's.

    Globals: templates get them as a plain dict, not a ChainMap. Jinja builds a set of every
    global name for each template it renders, and for each `import` subtracts the imported
    template's globals from it; over a ChainMap those run key by key in Python (time ~
    templates x data keys: seconds on a large tree). Over a dict they run in C. A template's
    globals are then a snapshot of env.globals taken when it is loaded, which is when it
    renders: the output is the same.

    Compiling: only Jinja's own filters and tests run at compile time (see _generate), with
    the faster walks; a parse_hook learns what each compiled template reads.
    """

    # Called with (name, source, ast, names) for every template compiled, `names` being every
    # name its code resolves from the context (makeflux.reuse learns what a template depends on
    # from the compile it needs anyway).
    parse_hook: Callable[[str | None, str, nodes.Template, set[str]], None] | None = None
    resolved_names: set[str] | None = None  # filled by _ResolveRecorder while compiling

    if GLOBALS_FIT:

        def make_globals(self, d: Mapping[str, Any] | None) -> dict[str, Any]:  # type: ignore[override]
            return {**self.globals, **d} if d else dict(self.globals)

    def compile(  # type: ignore[override]
        self,
        source: str | nodes.Template,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        hook = self.parse_hook
        if hook is None or not isinstance(source, str):
            return super().compile(source, name, filename, raw, defer_init)  # type: ignore[call-overload]
        text = source
        try:
            ast = self._parse(text, name, filename)
        except jinja2.TemplateSyntaxError:
            self.handle_exception(source=text)  # as Environment.compile reports it
        self.resolved_names = set()
        try:
            code = super().compile(ast, name, filename, raw, defer_init)  # type: ignore[call-overload]
            hook(name, text, ast, self.resolved_names)
        finally:
            self.resolved_names = None
        return code

    if _GENERATE_FITS:

        def _generate(
            self, source: Any, name: str | None, filename: str | None, defer_init: bool = False
        ) -> str:
            """Jinja's code generation, with plugin filters and tests left for render time.

            Jinja evaluates a filter or test applied to constants while compiling and puts the
            result in the code (`"age.key" | age_key`). makeflux keeps compiled code between
            runs (makeflux.cache), so a plugin filter that reads a file would go on returning
            what it read the first time; makejinja, which compiles on every run, reads it
            again. Here a plugin's filters and tests refuse to run while compiling (Jinja then
            leaves the expression to render time), so every render calls them and sees the
            file as it is now. Jinja's own filters and tests depend on their arguments only,
            and still fold.
            """
            filters, tests = self.filters, self.tests
            self.filters = _compile_time_view(filters, DEFAULT_FILTERS)
            self.tests = _compile_time_view(tests, DEFAULT_TESTS)
            try:
                with faster_walks():
                    return super()._generate(source, name, filename, defer_init)
            finally:
                self.filters, self.tests = filters, tests


def _compile_time_view(functions: dict[str, Any], builtins: dict[str, Any]) -> dict[str, Any]:
    """`functions` (env.filters or env.tests) as the compiler sees them: the same names, and
    for every function that is not Jinja's own (in `builtins`), a stand-in that says how it is
    called (Jinja needs that to generate the call) but raises when called."""
    return {
        name: func if builtins.get(name) is func else _stand_in(func)
        for name, func in functions.items()
    }


def _stand_in(func: Any) -> Callable[..., Any]:
    key = (getattr(func, "jinja_pass_arg", None), getattr(func, "jinja_async_variant", False))
    stand_in = _STAND_INS.get(key)
    if stand_in is None:

        def stand_in(*args: Any, **kwargs: Any) -> Any:
            raise _RenderTimeOnly  # Jinja takes any exception here as "not a constant"

        if key[0] is not None:
            stand_in.jinja_pass_arg = key[0]  # type: ignore[attr-defined]
        if key[1]:
            stand_in.jinja_async_variant = True  # type: ignore[attr-defined]
        _STAND_INS[key] = stand_in
    return stand_in


class _RenderTimeOnly(Exception):
    pass


_STAND_INS: dict[tuple[Any, bool], Callable[..., Any]] = {}


@functools.cache
def plugin_filters_wait_for_render() -> bool:
    """Whether a plugin filter applied to a constant is called at render time, not folded into
    the compiled code. Checked once by compiling a probe; when it fails (a Jinja that folds
    differently), makeflux keeps no compiled code between runs: it compiles every template on
    every run, as makejinja does, so no plugin result read once is served again."""
    if not _GENERATE_FITS:
        return False
    calls: list[str] = []

    def probe_filter(value: str) -> str:
        calls.append(value)
        return value

    def probe_test(value: str) -> bool:
        calls.append(value)
        return True

    env = MakefluxEnvironment()
    env.filters["makeflux_probe"] = probe_filter
    env.tests["makeflux_probe"] = probe_test
    try:
        template = env.from_string("{{ 'x' | makeflux_probe }}{{ 'y' is makeflux_probe }}")
        if calls:
            return False  # folded while compiling
        return template.render() == "xTrue" and calls == ["x", "y"]
    except Exception:
        return False


# ---- reuse_hooks: what a compiled template reads -----------------------------------------


class _ResolveRecorder(CodeGenerator):
    """Jinja's code generator, noting in environment.resolved_names (when set) every name the
    generated code resolves from the context. Unlike jinja2.meta.find_undeclared_variables it
    keeps names that are globals: makeflux puts the data in the globals."""

    def enter_frame(self, frame: Frame) -> None:
        super().enter_frame(frame)
        sink = getattr(self.environment, "resolved_names", None)
        if sink is not None:
            resolve = jinja2.compiler.VAR_LOAD_RESOLVE
            sink.update(p for action, p in frame.symbols.loads.values() if action == resolve)


def _reuse_hooks_fit() -> bool:
    """True when the Jinja internals output reuse hooks into (Environment.compile and _parse,
    BaseLoader.load, CodeGenerator.enter_frame and a frame's symbol loads) look as in Jinja
    3.1. Otherwise Jinja is left alone and every template renders on every run."""
    return (
        _parameters(jinja2.Environment.compile)
        == ["self", "source", "name", "filename", "raw", "defer_init"]
        and _parameters(jinja2.BaseLoader.load) == ["self", "environment", "name", "globals"]
        and callable(getattr(jinja2.Environment, "_parse", None))
        and callable(getattr(CodeGenerator, "enter_frame", None))
        and hasattr(jinja2.compiler, "VAR_LOAD_RESOLVE")
    )


REUSE_HOOKS_FIT = _reuse_hooks_fit()
if REUSE_HOOKS_FIT:
    MakefluxEnvironment.code_generator_class = _ResolveRecorder


def context_names(env: MakefluxEnvironment, ast: nodes.Template) -> set[str]:
    """Every name the code compiled from `ast` resolves from the context (data included)."""
    env.resolved_names = set()
    try:
        with faster_walks():
            generate(ast, env, "<introspection>", None, optimized=env.optimized)
        return env.resolved_names
    finally:
        env.resolved_names = None


class RecordingLoader(jinja2.ChoiceLoader):
    """jinja2.ChoiceLoader that can report the text of every template it gives out
    (makeflux.reuse checks a kept output was rendered from the text its key was made of).

    load() is BaseLoader's, which asks self.get_source; ChoiceLoader's own asks each loader's
    load(), which is the same BaseLoader.load for the DictLoader and FileSystemLoader here."""

    on_source: Callable[[str, str], None] | None = None

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        # ChoiceLoader.get_source, except that a DictLoader without the name is passed over
        # without raising TemplateNotFound (~1 ms of reading 364 templates in a warm run).
        for loader in self.loaders:
            if type(loader) is jinja2.DictLoader and template not in loader.mapping:
                continue
            try:
                source, filename, uptodate = loader.get_source(environment, template)
            except jinja2.TemplateNotFound:
                continue
            break
        else:
            raise jinja2.TemplateNotFound(template)
        if self.on_source is not None:
            self.on_source(template, source)
        return source, filename, uptodate

    def load(
        self,
        environment: jinja2.Environment,
        name: str,
        globals: MutableMapping[str, Any] | None = None,
    ) -> jinja2.Template:
        return jinja2.BaseLoader.load(self, environment, name, globals)


# ---- render_in_place: no copy of the data per template -----------------------------------

RENDER_IN_PLACE_FITS = (
    _parameters(jinja2.Template.new_context) == ["self", "vars", "shared", "locals"]
    and callable(getattr(jinja2.Environment, "concat", None))
    and callable(getattr(jinja2.Environment, "handle_exception", None))
)


def render_in_place(
    template: jinja2.Template, context: Mapping[str, Any], file_data: Mapping[str, Any]
) -> str:
    """What template.render(file_data) returns when `context` is env.globals, reading
    `context` in place instead of copying it, which Template.render does for each template."""
    env = template.environment
    root_render_func = getattr(template, "root_render_func", None)
    if not RENDER_IN_PLACE_FITS or env.is_async or root_render_func is None:
        return template.render(file_data)
    variables = dict(context, **file_data) if file_data else context
    jinja_context = template.new_context(variables, shared=True)  # type: ignore[arg-type]
    try:
        return env.concat(root_render_func(jinja_context))  # type: ignore[attr-defined,no-any-return]
    except Exception:
        env.handle_exception()  # re-raises with the template's file and line in the traceback
    raise AssertionError("handle_exception returns by raising")


# ---- output_marks: lint's tracing of rendered lines to template lines --------------------

OUTPUT_MARKS_FIT = _parameters(CodeGenerator.visit_Output) == ["self", "node", "frame"]


def output_marking_generator(mark: Callable[[str, int, str], str]) -> type[CodeGenerator] | None:
    """A code generator putting `mark(kind, line, template name)` before each piece of output
    ("T" template text, "E" an expression); None when Jinja's visit_Output differs."""
    if not OUTPUT_MARKS_FIT:
        return None

    class MarkingCodeGenerator(CodeGenerator):
        def visit_Output(self, node: nodes.Output, frame: Frame) -> None:
            marked: list[nodes.Expr] = []
            for child in node.nodes:
                kind = "T" if isinstance(child, nodes.TemplateData) else "E"
                text = mark(kind, child.lineno, self.name or "")
                marked.append(nodes.TemplateData(text, lineno=child.lineno))
                marked.append(child)
            super().visit_Output(nodes.Output(marked, lineno=node.lineno), frame)

    return MarkingCodeGenerator


def contacts() -> dict[str, bool]:
    """Each contact with Jinja's internals, and whether it fits the Jinja in use."""
    return {
        "walks": WALKS_FIT,
        "globals": GLOBALS_FIT,
        "render_time_filters": plugin_filters_wait_for_render(),
        "reuse_hooks": REUSE_HOOKS_FIT,
        "render_in_place": RENDER_IN_PLACE_FITS,
        "output_marks": OUTPUT_MARKS_FIT,
    }


if __name__ == "__main__":
    import sys

    fits = contacts()
    print(f"Jinja {jinja2.__version__}")
    for contact, fit in fits.items():
        print(f"  {contact}: {'fits' if fit else 'DOES NOT FIT: Jinja behaviour used'}")
    sys.exit(0 if all(fits.values()) else 1)
