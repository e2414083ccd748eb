"""Compiled templates kept between runs, so an unchanged template is never compiled twice.

Compiling is most of the cost of a render (lexing, parsing and generating Python for every
template); executing the compiled code is cheap. This cache stores each template's code object
in the user's cache directory, one file per template:

    $MAKEFLUX_CACHE_DIR  (else $XDG_CACHE_HOME/makeflux, else ~/.cache/makeflux)
      code/<environment fingerprint>/<hash of template name and path>

A file is used only when the template's source is byte for byte the one it was compiled from,
and the directory it sits in is named after everything else compiling depends on: the Jinja and
Python versions, delimiters and whitespace settings, extensions, and the filters, tests and
policies the compiler consults or constant-folds with (including the source of the modules that
define them, so editing a plugin invalidates what it touched). Files are written to a temporary
name and renamed, so concurrent runs never see half a file; a file that fails its checksum or
does not load is ignored and rewritten. The cache is an optimisation only: any error reading or
writing it falls back to compiling.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import marshal
import os
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jinja2 is imported on first use: the CLI imports this module early
    import jinja2
    from jinja2.bccache import Bucket

CACHE_DIR_ENV = "MAKEFLUX_CACHE_DIR"
# Bump when the file layout or anything the fingerprint should cover changes.
FORMAT = b"makeflux-compiled-template-1\n"
_DIGEST_SIZE = 16
# Compiled templates held in memory during a run (the partials that many templates include).
MEMORY_ENTRIES = 128

_enabled = True


def set_enabled(enabled: bool) -> None:
    """Turn the persistent cache on or off for this process (`makeflux --no-cache`)."""
    global _enabled
    _enabled = enabled


def is_enabled() -> bool:
    return _enabled


def cache_root() -> Path | None:
    """Where makeflux keeps its cache; None when no directory can be determined."""
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


class CompiledTemplateCache:
    """A Jinja bytecode cache (jinja2.BytecodeCache's interface): in memory for this run, and on
    disk when `directory` is given."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        # key → (source checksum, code), most recently used last: a partial included by every
        # template is loaded once a run, while code used once does not pile up in memory.
        self._memory: OrderedDict[str, tuple[str, CodeType]] = OrderedDict()
        self._directory_ready = False
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
        if self.directory is None:
            return
        try:
            blob = (self.directory / bucket.key).read_bytes()
        except OSError:
            return
        code = decode(blob, bucket.checksum)
        if code is not None:
            bucket.code = code
            self._remember(bucket.key, bucket.checksum, code)
            self.disk_hits += 1

    def dump_bytecode(self, bucket: Bucket) -> None:
        assert bucket.code is not None
        self.compiled += 1
        self._remember(bucket.key, bucket.checksum, bucket.code)
        if self.directory is None:
            return
        # A read-only or full cache directory only costs speed.
        with contextlib.suppress(OSError, ValueError):
            self._write(bucket.key, encode(bucket.checksum, bucket.code))

    def _remember(self, key: str, checksum: str, code: CodeType) -> None:
        self._memory[key] = (checksum, code)
        self._memory.move_to_end(key)
        if len(self._memory) > MEMORY_ENTRIES:
            self._memory.popitem(last=False)

    def _write(self, key: str, blob: bytes) -> None:
        assert self.directory is not None
        if not self._directory_ready:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._directory_ready = True
        fd, tmp_name = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fp:
                fp.write(blob)
            os.replace(tmp_name, self.directory / key)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise


def encode(checksum: str, code: CodeType) -> bytes:
    """The file format: FORMAT, source checksum line, payload digest, marshalled code."""
    payload = marshal.dumps(code)
    digest = hashlib.blake2b(payload, digest_size=_DIGEST_SIZE).digest()
    return FORMAT + checksum.encode("ascii") + b"\n" + digest + payload


def decode(blob: bytes, checksum: str) -> CodeType | None:
    """The code in `blob` if it was compiled from the source with `checksum` and is intact."""
    header = FORMAT + checksum.encode("ascii") + b"\n"
    if not blob.startswith(header):
        return None
    start = len(header) + _DIGEST_SIZE
    digest, payload = blob[len(header) : start], blob[start:]
    # Check the payload before unmarshalling: marshal is not safe against damaged data.
    if hashlib.blake2b(payload, digest_size=_DIGEST_SIZE).digest() != digest:
        return None
    try:
        code = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def for_environment(env: jinja2.Environment) -> CompiledTemplateCache:
    """The cache to attach to `env` (after plugins have added their filters and extensions)."""
    root = cache_root() if _enabled else None
    if root is None:
        return CompiledTemplateCache(None)
    return CompiledTemplateCache(root / "code" / _fingerprint_of(env))


def memoize(
    env: jinja2.Environment, kind: str, name: str, source: str, compute: Callable[[], Any]
) -> Any:
    """compute() for one template's source, kept across runs like its compiled code.

    For facts derived from the source alone (lint's parse of every template, say) under `env`'s
    compile settings: `compute` must return JSON data that depends on nothing else (not on the
    data, the working directory or display paths). `kind` names the fact and its version.
    """
    root = cache_root() if _enabled else None
    if root is None:
        return compute()
    checksum = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    key = hashlib.sha256(f"{kind}\0{name}".encode()).hexdigest()[:40]
    path = root / "facts" / _fingerprint_of(env) / key
    try:
        stored = json.loads(path.read_bytes())
        if stored.get("kind") == kind and stored.get("checksum") == checksum:
            return stored["value"]
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        pass  # missing or damaged: computed and rewritten below
    value = compute()
    blob = json.dumps({"kind": kind, "checksum": checksum, "value": value}).encode()
    with contextlib.suppress(OSError, ValueError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fp:
                fp.write(blob)
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
    return value


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
    # The code generator looks filters and tests up (how to call them), and the optimiser calls
    # them on constant arguments, baking their results into the code.
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
