"""Spread independent work over the machine's cores with fork, only when it pays off.

`map_adaptive` starts in this process and measures; only when the rest of the work is projected
to take long enough, in slow items (a cold render compiling hundreds of templates), does it fork
workers for the rest. Forked workers inherit everything already set up (the Jinja
environment, plugins, data, hash seed), so they compute exactly what this process would. All
the processes take items from one queue as they go; results come back in the original order,
and what a worker that failed had taken is redone here.

MAKEFLUX_JOBS=N fixes the number of processes (1 turns parallelism off; N > 1 forks from the
start, whatever the size of the work).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import struct
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

JOBS_ENV = "MAKEFLUX_JOBS"
# Measure for this long before deciding; fork only when the rest would take at least
# MIN_PARALLEL_SECONDS and each item is slow (compiling a template, ~ms). Cheap items (rendering
# cached code, ~0.2 ms) gained nothing measurable from a second process (bench/README.md), and a
# second process costs memory.
PROBE_SECONDS = 0.02
MIN_PARALLEL_SECONDS = 0.5
MIN_ITEM_SECONDS = 0.001

T = TypeVar("T")
R = TypeVar("R")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def requested_jobs() -> int | None:
    """MAKEFLUX_JOBS as a positive number, or None when unset or not a number."""
    raw = os.environ.get(JOBS_ENV, "").strip()
    if not raw.isdigit() or int(raw) < 1:
        return None
    return int(raw)


def can_fork() -> bool:
    return hasattr(os, "fork") and sys.platform != "win32"


def map_adaptive(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    worker_finish: Callable[[], None] | None = None,
) -> list[R]:
    """[func(item) for item in items], forking workers for the rest when that is worth it.

    `worker_finish` runs in each worker after its share (to save what only it has, such as
    the templates it compiled); its failure does not fail the worker.
    """
    forced = requested_jobs()
    jobs = forced if forced is not None else available_cores()
    if jobs <= 1 or not can_fork() or len(items) < 2:
        return [func(item) for item in items]
    results: list[R] = []
    start = time.perf_counter()
    for index, item in enumerate(items):
        remaining = len(items) - index
        if forced is not None and remaining >= 2:
            return results + fork_map(func, items[index:], min(jobs, remaining), worker_finish)
        elapsed = time.perf_counter() - start
        if index and elapsed >= PROBE_SECONDS and remaining >= 2:
            per_item = elapsed / index
            if per_item >= MIN_ITEM_SECONDS and per_item * remaining >= MIN_PARALLEL_SECONDS:
                return results + fork_map(func, items[index:], min(jobs, remaining), worker_finish)
        results.append(func(item))
    return results


def fork_map(
    func: Callable[[T], R],
    items: Sequence[T],
    jobs: int,
    worker_finish: Callable[[], None] | None = None,
) -> list[R]:
    """[func(item) for item in items] in `jobs` processes: this one and jobs - 1 forked workers.

    The processes take items from a shared queue as they go, in order, so one that runs slower
    (other load on its core, a run of big templates) does not hold the others up.
    """
    if jobs <= 1 or len(items) < 2:
        return [func(item) for item in items]
    chunk = -(-len(items) // MAX_CHUNKS)  # ceiling: at most MAX_CHUNKS records in the queue
    queue = _work_queue(range(0, len(items), chunk))
    sys.stdout.flush()
    sys.stderr.flush()
    workers: list[tuple[int, int]] = []  # (pid, read end of its result pipe)
    merged: list[R] = [_MISSING] * len(items)  # type: ignore[list-item]
    # Frozen objects are left alone by the garbage collector, so no process's collections write
    # to (and thereby copy) every page the processes share. This one stays frozen until the
    # workers are done: a full collection here copies as many pages as one in a worker.
    gc.freeze()
    try:
        for _ in range(jobs - 1):
            workers.append(_start_worker(func, items, chunk, queue, worker_finish))
        for start, results in _take_and_compute(func, items, chunk, queue):
            merged[start : start + len(results)] = results
        for pid, read_fd in workers:
            for start, results in _collect(pid, read_fd):
                merged[start : start + len(results)] = results
        workers.clear()
    finally:
        gc.unfreeze()
        os.close(queue)
        for pid, read_fd in workers:  # only on an error here: do not leave workers behind
            _abandon(pid, read_fd)
    # What a failed worker had taken is done here: same work, same results.
    return [func(item) if r is _MISSING else r for item, r in zip(items, merged, strict=True)]


# The queue holds one record (the index of the first item of a chunk) per chunk, all written
# before the workers start, so it must fit in a pipe's buffer (64 KiB on Linux, 16 KiB at least).
MAX_CHUNKS = 4096
_RECORD = struct.Struct("<I")
_MISSING: Any = object()


def _work_queue(starts: Iterable[int]) -> int:
    """A pipe holding every chunk's start index; returns its read end, which readers share.

    Each read takes exactly one record: reads of a pipe are atomic, and all the records are
    written (and the write end closed) before anyone reads.
    """
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, b"".join(_RECORD.pack(start) for start in starts))
    finally:
        os.close(write_fd)
    return read_fd


def _take_and_compute(
    func: Callable[[T], R], items: Sequence[T], chunk: int, queue: int
) -> Iterator[tuple[int, list[R]]]:
    """Take chunks from the queue until it is empty; (start, results) for each."""
    while len(record := os.read(queue, _RECORD.size)) == _RECORD.size:
        (start,) = _RECORD.unpack(record)
        yield start, [func(item) for item in items[start : start + chunk]]


def _start_worker(
    func: Callable[[T], R],
    items: Sequence[T],
    chunk: int,
    queue: int,
    finish: Callable[[], None] | None,
) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_fd)
        return pid, read_fd
    # In the worker: compute, stream the pickled results down the pipe (no second copy of them in
    # memory), and leave without running the parent's cleanup (atexit handlers, buffered output),
    # which stays the parent's business. The parent reads only complete, successful results.
    status = 0
    try:
        os.close(read_fd)
        with os.fdopen(write_fd, "wb") as pipe:
            try:
                done = list(_take_and_compute(func, items, chunk, queue))
            except BaseException:
                done, status = None, 1
            if done is not None:
                if finish is not None:
                    with contextlib.suppress(Exception):
                        finish()
                pickle.dump(done, pipe, pickle.HIGHEST_PROTOCOL)
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _collect(pid: int, read_fd: int) -> list[tuple[int, list[Any]]]:
    """The (start, results) chunks a worker computed; none when it failed."""
    result: object = None
    with os.fdopen(read_fd, "rb") as pipe:
        try:
            result = pickle.load(pipe)
        except Exception:  # the worker failed or died: nothing or a truncated stream
            result = None
    _, status = os.waitpid(pid, 0)
    if status == 0 and isinstance(result, list):
        return result
    return []


def _abandon(pid: int, read_fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(read_fd)
    with contextlib.suppress(OSError):
        os.kill(pid, 9)
        os.waitpid(pid, 0)
