"""The code `@dataclass` generates for makeflux's classes, compiled once and kept in the cache.

The dataclass decorator writes the source of each method it adds (__init__, __repr__, __eq__,
__hash__, and __setattr__ / __delattr__ for a frozen class) and compiles it with exec() every
time the class is defined, so on every start: ~0.5 ms a class, ~8 ms of a warm render for the
classes makeflux defines. While kept() is active, the dataclasses module has an exec() that
runs kept code instead: the code object compile() makes from that exact text (file name
"<string>", no inherited compiler flags: what dataclasses' own exec() gives).

Only the console script uses it (makeflux.console), and only while makeflux's own modules are
imported: a plugin's or a library caller's dataclasses always meet the standard library as it
is. It is a contact with the standard library's internals, checked when this module loads
(FITS: dataclasses calls exec by its global name and has no __future__ flags); where it does
not fit, kept() does nothing.

The cache file is keyed on the Python build (its bytecode magic number and cache tag); inside,
each entry is keyed on the whole source text, so a changed class, or another Python's
dataclasses, only adds entries, and nothing but the code of the same text is ever run. A file
that is damaged or not what this module wrote is ignored (and replaced at exit).
"""

from __future__ import annotations
import __future__

import atexit
import builtins
import contextlib
import dataclasses
import hashlib
import importlib.util
import marshal
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import CodeType, FunctionType
from typing import Any

# Entries kept at most: past this the file starts again from what this run used (class texts
# only change when makeflux or Python does, so this is only reached across many upgrades).
MAX_ENTRIES = 4000
_HEADER = b"makeflux-classcode-1\n"
_DIGEST = 32

_kept: dict[str, CodeType] = {}
_used: set[str] = set()
_added = False
_enabled = False
_path: str | None = None


def memo_path(root: Path) -> str:
    """The cache file for this Python build under the cache directory `root`."""
    build = f"{sys.implementation.cache_tag}-{importlib.util.MAGIC_NUMBER.hex()}"
    return os.path.join(root, "classcode", f"{build}.marshal")


def _fits() -> bool:
    """dataclasses compiles generated methods with a call to `exec` looked up in its module's
    globals (a name our exec can shadow), and compiles without __future__ flags."""
    calls_exec = any(
        "exec" in value.__code__.co_names
        for value in vars(dataclasses).values()
        if isinstance(value, FunctionType)
    ) or any(
        "exec" in member.__code__.co_names
        for value in vars(dataclasses).values()
        if isinstance(value, type) and value.__module__ == dataclasses.__name__
        for member in vars(value).values()
        if isinstance(member, FunctionType)
    )
    has_future = any(isinstance(v, __future__._Feature) for v in vars(dataclasses).values())
    return calls_exec and not has_future and "exec" not in vars(dataclasses)


FITS = _fits()


def _read(path: str) -> dict[str, CodeType]:
    try:
        with open(path, "rb") as fp:
            blob = fp.read()
    except OSError:
        return {}
    start = len(_HEADER)
    head, digest, payload = blob[:start], blob[start : start + _DIGEST], blob[start + _DIGEST :]
    if head != _HEADER or hashlib.sha256(payload).digest() != digest:
        return {}
    try:
        kept = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return {}
    if type(kept) is not dict or not all(
        type(k) is str and type(v) is CodeType for k, v in kept.items()
    ):
        return {}
    return kept


def _exec(source: Any, globals: Any = None, locals: Any = None, /, **kwargs: Any) -> None:
    """exec() for the dataclasses module: a source text runs as its kept compiled code."""
    global _added
    if type(source) is str and not kwargs:
        code = _kept.get(source)
        if code is None:
            code = compile(source, "<string>", "exec", dont_inherit=True)
            _kept[source] = code
            _added = True
        _used.add(source)
        source = code
    builtins.exec(source, globals, locals, **kwargs)


def _save() -> None:
    """At exit: write the file again when this run compiled a text it did not hold."""
    if not _added or _path is None:
        return
    from makeflux import cache

    kept = _kept
    if len(kept) > MAX_ENTRIES:
        kept = {text: code for text, code in kept.items() if text in _used}
    payload = marshal.dumps(kept)
    cache.write_entry(_path, _HEADER + hashlib.sha256(payload).digest() + payload)


def enable(root: Path | None) -> None:
    """Read the kept code from the cache directory `root` (None: --no-cache, nothing kept),
    and write what this process adds when it exits. Once per process; kept() is a no-op
    before."""
    global _path, _enabled
    if _enabled or not FITS:
        return
    _enabled = True
    if root is None:
        return
    _path = memo_path(root)
    _kept.update(_read(_path))
    if _kept:
        from makeflux import cache

        cache.mark_used(Path(_path))  # read now: the daily pruning keeps it
    atexit.register(_save)


@contextlib.contextmanager
def kept() -> Iterator[None]:
    """While active (after enable()), classes made with @dataclass run kept code."""
    if not _enabled or vars(dataclasses).get("exec") is _exec:
        yield
        return
    dataclasses.exec = _exec  # type: ignore[attr-defined]  # shadows the builtin there only
    try:
        yield
    finally:
        del dataclasses.exec  # type: ignore[attr-defined]
