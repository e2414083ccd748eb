"""Time makejinja and makeflux side by side on generated trees (see bench/README.md).

    python bench/run.py                       # scales 1, 10 and 30
    python bench/run.py --scale 1 --repeat 9  # just the 1x tree, more samples

For each scale it generates the tree (deterministic from --seed), renders it once with each
tool and stops unless both trees are byte-identical, then times, alternating the tools in every
round: makejinja render (into an empty directory), makeflux render cold (empty output, empty
compiled-template cache), makeflux render warm (the second run: cache filled, nothing changed),
makeflux check and makeflux plan (nothing changed). It prints medians, min-max, the
makejinja/makeflux ratio and peak memory per command. Memory is sampled in one extra round of
its own: the sampler's reads of /proc cost CPU, which would slow whichever command needs the
second core.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import SHAPES, TreeStats, generate

MANIFEST_FILE = ".makeflux-manifest.json"


@dataclass
class Sample:
    seconds: float
    cpu_seconds: float  # user + system, this process and its workers
    max_rss_kb: int  # peak RSS of the largest single process (sampled; 0 when not sampled)
    tree_pss_kb: int  # peak of the summed PSS over the process and its children (sampled)
    returncode: int


@dataclass
class Row:
    label: str
    samples: list[Sample] = field(default_factory=list)  # timed rounds, memory not sampled
    memory: list[Sample] = field(default_factory=list)  # the round with memory sampled

    def seconds(self) -> list[float]:
        return [s.seconds for s in self.samples]


def find_tool(name: str) -> str | None:
    """The console script installed next to this Python (no pyenv shims), else one on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.is_file():
        return str(candidate)
    return shutil.which(name)


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        with contextlib.suppress(OSError):  # a process that ended while it was looked at
            for task in Path(f"/proc/{current}/task").glob("*/children"):
                with contextlib.suppress(OSError, ValueError):
                    todo.extend(int(c) for c in task.read_text().split())
    return pids


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process, in KiB; zeros once it is gone."""
    rss = pss = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


class MemorySampler(threading.Thread):
    """Peak PSS of a process and its children (forked workers share pages; PSS counts them once),
    and the peak RSS of the largest single one.

    wait4's ru_maxrss cannot serve for the RSS: a child forked from this (large) bench process
    starts with the bench's RSS as its maximum, before it even execs the tool."""

    def __init__(self, pid: int, *, enabled: bool = True) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.peak_rss_kb = 0
        self.done = threading.Event()
        self.enabled = enabled and Path("/proc/self/smaps_rollup").exists()

    def run(self) -> None:
        while self.enabled and not self.done.is_set():
            readings = [memory_kb(p) for p in process_tree(self.pid)]
            self.peak_kb = max(self.peak_kb, sum(pss for _, pss in readings))
            self.peak_rss_kb = max([self.peak_rss_kb, *(rss for rss, _ in readings)])
            self.done.wait(0.005)


def measure(
    argv: list[str], cwd: Path, env: dict[str, str], *, sample_memory: bool = True
) -> Sample:
    with tempfile.TemporaryFile() as errors:
        settle()
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        sampler = MemorySampler(proc.pid, enabled=sample_memory)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        sampler.done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0,):
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip().splitlines()[-5:]
            command = " ".join(argv)
            raise SystemExit(f"{command} exited {proc.returncode} in {cwd}:\n" + "\n".join(tail))
    cpu_seconds = usage.ru_utime + usage.ru_stime
    return Sample(seconds, cpu_seconds, sampler.peak_rss_kb, sampler.peak_kb, proc.returncode)


def settle() -> None:
    """Flush to disk what earlier commands wrote and the bench deleted, before timing the next.

    The kernel writes a command's files back after the command has exited, on the same cores:
    left pending, that work would be timed as part of whichever command runs next (makeflux's
    cold render runs right after makejinja's render, and the bench deletes trees before it).
    """
    if hasattr(os, "sync"):
        os.sync()


def tree_paths(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def compare_trees(expected: Path, actual: Path) -> list[str]:
    """Differences between two output trees (paths and bytes); empty when identical.

    File by file, so the bench itself stays small (its size would show in no figure, but it
    would crowd the machine)."""
    left, right = tree_paths(expected), tree_paths(actual)
    problems = [f"only in {expected.name}: {p}" for p in sorted(left.keys() - right.keys())]
    problems += [f"only in {actual.name}: {p}" for p in sorted(right.keys() - left.keys())]
    problems += [
        f"differs: {p}"
        for p in sorted(left.keys() & right.keys())
        if left[p].read_bytes() != right[p].read_bytes()
    ]
    return problems


@dataclass
class Tools:
    makejinja_path: str
    makeflux_path: str
    lint: bool  # pass --no-lint to makeflux render/check when False

    def makejinja_render(self, out: Path) -> list[str]:
        return [self.makejinja_path, "--output", str(out)]

    def makeflux(self, command: str, out: Path) -> list[str]:
        argv = [self.makeflux_path, "-q", command, "-o", str(out)]
        if not self.lint and command in ("render", "check"):
            argv.append("--no-lint")
        return argv


def reset_output(project: Path, out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    (project / MANIFEST_FILE).unlink(missing_ok=True)


def verify_identical(project: Path, tools: Tools, env: dict[str, str], cache: Path) -> int:
    """Render once with each tool (makeflux from an empty cache) and compare; the file count."""
    out_mj, out_mf = project / "out-makejinja", project / "out-makeflux"
    shutil.rmtree(out_mj, ignore_errors=True)
    reset_output(project, out_mf)
    shutil.rmtree(cache, ignore_errors=True)
    measure(tools.makejinja_render(out_mj), project, env)
    measure(tools.makeflux("render", out_mf), project, env)
    problems = compare_trees(out_mj, out_mf)
    if problems:
        listing = "\n  ".join(problems[:20])
        raise SystemExit(f"the trees differ ({len(problems)} paths), no timings:\n  {listing}")
    return len(tree_paths(out_mj))


def available_commands(tools: Tools) -> set[str]:
    listing = subprocess.run(
        [tools.makeflux_path, "--help"], capture_output=True, text=True, check=False
    ).stdout
    commands = set()
    in_commands = False
    for line in listing.splitlines():
        if line.strip() == "Commands:":
            in_commands = True
        elif in_commands and line.startswith("  ") and line.strip():
            commands.add(line.split()[0])
    return commands


def bench_scale(scale: float, args: argparse.Namespace, tools: Tools) -> dict:
    workdir: Path = args.workdir
    project = workdir / tree_name(args.shape, scale)
    shutil.rmtree(project, ignore_errors=True)
    stats = generate(project, scale, args.seed, args.shape)
    cache = workdir / f"cache-{args.shape}-x{scale:g}"
    env = dict(os.environ, MAKEFLUX_CACHE_DIR=str(cache))
    files = verify_identical(project, tools, env, cache)
    print(
        f"\n== {args.shape} {scale:g}x: {stats.templates} templates "
        f"({stats.template_bytes / 1e6:.2f} MB), {stats.data_keys} data keys "
        f"({stats.data_nodes} YAML nodes in {stats.data_files} file(s)), {files} output files: "
        "identical trees ==",
        flush=True,
    )
    commands = available_commands(tools)
    out_mj, out_mf = project / "out-makejinja", project / "out-makeflux"
    rows = {
        key: Row(label)
        for key, label in [
            ("makejinja", "makejinja render"),
            ("cold", "makeflux render (cold)"),
            ("warm", "makeflux render (warm)"),
            ("one", "makeflux render (1 value)"),
            ("check", "makeflux check"),
            ("plan", "makeflux plan"),
        ]
    }
    repeat = args.repeat or (5 if scale <= 1 else 3 if scale <= 10 else 2)
    for round_number in range(repeat + 1):
        sampled = round_number == repeat  # the last round samples memory and is not timed

        def run(key: str, argv: list[str], sampled: bool = sampled) -> None:
            sample = measure(argv, project, env, sample_memory=sampled)
            (rows[key].memory if sampled else rows[key].samples).append(sample)

        shutil.rmtree(out_mj, ignore_errors=True)
        run("makejinja", tools.makejinja_render(out_mj))
        reset_output(project, out_mf)
        shutil.rmtree(cache, ignore_errors=True)
        run("cold", tools.makeflux("render", out_mf))
        run("warm", tools.makeflux("render", out_mf))
        # One value that one template reads, changed and changed back: two samples a round,
        # and the data is as makejinja rendered it again.
        for _ in range(2):
            flip_one_value(project)
            run("one", tools.makeflux("render", out_mf))
        for command in ("check", "plan"):
            if command in commands:
                run(command, tools.makeflux(command, out_mf))
    problems = compare_trees(out_mj, out_mf)
    if problems:
        raise SystemExit(f"the trees differ after timing: {problems[:5]}")
    print_table(rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(1-minute load average at the end: {load:.2f} on {os.cpu_count()} CPUs)")
    return {
        "scale": scale,
        "tree": asdict(stats),
        "output_files": files,
        "repeat": repeat,
        "load_at_end": load,
        "rows": {k: [asdict(s) for s in r.samples] for k, r in rows.items()},
        "memory_rows": {k: [asdict(s) for s in r.memory] for k, r in rows.items()},
    }


def tree_name(shape: str, scale: float) -> str:
    return f"tree-x{scale:g}" if shape == "bench" else f"tree-{shape}-x{scale:g}"


def flip_one_value(project: Path) -> None:
    """Change the first app's replicas in cluster.yaml (1 <-> 2 ...): one HelmRelease reads it."""
    cluster = project / "cluster.yaml"
    text = cluster.read_text()
    start = text.index("\napps:\n")
    at = text.index("    replicas: ", start) + len("    replicas: ")
    end = text.index("\n", at)
    value = int(text[at:end])
    cluster.write_text(text[:at] + str(value + 1 if value % 2 else value - 1) + text[end:])


def print_table(rows: dict[str, Row]) -> None:
    baseline = statistics.median(rows["makejinja"].seconds())
    print(
        f"{'':26} {'median':>8} {'min-max':>15} {'mj/mf':>7} {'CPU':>7} "
        f"{'max RSS':>9} {'peak PSS':>9}"
    )
    for key, row in rows.items():
        if not row.samples:
            print(f"{row.label:26} {'n/a (command not available)':>48}")
            continue
        seconds = row.seconds()
        median = statistics.median(seconds)
        ratio = "" if key == "makejinja" else f"{baseline / median:6.1f}x"
        cpu = statistics.median(s.cpu_seconds for s in row.samples)
        rss = max((s.max_rss_kb for s in row.memory), default=0) / 1024
        pss = max((s.tree_pss_kb for s in row.memory), default=0) / 1024
        print(
            f"{row.label:26} {median:7.3f}s {min(seconds):6.3f}-{max(seconds):6.3f}s "
            f"{ratio:>7} {cpu:6.2f}s {rss:7.1f}MB {pss:7.1f}MB"
        )


def machine() -> dict[str, str]:
    model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_at_start": f"{load:.2f}",
    }


def byte_compile(package: str) -> str:
    """Compile `package`'s modules into __pycache__, as pip does when it installs a package.

    makejinja comes from a wheel, byte-compiled when pip installed it. makeflux, installed
    editable from the clone, is compiled on its first import, or on every import where
    PYTHONDONTWRITEBYTECODE is set (some containers set it): about 50 ms of every run that an
    installed copy never pays. Python still recompiles a module whose source changed since.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return "not found"
    ok = all(compileall.compile_dir(d, quiet=1) for d in spec.submodule_search_locations)
    return "compiled" if ok else "not all compiled"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, nargs="+", default=[1, 10, 30])
    parser.add_argument("--repeat", type=int, default=0, help="rounds per scale (default: by size)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="bench",
        help="bench: heavy charts, plugin filters in ~40%% of templates; home-ops: data in two "
        "files, lighter charts, plugin filters in a handful of templates",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the generated trees")
    parser.add_argument("--no-lint", action="store_true", help="pass --no-lint to makeflux")
    parser.add_argument("--json", type=Path, default=None, help="also write the samples here")
    parser.add_argument(
        "--verify-only", action="store_true", help="generate and compare the trees, no timing"
    )
    args = parser.parse_args(argv)
    makejinja, makeflux = find_tool("makejinja"), find_tool("makeflux")
    if not makejinja or not makeflux:
        print("need makejinja and makeflux: pip install -e '.[test]'", file=sys.stderr)
        return 2
    tools = Tools(makejinja, makeflux, lint=not args.no_lint)
    temporary = args.workdir is None
    args.workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="makeflux-bench-"))).resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.verify_only:
            for scale in args.scale:
                project = args.workdir / tree_name(args.shape, scale)
                shutil.rmtree(project, ignore_errors=True)
                stats: TreeStats = generate(project, scale, args.seed, args.shape)
                env = dict(os.environ, MAKEFLUX_CACHE_DIR=str(args.workdir / "cache"))
                files = verify_identical(project, tools, env, args.workdir / "cache")
                print(f"{scale:g}x: {stats.templates} templates, {files} files: identical trees")
            return 0
        info = machine()
        info["makejinja"] = importlib.metadata.version("makejinja")
        info["makeflux"] = importlib.metadata.version("makeflux")
        info["jinja2"] = importlib.metadata.version("jinja2")
        info["makeflux bytecode"] = byte_compile("makeflux")
        print(" | ".join(f"{k}: {v}" for k, v in info.items()))
        results = [bench_scale(scale, args, tools) for scale in args.scale]
        if args.json:
            args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2))
    finally:
        if temporary and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
