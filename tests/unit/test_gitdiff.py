"""plan and check show the diff `git diff` would show: the fewest changed lines, git's context and
hunk headers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli, shipped_project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from makeflux.gitdiff import unified_diff

GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")


def git_diff(old: Path, new: Path) -> str:
    """`git diff --no-index` from the first hunk on (its header names the two paths)."""
    done = subprocess.run(
        [str(GIT), "diff", "--no-index", "--no-color", "--", str(old), str(new)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.stdout[done.stdout.find("@@") :] if "@@" in done.stdout else ""


def hunks(diff: str) -> str:
    return diff[diff.find("@@") :] if "@@" in diff else ""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The shipped project, rendered from the sample."""
    root = shipped_project(tmp_path / "project")
    assert run_cli(["render"], root).exit_code == 0
    return root


@pytest.mark.parametrize(
    "overrides",
    [
        ["node_cpu_threshold=80"],
        ["loki_enabled=false", "tracing_sample_rate=25"],
        ["hubble_ui_enabled=false", "monitoring_stack=prometheus"],
    ],
)
def test_plan_shows_the_diff_git_shows(project: Path, tmp_path: Path, overrides: list[str]) -> None:
    args = [arg for override in overrides for arg in ("--set", override)]
    planned = run_cli(["plan", *args], project)
    assert planned.exit_code == 0, planned.output
    before = tmp_path / "before"
    shutil.copytree(project / "kubernetes", before)
    assert run_cli(["render", "--allow-mass-prune", *args], project).exit_code == 0
    per_file = planned.stdout.split("\n--- a/")[1:]
    assert per_file
    for section in per_file:
        path = section.split("\n", 1)[0]
        old = before / Path(path).relative_to("kubernetes")
        expected = git_diff(old, project / path)
        shown = section.split("\nmakeflux: ", 1)[0].rstrip("\n") + "\n"  # up to the summary
        assert hunks(shown) == expected, path


def test_a_changed_threshold_is_six_changed_lines_as_in_git(project: Path) -> None:
    planned = run_cli(["plan", "--set", "node_cpu_threshold=80"], project)
    changed = [line for line in planned.stdout.splitlines() if line.startswith(("+", "-"))]
    changed = [line for line in changed if not line.startswith(("+++", "---"))]
    assert len(changed) == 6
    assert "@@ -28,13 +28,13 @@ spec:" in planned.stdout


YAML_LINES = st.sampled_from(
    ["spec:", "  rules:", "    - alert: A", "      for: 5m", "      labels:", "", "  expr: x"]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(old=st.lists(YAML_LINES, max_size=30), new=st.lists(YAML_LINES, max_size=30))
def test_never_more_changed_lines_than_git(tmp_path: Path, old: list[str], new: list[str]) -> None:
    """Lines that repeat (as YAML's do) are where a non-minimal diff shows too much."""
    old_text = "".join(line + "\n" for line in old)
    new_text = "".join(line + "\n" for line in new)
    (tmp_path / "a").write_text(old_text)
    (tmp_path / "b").write_text(new_text)
    ours = hunks(unified_diff(old_text, new_text, "a/a", "b/b"))
    theirs = git_diff(tmp_path / "a", tmp_path / "b")

    def count(diff: str) -> int:
        return sum(1 for line in diff.splitlines() if line.startswith(("+", "-")))

    assert count(ours) == count(theirs)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(YAML_LINES, min_size=1, max_size=14),
    added=st.lists(YAML_LINES, min_size=1, max_size=4),
    where=st.integers(min_value=0),
    removed=st.booleans(),
)
def test_one_added_or_removed_run_is_shown_where_git_shows_it(
    tmp_path: Path, lines: list[str], added: list[str], where: int, removed: bool
) -> None:
    """Among equal lines a run could be shown at several places; git picks one by its indent
    heuristic (blank lines, indentation), and so does makeflux."""
    at = where % (len(lines) + 1)
    before = "".join(line + "\n" for line in lines)
    after = "".join(line + "\n" for line in [*lines[:at], *added, *lines[at:]])
    if removed:
        before, after = after, before
    (tmp_path / "a").write_text(before)
    (tmp_path / "b").write_text(after)
    assert hunks(unified_diff(before, after, "a/a", "b/b")) == git_diff(
        tmp_path / "a", tmp_path / "b"
    )
