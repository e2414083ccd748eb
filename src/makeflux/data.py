"""Data files + data_vars + --set overrides → one mapping, remembering where each key came from."""

from __future__ import annotations

import io
import json
import pickle
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from makeflux.errors import DataError, Problem, display_path, kind_of, with_article
from makeflux.settings import Settings

# PyYAML (~12 ms to import) and the schema's variables load only when a run needs them: a data
# file read from the cache needs neither, so a warm render does not import them.
if TYPE_CHECKING:
    import yaml

    from makeflux.cluster_schema.variables import Variable


@dataclass
class LoadedData:
    """The render context before validation, plus where every top-level key came from."""

    values: dict[str, Any]
    # top-level key → the data file that set it last (for error line numbers)
    origins: dict[str, Path] = field(default_factory=dict)
    # the --set overrides as given, dotted key → raw text
    overrides: dict[str, str] = field(default_factory=dict)
    files: tuple[Path, ...] = ()


_LOADER: type[yaml.SafeLoader] | None = None


def _unique_key_loader() -> type[yaml.SafeLoader]:
    """PyYAML's safe loader, except that a key given twice is an error, not a silent overwrite
    (the class is made on first use, so that importing this module does not import PyYAML)."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class _UniqueKeyLoader(yaml.SafeLoader):
            pass

        _UniqueKeyLoader.add_constructor(
            yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
        )
        _LOADER = _UniqueKeyLoader
    return _LOADER


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    from makeflux.yamlsource import repeated_keys  # imports PyYAML, which the loader has done

    repeated = next(repeated_keys(loader, node, deep), None)  # the first one is refused
    if repeated is not None:
        import yaml

        key, key_node, first = repeated
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"duplicate key {key!r} (first at line {first}); remove one of them",
            key_node.start_mark,
        )
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=deep)


# Limits that keep a crafted or broken data file from taking the machine down. PyYAML's
# pure-Python reader (the one makejinja uses) reads about 1 MB in 1 to 8 s, so a file over the
# size limit would take minutes; the largest real cluster.yaml files are a few hundred KB.
MAX_DATA_FILE_BYTES = 8 * 1024 * 1024
# YAML aliases share one value, but whatever walks the data (validation, templates) sees every
# copy: a 700-byte "billion laughs" file expands to billions of values.
MAX_EXPANDED_VALUES = 1_000_000
MAX_STRING_CHARS = 1024 * 1024


def _load_yaml(path: Path, content: bytes | None = None) -> dict[str, Any]:
    """The YAML data file at `path` (or its `content`, already read) as one mapping."""
    # PyYAML's pure-Python reader, as makejinja reads data: libyaml's parser is faster but accepts
    # text this one rejects (a tab after `key:`), which makejinja would refuse.
    import yaml

    from makeflux.yamlsource import yaml_error_problem

    try:
        return _read_yaml(path, content)
    except yaml.YAMLError as exc:
        raise DataError(yaml_error_problem(path, exc)) from None
    except RecursionError:
        raise DataError(
            Problem("nested too deeply to read; flatten the deepest lists", display_path(path))
        ) from None


def _read_yaml(path: Path, content: bytes | None = None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    mappings = 0
    with path.open("rb") if content is None else _Named(content, str(path)) as fp:
        for number, document in enumerate(_documents(fp, path), 1):
            if document is None:
                continue
            mappings += 1
            if not isinstance(document, dict):
                raise DataError(
                    Problem(
                        f"document {number} is {with_article(kind_of(document))}, not a mapping; "
                        "data files must hold 'key: value' pairs at the top level",
                        display_path(path),
                    )
                )
            merged |= document
    if not mappings:
        what = "is empty" if _blank(path) else "holds only null ('~'), no settings"
        raise DataError(
            Problem(
                f"the file {what}; add your settings as 'key: value' lines, "
                "or write {} to use every default",
                display_path(path),
            )
        )
    return merged


class _Named(io.BytesIO):
    """Bytes already read, named like the file they came from (PyYAML's errors name it)."""

    def __init__(self, content: bytes, name: str) -> None:
        super().__init__(content)
        self.name = name


def _blank(path: Path) -> bool:
    """Nothing but comments, document markers and white space."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        text = line.split("#", 1)[0].strip()
        if text and text not in ("---", "..."):
            return False
    return True


def _documents(stream: Any, path: Path) -> Iterator[Any]:
    """yaml.load_all with the unique-key loader, refusing a document whose aliases would
    expand past MAX_EXPANDED_VALUES or that holds an oversized string, before building it."""
    loader = _unique_key_loader()(stream)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:  # check_node() said there is one
                _check_size(node, path)
            yield loader.construct_document(node)
    finally:
        loader.dispose()


def _check_size(root: yaml.Node, path: Path) -> None:
    """Count the values a document expands to, each shared (aliased) node counted once per use
    but measured once, so the count itself stays linear in the file."""
    import yaml

    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            if len(node.value) > MAX_STRING_CHARS:
                raise DataError(
                    Problem(
                        f"a value of {len(node.value):,} characters; values over "
                        f"{MAX_STRING_CHARS:,} characters are refused (keep large content in "
                        "its own file and read it from a template)",
                        display_path(path),
                        node.start_mark.line + 1,
                        node.start_mark.column + 1,
                    )
                )
            sizes[key] = 1
            continue
        children = [
            child for item in node.value for child in (item if isinstance(item, tuple) else (item,))
        ]
        if not children_done:
            if key in on_path:
                continue  # a value that contains itself: validation reports it, with its key
            on_path.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        on_path.discard(key)
        total = 1 + sum(sizes.get(id(child), 1) for child in children)
        if total > MAX_EXPANDED_VALUES:
            mark = node.start_mark
            raise DataError(
                Problem(
                    f"YAML aliases (*name) expand this value to over {MAX_EXPANDED_VALUES:,} "
                    "values; write the data out, or use fewer aliases of aliases",
                    display_path(path),
                    mark.line + 1,
                    mark.column + 1,
                )
            )
        sizes[key] = total


_TOML_PLACE = re.compile(r"\s*\(at line (?P<line>\d+), column (?P<column>\d+)\)$")


def _load_toml(path: Path) -> dict[str, Any]:
    import tomllib  # ~3 ms to import: only for a TOML data file

    try:
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            raise DataError(
                Problem(
                    "the file is empty; add your settings as 'key = value' lines",
                    display_path(path),
                )
            )
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib puts the place in the message: "... (at line 3, column 5)".
        message, line, column = str(exc), None, None
        place = _TOML_PLACE.search(message)
        if place:
            message = message[: place.start()].rstrip()
            line, column = int(place["line"]), int(place["column"])
        problem = Problem(f"invalid TOML: {message}", display_path(path), line, column)
        raise DataError(problem) from None


class _DuplicateJsonKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: JSON, like YAML, would keep only the last."""
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise _DuplicateJsonKey(key)
        value[key] = item
    return value


def _load_json(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        value = json.loads(text, object_pairs_hook=_unique_json_object)
    except json.JSONDecodeError as exc:
        raise DataError(
            Problem(f"invalid JSON: {exc.msg}", display_path(path), exc.lineno, exc.colno)
        ) from None
    except _DuplicateJsonKey as exc:
        # The lines, when the key is written just twice (else other objects may use it too).
        spelled = re.compile(re.escape(json.dumps(exc.key)) + r"\s*:")
        lines = [text.count("\n", 0, match.start()) + 1 for match in spelled.finditer(text)]
        first, line = lines if len(lines) == 2 else (None, None)
        said = f" (first at line {first})" if first else ""
        message = f"duplicate key {exc.key!r}{said}; remove one of them"
        raise DataError(Problem(message, display_path(path), line)) from None
    if not isinstance(value, dict):
        raise DataError(
            Problem(
                f"top level is {with_article(kind_of(value))}, not an object", display_path(path)
            )
        )
    return value


DATA_LOADERS: dict[str, Callable[[Path], dict[str, Any]]] = {
    ".yaml": _load_yaml,
    ".yml": _load_yaml,
    ".toml": _load_toml,
    ".json": _load_json,
}


def collect_data_files(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, and the data files (by suffix) below a named directory (sorted).

    A named file must be a data file; a named directory must hold at least one. Input that
    reads as nothing would otherwise render a tree without the user's values, and the next
    render would prune what they configured."""
    files: list[Path] = []
    known = ", ".join(DATA_LOADERS)
    for path in paths:
        if path.is_dir():
            found = [
                f
                for f in sorted(path.glob("**/*"))
                if not f.name.startswith(".") and f.suffix in DATA_LOADERS and f.is_file()
            ]
            if not found:
                raise DataError(
                    Problem(
                        f"the data directory holds no data files ({known}); add one or fix "
                        "'data' in the settings",
                        display_path(path),
                    )
                )
            files.extend(found)
        elif path.is_file():
            if path.suffix not in DATA_LOADERS:
                raise DataError(
                    Problem(
                        f"not a data file makeflux reads (the name must end in {known}); "
                        "rename it or fix 'data' in the settings",
                        display_path(path),
                    )
                )
            files.append(path)
        elif path.name == "-" and not path.exists():
            raise DataError(
                "--data -: makeflux does not read data from standard input; save it to a "
                "file and pass that"
            )
        elif path.exists():
            raise DataError(
                Problem(
                    "not a regular file (a pipe, socket or device); makeflux reads data from "
                    "files: save it to one and name that",
                    display_path(path),
                )
            )
        else:
            raise DataError(
                Problem(
                    "data file not found; create it or fix 'data' in the settings",
                    display_path(path),
                )
            )
    return files


def _load_yaml_remembered(path: Path, cache_dir: Path | None) -> dict[str, Any]:
    """_load_yaml, with what it read kept in the cache by the file's content: PyYAML's
    pure-Python reader takes ~50 ms for a few hundred keys, unpickling them well under one.

    The file is read once; those bytes are both the key and what is parsed. Only a file that
    read without error is kept; the key covers the bytes, this module's source (its loader and
    limits) and PyYAML's version (its __init__.py)."""
    from makeflux import cache

    content = path.read_bytes()
    if not content:
        return _load_yaml(path, content)  # the error, every time
    loaded: dict[str, Any] = cache.memoize_content(
        cache_dir, "data", _reader_version(), content, lambda: _load_yaml(path, content)
    )
    return loaded


_READER_VERSION: bytes | None = None


def _reader_version() -> bytes:
    global _READER_VERSION
    if _READER_VERSION is None:
        # PyYAML's __init__.py (it holds __version__), read without importing PyYAML.
        import importlib.util

        spec = importlib.util.find_spec("yaml")
        origin = spec.origin if spec is not None else None
        pyyaml = Path(origin).read_bytes() if origin else b"no PyYAML"
        source = Path(__file__).read_bytes()
        _READER_VERSION = b"yaml\0" + pyyaml + b"\0" + source
    return _READER_VERSION


def load_file(path: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    """One data file as a mapping; unsupported suffixes are the caller's concern. A YAML
    file's parse is kept in `cache_dir` (Settings.cache_dir) by its content."""
    loader = DATA_LOADERS[path.suffix]
    try:
        size = path.stat().st_size
        if size > MAX_DATA_FILE_BYTES:
            raise DataError(
                Problem(
                    f"{size / 1_000_000:.1f} MB; data files over "
                    f"{MAX_DATA_FILE_BYTES // (1024 * 1024)} MiB are refused (reading one "
                    "would take minutes); split it, or keep large content in files the "
                    "templates read",
                    display_path(path),
                )
            )
        with path.open("rb") as fp:
            start = fp.read(4)
        if start.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise UnicodeDecodeError("utf-8", start, 0, 2, "a UTF-16 or UTF-32 byte-order mark")
        if loader is _load_yaml:
            return _load_yaml_remembered(path, cache_dir)
        return loader(path)
    except UnicodeDecodeError:
        raise DataError(
            Problem("not UTF-8 text; save the file as UTF-8", display_path(path))
        ) from None
    except OSError as exc:
        raise DataError(Problem(f"cannot read: {exc.strerror}", display_path(path))) from None


def set_dotted(data: MutableMapping[str, Any], dotted_key: str, value: Any) -> None:
    """data['a']['b'] = value for 'a.b', creating mappings on the way (makejinja's rule)."""
    here = data
    keys = dotted_key.split(".")
    for key in keys[:-1]:
        nxt = here.setdefault(key, {})
        if not isinstance(nxt, MutableMapping):
            raise DataError(
                f"--set {dotted_key}: '{key}' is {with_article(kind_of(nxt))}, not a mapping; "
                "set it whole or pick another key"
            )
        here = nxt
    here[keys[-1]] = value


_NULL_SPELLINGS = ("", "~", "null", "Null", "NULL")


def parse_assignment(
    text: str, variables: Mapping[str, Variable], command: str = "--set"
) -> tuple[str, Any]:
    """'KEY=VALUE' as `--set` and `makeflux set` both read it: VALUE as YAML (true, 90, 7d,
    [a, b] get their natural types), except that where the schema says KEY is a string, the text
    stays as written (cluster_name=1234 is a name, not a number). Text YAML cannot read, or reads
    as nothing ('#ops' is a comment to YAML), is kept as written too."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise DataError(
            f"{command} {text!r}: expected KEY=VALUE, e.g. {command} tracing_enabled=true"
        )
    try:
        import yaml

        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if value is None and raw.strip() not in _NULL_SPELLINGS:
        value = raw
    declared = variables.get(key)
    kinds = declared.types if declared is not None else set()
    if "string" in kinds and not isinstance(value, str):
        wanted = (
            (value is None and "null" in kinds)
            or (isinstance(value, list) and "array" in kinds)
            or (isinstance(value, dict) and "object" in kinds)
            or (isinstance(value, bool) and "boolean" in kinds)
            or (_is_number(value) and kinds & {"integer", "number"})
        )
        if not wanted:
            value = raw
    return key, value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load_data(
    settings: Settings,
    overrides: Iterable[str] = (),
    data_files: Iterable[Path] | None = None,
) -> LoadedData:
    """Load settings.data (or `data_files`), then data_vars, then --set overrides."""
    values: dict[str, Any] = {}
    origins: dict[str, Path] = {}
    files = collect_data_files(settings.data if data_files is None else data_files)
    for path in files:
        loaded = load_file(path, settings.cache_dir)
        values |= loaded
        for key in loaded:
            origins[key] = path
        del loaded
    for key, value in settings.data_vars.items():
        set_dotted(values, key, value)
    parsed: dict[str, str] = {}
    overrides = tuple(overrides)
    variables: Mapping[str, Variable] = {}
    if overrides:
        from makeflux.cluster_schema.variables import declared_variables

        variables = declared_variables(settings)
    for text in overrides:
        key, value = parse_assignment(text, variables)
        set_dotted(values, key, value)
        parsed[key] = text.partition("=")[2]
    packed = _packed(values, origins)
    if packed is not None:
        del values, origins  # before unpacking: the reader's memory is free to go back whole
        values, origins = pickle.loads(packed)
    return LoadedData(values=values, origins=origins, overrides=parsed, files=tuple(files))


def _packed(values: dict[str, Any], origins: dict[str, Path]) -> bytes | None:
    """The data, serialized to be rebuilt in one go (a few ms for a large cluster.yaml).

    The YAML reader leaves the values scattered among the memory of its freed tokens and nodes.
    A forked render worker copies every memory page whose objects it touches, so scattered data
    costs several times its size there (10 MB on the 30x bench tree); a copy made at once, once
    the original is gone, packs it into few pages. Shared references and cycles (YAML aliases)
    are kept, as pickle keeps them.
    """
    try:
        return pickle.dumps((values, origins), pickle.HIGHEST_PROTOCOL)
    except Exception:  # nothing a data file or --set gives is unpicklable; if it were: as is
        return None
