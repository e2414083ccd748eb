"""The code `@dataclass` generates for a class's methods, compiled once and kept in the cache.

The dataclass decorator writes the source of each method it adds (__init__, __repr__, __eq__,
__hash__, and __setattr__ / __delattr__ for a frozen class) and compiles it with exec() every
time the class is defined, so on every start: ~0.5 ms a class, ~10 ms of a warm render for the
classes makeflux defines. Importing this module (the CLI does, first) gives the dataclasses
module an exec() that runs kept code instead: the code object compile() makes from that exact
text (file name "<string>", no inherited compiler flags: what dataclasses' own exec() gives).

The cache file is keyed on the Python build (its bytecode magic number and cache tag); inside,
each entry is keyed on the whole source text, so a changed class, or another Python's
dataclasses, only adds entries, and nothing but the code of the same text is ever run. A file
that is damaged or not what this module wrote is ignored (and replaced at exit).
"""

from __future__ import annotations

import atexit
import builtins
import dataclasses
import hashlib
import importlib.util
import marshal
import os
import sys
from pathlib import Path
from types import CodeType
from typing import Any

# Entries kept at most: past this the file starts again from what this run used (class texts
# only change when makeflux or Python does, so this is only reached across many upgrades).
MAX_ENTRIES = 4000
_HEADER = b"makeflux-classcode-1\n"
_DIGEST = 32

_kept: dict[str, CodeType] = {}
_used: set[str] = set()
_added = False
_path: str | None = None


def memo_path() -> str | None:
    """The cache file for this Python build; None when makeflux has no cache directory."""
    from makeflux import cache

    root = cache.cache_root()
    if root is None:
        return None
    build = f"{sys.implementation.cache_tag}-{importlib.util.MAGIC_NUMBER.hex()}"
    return os.path.join(root, "classcode", f"{build}.marshal")


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
    from makeflux import cache

    if not _added or _path is None or not cache.is_enabled():
        return
    kept = _kept
    if len(kept) > MAX_ENTRIES:
        kept = {text: code for text, code in kept.items() if text in _used}
    payload = marshal.dumps(kept)
    cache.write_entry(_path, _HEADER + hashlib.sha256(payload).digest() + payload)


def install() -> None:
    """Give the dataclasses module the kept code (once per process)."""
    global _path
    if getattr(dataclasses, "exec", None) is _exec:
        return
    _path = memo_path()
    if _path is not None:
        _kept.update(_read(_path))
        if _kept:
            from makeflux import cache

            cache.mark_used(Path(_path))  # read now: the daily pruning keeps it
    dataclasses.exec = _exec  # type: ignore[attr-defined]  # shadows the builtin there only
    atexit.register(_save)


install()
