"""The compiled-template cache: a cached render is byte-identical to an uncached one, a changed
template (or setting, or plugin) is never served stale, a damaged pack or entry is ignored and
its templates compiled again, and packs that pile up are merged."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

from makeflux import cache
from makeflux.data import load_data
from makeflux.environment import build_environment
from makeflux.render import render_tree
from makeflux.settings import load_settings
from tests.conftest import REPO_ROOT, run_cli
from tests.helpers.plugin_project import make_project, read_tree


def cache_files(cache_dir: Path) -> dict[str, int]:
    """Compiled-template cache file → inode (a rewrite replaces the file, so its inode changes).

    The manifests of -o renders, data files as read, kept outputs, dataclass code and the stamp
    of the daily pruning live in the cache too; they are not compiled templates."""
    return {
        p.relative_to(cache_dir).as_posix(): p.stat().st_ino
        for p in cache_dir.rglob("*")
        if p.is_file()
        and p.relative_to(cache_dir).parts[0]
        not in ("manifests", "data", "outputs", "last-prune", "classcode")
    }


def packs(cache_dir: Path) -> list[Path]:
    return sorted(p for p in (cache_dir / "code").rglob(f"*{cache.PACK_SUFFIX}"))


def entries(pack_path: Path) -> set[bytes]:
    pack = cache.Pack.open(pack_path)
    assert pack is not None, f"{pack_path} is not a readable pack"
    try:
        return set(pack.keys())
    finally:
        pack.close()


def render_counting(project: Path) -> tuple[int, int, dict[str, bytes]]:
    """Render through the library: (templates compiled, templates read from disk, files)."""
    settings = load_settings(project)
    data = load_data(settings).values
    setup = build_environment(settings, data)
    tree = render_tree(settings, data, setup, reuse_outputs=False)  # every template loads
    code_cache = setup.env.bytecode_cache
    assert isinstance(code_cache, cache.CompiledTemplateCache)
    return code_cache.compiled, code_cache.disk_hits, tree.files


def render(project: Path, out: str, *options: str) -> dict[str, bytes]:
    result = run_cli([*options, "render", "--no-lint", "-o", out], project)
    assert result.exit_code == 0, result.output
    return read_tree(project / out)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("MAKEFLUX_JOBS", "1")
    return make_project(tmp_path / "project")


def test_cached_render_is_byte_identical_and_the_warm_run_compiles_nothing(project: Path):
    cache_dir = project.parent / "cache"
    uncached = render(project, "uncached", "--no-cache")
    assert not cache_dir.exists(), "--no-cache must not write the cache"
    cold = render(project, "cold")
    written = cache_files(cache_dir)
    assert len(written) == 1, "one pack for the whole run"
    assert len(entries(packs(cache_dir)[0])) == 5  # three templates and two partials
    warm = render(project, "warm")
    assert cold == warm == uncached
    assert uncached["app.yaml"] == (
        b"name: home-ops\nconstant: FOLDED!\nlabels:\napp: home_ops\nnodes:\n"
        b"  - a.example.com\n  - c.example.com\n"
    )
    assert "disabled.yaml" not in uncached and uncached["plain.txt"] == b"copied as is\n"
    assert cache_files(cache_dir) == written, "the warm run rewrote cache files"


def test_the_cache_counts_hits_through_the_library_api(project: Path):
    compiled1, hits1, files1 = render_counting(project)
    compiled2, hits2, files2 = render_counting(project)
    assert (compiled1, hits1) == (5, 0)
    assert (compiled2, hits2) == (0, 5)
    assert files1 == files2


def test_a_changed_template_is_recompiled_even_with_the_same_size_and_mtime(project: Path):
    render(project, "out")
    template = project / "templates" / "labels.partial.j2"
    stat = template.stat()
    text = template.read_text()
    template.write_text(text.replace("app:", "ap2:"))  # same length
    os.utime(template, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert template.stat().st_size == stat.st_size
    after = render(project, "out")
    assert after["app.yaml"].splitlines()[3] == b"ap2: home_ops"
    assert after == render(project, "fresh", "--no-cache")


def test_a_damaged_entry_is_compiled_again_and_the_rest_still_served(project: Path):
    cache_dir = project.parent / "cache"
    expected = render(project, "out")
    (pack_path,) = packs(cache_dir)
    flipped = bytearray(pack_path.read_bytes())
    flipped[len(cache.FORMAT) + 40] ^= 0xFF  # a byte of the first entry's marshalled code
    pack_path.write_bytes(bytes(flipped))
    compiled, hits, files = render_counting(project)
    assert (compiled, hits) == (1, 4)
    assert files == expected
    assert render(project, "again") == expected
    assert len(packs(cache_dir)) == 2 and len(entries(packs(cache_dir)[-1])) == 1
    assert render_counting(project)[:2] == (0, 5), "the newer pack wins"


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: b"not a cache file at all",
        lambda blob: blob[:-7],  # truncated
        lambda blob: b"",
        lambda blob: blob[:-30] + bytes(b ^ 0xFF for b in blob[-30:-20]) + blob[-20:],  # index
    ],
    ids=["garbage", "truncated", "empty", "index"],
)
def test_a_damaged_pack_is_ignored_and_its_templates_compiled_again(project: Path, damage):
    cache_dir = project.parent / "cache"
    expected = render(project, "out")
    (pack_path,) = packs(cache_dir)
    pack_path.write_bytes(damage(pack_path.read_bytes()))
    compiled, hits, files = render_counting(project)
    assert (compiled, hits) == (5, 0)
    assert files == expected
    assert render(project, "again") == expected
    assert render_counting(project)[:2] == (0, 5)


def test_packs_that_pile_up_are_merged_into_one(project: Path):
    cache_dir = project.parent / "cache"
    template = project / "templates" / "feature.yaml.j2"
    original = template.read_text()
    stale = None
    for run in range(cache.MAX_PACKS + 1):
        template.write_text(original + f"run: {run}\n")  # one recompiled template per run
        render(project, "out")
        if run == 0:
            # A pack a dead run never finished, old enough to be removed with the merge.
            stale = packs(cache_dir)[0].parent / ".seg-dead.tmp"
            stale.write_bytes(b"half a pack")
            os.utime(stale, (0, 0))
    (merged,) = packs(cache_dir)
    assert len(entries(merged)) == 5  # every template once, at its newest
    assert stale is not None and not stale.exists()
    assert render_counting(project)[:2] == (0, 5)
    assert render(project, "warm") == render(project, "fresh", "--no-cache")


def test_a_changed_setting_does_not_reuse_code_compiled_for_other_settings(project: Path):
    before = render(project, "out")
    settings = project / "makejinja.toml"
    settings.write_text(settings.read_text() + "\n[makejinja.whitespace]\ntrim_blocks = false\n")
    after = render(project, "out2")
    assert after != before
    assert after == render(project, "uncached", "--no-cache")


def test_an_edited_plugin_filter_is_not_served_from_stale_code(project: Path):
    # The compiled code calls the plugin's filter; its source is in the key all the same.
    assert b"constant: FOLDED!" in render(project, "out")["app.yaml"]
    plugin = project / "scripts" / "plugin.py"
    # A different size too: Python itself would reuse a stale .pyc for a same-size edit made
    # within the same second.
    plugin.write_text(plugin.read_text().replace('+ "!"', '+ "?!"'))
    assert b"constant: FOLDED?!" in render(project, "out2")["app.yaml"]


# A plugin whose filters and tests Jinja would otherwise run while compiling: some read a
# file, some ask for the environment or a context first.
RENDER_TIME_PLUGIN = """\
from pathlib import Path

import jinja2


def shout(value):
    return str(value).upper() + "!"


def read_key(name):
    return Path(name).read_text().strip()


def key_is_set(name):
    return bool(Path(name).read_text().strip())


@jinja2.pass_environment
def with_environment(environment, value):
    return f"{value}:{environment.block_start_string}"


@jinja2.pass_context
def with_context(context, value):
    return f"{value}:{context['cluster_name']}"


@jinja2.pass_eval_context
def with_eval_context(eval_ctx, value):
    return f"{value}:{eval_ctx.autoescape}"


class Plugin:
    def filters(self):
        return [shout, read_key, with_environment, with_context, with_eval_context]

    def tests(self):
        return [key_is_set]
"""


def test_a_plugin_filter_on_constants_reads_its_file_again_on_every_run(project: Path):
    # Jinja evaluates a filter on constant arguments while compiling and keeps the result in
    # the code; kept in the cache, a key read from a file would outlive the file's contents.
    (project / "scripts" / "plugin.py").write_text(RENDER_TIME_PLUGIN)
    (project / "templates" / "secret.yaml.j2").write_text(
        'key: #{ "age.key" | read_key }#\n'
        '#% set both = ("age.key" | read_key) ~ "/" ~ ("age.key" | read_key | upper) %#\n'
        "both: #{ both }#\n"
        '#% if "age.key" is key_is_set %#\nset: yes\n#% endif %#\n'
    )
    (project / "age.key").write_text("age1first\n")
    assert (
        render(project, "out")["secret.yaml"]
        == b"key: age1first\nboth: age1first/AGE1FIRST\nset: yes\n"
    )
    (project / "age.key").write_text("\n")
    assert render(project, "out")["secret.yaml"] == b"key: \nboth: /\n"
    (project / "age.key").write_text("age1second\n")
    second = render(project, "out")
    assert second["secret.yaml"] == b"key: age1second\nboth: age1second/AGE1SECOND\nset: yes\n"
    assert second == render(project, "uncached", "--no-cache")


def test_plugin_filters_left_to_render_time_still_get_what_they_ask_for(project: Path):
    # The compiler sees a stand-in for each plugin filter; it must keep the calling convention
    # (environment, context or eval context first), or the generated call would be wrong.
    (project / "scripts" / "plugin.py").write_text(RENDER_TIME_PLUGIN)
    (project / "templates" / "passes.yaml.j2").write_text(
        'a: #{ "x" | with_environment }#\n'
        'b: #{ "y" | with_context }#\n'
        'c: #{ "z" | with_eval_context }#\n'
        "d: #{ domain | with_environment }#\n"
    )
    expected = b"a: x:#%\nb: y:home-ops\nc: z:False\nd: example.com:#%\n"
    assert render(project, "out")["passes.yaml"] == expected
    assert render(project, "warm")["passes.yaml"] == expected
    assert render(project, "uncached", "--no-cache")["passes.yaml"] == expected


def test_jinja_own_filters_are_still_folded_into_the_code(project: Path):
    (project / "templates" / "folded.yaml.j2").write_text('value: #{ "a-b" | upper }#\n')
    settings = load_settings(project)
    setup = build_environment(settings, load_data(settings).values)
    source = (project / "templates" / "folded.yaml.j2").read_text()
    code = setup.env.compile(source, raw=True)
    assert "'value: A-B" in code


def test_an_unusable_cache_directory_only_costs_speed(project: Path, monkeypatch):
    blocker = project.parent / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(blocker / "cache"))
    assert render(project, "out") == render(project, "fresh", "--no-cache")


def test_concurrent_runs_share_one_cache_safely(project: Path):
    expected = render(project, "expected", "--no-cache")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
    env.pop("MAKEFLUX_JOBS", None)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "makeflux", "render", "--no-lint", "-o", f"out{i}"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(3)
    ]
    for run in runs:
        _, errors = run.communicate(timeout=60)
        assert run.returncode == 0, errors
    for i in range(3):
        assert read_tree(project / f"out{i}") == expected
    assert render(project, "after") == expected


def test_memoized_template_facts_follow_the_source_and_survive_damage(project: Path):
    settings = load_settings(project)
    env = build_environment(settings, {}).env
    calls: list[str] = []
    root: Path | None = settings.cache_dir

    def facts(source: str):
        def compute():
            calls.append(source)
            return {"length": len(source), "lines": source.count("\n")}

        return cache.memoize(root, env, "test-facts-1", "t.j2", source, compute)

    assert facts("a\nb\n") == {"length": 4, "lines": 2}
    assert facts("a\nb\n") == {"length": 4, "lines": 2}
    assert calls == ["a\nb\n"], "the second call must come from the cache"
    assert facts("a\nc\nd\n") == {"length": 6, "lines": 3}  # same name, new source
    for stored in (project.parent / "cache" / "facts").rglob("*"):
        if stored.is_file():
            stored.write_bytes(b"{not json")
    assert facts("a\nc\nd\n") == {"length": 6, "lines": 3}
    assert len(calls) == 3
    root = None  # --no-cache
    assert facts("a\nc\nd\n") == {"length": 6, "lines": 3}
    assert len(calls) == 4, "--no-cache computes afresh"


def test_the_cache_keeps_jinjas_bytecode_cache_interface() -> None:
    """CompiledTemplateCache stands in for jinja2.BytecodeCache without subclassing it: a Jinja
    release that adds or changes a method the environment calls must fail here, not in a run."""
    for name, method in inspect.getmembers(jinja2.BytecodeCache, inspect.isfunction):
        if name.startswith("_"):
            continue
        ours = getattr(cache.CompiledTemplateCache, name, None)
        assert ours is not None, f"CompiledTemplateCache lacks BytecodeCache.{name}"
        theirs = list(inspect.signature(method).parameters)
        assert list(inspect.signature(ours).parameters) == theirs, name


def test_each_run_uses_the_cache_directory_its_settings_carry(project: Path, tmp_path: Path):
    """The cache's place and switch are part of Settings, not of the process: two projects
    (or a library caller's runs) in one process each use their own, and --no-cache is one
    run's choice (the next in-process run caches again)."""
    from dataclasses import replace

    default_dir = project.parent / "cache"  # $MAKEFLUX_CACHE_DIR, what load_settings starts from
    settings = load_settings(project)
    assert settings.cache_dir == default_dir
    expected = render(project, "expected", "--no-cache")
    assert not packs(default_dir)
    for name in ("first", "second"):
        chosen = replace(settings, cache_dir=tmp_path / name)
        data = load_data(chosen).values
        assert render_tree(chosen, data, build_environment(chosen, data)).files
        assert packs(tmp_path / name), name
    off = replace(settings, cache_dir=None)
    data = load_data(off).values
    tree = render_tree(off, data, build_environment(off, data))
    assert {path: tree.files[path] for path in tree.files} == expected
    assert not packs(default_dir), "runs with their own directory (or none) leave it alone"
    assert render(project, "cached") == expected
    assert packs(default_dir), "after an in-process --no-cache run, the next one caches"
