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
from jinja2.environment import load_extensions

from makeflux.errors import PluginError, Problem, SettingsError, display_path
from makeflux.jinja_internals import MakefluxEnvironment, RecordingLoader
from makeflux.settings import Settings

UNDEFINED_CLASSES: dict[str, type[jinja2.Undefined]] = {
    "default": jinja2.Undefined,
    "chainable": jinja2.ChainableUndefined,
    "debug": jinja2.DebugUndefined,
    "strict": jinja2.StrictUndefined,
}

PathFilter = Callable[[Path], bool]


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
        # makejinja's order: globals, functions, data, extensions, filters, tests, policies.
        _add_named(env.globals, plugin, "globals")
        _add_named(env.globals, plugin, "functions")
        if hasattr(plugin, "data"):
            env.globals.update(plugin.data())
        if hasattr(plugin, "extensions"):
            load_extensions(env, plugin.extensions())
        _add_named(env.filters, plugin, "filters")
        _add_named(env.tests, plugin, "tests")
        if hasattr(plugin, "policies"):
            env.policies.update(plugin.policies())
    except Exception as exc:
        raise PluginError(
            Problem(f"plugin '{name}' failed: {type(exc).__name__}: {exc}", where)
        ) from None
    return plugin


def _add_named(target: MutableMapping[str, Any], plugin: Any, method: str) -> None:
    """Each function the plugin's `method` lists, under its own name (when it has the method)."""
    if hasattr(plugin, method):
        target.update({f.__name__: f for f in getattr(plugin, method)()})


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
