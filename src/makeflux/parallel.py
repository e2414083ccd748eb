"""Spread independent work over the machine's cores with fork, only when it pays off.

`map_adaptive` starts in this process and measures; only when the rest of the work is projected
to take long enough, in slow items (a cold render compiling hundreds of templates), does it fork
workers for the rest. Forked workers inherit everything already set up (the Jinja
environment, plugins, data, hash seed), so they compute exactly what this process would. All
the processes take items from one queue as they go; results come back in the original order,
and what a worker that failed had taken is redone here.

MAKEFLUX_JOBS=N fixes the number of processes (1 turns parallelism off; N > 1 forks from the
start, whatever the size of the work), never more than the cores available.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

try:  # POSIX only; where they are missing nothing forks (can_fork)
    import fcntl
    import termios
except ImportError:  # pragma: no cover
    fcntl = termios = None  # type: ignore[assignment]

JOBS_ENV = "MAKEFLUX_JOBS"
# Measure for this long before deciding; fork only when the rest would take at least
# MIN_PARALLEL_SECONDS and each item is slow: compiling a template takes 3-15 ms, rendering its
# cached code 0.1-2 ms (0.7 ms on average on the bench's 30x tree, whose heavy charts call
# plugin filters). A second process for cheap items saves some time but costs a second working
# set (on the 30x tree, a warm render's peak went from 60 to 80 MB), and peak memory is a
# target too. The first item is not measured: it pays for what a run sets up once (reading
# the compiled-code index, a plugin's first call), which made cached renders look slow.
PROBE_SECONDS = 0.02
MIN_PARALLEL_SECONDS = 0.5
MIN_ITEM_SECONDS = 0.002

T = TypeVar("T")
R = TypeVar("R")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def requested_jobs() -> int | None:
    """MAKEFLUX_JOBS as a number of processes, at most the cores this process may use (more
    only queue for the same cores: 64 on 2 cores made a cold render 3x slower), or None when
    unset. Anything but a whole number from 1 is a SettingsError."""
    raw = os.environ.get(JOBS_ENV)
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if not text.isdecimal() or int(text) < 1:
        from makeflux.errors import SettingsError

        raise SettingsError(
            f"{JOBS_ENV}={raw!r}: not a number of processes; set a whole number from 1 "
            f"(this machine has {available_cores()} cores) or unset it"
        )
    return min(int(text), available_cores())


def jobs_description() -> str | None:
    """For --verbose: what MAKEFLUX_JOBS asks for and what is used, or None when unset."""
    jobs = requested_jobs()
    if jobs is None:
        return None
    asked = int(os.environ[JOBS_ENV].strip())
    cores = available_cores()
    if asked > jobs:
        return f"{JOBS_ENV}={asked}: {jobs} processes, capped at this machine's {cores} cores"
    return f"{JOBS_ENV}={asked}: " + ("one process" if jobs == 1 else f"{jobs} processes")


def can_fork() -> bool:
    """Linux only (fork elsewhere is unsafe with system libraries, or missing), and only while
    this is the process's one thread: a fork copies just the calling thread, so a lock another
    thread held (in a library user's program) would stay locked in the worker forever."""
    if not (hasattr(os, "fork") and sys.platform.startswith("linux")):
        return False
    threading = sys.modules.get("threading")  # not imported: no thread was started through it
    return threading is None or threading.active_count() == 1


def map_adaptive(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    worker_finish: Callable[[], None] | None = None,
    report: Callable[[], None] | None = None,
    spool_dir: Path | None = None,
) -> list[R]:
    """[func(item) for item in items], forking workers for the rest when that is worth it.

    `worker_finish` runs in each worker after its share (to save what only it has, such as
    the templates it compiled); `report` after each chunk in every process while the work is
    spread (to hand over, as it goes, what each process learned beside the results, instead
    of holding it while workers are alive). Their failure does not fail the run. `spool_dir`
    is where results wait while workers are alive (see fork_map).
    """
    forced = requested_jobs()
    jobs = forced if forced is not None else available_cores()
    if jobs <= 1 or not can_fork() or len(items) < 2:
        return [func(item) for item in items]
    results: list[R] = []
    start = 0.0
    for index, item in enumerate(items):
        remaining = len(items) - index
        if remaining >= 2 and (
            forced is not None or (index and _worth_forking(start, index - 1, remaining))
        ):
            rest = items[index:]
            return results + fork_map(
                func, rest, min(jobs, remaining), worker_finish, report, spool_dir
            )
        results.append(func(item))
        if not index:
            start = time.perf_counter()  # the probe starts after the first item
    return results


def _worth_forking(start: float, done: int, remaining: int) -> bool:
    """Whether the `done` items since `start` (perf_counter) say the rest are slow enough."""
    elapsed = time.perf_counter() - start
    if not done or elapsed < PROBE_SECONDS:
        return False
    per_item = elapsed / done
    return per_item >= MIN_ITEM_SECONDS and per_item * remaining >= MIN_PARALLEL_SECONDS


def fork_map(
    func: Callable[[T], R],
    items: Sequence[T],
    jobs: int,
    worker_finish: Callable[[], None] | None = None,
    report: Callable[[], None] | None = None,
    spool_dir: Path | None = None,
) -> list[R]:
    """[func(item) for item in items] in `jobs` processes: this one and jobs - 1 forked workers.

    The processes take items from a shared queue as they go, in order, so one that runs slower
    (other load on its core, a run of big templates) does not hold the others up. A worker sends
    each chunk's results as soon as it has them, and this process takes them in between its own
    chunks, so no result is held by two processes at once.

    While workers are alive, the results wait in a temporary file (_Spool) and are read back
    once they are gone. Every page this process holds then counts once, but the pages both
    processes touch are copied within moments of each fork (reference counts: ~9 MB on the
    bench's 30x tree), so what this process holds meanwhile is what decides the peak.
    """
    if jobs <= 1 or len(items) < 2:
        return [func(item) for item in items]
    chunk = -(-len(items) // MAX_CHUNKS)  # ceiling: at most MAX_CHUNKS records in the queue
    queue = _work_queue(range(0, len(items), chunk))
    sys.stdout.flush()
    sys.stderr.flush()
    workers: list[_Worker] = []
    merged: list[R] = [_MISSING] * len(items)  # type: ignore[list-item]
    with _Spool(spool_dir) as spool:
        # Each fork freezes this process for the garbage collector (_Worker.start), and it
        # stays frozen until the workers are done: a full collection here copies as many pages
        # as one in a worker.
        try:
            for _ in range(jobs - 1):
                workers.append(_Worker.start(func, items, chunk, queue, worker_finish, report))
            for start, results in _take_and_compute(func, items, chunk, queue):
                spool.add(pickle.dumps((start, results), pickle.HIGHEST_PROTOCOL))
                del results
                if report is not None:
                    with contextlib.suppress(Exception):
                        report()
                for number, worker in enumerate(workers):
                    worker.receive(spool.add, wait=False)
                    if worker.ended and _queued_bytes(queue):
                        # It retired (WORKER_SECONDS): a fresh one shares this process's
                        # memory again, where the old one had gradually copied what it touched.
                        workers[number] = _Worker.start(
                            func, items, chunk, queue, worker_finish, report
                        )
            for worker in workers:
                worker.receive(spool.add, wait=True)
            workers.clear()
        finally:
            gc.unfreeze()
            os.close(queue)
            for worker in workers:  # only on an error here: do not leave workers behind
                worker.abandon()
        for frame in spool.frames():
            start, results = pickle.loads(frame)
            merged[start : start + len(results)] = results
    # What a failed worker had taken and not sent is done here: same work, same results.
    return [func(item) if r is _MISSING else r for item, r in zip(items, merged, strict=True)]


class _Spool:
    """Pickled (start, results) frames, in a temporary file (in `directory`, else the system's
    temporary directory) until they are read back; in memory from the first that cannot be
    written (no space left), so a full disk costs memory, never results."""

    def __init__(self, directory: Path | None) -> None:
        self._held: list[bytes] = []
        self._written = 0  # bytes of whole frames in the file
        try:
            self._file: IO[bytes] | None = tempfile.TemporaryFile(  # noqa: SIM115 (__exit__)
                dir=directory, prefix="makeflux-results-", buffering=0
            )
        except OSError:
            self._file = None

    def add(self, frame: bytes) -> None:
        if self._file is not None and not self._held:
            try:
                _write_all(self._file.fileno(), _FRAME.pack(len(frame)) + frame)
            except OSError:
                pass  # a part of this frame may be in the file: reading stops at _written
            else:
                self._written += _FRAME.size + len(frame)
                return
        self._held.append(frame)

    def frames(self) -> Iterator[bytes]:
        """Every frame added, in order. Should the file give back less than was written, the
        frames from there on are missing, and fork_map computes their items again."""
        if self._file is not None:
            self._file.seek(0)
            left = self._written
            while left:
                head = self._file.read(_FRAME.size)
                if len(head) != _FRAME.size:
                    break
                (length,) = _FRAME.unpack(head)
                frame = self._file.read(length)
                if len(frame) != length:
                    break
                yield frame
                left -= _FRAME.size + length
        yield from self._held

    def __enter__(self) -> _Spool:
        return self

    def __exit__(self, *_: object) -> None:
        if self._file is not None:
            self._file.close()


# The queue holds one record (the index of the first item of a chunk) per chunk, all written
# before the workers start, so it must fit in a pipe's buffer (64 KiB on Linux, 16 KiB at least).
MAX_CHUNKS = 4096
_RECORD = struct.Struct("<I")
_FRAME = struct.Struct("<Q")  # length of one pickled (start, results) a worker sends
_MISSING: Any = object()
# A worker retires after this long (once its chunk is done) and a fresh one is forked: every
# page a worker or this process writes becomes a copy the two do not share, so a long-lived
# worker grows by about half of what it touches; a fresh one starts from sharing everything.
WORKER_SECONDS = 6.0
# A worker's result pipe is enlarged to this (where the system allows it), so a worker rarely
# waits for this process to take what it sent.
_RESULT_PIPE_SIZE = 1 << 20


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
    func: Callable[[T], R],
    items: Sequence[T],
    chunk: int,
    queue: int,
    until: float = float("inf"),
) -> Iterator[tuple[int, list[R]]]:
    """Take chunks from the queue until it is empty, or until the monotonic clock has passed
    `until` after a chunk; (start, results) for each."""
    while len(record := os.read(queue, _RECORD.size)) == _RECORD.size:
        (start,) = _RECORD.unpack(record)
        yield start, [func(item) for item in items[start : start + chunk]]
        if time.monotonic() >= until:
            return


def _queued_bytes(queue: int) -> int:
    """How much of the queue is left (1, unknown but maybe some, where the system cannot say)."""
    try:
        return struct.unpack("i", fcntl.ioctl(queue, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 1


class _Worker:
    """A forked worker, seen from this process: its pid and the read end of its result pipe."""

    def __init__(self, pid: int, read_fd: int) -> None:
        self.pid, self.read_fd = pid, read_fd
        self.pending = bytearray()  # received, not yet a whole frame
        self.ended = False

    @classmethod
    def start(
        cls,
        func: Callable[[T], R],
        items: Sequence[T],
        chunk: int,
        queue: int,
        finish: Callable[[], None] | None,
        report: Callable[[], None] | None,
    ) -> _Worker:
        read_fd, write_fd = os.pipe()
        with contextlib.suppress(AttributeError, OSError):  # F_SETPIPE_SZ is Linux only
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, _RESULT_PIPE_SIZE)
        # Frozen objects are left alone by the garbage collector, so no process's collections
        # write to (and thereby copy) every page the processes share. What is already garbage is
        # collected first (~6 ms), not frozen and copied into the worker.
        gc.collect()
        gc.freeze()
        pid = os.fork()
        if pid:
            os.close(write_fd)
            os.set_blocking(read_fd, False)
            return cls(pid, read_fd)
        os.close(read_fd)
        _work(func, items, chunk, queue, finish, report, write_fd)  # never returns

    def receive(self, take: Callable[[bytes], None], *, wait: bool) -> None:
        """Pass each whole frame the worker sent (a pickled chunk) to `take`; with `wait`, until
        it ends (then reap it)."""
        if self.ended:
            return
        if wait:
            os.set_blocking(self.read_fd, True)
        while True:
            try:
                data = os.read(self.read_fd, _RESULT_PIPE_SIZE)
            except BlockingIOError:
                return
            if not data:
                break
            self.pending += data
            self._unpack(take)
        # The end of the stream: a whole frame is a whole chunk's results, whatever happened
        # after it; a partial frame (the worker died while sending) is dropped.
        self.ended = True
        os.close(self.read_fd)
        os.waitpid(self.pid, 0)

    def _unpack(self, take: Callable[[bytes], None]) -> None:
        pending, at = self.pending, 0
        while len(pending) - at >= _FRAME.size:
            (length,) = _FRAME.unpack_from(pending, at)
            end = at + _FRAME.size + length
            if len(pending) < end:
                break
            take(bytes(pending[at + _FRAME.size : end]))
            at = end
        del pending[:at]

    def abandon(self) -> None:
        if self.ended:
            return
        with contextlib.suppress(OSError):
            os.close(self.read_fd)
        with contextlib.suppress(OSError):
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)


def _work(
    func: Callable[[T], R],
    items: Sequence[T],
    chunk: int,
    queue: int,
    finish: Callable[[], None] | None,
    report: Callable[[], None] | None,
    write_fd: int,
) -> NoReturn:
    """In the worker: compute chunks, sending each one's results as soon as they are ready
    (then `report`), and leave without running the parent's cleanup (atexit handlers, buffered
    output), which stays the parent's business. `finish` runs only when every chunk taken was
    computed."""
    status = 0
    try:
        try:
            until = time.monotonic() + WORKER_SECONDS
            for start, results in _take_and_compute(func, items, chunk, queue, until):
                body = pickle.dumps((start, results), pickle.HIGHEST_PROTOCOL)
                _write_all(write_fd, _FRAME.pack(len(body)) + body)
                if report is not None:
                    with contextlib.suppress(Exception):
                        report()
        except BaseException:
            status = 1
        else:
            if finish is not None:
                with contextlib.suppress(Exception):
                    finish()
        os.close(write_fd)
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
