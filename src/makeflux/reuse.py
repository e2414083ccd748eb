"""A template's last output, reused when nothing it reads has changed.

Compiled code is cached already (makeflux.cache); on a warm run, executing every template again
is most of what is left. A template's output is a function of its source, the sources of the
templates it includes, imports or extends, the values of the variables it reads, the filters
and tests it calls, and the environment's settings. When all of those are Jinja's own or plain
data, the output is kept (in the cache directory, one file per project) under a key made of
all of them, and the next run with the same key takes it instead of rendering.

A template is always rendered when its output may depend on something the key cannot see: a
filter, test or global from a plugin (a plugin may read files), `env` (the process
environment), Jinja's `random` filter or `lipsum`, a template name computed at render time, a
filter or test named by a computed string (`map(name)`), a value that is not plain data, or an
extension that is not Jinja's own. Failures are never kept.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import pickle
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import jinja2
from jinja2 import nodes
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_NAMESPACE, DEFAULT_TESTS

from makeflux import cache, jinja_internals
from makeflux.settings import Settings

FORMAT = b"makeflux-outputs-3"
# Jinja's own, but not a function of their input.
_UNSTABLE_FILTERS = frozenset({"random"})
_UNSTABLE_GLOBALS = frozenset({"lipsum"})
# Builtin filters and tests that call another filter or test by name.
_BY_NAME = frozenset({"map", "select", "reject", "selectattr", "rejectattr"})
_PLAIN_SCALARS = (str, int, float, bool, type(None), bytes, datetime.date, datetime.time)
# Methods templates call on data that change nothing. Any other method call (`append`,
# `update`, `pop` ...) may change data that other templates then read: the order templates
# render in would matter, so nothing is reused in that project.
_READ_ONLY_METHODS = frozenset(
    {
        "items", "keys", "values", "get", "copy", "count", "index", "find", "rfind",
        "split", "rsplit", "splitlines", "partition", "rpartition", "join", "format",
        "startswith", "endswith", "strip", "lstrip", "rstrip", "lower", "upper", "title",
        "capitalize", "casefold", "replace", "zfill", "center", "ljust", "rjust",
        "isdigit", "isalpha", "isalnum", "islower", "isupper", "isspace", "encode", "decode",
        "removeprefix", "removesuffix", "isoformat", "strftime", "bit_length", "is_integer",
    }
)  # fmt: skip


class _NotReusable(Exception):
    """This template's output may depend on something the key cannot see."""


@dataclass(frozen=True, slots=True)
class Analysis:
    """What a template's source says it depends on (refs None: a name computed at render).

    `reads` are the context values it reads: a name, or a name and the constant keys it is
    only ever read through (`apps.grafana.replicas` reads ("apps", "grafana", "replicas")), so
    a change elsewhere in `apps` leaves its output as it was.

    Kept as strings, decoded when used, in slots: a render of thousands of templates holds
    every analysis at once, and tuples of tuples (or an instance dict each) cost several times
    the memory."""

    encoded_reads: str
    encoded_filters: str
    encoded_tests: str
    encoded_refs: str | None
    mutates: bool = False  # calls a method that may change shared data

    @classmethod
    def of(
        cls,
        reads: Iterable[tuple[str | int, ...]],
        filters: Iterable[str],
        tests: Iterable[str],
        refs: Iterable[str] | None,
        mutates: bool = False,
    ) -> Analysis:
        return cls(
            _RECORD.join(_UNIT.join(_key(k) for k in path) for path in reads),
            _UNIT.join(sorted(filters)),
            _UNIT.join(sorted(tests)),
            None if refs is None else _UNIT.join(sorted(refs)),
            mutates,
        )

    @property
    def reads(self) -> list[tuple[str | int, ...]]:
        if not self.encoded_reads:
            return []
        return [
            tuple(int(k[1:]) if k[0] == "i" else k[1:] for k in path.split(_UNIT))
            for path in self.encoded_reads.split(_RECORD)
        ]

    @property
    def filters(self) -> list[str]:
        return self.encoded_filters.split(_UNIT) if self.encoded_filters else []

    @property
    def tests(self) -> list[str]:
        return self.encoded_tests.split(_UNIT) if self.encoded_tests else []

    @property
    def refs(self) -> list[str] | None:
        if self.encoded_refs is None:
            return None
        return self.encoded_refs.split(_UNIT) if self.encoded_refs else []


_UNIT, _RECORD = "\x1f", "\x1e"  # between keys of a path (names), between paths


def _key(key: str | int) -> str:
    return f"i{key}" if isinstance(key, int) else f"s{key}"


def analyse(env: jinja2.Environment, name: str, source: str) -> Analysis | None:
    """The dependencies of one template; None when it does not parse or compile (rendering
    reports it)."""
    from makeflux.jinja_internals import MakefluxEnvironment, context_names

    if not isinstance(env, MakefluxEnvironment):
        return None
    try:
        ast = env.parse(source, name)
        return analysis_of(ast, context_names(env, ast))
    except jinja2.TemplateError:
        return None


_ANALYSED = (
    nodes.Filter,
    nodes.Test,
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
    nodes.Extends,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Name,
    nodes.Call,
)


def analysis_of(ast: nodes.Template, free: Iterable[str]) -> Analysis:
    """What a parsed template depends on, given the names its code resolves from the context.

    One walk over the tree (this runs for every template a cold render compiles)."""
    filters: set[str] = set()
    tests: set[str] = set()
    refs: set[str] | None = set()
    chains: list[nodes.Getattr | nodes.Getitem] = []
    names: list[nodes.Name] = []
    calls: list[nodes.Call] = []
    imported: set[str] = set()
    for node in ast.find_all(_ANALYSED):
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            chains.append(node)
        elif isinstance(node, nodes.Name):
            names.append(node)
        elif isinstance(node, nodes.Filter | nodes.Test):
            (filters if isinstance(node, nodes.Filter) else tests).add(node.name)
            if node.name in _BY_NAME:
                named = _constant_names(node) if isinstance(node, nodes.Filter) else None
                if named is None:
                    refs = None  # a filter or test named at render time: no key covers it
                else:
                    filters |= named
                    tests |= named
        elif isinstance(node, nodes.Call):
            calls.append(node)
        else:  # include, import, from-import, extends
            if isinstance(node, nodes.Import):
                imported.add(node.target)
            target = getattr(node, "template", None)
            targets = target.items if isinstance(target, nodes.List | nodes.Tuple) else [target]
            if not all(isinstance(t, nodes.Const) and isinstance(t.value, str) for t in targets):
                refs = None
            elif refs is not None:
                refs.update(t.value for t in targets if isinstance(t, nodes.Const))
    # `m.name(...)` on a template imported `as m` calls its macro, not a method of data.
    mutates = any(
        isinstance(call.node, nodes.Getattr)
        and call.node.attr not in _READ_ONLY_METHODS
        and not (isinstance(call.node.node, nodes.Name) and call.node.node.name in imported)
        for call in calls
    )
    return Analysis.of(_reads(chains, names, set(free)), filters, tests, refs, mutates)


# Attributes of the values data holds: `apps.items` is a method, not a key.
_VALUE_ATTRIBUTES = frozenset(dir(dict)) | frozenset(dir(list)) | frozenset(dir(str))


def _reads(
    chains: list[nodes.Getattr | nodes.Getitem], names: list[nodes.Name], free: set[str]
) -> tuple[tuple[str | int, ...], ...]:
    """Each free name with the constant key paths it is read through; the bare name when it
    is used any other way (iterated, passed to a filter, indexed by a variable ...)."""
    inner = {id(c.node) for c in chains if isinstance(c.node, nodes.Getattr | nodes.Getitem)}
    covered: set[int] = set()
    reads: set[tuple[str | int, ...]] = set()
    for chain in chains:
        if id(chain) in inner:
            continue  # part of a longer chain, seen from its outermost node
        keys: list[str | int] = []  # outermost first
        node: nodes.Node = chain
        while isinstance(node, nodes.Getattr | nodes.Getitem):
            if isinstance(node, nodes.Getattr):
                keys.append(node.attr)
            elif isinstance(node.arg, nodes.Const) and type(node.arg.value) in (str, int):
                keys.append(node.arg.value)
            else:
                keys = []  # indexed by a computed value: only what lies before it is known
            node = node.node
        if not (isinstance(node, nodes.Name) and node.ctx == "load" and node.name in free):
            continue
        path: list[str | int] = [node.name]
        for key in reversed(keys):
            if isinstance(key, str) and (key in _VALUE_ATTRIBUTES or not key.isprintable()):
                break  # a method or attribute of the value (or an odd key): the whole of it
            path.append(key)
        covered.add(id(node))
        reads.add(tuple(path))
    for name in names:
        if name.ctx == "load" and name.name in free and id(name) not in covered:
            reads.add((name.name,))
    reads.update((name,) for name in free if not any(r[0] == name for r in reads))
    return tuple(sorted(reads, key=lambda r: tuple(map(str, r))))


def _constant_names(node: nodes.Filter) -> set[str] | None:
    """The string constants among a by-name filter's arguments; None if one is computed."""
    names: set[str] = set()
    for argument in [*node.args, *(kw.value for kw in node.kwargs)]:
        if isinstance(argument, nodes.Const):
            if isinstance(argument.value, str):
                names.add(argument.value)
        else:
            return None
    return names


# What this process learned while rendering, sent back from forked workers: the analysis of
# every template it compiled (from the parse compiling does anyway, via
# MakefluxEnvironment.parse_hook: a cold run learns every dependency without parsing twice), and
# the checksum of every template text it loaded (via RecordingLoader.on_source).
_captured: dict[tuple[str, bytes], Analysis] = {}
_loaded: dict[str, bytes] = {}
_CONFLICT = b"changed while rendering"


def capture(env: jinja2.Environment, on: bool = True) -> None:
    """Record what `env` compiles and loads from now on (until called with on=False)."""
    if hasattr(env, "parse_hook"):
        env.parse_hook = _record_parse if on else None
    loader = env.loader
    if loader is not None and hasattr(loader, "on_source"):
        loader.on_source = _record_load if on else None


def _record_parse(name: str | None, text: str, ast: nodes.Template, free: set[str]) -> None:
    if name is not None:
        _captured[(name, _checksum(text))] = analysis_of(ast, free)


def _record_load(name: str, text: str) -> None:
    checksum = _checksum(text)
    if _loaded.setdefault(name, checksum) != checksum:
        _loaded[name] = _CONFLICT


def drain() -> tuple[dict[tuple[str, bytes], Analysis], dict[str, bytes]]:
    """What this process recorded since the last call."""
    drained = (dict(_captured), dict(_loaded))
    _captured.clear()
    _loaded.clear()
    return drained


def dump(directory: Path) -> None:
    """Append what this process recorded since the last call to its file in `directory`, to
    be read back (dumped) once the workers are gone. While the work is spread over processes,
    each calls it after every chunk (parallel.fork_map's report), so no process holds (and
    pickles) all its records at once: at the end of a 30x bench render that cost a worker
    7 MB, at the moment the render's memory peaked. A record that cannot be written only
    costs reuse: see Reuse.rendered_as_keyed."""
    recorded = drain()
    if not any(recorded):
        return
    with (
        contextlib.suppress(OSError),
        open(directory / f"{os.getpid()}.records", "ab") as fp,
    ):
        pickle.dump(recorded, fp, pickle.HIGHEST_PROTOCOL)


def dumped(
    directory: Path,
) -> Iterator[tuple[dict[tuple[str, bytes], Analysis], dict[str, bytes]]]:
    """What the processes wrote with dump(), one record at a time. A file cut short (a worker
    died while writing) gives the records before the cut: each record stands alone."""
    for path in sorted(directory.glob("*.records")):
        with contextlib.suppress(OSError), open(path, "rb") as fp:
            while True:
                try:
                    record = pickle.load(fp)  # written by this run's own workers, just now
                except Exception:  # EOFError at the end; anything else is a cut-short record
                    break
                yield record


def _checksum(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class _Unknown(Exception):
    """A template's analysis is not known yet (it was edited, or this is the first run)."""


class Reuse:
    """The outputs kept for one project under one environment, and this run's keys."""

    def __init__(self, env: jinja2.Environment, settings: Settings, store: str) -> None:
        self.env = env
        self.store_path = store
        base = hashlib.sha256(FORMAT + b"\0" + _code_version())
        for part in (cache.environment_key(env), repr(settings), repr(env.undefined)):
            base.update(part.encode("utf-8", "surrogatepass") + b"\0")
        self.base = base
        self.entries: dict[str, tuple[bytes, Any]] = {}  # template name → (key, outcome)
        self.analyses: dict[tuple[str, bytes], Analysis | None] = {}
        self.changed = False
        self.reused = 0
        self._checksums: dict[str, bytes | None] = {}
        self._digests: dict[int, bytes] = {}  # id of a mapping or list in the data → digest
        # id of a scalar in the data → (the scalar, its digest): held, so its id stays its own
        self._scalar_digests: dict[int, tuple[Any, bytes]] = {}
        self._used: set[str] = set()  # templates whose analysis (of today's text) was used
        self.parse_allowed = False  # before rendering, only known analyses are used
        self._rendered_from: dict[str, bytes] = {}  # template → checksum of the text rendered
        self._load()

    # --- the store -------------------------------------------------------------------------

    # The store is a pickle followed by the sha256 of it, written and read as a stream: held
    # whole in memory next to the outputs it holds, it would double them at the peak.

    def _load(self) -> None:
        try:
            with open(self.store_path, "rb") as fp:
                if not _intact(fp):
                    return  # damaged: everything renders and the store is written anew
                stored = pickle.load(fp)  # our own file, checked: not untrusted input
        except Exception:  # unreadable or not what save() wrote: everything renders
            return
        try:
            if stored["format"] != FORMAT:
                return
            # Names interned: the store holds each twice and the run's sources once more.
            self.entries = {sys.intern(name): kept for name, kept in stored["entries"].items()}
            self.analyses = {
                (sys.intern(name), checksum): None if analysis is None else _interned(analysis)
                for (name, checksum), analysis in stored["analyses"].items()
            }
        except Exception:
            self.entries, self.analyses = {}, {}

    def save(self) -> None:
        if not self.changed:
            return
        stored = {"format": FORMAT, "entries": self.entries, "analyses": self.analyses}

        def write(fp: BinaryIO) -> None:
            hashing = _HashingWriter(fp)
            pickler = pickle.Pickler(hashing, pickle.HIGHEST_PROTOCOL)
            # No memo: it would hold an entry for every object written (MBs on a large tree);
            # nothing here is shared or cyclic.
            pickler.fast = True
            pickler.dump(stored)
            fp.write(hashing.digest.digest())

        cache.write_entry(self.store_path, write)

    def lookup(self, name: str, key: bytes) -> tuple[bool, Any]:
        kept = self.entries.get(name)
        if kept is not None and kept[0] == key:
            return True, kept[1]
        return False, None

    def keep(self, name: str, key: bytes, outcome: Any) -> None:
        self.entries[name] = (key, outcome)
        self.changed = True

    def forget_others(self, names: Iterable[str]) -> None:
        """Drop entries of templates that no longer exist (the store would only grow)."""
        wanted = set(names)
        for name in [n for n in self.entries if n not in wanted]:
            del self.entries[name]
            self.changed = True
        used, checksums = self._used, self._checksums
        for entry in [e for e in self.analyses if e[0] not in used or checksums[e[0]] != e[1]]:
            del self.analyses[entry]  # a template edited since, or no longer reached
            self.changed = True

    # --- keys ------------------------------------------------------------------------------

    def key_for(self, name: str, file_data: Mapping[str, Any]) -> bytes | None:
        """The key of `name`'s output this run; None when it must render (see the module)."""
        try:
            digest = self.base.copy()
            digest.update(name.encode("utf-8", "surrogatepass") + b"\0")
            reads: set[tuple[str | int, ...]] = set()
            for ref, (checksum, analysis) in sorted(self._closure(name).items()):
                digest.update(ref.encode("utf-8", "surrogatepass") + b"\0" + checksum)
                if analysis is not None:
                    self._check_callables(analysis)
                    reads.update(analysis.reads)
            for path in sorted(reads, key=lambda r: tuple(map(str, r))):
                digest.update(repr(path).encode("utf-8", "surrogatepass") + b"\0")
                digest.update(self._value_token(path, file_data))
        except _NotReusable:
            return None
        return digest.digest()

    def any_mutates(self, names: Iterable[str]) -> bool:
        """True when a template of the project (or one it reaches) may change shared data."""
        seen: set[str] = set()
        for name in names:
            for _, (_, analysis) in self._reach(name, seen):
                if analysis is not None and analysis.mutates:
                    return True
        return False

    def _reach(
        self, name: str, seen: set[str] | None = None
    ) -> Iterator[tuple[str, tuple[bytes, Analysis | None]]]:
        """`name` and every template it reaches by a constant name (once each, given `seen`),
        with its checksum and dependencies; b"missing" for a template not found."""
        seen = set() if seen is None else seen
        pending = [name]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            checksum = self._checksum(current)
            if checksum is None:
                yield current, (b"missing", None)  # rendering says so; never kept then
                continue
            analysis = self._analysis(current, checksum)
            yield current, (checksum, analysis)
            if analysis is not None:
                pending.extend(analysis.refs or ())

    def _closure(self, name: str) -> dict[str, tuple[bytes, Analysis | None]]:
        """What _reach gives, refusing a template that names another at render time."""
        found = dict(self._reach(name))
        for current, (_, analysis) in found.items():
            if analysis is not None and analysis.refs is None:
                raise _NotReusable(current)
        return found

    def _checksum(self, name: str) -> bytes | None:
        """The checksum of template `name`'s text as read now (kept for the run, not the text:
        all of a large tree's templates would be held at once); None when there is none."""
        if name not in self._checksums:
            text = self._text(name)
            self._checksums[name] = None if text is None else _checksum(text)
        return self._checksums[name]

    def _text(self, name: str) -> str | None:
        loader = self.env.loader
        try:
            if loader is None:
                raise jinja2.TemplateNotFound(name)
            text, _, _ = loader.get_source(self.env, name)
        except jinja2.TemplateNotFound:
            return None
        except (OSError, UnicodeDecodeError):
            raise _NotReusable(name) from None
        return text

    def _analysis(self, name: str, checksum: bytes) -> Analysis | None:
        entry = (name, checksum)  # checksum is _checksum(name): forget_others relies on it
        self._used.add(name)
        if entry not in self.analyses:
            if not self.parse_allowed:
                raise _Unknown(name)
            text = self._text(name)
            if text is None or _checksum(text) != checksum:
                raise _NotReusable(name)  # edited while this run read it
            found = analyse(self.env, name, text)
            self.analyses[entry] = None if found is None else _interned(found)
            self.changed = True
        return self.analyses[entry]

    def learn(self, recorded: tuple[dict[tuple[str, bytes], Analysis], dict[str, bytes]]) -> None:
        """Take what a process rendering templates recorded (see drain)."""
        captured, loaded = recorded
        for entry, analysis in captured.items():
            if self.analyses.get(entry) != analysis:
                self.analyses[entry] = _interned(analysis)
                self.changed = True
        for name, checksum in loaded.items():
            if self._rendered_from.setdefault(name, checksum) != checksum:
                self._rendered_from[name] = _CONFLICT

    def rendered_as_keyed(self, name: str) -> bool:
        """True when every template `name` reaches was rendered from the text its key was made
        of (not edited while this run read and rendered it)."""
        if name not in self._rendered_from:
            return False  # no report of what it was rendered from (a worker's was lost)
        try:
            closure = self._closure(name)
        except (_NotReusable, _Unknown):
            return False
        return all(
            self._rendered_from.get(ref, checksum) == checksum
            for ref, (checksum, _) in closure.items()
        )

    def _check_callables(self, analysis: Analysis) -> None:
        for name in analysis.filters:
            function = self.env.filters.get(name)
            if function is not None and (
                function is not DEFAULT_FILTERS.get(name) or name in _UNSTABLE_FILTERS
            ):
                raise _NotReusable(name)
        for name in analysis.tests:
            function = self.env.tests.get(name)
            if function is not None and function is not DEFAULT_TESTS.get(name):
                raise _NotReusable(name)

    def _value_token(self, path: tuple[str | int, ...], file_data: Mapping[str, Any]) -> bytes:
        """What the value at `path` is this run, as bytes for the key."""
        variable = str(path[0])
        if variable in file_data:
            return b"f" + _path_digest(file_data[variable], path[1:], {})
        globals_ = self.env.globals
        if variable not in globals_:
            return b"u"  # undefined: the undefined policy (in the base key) decides
        value = globals_[variable]
        if variable in DEFAULT_NAMESPACE and value is DEFAULT_NAMESPACE[variable]:
            if variable in _UNSTABLE_GLOBALS:
                raise _NotReusable(variable)
            return b"j"
        return b"d" + _path_digest(value, path[1:], self._digests, self._scalar_digests)


def _path_digest(
    value: Any,
    keys: tuple[str | int, ...],
    memo: dict[int, bytes],
    scalars: dict[int, tuple[Any, bytes]] | None = None,
) -> bytes:
    """A digest of what `keys` lead to in `value`: as far as they go into plain mappings and
    lists, then all of what is there (the rest of the path is in the template's source). A key
    a mapping or list does not hold reads as undefined: the rest of it does not matter (keys
    naming a method or attribute of mappings, lists or strings never get here, see _reads)."""
    depth = 0
    for key in keys:
        if type(value) is dict:
            if key not in value:  # undefined, whatever else the mapping holds
                return depth.to_bytes(2, "big") + b"absent"
        elif type(value) is list:
            if type(key) is not int or not -len(value) <= key < len(value):
                return depth.to_bytes(2, "big") + b"absent"
        else:
            break  # an attribute of a scalar (a date's year ...): depends on all of it
        value = value[key]
        depth += 1
    if type(value) in (dict, list):  # read by many templates, costly to digest: once a run
        digest = memo.get(id(value))
        if digest is None:
            digest = memo[id(value)] = _plain_digest(value)
        return depth.to_bytes(2, "big") + digest
    if scalars is None:
        return depth.to_bytes(2, "big") + _plain_digest(value)
    kept = scalars.get(id(value))  # many templates read the same few values
    if kept is None or kept[0] is not value:
        kept = scalars[id(value)] = (value, _plain_digest(value))
    return depth.to_bytes(2, "big") + kept[1]


class _HashingWriter:
    """A binary file that also hashes what is written to it."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.fp.write(data)


def _intact(fp: BinaryIO) -> bool:
    """True when the file's last 32 bytes are the sha256 of the rest; leaves it at the start."""
    size = os.fstat(fp.fileno()).st_size
    if size < 32:
        return False
    digest = hashlib.sha256()
    remaining = size - 32
    while remaining:
        chunk = fp.read(min(remaining, 1 << 20))
        if not chunk:
            return False
        digest.update(chunk)
        remaining -= len(chunk)
    intact = fp.read(32) == digest.digest()
    fp.seek(0)
    return intact


def _interned(analysis: Analysis) -> Analysis:
    """`analysis` with its strings shared with every other template's that are the same."""
    return Analysis(
        sys.intern(analysis.encoded_reads),
        sys.intern(analysis.encoded_filters),
        sys.intern(analysis.encoded_tests),
        None if analysis.encoded_refs is None else sys.intern(analysis.encoded_refs),
        analysis.mutates,
    )


def _code_version() -> bytes:
    """The source of the modules that turn a template into its kept output (rendering, this
    analysis, the environment): a makeflux that renders differently never takes old outputs."""
    from makeflux import environment, render

    digest = hashlib.sha256()
    for module in (environment, render, sys.modules[__name__]):
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.digest()


def _plain_digest(value: Any) -> bytes:
    """A digest of plain data (what YAML, JSON and TOML give); anything else is not reusable."""
    _require_plain(value, depth=0)
    try:
        return hashlib.sha256(pickle.dumps(value, pickle.HIGHEST_PROTOCOL)).digest()
    except Exception:
        raise _NotReusable(repr(type(value))) from None


def _require_plain(value: Any, depth: int) -> None:
    if depth > 200:
        raise _NotReusable("nested too deeply")
    kind = type(value)
    if kind in (dict,):
        for key, item in value.items():
            _require_plain(key, depth + 1)
            _require_plain(item, depth + 1)
    elif kind in (list, tuple):
        for item in value:
            _require_plain(item, depth + 1)
    elif not isinstance(value, _PLAIN_SCALARS) or kind not in _PLAIN_TYPES:
        raise _NotReusable(repr(kind))  # os.environ, a plugin's object or function


_PLAIN_TYPES = frozenset(_PLAIN_SCALARS) | {datetime.datetime}


def for_run(env: jinja2.Environment, settings: Settings, scope: str) -> Reuse | None:
    """The Reuse of this run, or None (no cache, async rendering, a foreign extension, a Jinja
    whose internals differ from those the hooks were written for)."""
    root = settings.cache_dir
    if root is None or env.is_async or not jinja_internals.REUSE_HOOKS_FIT:
        return None
    if any(not type(ext).__module__.startswith("jinja2.") for ext in env.extensions.values()):
        return None  # an extension may do anything at render time
    project = hashlib.sha256(scope.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    fingerprint = cache.environment_key(env)[:32]
    return Reuse(env, settings, os.fspath(root / "outputs" / f"{fingerprint}-{project}"))


def render_reusing(
    reuse: Reuse | None,
    names: list[str],
    file_data: Callable[[str], Mapping[str, Any]],
    render: Callable[[list[int]], list[Any]],
    failed: Callable[[Any], bool],
) -> list[Any]:
    """Outcomes for `names` in order: kept ones where the key matches, the rest from
    render(indexes), which are then kept (unless they failed, or a template may change shared
    data, or a template changed while rendering)."""
    everything = list(range(len(names)))
    if reuse is None:
        return render(everything)
    try:
        known = not reuse.any_mutates(names)
    except _Unknown:  # a template not seen before: render all, learning from the compile
        known = False
    except _NotReusable:  # a template that cannot be read: rendering reports it
        return render(everything)
    outcomes: list[Any] = [None] * len(names)
    keys: dict[int, bytes] = {}
    todo = everything
    if known:
        todo = []
        for index, name in enumerate(names):
            key = reuse.key_for(name, file_data(name))
            if key is not None:
                found, outcome = reuse.lookup(name, key)
                if found:
                    outcomes[index] = outcome
                    reuse.reused += 1
                    continue
                keys[index] = key
            todo.append(index)
    for index, outcome in zip(todo, render(todo), strict=True):
        outcomes[index] = outcome
    if not known:
        reuse.parse_allowed = True  # for what compiling did not show (code-cache hits)
        try:
            if reuse.any_mutates(names):
                return outcomes
        except _NotReusable:
            return outcomes
        for index in todo:
            key = reuse.key_for(names[index], file_data(names[index]))
            if key is not None:
                keys[index] = key
    for index, key in keys.items():
        if not failed(outcomes[index]) and reuse.rendered_as_keyed(names[index]):
            reuse.keep(names[index], key, outcomes[index])
    reuse.forget_others(names)
    reuse.save()
    return outcomes
