"""makeflux.toml / makejinja.toml → one frozen Settings object."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from makeflux.errors import Problem, SettingsError, display_path, reason, repository_root

if TYPE_CHECKING:
    import tomllib

MAKEFLUX_FILE = "makeflux.toml"
MAKEJINJA_FILE = "makejinja.toml"

UNDEFINED_KINDS = ("default", "chainable", "debug", "strict")


# Outputs a later step rewrites (sops encrypts them in place): see sync.is_rewritten.
DEFAULT_REWRITTEN_PATTERNS = ("*.sops.*",)


@dataclass(frozen=True)
class Delimiters:
    block_start: str
    block_end: str
    variable_start: str
    variable_end: str
    comment_start: str
    comment_end: str


@dataclass(frozen=True)
class Prefix:
    line_statement: str | None = None
    line_comment: str | None = None


@dataclass(frozen=True)
class Whitespace:
    trim_blocks: bool = True
    lstrip_blocks: bool = True
    newline_sequence: str = "\n"
    keep_trailing_newline: bool = True


@dataclass(frozen=True)
class Internal:
    # Jinja's optimizer folds constant expressions (makejinja's default: on). Off by default
    # here: it changes no output, and it is about a tenth of the cost of compiling a template,
    # which is what a cold render spends its time on. Jinja's own folding of constant output
    # (`#{ "a" | upper }#`) happens either way.
    optimized: bool = False
    autoescape: bool = False
    cache_size: int = 0
    auto_reload: bool = False
    enable_async: bool = False


# Jinja's own defaults: what makejinja.toml means when it leaves a delimiter out.
JINJA_DELIMITERS = Delimiters("{%", "%}", "{{", "}}", "{#", "#}")
# onedr0p/cluster-template's delimiters: makeflux.toml's defaults.
CLUSTER_TEMPLATE_DELIMITERS = Delimiters("#%", "%#", "#{", "}#", "#|", "#|")


def _default_cache_dir() -> Path | None:
    from makeflux.cache import cache_root

    return cache_root()


@dataclass(frozen=True)
class Settings:
    """Everything one run needs to know, with every path absolute."""

    source: Path | None  # the settings file, None when defaults were used
    flavor: str  # "makeflux" or "makejinja": which file's meaning applies
    base_dir: Path  # relative paths in the settings file are resolved against this
    inputs: tuple[Path, ...]
    output: Path
    include_patterns: tuple[str, ...] = ("**/*",)
    exclude_patterns: tuple[str, ...] = ()
    jinja_suffix: str | None = ".j2"
    keep_jinja_suffix: bool = False
    keep_empty: bool = False
    copy_metadata: bool = False
    data: tuple[Path, ...] = ()
    data_vars: Mapping[str, str] = field(default_factory=dict)
    file_data: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)
    import_paths: tuple[Path, ...] = ()
    plugins: tuple[str, ...] = ()
    loaders: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    undefined: str = "strict"
    force: bool = False
    delimiter: Delimiters = CLUSTER_TEMPLATE_DELIMITERS
    prefix: Prefix = Prefix()
    whitespace: Whitespace = Whitespace()
    internal: Internal = Internal()
    # makeflux's own keys (ignored in makejinja.toml, where makejinja has no such meaning).
    schema: Path | None = None
    manifest: Path | None = None
    keep_manifest: bool = True  # False: this run neither reads nor writes a manifest
    lint: Mapping[str, Any] = field(default_factory=dict)
    # Files a later step rewrites (sops encrypts them): expected to differ on disk.
    rewritten_patterns: tuple[str, ...] = DEFAULT_REWRITTEN_PATTERNS
    # Where this run keeps its caches (see makeflux.cache); None: no cache (--no-cache). Not
    # part of what a setting means: left out of repr and comparisons (cache keys use repr).
    cache_dir: Path | None = field(default_factory=_default_cache_dir, repr=False, compare=False)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def find_settings_file(cwd: Path, explicit: Path | None) -> Path | None:
    """The settings file for this run: --config, else makeflux.toml, else makejinja.toml, in
    `cwd` or the nearest parent directory that has one, up to the repository root (as git and
    task look for theirs)."""
    if explicit is not None:
        if not explicit.is_file():
            raise SettingsError(
                Problem("settings file not found; check the --config path", display_path(explicit))
            )
        return explicit
    for directory in search_directories(cwd):
        for name in (MAKEFLUX_FILE, MAKEJINJA_FILE):
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


def search_directories(cwd: Path) -> list[Path]:
    """`cwd` and its parents up to the root of the git repository holding it; only `cwd` outside
    a repository, where a parent's settings file would belong to some other project."""
    here = cwd.absolute()
    root = repository_root(here)
    if root is None:
        return [here]
    return [here, *(d for d in here.parents if d.is_relative_to(root))]


def load_settings(cwd: Path, explicit: Path | None = None, *, use_cache: bool = True) -> Settings:
    """Read the settings file that applies in `cwd` (or `explicit`) into a Settings object;
    without `use_cache` (--no-cache) its cache_dir is None and nothing is kept."""
    cache_dir = _default_cache_dir() if use_cache else None
    path = find_settings_file(cwd, explicit)
    if path is None:
        searched = search_directories(cwd)
        where = (
            display_path(cwd)
            if len(searched) == 1
            else (f"{display_path(cwd)} or its parents up to {display_path(searched[-1])}")
        )
        raise SettingsError(
            f"no {MAKEFLUX_FILE} or {MAKEJINJA_FILE} in {where}; "
            "create one (see README: Settings) or pass --config PATH"
        )
    try:
        text = path.read_text(encoding="utf-8")
        raw = _parse_toml(text, cache_dir)
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(
            Problem(f"cannot read settings file: {reason(exc)}", display_path(path))
        ) from None
    except ValueError as exc:  # tomllib.TOMLDecodeError, a ValueError
        import tomllib

        if not isinstance(exc, tomllib.TOMLDecodeError):
            raise
        # "at end of document" carries no line: point at the last line, where it ended.
        line = _toml_error_line(exc) or text.count("\n") + 1
        raise SettingsError(
            Problem(
                f"not valid TOML: {_toml_error_text(exc)}; fix the syntax", display_path(path), line
            )
        ) from None
    flavor = "makejinja" if path.name == MAKEJINJA_FILE and explicit is None else None
    if flavor is None:
        # An explicit --config may name either kind of file; the table tells which.
        flavor = "makeflux" if "makeflux" in raw or "makejinja" not in raw else "makejinja"
    table = raw.get(flavor)
    if not isinstance(table, dict):
        raise SettingsError(
            Problem(
                f"no [{flavor}] table; add one with at least 'inputs' and 'output'",
                display_path(path),
            )
        )
    settings = settings_from_table(table, flavor=flavor, source=path)
    settings = replace(settings, cache_dir=cache_dir)
    if settings.lint:
        # Checked here, with the rest of the settings, so that every command refuses a bad
        # [makeflux.lint] (an unknown rule id ...), not only those that lint.
        from makeflux.lint.config import lint_config

        lint_config(
            settings.lint, display_path(path), settings.base_dir, settings.rewritten_patterns
        )
    return settings


def _parse_toml(text: str, cache_dir: Path | None) -> dict[str, Any]:
    """tomllib.loads(text), kept in the cache by the text (tomllib takes ~3 ms to import; an
    unchanged settings file is then read without it). Text that fails to parse is never kept."""
    from makeflux import cache

    def parse() -> dict[str, Any]:
        import tomllib

        return tomllib.loads(text)

    version = f"settings toml, Python {sys.version}".encode()
    parsed: dict[str, Any] = cache.memoize_content(
        cache_dir, "data", version, text.encode("utf-8", "surrogatepass"), parse
    )
    return parsed


def settings_from_table(
    table: Mapping[str, Any], *, flavor: str, source: Path | None, base_dir: Path | None = None
) -> Settings:
    """Build Settings from a [makeflux] / [makejinja] table, checking every key."""
    where = display_path(source) if source else "settings"
    base = base_dir or (source.parent if source else Path.cwd())
    base = base.resolve()
    reader = _TableReader(table, where, flavor)

    def path(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base / p)

    inputs = tuple(path(p) for p in reader.str_list("inputs", required=True))
    output = path(reader.string("output", required=True))
    default_delims = CLUSTER_TEMPLATE_DELIMITERS if flavor == "makeflux" else JINJA_DELIMITERS
    default_suffix = ".j2" if flavor == "makeflux" else ".jinja"
    default_undefined = "strict" if flavor == "makeflux" else "default"

    undefined = reader.string("undefined", default=default_undefined)
    if undefined not in UNDEFINED_KINDS:
        reader.problem(f"undefined = {undefined!r} is not one of {', '.join(UNDEFINED_KINDS)}")

    jinja_suffix = reader.optional_string("jinja_suffix", default=default_suffix)
    file_data_raw = reader.mapping("file_data")
    file_data = {
        str(k): tuple(path(p) for p in (v.split(",") if isinstance(v, str) else v))
        for k, v in file_data_raw.items()
    }
    settings = Settings(
        source=source.resolve() if source else None,
        flavor=flavor,
        base_dir=base,
        inputs=inputs,
        output=output,
        include_patterns=tuple(reader.str_list("include_patterns", default=["**/*"])),
        exclude_patterns=tuple(reader.str_list("exclude_patterns")),
        jinja_suffix=jinja_suffix,
        keep_jinja_suffix=reader.boolean("keep_jinja_suffix", False),
        keep_empty=reader.boolean("keep_empty", False),
        copy_metadata=reader.boolean("copy_metadata", False),
        data=tuple(path(p) for p in reader.str_list("data")),
        # makejinja reads data_vars as strings, whatever TOML type they were written as.
        data_vars={str(k): _as_str(v) for k, v in reader.mapping("data_vars").items()},
        file_data=file_data,
        import_paths=tuple(path(p) for p in reader.str_list("import_paths")),
        plugins=tuple(reader.str_list("plugins")),
        loaders=tuple(reader.str_list("loaders")),
        extensions=tuple(reader.str_list("extensions")),
        undefined=undefined,
        force=reader.boolean("force", False),
        delimiter=Delimiters(**reader.sub_table("delimiter", default_delims)),
        prefix=Prefix(**reader.sub_table("prefix", Prefix())),
        whitespace=Whitespace(**reader.sub_table("whitespace", Whitespace())),
        internal=Internal(**reader.sub_table("internal", Internal())),
        schema=_optional_path(reader.optional_string("schema", default=None), path),
        manifest=_optional_path(reader.optional_string("manifest", default=None), path),
        lint=reader.mapping("lint"),
        rewritten_patterns=tuple(
            reader.str_list("rewritten_patterns", default=list(DEFAULT_REWRITTEN_PATTERNS))
        ),
    )
    _check_delimiters(reader, settings.delimiter)
    if settings.manifest is not None and (not settings.manifest.name or settings.manifest.is_dir()):
        reader.problem(
            f"'manifest' names a directory ({reader.table.get('manifest')!r}); it must name a "
            'file, e.g. manifest = ".makeflux-manifest.json"'
        )
    reader.reject_unknown()
    reader.raise_problems()
    return settings


def _check_delimiters(reader: _TableReader, delimiters: Delimiters) -> None:
    """Delimiters Jinja cannot tell apart, refused here rather than by an assertion inside it."""
    values = {f.name: getattr(delimiters, f.name) for f in fields(delimiters)}
    for name, value in values.items():
        if not value.strip():
            reader.problem(f"[{reader.flavor}.delimiter] {name} is empty; give it a delimiter")
    starts = ["block_start", "variable_start", "comment_start"]
    for index, first in enumerate(starts):
        for second in starts[index + 1 :]:
            if values[first] and values[first] == values[second]:
                reader.problem(
                    f"[{reader.flavor}.delimiter] {first} and {second} are both "
                    f"{values[first]!r}; Jinja needs the block, variable and comment start "
                    "delimiters to differ"
                )


# makejinja keys that change nothing makeflux writes; accepted so existing files load.
_IGNORED_MAKEJINJA_KEYS = frozenset({"exec_pre", "exec_post", "clean", "quiet"})
# Keys the later pipeline stages read; only makeflux.toml knows them.
_MAKEFLUX_ONLY_KEYS = frozenset({"schema", "manifest", "lint", "rewritten_patterns"})


class _TableReader:
    """Reads typed values from a TOML table and collects every problem, not just the first."""

    def __init__(self, table: Mapping[str, Any], where: str, flavor: str) -> None:
        self.table = table
        self.where = where
        self.flavor = flavor
        self.seen: set[str] = set()
        self.problems: list[Problem] = []

    def problem(self, message: str) -> None:
        self.problems.append(Problem(message, self.where))

    def _get(self, key: str) -> Any:
        self.seen.add(key)
        if self.flavor == "makejinja" and key in _MAKEFLUX_ONLY_KEYS:
            return None
        return self.table.get(key)

    def string(self, key: str, *, default: str | None = None, required: bool = False) -> str:
        value = self._get(key)
        if value is None:
            if required:
                self.problem(f"missing required key '{key}' in [{self.flavor}]")
            return default or ""
        if not isinstance(value, str):
            self.problem(f"'{key}' must be a string, got {type(value).__name__}")
            return default or ""
        return value

    def optional_string(self, key: str, *, default: str | None) -> str | None:
        if key not in self.table:
            self.seen.add(key)
            return default
        return self.string(key, default=default) or None

    def str_list(self, key: str, *, default: list[str] | None = None, required: bool = False):
        value = self._get(key)
        if value is None:
            if required:
                self.problem(f"missing required key '{key}' in [{self.flavor}]")
            return list(default or [])
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(f"'{key}' must be a list of strings")
            return list(default or [])
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(f"'{key}' must be true or false, got {value!r}")
            return default
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        value = self._get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(f"'{key}' must be a table")
            return {}
        return dict(value)

    def sub_table(self, key: str, defaults: Any) -> dict[str, Any]:
        values = {f.name: getattr(defaults, f.name) for f in fields(defaults)}
        given = self.mapping(key)
        for name, value in given.items():
            if name not in values:
                self.problem(
                    f"unknown key '{name}' in [{self.flavor}.{key}]; "
                    f"known keys: {', '.join(values)}"
                )
                continue
            expected = type(values[name]) if values[name] is not None else str
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                self.problem(f"'{key}.{name}' must be {expected.__name__}, got {value!r}")
                continue
            values[name] = value
        return values

    def reject_unknown(self) -> None:
        for key in self.table:
            if key in self.seen or key in _IGNORED_MAKEJINJA_KEYS:
                continue
            if self.flavor == "makeflux" and key in _MAKEFLUX_ONLY_KEYS:
                continue
            self.problem(f"unknown key '{key}' in [{self.flavor}]; check its spelling")

    def raise_problems(self) -> None:
        if self.problems:
            raise SettingsError(self.problems)


def _as_str(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _optional_path(value: str | None, resolve) -> Path | None:
    return resolve(value) if value else None


def _toml_error_line(exc: tomllib.TOMLDecodeError) -> int | None:
    lineno = getattr(exc, "lineno", None)
    if lineno:
        return int(lineno)
    text = str(exc)
    marker = "(at line "
    if marker in text:
        try:
            return int(text.split(marker, 1)[1].split(",", 1)[0])
        except ValueError:
            return None
    return None


def _toml_error_text(exc: tomllib.TOMLDecodeError) -> str:
    return str(exc).split(" (at line", 1)[0].removesuffix(" (at end of document)")
