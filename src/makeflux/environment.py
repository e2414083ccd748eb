"""The Jinja Environment: delimiters, undefined, extensions and makejinja-style plugins."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from inspect import Parameter, signature
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, generate
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS
from jinja2.environment import load_extensions

from makeflux import jinja_walks
from makeflux.errors import PluginError, Problem, SettingsError, display_path
from makeflux.settings import Settings

jinja_walks.install()

UNDEFINED_CLASSES: dict[str, type[jinja2.Undefined]] = {
    "default": jinja2.Undefined,
    "chainable": jinja2.ChainableUndefined,
    "debug": jinja2.DebugUndefined,
    "strict": jinja2.StrictUndefined,
}

PathFilter = Callable[[Path], bool]


class MakefluxEnvironment(jinja2.Environment):
    """jinja2.Environment with two changes that leave the output as makejinja's.

    Globals: templates get them as a plain dict, not a ChainMap. Jinja builds a set of every
    global name for each template it renders, and for each `import` subtracts the imported
    template's globals from it; over a ChainMap those run key by key in Python (time ~
    templates x data keys: seconds on a large tree). Over a dict they run in C. A template's
    globals are then a snapshot of env.globals taken when it is loaded, which is when it
    renders: the output is the same.

    Compiling: only Jinja's own filters and tests run at compile time (see _generate).
    """

    # Called with (name, source, ast, names) for every template compiled, `names` being every
    # name its code resolves from the context (makeflux.reuse learns what a template depends on
    # from the compile it needs anyway).
    parse_hook: Callable[[str | None, str, nodes.Template, set[str]], None] | None = None
    resolved_names: set[str] | None = None  # filled by _ResolveRecorder while compiling

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

    def _generate(self, source: Any, name: str | None, filename: str | None, defer_init=False):
        """Jinja's code generation, with plugin filters and tests left for render time.

        Jinja evaluates a filter or test applied to constants while compiling and puts the
        result in the code (`"age.key" | age_key`). makeflux keeps compiled code between runs
        (makeflux.cache), so a plugin filter that reads a file would go on returning what it
        read the first time; makejinja, which compiles on every run, reads it again. Here a
        plugin's filters and tests refuse to run while compiling (Jinja then leaves the
        expression to render time), so every render calls them and sees the file as it is now.
        Jinja's own filters and tests depend on their arguments only, and still fold.
        """
        filters, tests = self.filters, self.tests
        self.filters = _compile_time_view(filters, DEFAULT_FILTERS)
        self.tests = _compile_time_view(tests, DEFAULT_TESTS)
        try:
            return super()._generate(source, name, filename, defer_init)
        finally:
            self.filters, self.tests = filters, tests


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


def _hooks_fit() -> bool:
    """True when the Jinja internals output reuse hooks into (Environment.compile and _parse,
    BaseLoader.load, CodeGenerator.enter_frame and a frame's symbol loads) look as in Jinja
    3.1. Otherwise Jinja is left alone and every template renders on every run."""
    try:
        compile_parameters = list(signature(jinja2.Environment.compile).parameters)
        load_parameters = list(signature(jinja2.BaseLoader.load).parameters)
    except (TypeError, ValueError):
        return False
    return (
        compile_parameters == ["self", "source", "name", "filename", "raw", "defer_init"]
        and load_parameters == ["self", "environment", "name", "globals"]
        and callable(getattr(jinja2.Environment, "_parse", None))
        and callable(getattr(CodeGenerator, "enter_frame", None))
        and hasattr(jinja2.compiler, "VAR_LOAD_RESOLVE")
    )


REUSE_HOOKS_FIT = _hooks_fit()
if REUSE_HOOKS_FIT:
    MakefluxEnvironment.code_generator_class = _ResolveRecorder


def context_names(env: MakefluxEnvironment, ast: nodes.Template) -> set[str]:
    """Every name the code compiled from `ast` resolves from the context (data included)."""
    env.resolved_names = set()
    try:
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


@dataclass
class JinjaSetup:
    """The environment every template renders in, plus what the plugins asked for."""

    env: jinja2.Environment
    plugins: list[Any]
    path_filters: list[PathFilter]


def syntax_options(settings: Settings) -> dict[str, Any]:
    """The Environment options that decide how template text is parsed: delimiters, prefixes
    and block whitespace. Everything that parses templates uses exactly these."""
    d, ws = settings.delimiter, settings.whitespace
    return {
        "block_start_string": d.block_start,
        "block_end_string": d.block_end,
        "variable_start_string": d.variable_start,
        "variable_end_string": d.variable_end,
        "comment_start_string": d.comment_start,
        "comment_end_string": d.comment_end,
        "line_statement_prefix": settings.prefix.line_statement,
        "line_comment_prefix": settings.prefix.line_comment,
        "trim_blocks": ws.trim_blocks,
        "lstrip_blocks": ws.lstrip_blocks,
    }


def build_environment(
    settings: Settings,
    data: Mapping[str, Any],
    *,
    bytecode_cache: jinja2.BytecodeCache | None = None,
) -> JinjaSetup:
    """An Environment configured exactly as makejinja configures it, with plugins loaded."""
    file_inputs = {p.name: p for p in settings.inputs if p.is_file()}
    loader = RecordingLoader(
        [
            jinja2.DictLoader({name: _read_template(p) for name, p in file_inputs.items()}),
            jinja2.FileSystemLoader([str(p) for p in settings.inputs if p.is_dir()]),
        ]
    )
    ws, internal = settings.whitespace, settings.internal
    _use_import_paths(settings.import_paths)  # extensions may live there, as plugins do
    _check_extensions(settings)
    try:
        env = MakefluxEnvironment(
            loader=loader,
            extensions=list(settings.extensions),
            **syntax_options(settings),
            newline_sequence=ws.newline_sequence,  # type: ignore[arg-type]
            keep_trailing_newline=ws.keep_trailing_newline,
            optimized=internal.optimized,
            undefined=UNDEFINED_CLASSES[settings.undefined],
            finalize=None,
            autoescape=internal.autoescape,
            cache_size=internal.cache_size,
            auto_reload=internal.auto_reload,
            bytecode_cache=bytecode_cache,
            enable_async=internal.enable_async,
        )
    except (ImportError, AttributeError, ValueError, TypeError, AssertionError) as exc:
        raise SettingsError(
            Problem(
                f"cannot set up Jinja: {exc}; check 'extensions' and the delimiter table",
                _where(settings),
            )
        ) from None
    env.globals.update(data)
    env.globals["env"] = os.environ

    _install_makejinja_shim()
    plugins = [
        load_plugin(name, env, data, settings) for name in (*settings.plugins, *settings.loaders)
    ]
    path_filters: list[PathFilter] = []
    for plugin in plugins:
        if hasattr(plugin, "path_filters"):
            path_filters.extend(plugin.path_filters())
    return JinjaSetup(env=env, plugins=plugins, path_filters=path_filters)


def _check_extensions(settings: Settings) -> None:
    """Every `extensions` entry must name a Jinja extension class (jinja2.ext.Extension)."""
    problems = []
    for name in settings.extensions:
        try:
            extension = jinja2.utils.import_string(name)
        except Exception as exc:
            problems.append(
                Problem(
                    f"extensions: cannot import '{name}': {exc}; check the name (e.g. "
                    "'jinja2.ext.do') and 'import_paths'",
                    _where(settings),
                )
            )
            continue
        if not (isinstance(extension, type) and issubclass(extension, jinja2.ext.Extension)):
            problems.append(
                Problem(
                    f"extensions: '{name}' is not a Jinja extension (a subclass of "
                    "jinja2.ext.Extension); remove it or name an extension class",
                    _where(settings),
                )
            )
    if problems:
        raise SettingsError(problems)


def load_plugin(name: str, env: jinja2.Environment, data: Mapping[str, Any], settings: Settings):
    """Construct a makejinja plugin (`module:Class`) and merge what it contributes into env."""
    where = _where(settings)
    module_name = name.split(":", 1)[0] if ":" in name else name.rpartition(".")[0]
    _forget_user_modules(module_name, settings.import_paths)
    try:
        cls = jinja2.utils.import_string(name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise PluginError(
            Problem(
                f"cannot import plugin '{name}': {exc}; check 'plugins' and 'import_paths'",
                where,
            )
        ) from None
    except Exception as exc:  # the plugin module itself raised while importing
        raise PluginError(
            Problem(f"plugin '{name}' failed while importing: {type(exc).__name__}: {exc}", where)
        ) from None
    params: Mapping[str, Parameter]
    try:
        params = signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs: dict[str, Any] = {}
    if params.get("env"):
        kwargs["env"] = env
    if params.get("environment"):
        kwargs["environment"] = env
    if params.get("data"):
        kwargs["data"] = data
    if params.get("config"):
        kwargs["config"] = settings
    try:
        plugin = cls(**kwargs)
        if hasattr(plugin, "globals"):
            env.globals.update({f.__name__: f for f in plugin.globals()})
        if hasattr(plugin, "functions"):
            env.globals.update({f.__name__: f for f in plugin.functions()})
        if hasattr(plugin, "data"):
            env.globals.update(plugin.data())
        if hasattr(plugin, "extensions"):
            load_extensions(env, plugin.extensions())
        if hasattr(plugin, "filters"):
            env.filters.update({f.__name__: f for f in plugin.filters()})
        if hasattr(plugin, "tests"):
            env.tests.update({f.__name__: f for f in plugin.tests()})
        if hasattr(plugin, "policies"):
            env.policies.update(plugin.policies())
    except Exception as exc:
        raise PluginError(
            Problem(f"plugin '{name}' failed: {type(exc).__name__}: {exc}", where)
        ) from None
    return plugin


def _read_template(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _where(settings: Settings) -> str:
    return display_path(settings.source) if settings.source else "settings"


# import_paths earlier builds in this process put on sys.path. In-process callers (tests, library
# users) build several projects in turn; one project's `plugin` module must not shadow another's.
_ADDED_IMPORT_PATHS: list[str] = []
_SEEN_IMPORT_PATHS: set[str] = set()


def _use_import_paths(import_paths: tuple[Path, ...]) -> None:
    """Put this project's import_paths on sys.path, and take other projects' off it."""
    current = [str(p) for p in import_paths]
    for stale in [p for p in _ADDED_IMPORT_PATHS if p not in current]:
        while stale in sys.path:
            sys.path.remove(stale)
        _ADDED_IMPORT_PATHS.remove(stale)
    for path in current:
        _SEEN_IMPORT_PATHS.add(path)
        if path not in sys.path:
            sys.path.append(path)
            _ADDED_IMPORT_PATHS.append(path)


def _forget_user_modules(module_name: str, import_paths: tuple[Path, ...]) -> None:
    """Drop cached modules loaded from any project's import_paths so each run sees its own files."""
    top = module_name.split(".", 1)[0]
    roots = {str(p) for p in import_paths} | _SEEN_IMPORT_PATHS
    for name in list(sys.modules):
        if name != top and not name.startswith(top + "."):
            continue
        file = getattr(sys.modules[name], "__file__", None) or ""
        if any(file.startswith(root) for root in roots):
            del sys.modules[name]
    importlib.invalidate_caches()


def _install_makejinja_shim() -> None:
    """Let plugin files that `import makejinja` load, whether or not makejinja is installed.

    Plugins only need makejinja.plugin, but makejinja's own package __init__ imports its whole
    command line (rich, typed-settings, pydantic: ~0.1 s a run). So `makejinja` is a bare
    package here whose `plugin` is makeflux's copy of the protocol; its other submodules, when
    makejinja is installed, still import from the real package directory on first use.
    """
    if sys.modules.get("makejinja") is not None:
        return
    from makeflux import plugin_api

    package = types.ModuleType("makejinja")
    try:
        spec = importlib.util.find_spec("makejinja")
    except (ImportError, ValueError):
        spec = None
    locations = spec.submodule_search_locations if spec else None
    package.__path__ = list(locations or [])  # type: ignore[attr-defined]
    package.plugin = plugin_api  # type: ignore[attr-defined]
    package.loader = plugin_api  # type: ignore[attr-defined]

    def submodule(name: str) -> types.ModuleType:
        try:
            return importlib.import_module(f"makejinja.{name}")
        except ImportError:
            raise AttributeError(f"module 'makejinja' has no attribute '{name}'") from None

    package.__getattr__ = submodule  # type: ignore[attr-defined,method-assign]
    sys.modules["makejinja"] = package
    sys.modules["makejinja.plugin"] = plugin_api
