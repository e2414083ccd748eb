"""Compiled templates kept between runs, so an unchanged template is never compiled twice.

Compiling is most of the cost of a render (lexing, parsing and generating Python for every
template); executing the compiled code is cheap. This cache keeps each template's code object
in the user's cache directory, in a few pack files rather than one file per template (creating
hundreds of small files costs more than the rest of the cache's work):

    $MAKEFLUX_CACHE_DIR  (else $XDG_CACHE_HOME/makeflux, else ~/.cache/makeflux)
      code/<environment fingerprint>/<hash of the project's inputs>/seg-<time>-<pid>.mfc

A run reads the index of every pack and reads one template's code only when it is needed;
what it compiles goes into one new pack, written when the run ends (each forked worker writes
its own), and older packs lose to newer ones for the same template. When packs pile up, a run
merges them into one. An entry is used only when the template's source is byte for byte the
one it was compiled from, and the directory it sits in is named after everything else
compiling depends on: the Jinja and Python versions, delimiters and whitespace settings,
extensions, and the filters, tests and policies the compiler consults (including the source
of the modules that define them, so editing a plugin invalidates what it touched). No plugin
filter's result is ever part of the code: MakefluxEnvironment leaves them to render time.
Packs are written under a temporary name and renamed, so concurrent runs never see half a pack;
a pack or entry that fails its checksum is ignored, and its templates are compiled and written
again. The cache is an optimisation only: any error reading or writing it falls back to
compiling.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import inspect
import json
import marshal
import os
import pickle
import shutil
import struct
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # jinja2 is imported on first use: the CLI imports this module early
    import jinja2
    from jinja2.bccache import Bucket

CACHE_DIR_ENV = "MAKEFLUX_CACHE_DIR"
# Bump when the pack layout, or anything the fingerprint should cover, or what compiled code
# may contain changes (4: no plugin filter results folded into the code).
FORMAT = b"makeflux-compiled-templates-4\n"
_FOOTER = struct.Struct("<QQ16s8s")  # index offset, index length, index digest, end marker
_END = b"mfpack3\n"
_DIGEST_SIZE = 16
# The index is a table of fixed-size records, one per template: key, source checksum, payload
# offset, length and digest, all raw bytes (hex strings in tuples in a dict cost ~450 bytes an
# entry, in each process, for the whole run; ten thousand templates made that 5 MB).
_KEY_SIZE, _CHECKSUM_SIZE = 20, 32
_RECORD = struct.Struct(f"<{_KEY_SIZE}s{_CHECKSUM_SIZE}sQI{_DIGEST_SIZE}s")
PACK_PREFIX, PACK_SUFFIX = "seg-", ".mfc"
# More packs than this are merged into one. A run that compiles writes one, plus one per forked
# worker (a worker retires every few seconds: makeflux.parallel), so a cold render of a large
# tree writes several.
MAX_PACKS = 16
# A pack being written that is older than this was left by a run that died: removed on merge.
STALE_SECONDS = 3600
# Compiled templates held in memory during a run: the partials many templates include stay at
# the recent end; a template rendered once is not kept (it would only cost memory).
MEMORY_ENTRIES = 16


def cache_root() -> Path | None:
    """Where makeflux keeps its cache by default (Settings.cache_dir starts as this); None when
    no directory can be determined. Every function below takes the directory a run uses,
    None meaning no cache (`makeflux --no-cache`)."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "makeflux"
    try:
        return Path.home() / ".cache" / "makeflux"
    except RuntimeError:  # no home directory to be found
        return None


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=_DIGEST_SIZE).digest()


# (key, source checksum, offset, length, payload digest), as stored in a pack's index
PackEntry = tuple[bytes, bytes, int, int, bytes]


class Pack:
    """One pack file, open for reading entries by offset."""

    def __init__(self, fd: int, table: bytes) -> None:
        self.fd, self.table = fd, table

    def entry(self, number: int) -> PackEntry:
        return _RECORD.unpack_from(self.table, number * _RECORD.size)  # type: ignore[return-value]

    def keys(self) -> list[bytes]:
        size = _RECORD.size
        return [self.table[at : at + _KEY_SIZE] for at in range(0, len(self.table), size)]

    @classmethod
    def open(cls, path: Path) -> Pack | None:
        """The pack at `path`, or None when it is missing, foreign or damaged."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            size = os.fstat(fd).st_size
            if size < len(FORMAT) + _FOOTER.size:
                raise ValueError("too short")
            offset, length, digest, end = _FOOTER.unpack(
                os.pread(fd, _FOOTER.size, size - _FOOTER.size)
            )
            if end != _END or offset + length + _FOOTER.size != size:
                raise ValueError("not a pack")
            table = os.pread(fd, length, offset)
            if _digest(table) != digest or os.pread(fd, len(FORMAT), 0) != FORMAT:
                raise ValueError("damaged index")
            if len(table) % _RECORD.size:
                raise ValueError("damaged index")
        except (OSError, ValueError, struct.error):
            os.close(fd)
            return None
        return cls(fd, table)

    def read(self, entry: PackEntry) -> bytes | None:
        """The payload of one entry, or None when it is unreadable or fails its checksum."""
        if self.fd < 0:
            return None
        try:
            _, _, offset, length, digest = entry
            payload = os.pread(self.fd, length, offset)
        except (OSError, ValueError, TypeError, OverflowError):
            return None
        return payload if len(payload) == length and _digest(payload) == digest else None

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        self.close()


class _PackWriter:
    """A new pack, filled entry by entry and put in place (renamed) by commit().

    Writes go to explicit offsets (pwrite), never through a buffer or a shared file position,
    so a forked worker that inherits this writer cannot disturb it; the worker starts its own.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pid = os.getpid()
        fd, name = tempfile.mkstemp(prefix=".seg-", suffix=".tmp", dir=directory)
        self.fd, self.tmp = fd, Path(name)
        self.offset = 0
        self.table = bytearray()  # the index: one _RECORD per entry
        self._write(FORMAT)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, self.offset)
            self.offset += written
            view = view[written:]

    def __len__(self) -> int:
        return len(self.table) // _RECORD.size

    def add(self, key: bytes, checksum: bytes, payload: bytes) -> None:
        """Append one entry; a key added again later wins (readers keep the last record)."""
        start = self.offset
        self._write(payload)
        self.table += _RECORD.pack(key, checksum, start, len(payload), _digest(payload))

    def commit(self) -> None:
        table = bytes(self.table)
        index_offset = self.offset
        self._write(table + _FOOTER.pack(index_offset, len(table), _digest(table), _END))
        os.close(self.fd)
        self.fd = -1
        final = self.directory / f"{PACK_PREFIX}{time.time_ns():020d}-{self.pid}{PACK_SUFFIX}"
        os.replace(self.tmp, final)

    def discard(self) -> None:
        """Give up this pack (in a forked worker: only let go of the parent's file)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        if self.pid == os.getpid():
            with contextlib.suppress(OSError):
                self.tmp.unlink()


class CompiledTemplateCache:
    """A Jinja bytecode cache (jinja2.BytecodeCache's interface): in memory for this run, and in
    pack files in `directory` when it is given. Call finish() when the run ends (it is also
    called at exit) to write what was compiled.

    Not a subclass of jinja2.BytecodeCache: it overrides every method, and subclassing would
    import jinja2 with this module, which the CLI imports before it knows it will render (a
    no-change run never needs jinja2). tests/unit/test_cache.py checks the interface still
    matches."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        # key → (source checksum, code), most recently used last.
        self._memory: OrderedDict[str, tuple[str, CodeType]] = OrderedDict()
        self._packs: list[Pack] | None = None  # opened on first use, oldest first
        self._index: dict[bytes, int] = {}  # key → where its newest entry is (_newest_entries)
        self._writer: _PackWriter | None = None
        self._unwritable = False
        self.disk_hits = 0
        self.compiled = 0

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        # The filename is part of the key because the compiled code carries it (tracebacks and
        # error locations point into the template file).
        return hashlib.sha256(f"{name}\0{filename}".encode()).hexdigest()[:40]

    def get_source_checksum(self, source: str) -> str:
        return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()

    def get_bucket(
        self, environment: jinja2.Environment, name: str, filename: str | None, source: str
    ) -> Bucket:
        from jinja2.bccache import Bucket

        bucket = Bucket(
            environment, self.get_cache_key(name, filename), self.get_source_checksum(source)
        )
        self.load_bytecode(bucket)
        return bucket

    def set_bucket(self, bucket: Bucket) -> None:
        self.dump_bytecode(bucket)

    def clear(self) -> None:
        self._memory.clear()

    def load_bytecode(self, bucket: Bucket) -> None:
        held = self._memory.get(bucket.key)
        if held is not None and held[0] == bucket.checksum:
            bucket.code = held[1]
            self._memory.move_to_end(bucket.key)
            return
        found = self._lookup(bucket.key)
        if found is None or found[1][1] != bytes.fromhex(bucket.checksum):
            return
        payload = found[0].read(found[1])
        if payload is None:
            return
        try:
            code = marshal.loads(payload)  # checked against its digest first: marshal is unsafe
        except (EOFError, ValueError, TypeError):
            return
        if isinstance(code, CodeType):
            bucket.code = code
            self._remember(bucket.key, bucket.checksum, code)
            self.disk_hits += 1

    def dump_bytecode(self, bucket: Bucket) -> None:
        assert bucket.code is not None
        self.compiled += 1
        self._remember(bucket.key, bucket.checksum, bucket.code)
        from makeflux.jinja_internals import plugin_filters_wait_for_render

        if not plugin_filters_wait_for_render():
            return  # this Jinja may fold a plugin's result into the code: keep none on disk
        writer = self._writer_for_this_process()
        if writer is None:
            return
        # A read-only or full cache directory only costs speed.
        try:
            key, checksum = bytes.fromhex(bucket.key), bytes.fromhex(bucket.checksum)
            writer.add(key, checksum, marshal.dumps(bucket.code))
        except (OSError, ValueError):
            writer.discard()
            self._writer, self._unwritable = None, True

    def finish(self) -> None:
        """Put what this process compiled in place as a new pack; merge packs that piled up.

        Also lets go of the packs it read (they are opened again if the run goes on)."""
        for pack in self._packs or ():
            pack.close()
        self._packs, self._index = None, {}
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if writer.pid != os.getpid():  # inherited from the process that forked this one
            writer.discard()
            return
        atexit.unregister(self.finish)
        try:
            if len(writer):
                writer.commit()
            else:
                writer.discard()
        except (OSError, ValueError):
            writer.discard()
            return
        with contextlib.suppress(OSError, ValueError):
            self._merge_if_piled_up()

    def _remember(self, key: str, checksum: str, code: CodeType) -> None:
        self._memory[key] = (checksum, code)
        self._memory.move_to_end(key)
        if len(self._memory) > MEMORY_ENTRIES:
            self._memory.popitem(last=False)

    def _lookup(self, key: str) -> tuple[Pack, PackEntry] | None:
        if self._packs is None:
            self._packs = _open_packs(pack_paths(self.directory))
            self._index = _newest_entries(self._packs)
            if self._packs and self.directory is not None:
                mark_used(self.directory)
        where = self._index.get(bytes.fromhex(key))
        return None if where is None else _entry_at(self._packs, where)

    def _writer_for_this_process(self) -> _PackWriter | None:
        writer = self._writer
        if writer is not None and writer.pid != os.getpid():
            writer.discard()  # inherited from the process that forked this one
            writer = self._writer = None
        if writer is None and self.directory is not None and not self._unwritable:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                writer = self._writer = _PackWriter(self.directory)
            except OSError:
                self._unwritable = True
            else:
                atexit.register(self.finish)  # in case the run never reaches finish()
        return writer

    def _merge_if_piled_up(self) -> None:
        """Merge every pack into one when there are more than MAX_PACKS of them."""
        assert self.directory is not None
        paths = pack_paths(self.directory)
        if len(paths) <= MAX_PACKS:
            return
        packs = _open_packs(paths)
        try:
            merged = _PackWriter(self.directory)
            try:
                for where in _newest_entries(packs).values():
                    pack, entry = _entry_at(packs, where)
                    payload = pack.read(entry)
                    if payload is not None:
                        merged.add(entry[0], entry[1], payload)
                merged.commit()
            except BaseException:
                merged.discard()
                raise
        finally:
            for pack in packs:
                pack.close()
        for path in paths:  # including damaged packs, which nothing could read
            with contextlib.suppress(OSError):
                path.unlink()
        now = time.time()
        for leftover in self.directory.glob(".seg-*.tmp"):
            with contextlib.suppress(OSError):
                if now - leftover.stat().st_mtime > STALE_SECONDS:
                    leftover.unlink()


def _open_packs(paths: list[Path]) -> list[Pack]:
    """The readable packs among `paths`, in the same order (damaged ones are left out)."""
    return [pack for pack in map(Pack.open, paths) if pack is not None]


def _newest_entries(packs: list[Pack]) -> dict[bytes, int]:
    """Every key → where its newest entry is: (pack number << 32) | record number.

    `packs` is oldest first, and within a pack a later record wins, so later ones overwrite.
    """
    newest: dict[bytes, int] = {}
    for number, pack in enumerate(packs):
        base = number << 32
        newest.update({key: base | at for at, key in enumerate(pack.keys())})
    return newest


def _entry_at(packs: list[Pack], where: int) -> tuple[Pack, PackEntry]:
    """The pack and entry a value of _newest_entries points at."""
    pack = packs[where >> 32]
    return pack, pack.entry(where & 0xFFFFFFFF)


def pack_paths(directory: Path | None) -> list[Path]:
    """The packs in `directory`, oldest first (their names start with the time they were made)."""
    if directory is None:
        return []
    try:
        names = [
            entry.name
            for entry in os.scandir(directory)
            if entry.name.startswith(PACK_PREFIX) and entry.name.endswith(PACK_SUFFIX)
        ]
    except OSError:
        return []
    return [directory / name for name in sorted(names)]


def for_environment(
    root: Path | None, env: jinja2.Environment, scope: str = ""
) -> CompiledTemplateCache:
    """The cache to attach to `env` (after plugins have added their filters and extensions).

    `scope` names the project (its inputs), so that each project reads only its own packs.
    """
    if root is None:
        return CompiledTemplateCache(None)
    prune_stale(root)
    project = hashlib.sha256(scope.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return CompiledTemplateCache(root / "code" / _fingerprint_of(env) / project)


def memoize(
    root: Path | None,
    env: jinja2.Environment,
    kind: str,
    name: str,
    source: str,
    compute: Callable[[], Any],
) -> Any:
    """compute() for one template's source, kept across runs like its compiled code.

    For facts derived from the source alone (lint's parse of every template, say) under `env`'s
    compile settings: `compute` must return JSON data that depends on nothing else (not on the
    data, the working directory or display paths). `kind` names the fact and its version.
    """
    if root is None:
        return compute()
    checksum = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    return remember(root, _fingerprint_of(env), kind, name, checksum, compute)


def remember(
    root: Path | None,
    scope: str,
    kind: str,
    name: str,
    checksum: str,
    compute: Callable[[], Any],
) -> Any:
    """compute()'s JSON result for `name`, kept across runs while `checksum` (a digest of
    everything the result depends on) stays the same; `scope` names a directory of such facts."""
    if root is None:
        return compute()
    key = hashlib.sha256(f"{kind}\0{name}".encode()).hexdigest()[:40]
    path = root / "facts" / scope / key
    try:
        stored = json.loads(path.read_bytes())
        if stored.get("kind") == kind and stored.get("checksum") == checksum:
            _mark_used_once(path.parent)
            return stored["value"]
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        pass  # missing or damaged: computed and rewritten below
    value = compute()
    with contextlib.suppress(ValueError):  # a value JSON cannot hold: not kept
        write_entry(path, json.dumps({"kind": kind, "checksum": checksum, "value": value}))
    return value


def write_entry(path: Path | str, blob: str | bytes | Callable[[BinaryIO], None]) -> None:
    """Put `blob` at `path` whole (temp file, then rename); a cache that cannot be written only
    costs speed. `blob` may be a function that writes to the open file (no copy in memory)."""
    path = Path(path)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fp:
                if callable(blob):
                    blob(fp)
                else:
                    fp.write(blob.encode() if isinstance(blob, str) else blob)
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise


def environment_key(env: jinja2.Environment) -> str:
    """What compiling under `env` depends on, as a hex digest (see environment_fingerprint)."""
    return _fingerprint_of(env)


def _fingerprint_of(env: jinja2.Environment) -> str:
    """environment_fingerprint, computed again only when filters, tests or extensions change."""
    shape = (len(env.filters), len(env.tests), len(env.extensions), len(env.policies))
    cached = getattr(env, "_makeflux_fingerprint", None)
    if cached is None or cached[0] != shape:
        cached = (shape, environment_fingerprint(env))
        env._makeflux_fingerprint = cached  # type: ignore[attr-defined]
    return cached[1]


# Environment attributes the lexer, parser or code generator read.
_COMPILE_SETTINGS = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "optimized",
    "is_async",
    "sandboxed",
)


def environment_fingerprint(env: jinja2.Environment) -> str:
    """A hash of everything besides the template source that compiled code depends on."""
    import jinja2

    describe = _Describer()
    parts: list[str] = [
        FORMAT.decode(),
        jinja2.__version__,
        sys.version,
        str(sys.implementation.cache_tag),
    ]
    parts += [f"{name}={getattr(env, name, None)!r}" for name in _COMPILE_SETTINGS]
    parts.append(f"autoescape={describe(env.autoescape)}")
    parts.append(f"finalize={describe(env.finalize)}")
    parts.append(f"undefined={describe(env.undefined)}")
    parts += [f"extension {k}={describe(type(e))}" for k, e in sorted(env.extensions.items())]
    # The code generator looks filters and tests up (how to call them), and folds Jinja's own
    # into the code when their arguments are constants.
    parts += [f"filter {name}={describe(f)}" for name, f in sorted(env.filters.items())]
    parts += [f"test {name}={describe(t)}" for name, t in sorted(env.tests.items())]
    parts += [f"policy {key}={describe(v)}" for key, v in sorted(env.policies.items())]
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


class _Describer:
    """Stable text for a value: repr for data, module + name + module source hash for code."""

    def __init__(self) -> None:
        import jinja2

        self._jinja_dir = str(Path(jinja2.__file__).parent)
        self._file_hashes: dict[str, str] = {}

    def __call__(self, value: Any) -> str:
        if value is None or isinstance(value, bool | int | float | str | bytes):
            return repr(value)
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k!r}: {self(v)}" for k, v in sorted(value.items())) + "}"
        if isinstance(value, list | tuple):
            return "[" + ", ".join(self(v) for v in value) + "]"
        if callable(value):
            target = inspect.unwrap(value) if inspect.isfunction(value) else value
            module = getattr(target, "__module__", None) or ""
            name = getattr(target, "__qualname__", None) or type(target).__qualname__
            pass_arg = getattr(value, "jinja_pass_arg", None)
            return f"{module}.{name} pass={pass_arg} src={self._module_hash(module)}"
        return f"<{type(value).__module__}.{type(value).__qualname__}>"

    def _module_hash(self, module_name: str) -> str:
        module = sys.modules.get(module_name)
        file = getattr(module, "__file__", None)
        if not file or file.startswith(self._jinja_dir):
            return "-"  # builtins, and Jinja itself (covered by its version)
        if file not in self._file_hashes:
            try:
                content = Path(file).read_bytes()
            except OSError:
                content = file.encode()
            self._file_hashes[file] = hashlib.sha256(content).hexdigest()[:16]
        return self._file_hashes[file]


def memoize_content(
    root: Path | None, area: str, version: bytes, content: bytes, compute: Callable[[], Any]
) -> Any:
    """compute() for a file's `content`, kept across runs (pickled) under `area`.

    For values that depend on the bytes alone (a data file as the YAML reader reads it) and on
    the code that computes them, which `version` must name. A damaged entry is computed again.
    """
    if root is None:
        return compute()
    key = hashlib.sha256(version + b"\0" + content).hexdigest()
    path = root / area / key
    try:
        blob = path.read_bytes()
        if blob[:_DIGEST_SIZE] == _digest(blob[_DIGEST_SIZE:]):
            value = pickle.loads(blob[_DIGEST_SIZE:])  # our own file, checked: not untrusted
            mark_used(path)
            return value
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
        pass  # missing or damaged: computed and rewritten below
    value = compute()
    try:
        payload = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except Exception:  # not picklable: nothing to keep
        return value
    write_entry(path, _digest(payload) + payload)
    return value


# --- housekeeping: what the cache holds, and removing what is no longer used ----------------------

# Every entry is keyed on what produced it (versions, settings, sources), so a change leaves the
# old entries behind, never to be read again: they are removed once unused this long.
STALE_AFTER_SECONDS = 30 * 24 * 3600
PRUNE_EVERY_SECONDS = 24 * 3600
_PRUNE_STAMP = "last-prune"
_marked: set[Path] = set()


def cache_units(root: Path) -> list[Path]:
    """The cache's units, each used and removed as a whole: a project's compiled templates under
    one environment (code/<fingerprint>/<project>), the template facts of one environment
    (facts/<fingerprint>), one validation verdict (valid/<key>), one data file as read
    (data/<key>), one project's kept outputs (outputs/<fingerprint>-<project>), one `-o DIR`
    manifest and the dataclass code of one Python build (classcode/<build>.marshal)."""
    units: list[Path] = []
    for area, depth in (
        ("code", 2),
        ("facts", 1),
        ("valid", 1),
        ("data", 1),
        ("outputs", 1),
        ("manifests", 1),
        ("classcode", 1),
    ):
        level = [root / area]
        for _ in range(depth):
            level = [child for parent in level for child in _children(parent)]
        units += level
    return sorted(units)


def _children(directory: Path) -> list[Path]:
    try:
        return [directory / name for name in os.listdir(directory)]
    except OSError:
        return []


def unit_size(unit: Path) -> tuple[int, int]:
    """(files, bytes) in `unit`, a file or a directory."""
    if not unit.is_dir() or unit.is_symlink():
        with contextlib.suppress(OSError):
            return 1, unit.lstat().st_size
        return 0, 0
    files = size = 0
    for directory, _, names in os.walk(unit):
        for name in names:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(directory, name)).st_size
                files += 1
    return files, size


def clean(root: Path, older_than: float | None = None) -> tuple[int, int]:
    """Remove the units of the cache at `root` (only those unused for `older_than` seconds, when
    given); return the (files, bytes) removed. Files makeflux did not put there are left."""
    now = time.time()
    removed_files = removed_bytes = 0
    for unit in cache_units(root):
        try:
            age = now - unit.lstat().st_mtime
        except OSError:
            continue
        if older_than is not None and age < older_than:
            continue
        files, size = unit_size(unit)
        try:
            if unit.is_dir() and not unit.is_symlink():
                shutil.rmtree(unit)
            else:
                unit.unlink()
        except OSError:
            continue  # in use by another run, or not ours to remove: left for next time
        removed_files += files
        removed_bytes += size
    for fingerprint in _children(root / "code"):
        with contextlib.suppress(OSError):
            fingerprint.rmdir()  # only when no project is left under it
    return removed_files, removed_bytes


def prune_stale(root: Path) -> None:
    """Remove units unused for STALE_AFTER_SECONDS, at most once a day (a stamp file says when)."""
    stamp = root / _PRUNE_STAMP
    try:
        if time.time() - stamp.stat().st_mtime < PRUNE_EVERY_SECONDS:
            return
    except FileNotFoundError:
        pass
    except OSError:
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    except OSError:
        return  # a read-only cache: nothing is added to it either
    clean(root, older_than=STALE_AFTER_SECONDS)


def mark_used(unit: Path) -> None:
    """Note that `unit` was read now (its mtime), so pruning keeps it."""
    with contextlib.suppress(OSError):
        os.utime(unit)


def _mark_used_once(unit: Path) -> None:
    if unit not in _marked:
        _marked.add(unit)
        mark_used(unit)
