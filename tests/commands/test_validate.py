"""`makeflux validate` on every fixture against the shipped schema prints exactly what is expected.

tests/fixtures/invalid/NAME.yaml is checked with `--data NAME.yaml` plus the arguments in
NAME.args (one per line, optional); NAME.expected holds the exact stderr. A case rejected for
another reason than the one it was written for fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO_ROOT, run_cli, run_subprocess

from tests.conftest import TESTS_DIR

FIXTURES = TESTS_DIR / "fixtures"
VALID = FIXTURES / "valid"
INVALID = FIXTURES / "invalid"
SETTINGS = REPO_ROOT / "makeflux.toml"  # names schemas/cluster.schema.json


@pytest.fixture(autouse=True)
def own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No remembered verdict from another test (or the user's own runs) decides a case."""
    monkeypatch.setenv("MAKEFLUX_CACHE_DIR", str(tmp_path / "cache"))


INVALID_CASES = sorted(p.stem for p in INVALID.glob("*.expected"))


def invalid_args(name: str) -> list[str]:
    args = ["validate", "--config", str(SETTINGS)]
    if (INVALID / f"{name}.yaml").exists():
        args += ["--data", f"{name}.yaml"]
    extra = INVALID / f"{name}.args"
    if extra.exists():
        args += extra.read_text(encoding="utf-8").splitlines()
    return args


def test_there_are_enough_invalid_cases() -> None:
    assert len(INVALID_CASES) >= 25
    orphans = {p.stem for p in INVALID.glob("*.yaml")} - set(INVALID_CASES)
    assert not orphans, f"fixtures without an .expected file: {sorted(orphans)}"


@pytest.mark.parametrize("name", INVALID_CASES)
def test_invalid_fixture_prints_exactly_the_expected_errors(name: str) -> None:
    result = run_cli(invalid_args(name), INVALID)
    expected = (INVALID / f"{name}.expected").read_text(encoding="utf-8")
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert result.stderr == expected


@pytest.mark.parametrize("name", sorted(p.stem for p in VALID.glob("*.yaml")))
def test_valid_fixture_passes(name: str) -> None:
    args = ["validate", "--config", str(SETTINGS), "--data", f"{name}.yaml"]
    result = run_cli(args, VALID)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"makeflux: {name}.yaml is valid\n"


@pytest.mark.parametrize("name", ["many-errors", "yaml-unclosed-list", "set-out-of-range"])
def test_a_real_process_prints_the_same(name: str) -> None:
    done = run_subprocess(invalid_args(name), INVALID)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (INVALID / f"{name}.expected").read_text(encoding="utf-8")


def test_the_shipped_sample_is_valid() -> None:
    args = ["validate", "--config", str(SETTINGS), "--data", "cluster.sample.yaml"]
    result = run_cli(args, REPO_ROOT)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "makeflux: cluster.sample.yaml is valid\n"
