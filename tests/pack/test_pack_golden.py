"""Golden snapshots of the rendered tree for a few named configurations, so that any change to the
pack's output shows up in review as a diff under tests/golden/.

To accept a deliberate change:  UPDATE_GOLDEN=1 pytest tests/pack/test_pack_golden.py
"""

from __future__ import annotations

import difflib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TESTS_DIR
from tests.helpers.pack import cluster_values, render_pack, rendered_paths, sample_values

GOLDEN_DIR = TESTS_DIR / "golden"
UPDATE_HINT = (
    "if the change is intended, run: UPDATE_GOLDEN=1 pytest tests/pack/test_pack_golden.py"
)

CONFIGURATIONS: dict[str, Callable[[], dict[str, Any]]] = {
    # cluster.yaml `{}`: every variable at its schema default (monitoring off).
    "minimal": cluster_values,
    # cluster.sample.yaml: the whole stack.
    "sample": sample_values,
    "prometheus-loki": lambda: cluster_values(
        monitoring_enabled=True, monitoring_stack="prometheus", loki_enabled=True
    ),
    "alerts-off": lambda: cluster_values(monitoring_enabled=True, monitoring_alerts_enabled=False),
}


def tree_files(root: Path) -> dict[str, bytes]:
    if not root.is_dir():
        return {}
    return {path: (root / path).read_bytes() for path in rendered_paths(root)}


def write_golden(golden: Path, files: dict[str, bytes]) -> None:
    shutil.rmtree(golden, ignore_errors=True)
    golden.mkdir(parents=True)
    for path, content in files.items():
        (golden / path).parent.mkdir(parents=True, exist_ok=True)
        (golden / path).write_bytes(content)


def differences(expected: dict[str, bytes], actual: dict[str, bytes], limit: int = 40) -> list[str]:
    """Missing, unexpected and changed files, with a short unified diff for each change."""
    lines = [f"missing from the render: {p}" for p in sorted(expected.keys() - actual.keys())]
    lines += [f"new in the render: {p}" for p in sorted(actual.keys() - expected.keys())]
    for path in sorted(expected.keys() & actual.keys()):
        if expected[path] == actual[path]:
            continue
        diff = difflib.unified_diff(
            expected[path].decode(errors="replace").splitlines(),
            actual[path].decode(errors="replace").splitlines(),
            f"golden/{path}",
            f"rendered/{path}",
            lineterm="",
            n=1,
        )
        lines += list(diff)[:limit]
    return lines


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_rendered_tree_matches_golden(name: str, tmp_path: Path) -> None:
    actual = tree_files(render_pack(tmp_path, CONFIGURATIONS[name]()))
    golden = GOLDEN_DIR / name
    if os.environ.get("UPDATE_GOLDEN"):
        write_golden(golden, actual)
    # An empty render has no golden directory in git: that reads as "expected nothing".
    expected = tree_files(golden)
    problems = differences(expected, actual)
    if problems:
        pytest.fail(f"golden snapshot '{name}' differs ({UPDATE_HINT}):\n" + "\n".join(problems))


def test_every_golden_directory_has_a_configuration() -> None:
    """A renamed or removed configuration must not leave a stale snapshot behind."""
    stale = (
        sorted(p.name for p in GOLDEN_DIR.iterdir() if p.is_dir()) if GOLDEN_DIR.is_dir() else []
    )
    stale = [name for name in stale if name not in CONFIGURATIONS]
    assert not stale, f"tests/golden/ has snapshots nobody renders: {stale}; delete them"


def test_differences_reports_every_kind_of_change() -> None:
    expected = {"a.yaml": b"x: 1\n", "gone.yaml": b"y\n"}
    actual = {"a.yaml": b"x: 2\n", "new.yaml": b"z\n"}
    text = "\n".join(differences(expected, actual))
    assert "missing from the render: gone.yaml" in text
    assert "new in the render: new.yaml" in text
    assert "-x: 1" in text and "+x: 2" in text
