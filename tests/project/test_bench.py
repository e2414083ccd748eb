"""The benchmark's generator and equality check work on a tiny tree (no timing here)."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))

from generate import generate
from run import byte_compile, compare_trees


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def test_the_generator_is_deterministic_and_scales(tmp_path: Path):
    a = generate(tmp_path / "a", 0.1, seed=3)
    b = generate(tmp_path / "b", 0.1, seed=3)
    generate(tmp_path / "c", 0.1, seed=4)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")
    assert a == b
    big = generate(tmp_path / "big", 0.3, seed=3)
    assert big.templates > 2 * a.templates and big.data_keys > a.data_keys
    assert (tmp_path / "a" / "makejinja.toml").read_text().count('"#%"') == 1


def test_the_bench_verifies_identical_trees_with_both_tools(tmp_path: Path):
    result = subprocess.run(
        [
            *(sys.executable, str(REPO_ROOT / "bench" / "run.py")),
            *("--scale", "0.05", "--verify-only", "--workdir", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "identical trees" in result.stdout
    out = tmp_path / "tree-x0.05"
    assert compare_trees(out / "out-makejinja", out / "out-makeflux") == []
    assert len(list((out / "out-makeflux").rglob("*.yaml"))) >= 10


def test_the_equality_check_sees_every_kind_of_difference(tmp_path: Path):
    left, right = tmp_path / "left", tmp_path / "right"
    for root in (left, right):
        (root / "d").mkdir(parents=True)
        (root / "d" / "same.yaml").write_bytes(b"a: 1\n")
        (root / "d" / "changed.yaml").write_bytes(b"a: 1\n")
    (right / "d" / "changed.yaml").write_bytes(b"a: 1\n\n")
    (left / "only-left.yaml").write_bytes(b"")
    (right / "only-right.yaml").write_bytes(b"")
    assert compare_trees(left, right) == [
        "only in left: only-left.yaml",
        "only in right: only-right.yaml",
        "differs: d/changed.yaml",
    ]


def test_the_bench_byte_compiles_the_package_as_pip_would(tmp_path: Path, monkeypatch):
    package = tmp_path / "benchpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "module.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert byte_compile("benchpkg") == "compiled"
    compiled = importlib.util.cache_from_source(str(package / "module.py"))
    assert Path(compiled).is_file()
    assert byte_compile("no_such_package_here") == "not found"
