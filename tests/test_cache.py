"""The compiled-template cache: a cached render is byte-identical to an uncached one, a changed
template (or setting, or plugin) is never served stale, and a damaged cache file is ignored and
rewritten."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from makeflux import cache
from makeflux.data import load_data
from makeflux.environment import build_environment
from makeflux.render import render_tree
from makeflux.settings import load_settings
from tests.conftest import REPO_ROOT, run_cli

SETTINGS = """\
[makejinja]
inputs = ["./templates"]
output = "./out"
exclude_patterns = ["*.partial.j2"]
data = ["./cluster.yaml"]
import_paths = ["./scripts"]
loaders = ["plugin:Plugin"]
jinja_suffix = ".j2"
undefined = "strict"

[makejinja.delimiter]
block_start = "#%"
block_end = "%#"
comment_start = "#|"
comment_end = "#|"
variable_start = "#{"
variable_end = "}#"
"""

PLUGIN = """\
import makejinja


def shout(value):
    return str(value).upper() + "!"


class Plugin(makejinja.plugin.Plugin):
    def filters(self):
        return [shout]
"""

TEMPLATES = {
    "app.yaml.j2": """\
        #% import 'macros.partial.j2' as m %#
        #| a comment #|
        name: #{ cluster_name }#
        constant: #{ "folded" | shout }#
        labels:
          #% include 'labels.partial.j2' %#
        nodes:
        #% for node in nodes if node.enabled %#
          - #{ m.host(node) }#
        #% endfor %#
        """,
    "feature.yaml.j2": """\
        #% if feature_enabled %#
        feature: #{ nodes | map(attribute="name") | join(",") | tojson }#
        #% endif %#
        """,
    "disabled.yaml.j2": """\
        #% if not feature_enabled %#
        never: rendered
        #% endif %#
        """,
    "labels.partial.j2": "app: #{ cluster_name | replace('-', '_') }#\n",
    "macros.partial.j2": "#% macro host(node) %##{ node.name }#.#{ domain }##% endmacro %#\n",
    "plain.txt": "copied as is\n",
}

DATA = """\
cluster_name: home-ops
domain: example.com
feature_enabled: true
nodes:
  - {name: a, enabled: true}
  - {name: b, enabled: false}
  - {name: c, enabled: true}
"""


def make_project(root: Path) -> Path:
    (root / "templates").mkdir(parents=True)
    for name, text in TEMPLATES.items():
        (root / "templates" / name).write_text(textwrap.dedent(text))
    (root / "scripts").mkdir()
    (root / "scripts" / "plugin.py").write_text(PLUGIN)
    (root / "cluster.yaml").write_text(DATA)
    (root / "makejinja.toml").write_text(SETTINGS)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def cache_files(cache_dir: Path) -> dict[str, int]:
    """Compiled-template cache file → inode (a rewrite replaces the file, so its inode changes).

    The manifests of -o renders live in the cache too; they are not compiled templates."""
    return {
        p.relative_to(cache_dir).as_posix(): p.stat().st_ino
        for p in cache_dir.rglob("*")
        if p.is_file() and p.relative_to(cache_dir).parts[0] != "manifests"
    }


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
    assert len(written) == 5  # three templates and two partials
    warm = render(project, "warm")
    assert cold == warm == uncached
    assert uncached["app.yaml"] == (
        b"name: home-ops\nconstant: FOLDED!\nlabels:\napp: home_ops\nnodes:\n"
        b"  - a.example.com\n  - c.example.com\n"
    )
    assert "disabled.yaml" not in uncached and uncached["plain.txt"] == b"copied as is\n"
    assert cache_files(cache_dir) == written, "the warm run rewrote cache files"


def test_the_cache_counts_hits_through_the_library_api(project: Path):
    settings = load_settings(project)
    data = load_data(settings).values
    runs = []
    for _ in range(2):
        setup = build_environment(settings, data)
        code_cache = cache.for_environment(setup.env)
        setup.env.bytecode_cache = code_cache
        tree = render_tree(settings, data, setup)
        runs.append((code_cache.compiled, code_cache.disk_hits, tree.files))
    (compiled1, hits1, files1), (compiled2, hits2, files2) = runs
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


def test_a_corrupt_cache_file_is_ignored_and_rewritten(project: Path):
    cache_dir = project.parent / "cache"
    expected = render(project, "out")
    files = sorted(p for p in cache_dir.rglob("*") if p.is_file())
    assert len(files) == 5
    damaged = {
        files[0]: b"not a cache file at all",
        files[1]: files[1].read_bytes()[:-7],  # truncated
        files[2]: b"",
    }
    flipped = bytearray(files[3].read_bytes())
    flipped[-3] ^= 0xFF  # one byte of the marshalled code
    damaged[files[3]] = bytes(flipped)
    for path, blob in damaged.items():
        path.write_bytes(blob)
    assert render(project, "again") == expected
    for path, blob in damaged.items():
        assert path.read_bytes() != blob, f"{path.name} was not rewritten"
    assert render(project, "third") == expected


def test_a_changed_setting_does_not_reuse_code_compiled_for_other_settings(project: Path):
    before = render(project, "out")
    settings = project / "makejinja.toml"
    settings.write_text(settings.read_text() + "\n[makejinja.whitespace]\ntrim_blocks = false\n")
    after = render(project, "out2")
    assert after != before
    assert after == render(project, "uncached", "--no-cache")


def test_an_edited_plugin_filter_is_not_served_from_constant_folded_code(project: Path):
    # Jinja folds `"folded" | shout` into the compiled code; the plugin's source is in the key.
    assert b"constant: FOLDED!" in render(project, "out")["app.yaml"]
    plugin = project / "scripts" / "plugin.py"
    # A different size too: Python itself would reuse a stale .pyc for a same-size edit made
    # within the same second.
    plugin.write_text(plugin.read_text().replace('+ "!"', '+ "?!"'))
    assert b"constant: FOLDED?!" in render(project, "out2")["app.yaml"]


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

    def facts(source: str):
        def compute():
            calls.append(source)
            return {"length": len(source), "lines": source.count("\n")}

        return cache.memoize(env, "test-facts-1", "t.j2", source, compute)

    assert facts("a\nb\n") == {"length": 4, "lines": 2}
    assert facts("a\nb\n") == {"length": 4, "lines": 2}
    assert calls == ["a\nb\n"], "the second call must come from the cache"
    assert facts("a\nc\nd\n") == {"length": 6, "lines": 3}  # same name, new source
    for stored in (project.parent / "cache" / "facts").rglob("*"):
        if stored.is_file():
            stored.write_bytes(b"{not json")
    assert facts("a\nc\nd\n") == {"length": 6, "lines": 3}
    assert len(calls) == 3
    cache.set_enabled(False)
    try:
        assert facts("a\nc\nd\n") == {"length": 6, "lines": 3}
        assert len(calls) == 4, "--no-cache computes afresh"
    finally:
        cache.set_enabled(True)
