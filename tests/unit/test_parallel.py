"""Parallel rendering: forked workers give byte-identical output, errors and order; a failing
worker's share is redone; small work is not forked at all."""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from pathlib import Path

import pytest

from makeflux import cache, parallel
from makeflux.data import load_data
from makeflux.environment import build_environment
from makeflux.render import render_tree
from makeflux.settings import load_settings
from tests.conftest import run_cli, run_subprocess
from tests.helpers.plugin_project import make_project, read_tree


def add_templates(project: Path, count: int) -> None:
    """Many templates of different sizes, with loops, filters and an include."""
    templates = project / "templates" / "many"
    templates.mkdir()
    for i in range(count):
        body = "".join(
            f"line_{j}: #{{ (cluster_name ~ '-{i}-{j}') | upper }}#\n" for j in range(i % 7 + 1)
        )
        (templates / f"t{i:02d}.yaml.j2").write_text(
            f"#% if feature_enabled %#\nindex: {i}\n{body}"
            "#% for node in nodes %#\n- #{ node.name }#-#{ loop.index }#\n#% endfor %#\n"
            "#% include 'labels.partial.j2' %#\n#% endif %#\n"
        )


def render(project: Path, out: str, jobs: str, monkeypatch: pytest.MonkeyPatch) -> tuple:
    monkeypatch.setenv(parallel.JOBS_ENV, jobs)
    result = run_cli(["render", "--no-lint", "-o", out], project)
    return result.exit_code, result.output.replace(out, "OUT"), read_tree(project / out)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    project = make_project(tmp_path / "project")
    add_templates(project, 24)
    return project


def test_forked_render_is_byte_identical_to_serial(project: Path, monkeypatch):
    serial = render(project, "serial", "1", monkeypatch)
    cold = render(project, "cold", "2", monkeypatch)  # workers compile and fill the cache
    warm = render(project, "warm", "3", monkeypatch)  # workers load from the cache
    assert serial[0] == 0
    assert len(serial[2]) == 27  # 24 + app, feature, plain.txt (disabled renders empty)
    assert serial == cold == warm
    assert list(serial[2]) == list(cold[2])  # same order as well


def test_forked_workers_save_what_they_compiled(project: Path, monkeypatch):
    render(project, "cold", "2", monkeypatch)
    packs = sorted((project.parent / "cache" / "code").rglob(f"*{cache.PACK_SUFFIX}"))
    assert len(packs) == 2, "this process and the worker each write one pack"
    indexes = []
    for path in packs:
        pack = cache.Pack.open(path)
        assert pack is not None
        indexes.append(set(pack.keys()))
        pack.close()
    assert all(indexes) and len(indexes[0] | indexes[1]) == 24 + 5
    monkeypatch.setenv(parallel.JOBS_ENV, "1")
    settings = load_settings(project)
    data = load_data(settings).values
    setup = build_environment(settings, data)
    render_tree(settings, data, setup)
    assert setup.env.bytecode_cache.compiled == 0  # type: ignore[union-attr]


def test_forked_render_reports_the_same_errors_in_the_same_order(project: Path, monkeypatch):
    many = project / "templates" / "many"
    (many / "t03.yaml.j2").write_text("value: #{ missing_value }#\n")
    (many / "t10.yaml.j2").write_text("#% if %#\n")
    (many / "t17.yaml.j2").write_text("value: #{ nodes | no_such_filter }#\n")
    serial = render(project, "serial", "1", monkeypatch)
    forked = render(project, "forked", "2", monkeypatch)
    assert serial[0] == forked[0] == 2
    assert serial[1] == forked[1]
    assert [line.split(":")[0] for line in serial[1].splitlines()] == [
        "templates/many/t03.yaml.j2",
        "templates/many/t10.yaml.j2",
        "templates/many/t17.yaml.j2",
    ]
    assert not (project / "forked").exists()  # all or nothing, in parallel too


def test_a_template_changed_between_forked_runs_is_not_stale(project: Path, monkeypatch):
    before = render(project, "out", "2", monkeypatch)
    template = project / "templates" / "many" / "t05.yaml.j2"
    template.write_text(template.read_text().replace("index:", "idx:  "))
    after = render(project, "out2", "2", monkeypatch)
    assert after[2]["many/t05.yaml"] != before[2]["many/t05.yaml"]
    assert after[2]["many/t05.yaml"].startswith(b"idx:   5\n")
    assert after[2] == render(project, "serial", "1", monkeypatch)[2]


def test_fork_map_keeps_order_and_redoes_a_failed_workers_share():
    parent = os.getpid()

    def square_or_crash(n: int) -> int:
        if n == 5 and os.getpid() != parent:
            os._exit(3)  # a worker dies without sending anything
        return n * n

    assert parallel.fork_map(square_or_crash, list(range(12)), 3) == [n * n for n in range(12)]


class Tracked:
    """A result that counts how many of its kind are alive in this process."""

    alive = 0

    def __init__(self, value: int) -> None:
        self.value = value
        Tracked.alive += 1

    def __setstate__(self, state: dict) -> None:  # unpickled: alive as well
        self.__dict__.update(state)
        Tracked.alive += 1

    def __del__(self) -> None:
        Tracked.alive -= 1


def test_results_are_not_held_while_workers_are_alive(tmp_path: Path):
    """This process keeps the results (its own and the workers') in a file until the workers
    are gone: what it holds while they share its memory adds to the peak once for each."""
    parent = os.getpid()
    Tracked.alive = 0
    most_alive = 0
    named_files: set[str] = set()

    def track(n: int) -> Tracked:
        nonlocal most_alive
        if os.getpid() == parent:
            most_alive = max(most_alive, Tracked.alive)
            named_files.update(path.name for path in tmp_path.iterdir())
            time.sleep(0.001)
        return Tracked(n)

    results = parallel.fork_map(track, list(range(300)), 2, spool_dir=tmp_path)
    assert [r.value for r in results] == list(range(300))
    assert Tracked.alive == 300
    assert most_alive <= 2, f"{most_alive} results held while a worker was alive"
    assert not list(tmp_path.iterdir()), "the file the results waited in is gone"
    assert not named_files, "it had no name even while in use: a killed run leaves nothing"


def test_results_that_cannot_be_written_are_kept_in_memory(tmp_path: Path, monkeypatch):
    """A full disk in the middle of a frame: what was written whole is read back, the rest
    was kept in memory, and nothing is lost or out of order."""
    writes = 0
    write_all = parallel._write_all

    def fill_up(fd: int, data: bytes) -> None:
        nonlocal writes
        writes += 1
        if writes == 3:
            write_all(fd, data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        write_all(fd, data)

    monkeypatch.setattr(parallel, "_write_all", fill_up)
    frames = [pickle.dumps(n) * (n + 1) for n in range(6)]
    with parallel._Spool(tmp_path) as spool:
        for frame in frames:
            spool.add(frame)
        assert writes == 3, "nothing is written after the first failure"
        assert list(spool.frames()) == frames


def test_a_spool_file_cut_short_gives_the_frames_before_the_cut(tmp_path: Path):
    """Their items are then computed again by fork_map, like a failed worker's."""
    frames = [pickle.dumps(n) * 50 for n in range(3)]
    with parallel._Spool(tmp_path) as spool:
        for frame in frames:
            spool.add(frame)
        assert spool._file is not None
        os.ftruncate(spool._file.fileno(), os.fstat(spool._file.fileno()).st_size - 10)
        assert list(spool.frames()) == frames[:2]


def test_report_runs_after_every_chunk_in_every_process(tmp_path: Path):
    parent = os.getpid()
    log = tmp_path / "reports"

    def slow(n: int) -> int:
        time.sleep(0.002 if os.getpid() == parent else 0.001)
        return n

    def report() -> None:
        with log.open("a") as fp:
            fp.write(f"{os.getpid()}\n")

    assert parallel.fork_map(slow, list(range(60)), 2, report=report) == list(range(60))
    reporters = log.read_text().split()
    assert len(reporters) == 60, "one report per chunk (of one item here)"
    assert str(parent) in reporters and len(set(reporters)) >= 2


def test_a_slower_process_takes_fewer_items():
    parent = os.getpid()

    def where(n: int) -> int:
        if os.getpid() != parent:
            time.sleep(0.02)  # the worker is slow (its core is busy elsewhere, say)
        return os.getpid()

    pids = parallel.fork_map(where, list(range(40)), 2)
    assert len(pids) == 40
    assert pids.count(parent) >= 30, "items are shared out as the processes go, not up front"


def test_small_work_stays_in_this_process(monkeypatch):
    monkeypatch.delenv(parallel.JOBS_ENV, raising=False)
    pids = parallel.map_adaptive(lambda _: os.getpid(), list(range(200)))
    assert set(pids) == {os.getpid()}


@pytest.mark.skipif(parallel.available_cores() < 2, reason="needs two cores")
def test_long_work_is_spread_over_the_cores(monkeypatch):
    monkeypatch.delenv(parallel.JOBS_ENV, raising=False)

    def slow(_: int) -> int:
        time.sleep(0.02)
        return os.getpid()

    pids = parallel.map_adaptive(slow, list(range(40)))
    assert len(pids) == 40
    assert os.getpid() in pids and len(set(pids)) >= 2


@pytest.mark.skipif(parallel.available_cores() < 2, reason="needs two cores")
def test_a_slow_first_item_does_not_make_cheap_work_fork(monkeypatch):
    """The first item pays for what a run sets up once (the compiled-code index): timed with
    the rest, it made warm renders of cached code fork, and a worker doubles the working set."""
    monkeypatch.delenv(parallel.JOBS_ENV, raising=False)

    def cheap_after_setup(index: int) -> int:
        time.sleep(0.05 if index == 0 else 0.0005)
        return os.getpid()

    pids = parallel.map_adaptive(cheap_after_setup, list(range(2000)))
    assert set(pids) == {os.getpid()}


@pytest.mark.skipif(parallel.available_cores() < 2, reason="needs two cores")
def test_items_as_slow_as_compiling_fork(monkeypatch):
    monkeypatch.delenv(parallel.JOBS_ENV, raising=False)

    def compiling(_: int) -> int:
        time.sleep(parallel.MIN_ITEM_SECONDS * 2)
        return os.getpid()

    pids = parallel.map_adaptive(compiling, list(range(300)))
    assert len(set(pids)) >= 2


def test_jobs_1_never_forks(monkeypatch):
    monkeypatch.setenv(parallel.JOBS_ENV, "1")

    def slow(_: int) -> int:
        time.sleep(0.01)
        return os.getpid()

    assert set(parallel.map_adaptive(slow, list(range(30)))) == {os.getpid()}


def test_retired_workers_are_replaced_and_results_keep_their_order(monkeypatch):
    """A worker retires after WORKER_SECONDS and a fresh one is forked while work is left."""
    monkeypatch.setattr(parallel, "WORKER_SECONDS", 0.0)  # each worker takes one chunk
    parent = os.getpid()

    def square_where(n: int) -> tuple[int, int]:
        if os.getpid() != parent:
            time.sleep(0.005)
        else:
            time.sleep(0.01)  # this process is slower: the workers get a good share
        return n * n, os.getpid()

    results = parallel.fork_map(square_where, list(range(60)), 2)
    assert [square for square, _ in results] == [n * n for n in range(60)]
    workers = {pid for _, pid in results} - {parent}
    assert len(workers) >= 3, "retired workers were replaced by fresh ones"


def test_what_a_dying_worker_sent_is_kept_and_the_rest_redone():
    parent = os.getpid()
    marker = Path(tempfile.mkdtemp()) / "computed-in-worker"

    done_here: list[int] = []

    def square_or_die(n: int) -> int:
        if os.getpid() != parent:
            if n >= 20:
                os._exit(3)  # dies after having sent its earlier chunks (one item each here)
            with marker.open("a") as log:
                log.write(f"{n}\n")
        else:
            done_here.append(n)
            time.sleep(0.002)
        return n * n

    assert parallel.fork_map(square_or_die, list(range(40)), 2) == [n * n for n in range(40)]
    sent = {int(n) for n in marker.read_text().split()}
    assert sent, "the worker computed (and sent) some items before dying"
    assert not sent & set(done_here), "what the worker sent was used, not computed again"
    assert set(done_here) | sent == set(range(40))


@pytest.mark.parametrize("value", ["abc", "-1", "0", "1.5", "2 cores"])
def test_a_bad_jobs_value_is_refused_in_one_line(project: Path, value: str) -> None:
    done = run_subprocess(["render", "--no-lint"], project, env={parallel.JOBS_ENV: value})
    assert done.returncode == 2
    cores = parallel.available_cores()
    assert done.stderr == (
        f"MAKEFLUX_JOBS={value!r}: not a number of processes; set a whole number from 1 "
        f"(this machine has {cores} cores) or unset it\n"
    )
    assert not (project / "kubernetes").exists()


def test_jobs_above_the_core_count_are_capped_and_verbose_says_so(project: Path, monkeypatch):
    cores = parallel.available_cores()
    asked = cores * 32
    verbose = run_subprocess(["-v", "validate"], project, env={parallel.JOBS_ENV: str(asked)})
    assert verbose.returncode == 0, verbose.stderr
    assert (
        f"makeflux: MAKEFLUX_JOBS={asked}: {cores} processes, capped at this machine's "
        f"{cores} cores\n"
    ) in verbose.stderr
    assert run_subprocess(["validate"], project, env={parallel.JOBS_ENV: str(asked)}).stderr == ""

    monkeypatch.setenv(parallel.JOBS_ENV, str(asked))

    def slow(_: int) -> int:
        time.sleep(0.005)
        return os.getpid()

    assert len(set(parallel.map_adaptive(slow, list(range(4 * asked))))) <= cores


def test_nothing_forks_while_another_thread_is_alive(project: Path, monkeypatch):
    """A fork copies only the calling thread: with another thread alive (a library user's),
    the render stays in this process, and gives the same tree."""
    import threading

    from makeflux import parallel

    assert parallel.can_fork()  # this machine: Linux, one thread
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert not parallel.can_fork()

        def no_fork() -> int:
            raise AssertionError("forked while another thread was alive")

        monkeypatch.setattr(parallel.os, "fork", no_fork)
        monkeypatch.setenv("MAKEFLUX_JOBS", "2")  # would fork at once
        assert parallel.map_adaptive(lambda n: n * 2, [1, 2, 3]) == [2, 4, 6]
    finally:
        release.set()
        other.join()
    assert parallel.can_fork()


def test_nothing_forks_off_linux(monkeypatch):
    from makeflux import parallel

    monkeypatch.setattr(parallel.sys, "platform", "darwin")
    assert not parallel.can_fork()


def test_rendered_templates_are_freed_as_the_render_goes(project: Path, monkeypatch):
    """A loaded template is a reference cycle; left to the collector's own schedule, some lived
    on until a full collection (6 MB at the peak of a warm 30x render). Rendering collects the
    young generations every few templates: with the collector off, at most that many are left."""
    import gc
    import weakref

    import jinja2

    from makeflux import render as rendering

    monkeypatch.setenv(parallel.JOBS_ENV, "1")
    settings = load_settings(project).with_overrides(cache_dir=None)  # no reuse: all render
    data = load_data(settings).values
    setup = build_environment(settings, data)
    loaded: list[weakref.ref[jinja2.Template]] = []
    real_load = jinja2.Environment._load_template

    def recording_load(self, name, globals):  # type: ignore[no-untyped-def]
        template = real_load(self, name, globals)
        loaded.append(weakref.ref(template))
        return template

    monkeypatch.setattr(jinja2.Environment, "_load_template", recording_load)
    gc.collect()
    gc.disable()
    try:
        render_tree(settings, data, setup)
        alive = sum(ref() is not None for ref in loaded)
    finally:
        gc.enable()
    assert rendering.COLLECT_EVERY <= 10 and len(loaded) >= 50  # 24 templates and partials
    assert alive <= 20, f"{alive} of {len(loaded)} templates still held"
