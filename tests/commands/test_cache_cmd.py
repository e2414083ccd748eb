"""The cache's housekeeping: `makeflux cache info/clean`, and entries unused for 30 days removed
on their own (at most once a day), while entries in use are kept."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from makeflux import cache
from tests.conftest import REPO_ROOT, run_cli

DAY = 24 * 3600


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("MAKEFLUX_CACHE_DIR", str(directory))
    return directory


def _render(tmp_path: Path, name: str = "out") -> Path:
    target = tmp_path / name
    result = run_cli(
        ["render", "--data", "cluster.sample.yaml", "--output", str(target)], REPO_ROOT
    )
    assert result.exit_code == 0, result.output
    return target


def _contents(tree: Path) -> dict[str, bytes]:
    return {p.relative_to(tree).as_posix(): p.read_bytes() for p in tree.rglob("*") if p.is_file()}


def _age(path: Path, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then))


def _units(cache_dir: Path, area: str) -> list[Path]:
    return [u for u in cache.cache_units(cache_dir) if u.relative_to(cache_dir).parts[0] == area]


def test_info_and_clean_empty_the_cache_and_the_next_run_renders_the_same(
    tmp_path: Path, cache_dir: Path
) -> None:
    first = _contents(_render(tmp_path, "first"))
    assert _units(cache_dir, "code") and _units(cache_dir, "valid")
    shown = run_cli(["cache", "info"], tmp_path)
    assert shown.exit_code == 0
    assert shown.output.startswith(f"{cache_dir}: ") and " 0 file(s)" not in shown.output

    cleaned = run_cli(["cache", "clean"], tmp_path)
    assert cleaned.exit_code == 0, cleaned.output
    assert cleaned.output.startswith("makeflux: removed ")
    assert cache.cache_units(cache_dir) == []
    assert not list((cache_dir / "code").iterdir())
    assert _contents(_render(tmp_path, "second")) == first


def test_clean_older_than_keeps_what_was_used_recently(tmp_path: Path, cache_dir: Path) -> None:
    _render(tmp_path)
    old_verdict = cache_dir / "valid" / ("0" * 64)
    old_verdict.write_bytes(b"")
    _age(old_verdict, 10)
    kept = cache.cache_units(cache_dir)
    kept.remove(old_verdict)
    result = run_cli(["cache", "clean", "--older-than", "7"], tmp_path)
    assert result.exit_code == 0
    assert result.output.startswith("makeflux: removed 1 file(s)")
    assert cache.cache_units(cache_dir) == kept


def test_units_unused_for_30_days_go_on_their_own_once_a_day(
    tmp_path: Path, cache_dir: Path
) -> None:
    _render(tmp_path)
    stale = cache_dir / "code" / ("0" * 32) / ("0" * 16)  # another Jinja version's, say
    stale.mkdir(parents=True)
    (stale / "seg-1.mfc").write_bytes(b"x")
    _age(stale, 31)
    # Pruned at most once a day: a stamp from an hour ago means not this run.
    _age(cache_dir / "last-prune", 1 / 24)
    _render(tmp_path)
    assert stale.exists()
    _age(cache_dir / "last-prune", 2)
    _render(tmp_path)
    assert not stale.exists()
    assert _units(cache_dir, "code") and _units(cache_dir, "valid")  # those in use remain


def test_reading_an_entry_marks_it_used(tmp_path: Path, cache_dir: Path) -> None:
    _render(tmp_path)
    for unit in cache.cache_units(cache_dir):
        _age(unit, 40)
    _age(cache_dir / "last-prune", 1 / 24)  # no pruning in the next run
    _render(tmp_path)  # reads the compiled templates, the facts and the verdict again
    _age(cache_dir / "last-prune", 2)
    _render(tmp_path)
    for area in ("code", "valid", "manifests"):
        assert _units(cache_dir, area), f"{area} was pruned although just used"
