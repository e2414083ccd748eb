"""Dataclass code kept in the cache (makeflux.classcode): the same classes, never stale code,
and the standard library left as it is outside makeflux's own imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

# Defines a dataclass the way makeflux's modules do, after the CLI module is imported, and
# reports how it behaves and whether this process had to compile any dataclass text.
# Defines a dataclass the way the console script has makeflux's modules define theirs, and
# reports how it behaves and whether this process had to compile any dataclass text.
PROBE = """
import dataclasses, json, os, sys
from pathlib import Path
from makeflux import classcode

FIELDS = sys.argv[1]
classcode.enable(None if len(sys.argv) > 2 else Path(os.environ["MAKEFLUX_CACHE_DIR"]))
namespace = {}
with classcode.kept():
    exec(
        "from dataclasses import dataclass, field\\n"
        "@dataclass(frozen=True)\\n"
        "class Point:\\n" + FIELDS,
        namespace,
    )
Point = namespace["Point"]
point = Point(1)
try:
    point.x = 5
    frozen = False
except dataclasses.FrozenInstanceError:
    frozen = True
print(json.dumps({
    "repr": repr(point),
    "eq": point == Point(1),
    "hash": hash(point) == hash(Point(1)),
    "frozen": frozen,
    "fields": [f.name for f in dataclasses.fields(Point)],
    "compiled": classcode._added,
    "kept": len(classcode._kept),
    "patched after": "exec" in vars(dataclasses),
}))
"""

TWO_FIELDS = "    x: int\n    y: int = 2\n"
THREE_FIELDS = "    x: int\n    y: int = 2\n    z: str = 'z'\n"


def probe(cache_dir: Path, fields: str, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"), MAKEFLUX_CACHE_DIR=str(cache_dir))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, fields, *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def memo_files(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "classcode").glob("*.marshal"))


def test_kept_code_makes_the_same_class_and_a_changed_class_gets_its_own(tmp_path: Path):
    cache_dir = tmp_path / "cache"
    first = probe(cache_dir, TWO_FIELDS)
    assert first["compiled"] and len(memo_files(cache_dir)) == 1
    second = probe(cache_dir, TWO_FIELDS)
    assert not second["compiled"], "the second start compiled no dataclass text"
    expected = {"repr": "Point(x=1, y=2)", "eq": True, "hash": True, "frozen": True}
    for run in (first, second):
        assert {k: run[k] for k in expected} == expected
    # A field added: the generated texts differ, so they are compiled, never the old code run.
    changed = probe(cache_dir, THREE_FIELDS)
    assert changed["compiled"]
    assert changed["repr"] == "Point(x=1, y=2, z='z')" and changed["fields"] == ["x", "y", "z"]
    assert not probe(cache_dir, THREE_FIELDS)["compiled"]
    assert not probe(cache_dir, TWO_FIELDS)["compiled"], "both versions are kept"


def test_a_damaged_file_is_ignored_and_replaced(tmp_path: Path):
    cache_dir = tmp_path / "cache"
    probe(cache_dir, TWO_FIELDS)
    (memo,) = memo_files(cache_dir)
    good = memo.read_bytes()
    for damaged in (b"", b"garbage", good[:-10], good[:40] + bytes(len(good) - 40)):
        memo.write_bytes(damaged)
        run = probe(cache_dir, TWO_FIELDS)
        assert run["compiled"] and run["repr"] == "Point(x=1, y=2)"
        assert not probe(cache_dir, TWO_FIELDS)["compiled"], "rewritten whole at exit"


def test_no_cache_writes_no_file_and_clean_removes_it(tmp_path: Path):
    from makeflux import cache

    cache_dir = tmp_path / "cache"
    run = probe(cache_dir, TWO_FIELDS, "--no-cache")
    assert run["repr"] == "Point(x=1, y=2)" and memo_files(cache_dir) == []
    probe(cache_dir, TWO_FIELDS)
    (memo,) = memo_files(cache_dir)
    assert memo in cache.cache_units(cache_dir)
    cache.clean(cache_dir)
    assert memo_files(cache_dir) == []


def test_outside_kept_the_standard_library_is_untouched(tmp_path: Path):
    """Importing makeflux (as a library caller or a plugin does) patches nothing; the console
    script's kept() ends with the dataclasses module as it was."""
    run = probe(tmp_path / "cache", TWO_FIELDS)
    assert run["patched after"] is False
    import dataclasses

    import makeflux.cli  # noqa: F401
    from makeflux import classcode

    assert classcode.FITS  # this Python: the contact fits
    assert "exec" not in vars(dataclasses)
    with classcode.kept():  # not enabled in this process: does nothing
        assert "exec" not in vars(dataclasses)
