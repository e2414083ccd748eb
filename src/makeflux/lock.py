"""One writer at a time: a lock file beside the manifest, held for a whole render or set.

Two renders into one tree would each plan against the manifest the other is rewriting; the
second would either lose the first one's result or report hundreds of false hand edits.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from makeflux.boundary import LOCK_FILE
from makeflux.errors import LockedError, MakefluxError, Problem, display_path
from makeflux.manifest import manifest_path
from makeflux.settings import Settings

# How long a second run waits for the first; MAKEFLUX_LOCK_WAIT (seconds) overrides it.
DEFAULT_WAIT_SECONDS = 10.0


def lock_path(settings: Settings) -> Path:
    """The lock of the tree this run writes: beside its manifest (or its output)."""
    if settings.keep_manifest:
        return manifest_path(settings).parent / LOCK_FILE
    return settings.output.parent / f".makeflux-{settings.output.name or 'output'}.lock"


@contextmanager
def held(settings: Settings) -> Iterator[None]:
    """Hold the lock for the `with` block; wait a little for another run, then refuse."""
    path = lock_path(settings)
    deadline = time.monotonic() + _wait_seconds()
    while True:
        fd = _try_lock(path)
        if fd is not None:
            break
        if time.monotonic() >= deadline:
            holder = _holder(path)
            raise LockedError(
                Problem(
                    f"another makeflux run{holder} is writing this tree; wait for it to "
                    "finish and run again (if no makeflux is running, delete this file)",
                    display_path(path),
                )
            )
        time.sleep(0.05)
    try:
        yield
    finally:
        if fd >= 0:
            # Unlink before unlocking: a run waiting on this file finds it gone and starts anew.
            with suppress(OSError):
                path.unlink()
            os.close(fd)


def _try_lock(path: Path) -> int | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return -1  # a read-only tree: nothing will be written, so nothing to serialize
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    try:
        # The holder may have unlinked the file between our open and our lock: only the file
        # still at `path` counts.
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            os.close(fd)
            return None
    except FileNotFoundError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (process {pid})" if pid.isdigit() else ""


def _wait_seconds() -> float:
    raw = os.environ.get("MAKEFLUX_LOCK_WAIT")
    if raw is None:
        return DEFAULT_WAIT_SECONDS
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise MakefluxError(
            f"MAKEFLUX_LOCK_WAIT={raw!r} is not a number of seconds; set it to e.g. 10"
        ) from None
