"""The render / plan / check commands as a user runs them: summary, lint after rendering, help."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO_ROOT, run_cli, run_subprocess, shipped_project
from tests.helpers.sync_project import (
    BASE_FILES,
    encrypt_secrets,
    files_on_disk,
    make_project,
    out,
    render,
)

# A kustomization pointing at a file that is not rendered: lint's kustomize-resource-missing.
BROKEN_KUSTOMIZATION = "resources:\n  - app.yaml\n  - missing.yaml\n"


def _break_lint(project: Path) -> None:
    (project / "templates/apps/base/kustomization.yaml.j2").write_text(BROKEN_KUSTOMIZATION)


def test_render_as_a_process_prints_one_summary_line(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    done = run_subprocess(["render"], project)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "makeflux: 3 created, 0 updated, 0 deleted, 0 unchanged, 4 skipped (empty)\n"
    )
    assert done.stderr == (
        "makeflux: 1 secret file(s) written in plaintext: encrypt them before committing "
        "(sops --encrypt --in-place kubernetes/apps/secret.sops.yaml)\n"
    )
    quiet = run_subprocess(["--quiet", "render"], project)
    assert quiet.returncode == 0 and quiet.stdout == ""


def test_render_reports_lint_findings_after_writing_the_tree(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    _break_lint(project)
    result = render(project)
    assert result.exit_code == 1  # the tree is written, and the lint error fails the run
    assert "kustomize-resource-missing" in result.stderr and "missing.yaml" in result.stderr
    assert result.stderr.splitlines()[-1] == "makeflux: lint: 1 error(s), 0 warning(s)"
    assert files_on_disk(out(project)) == BASE_FILES | {"apps/base/kustomization.yaml"}

    result = render(project, "--no-lint")
    assert result.exit_code == 0 and result.stderr == ""
    assert "4 unchanged" in result.stdout


def test_check_includes_lint_errors(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    _break_lint(project)
    render(project, "--no-lint")
    encrypt_secrets(project)
    result = run_cli(["check"], project)
    assert result.exit_code == 1  # in sync, but lint fails
    assert "makeflux: in sync (4 files)" in result.stdout
    assert "kustomize-resource-missing" in result.stdout
    assert run_cli(["check", "--no-lint"], project).exit_code == 0

    report = json.loads(run_cli(["check", "--format", "json"], project).stdout)
    assert report["in_sync"] is True
    assert [f["rule"] for f in report["lint"]] == ["kustomize-resource-missing"]
    github = run_cli(["check", "--format", "github"], project).stdout
    assert "::error file=" in github and "kustomize-resource-missing" in github


def test_help_documents_the_options(tmp_path: Path) -> None:
    for command, options in {
        "render": ["--force", "--no-lint", "--set"],
        "plan": ["--stat", "--format", "--exit-code", "--set"],
        "check": ["--format", "github", "--no-lint"],
    }.items():
        done = run_subprocess([command, "--help"], tmp_path)
        assert done.returncode == 0
        for option in options:
            assert option in done.stdout, (command, option)


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    done = run_subprocess(["check", "--format", "xml"], project)
    assert done.returncode == 2 and "xml" in done.stderr


def test_the_shipped_template_pack_from_a_fresh_copy(tmp_path: Path) -> None:
    """render, plan and check on the repository's own templates, as a user's clone would."""
    project = shipped_project(tmp_path / "clone")

    first = run_cli(["render"], project)
    assert first.exit_code == 0, first.output
    generated = set(json.loads((project / ".makeflux-manifest.json").read_text())["files"])
    assert generated and all(p.startswith("kubernetes/") for p in generated)
    assert run_cli(["check"], project).exit_code == 0

    off = ["--set", "loki_enabled=false", "--set", "tracing_enabled=false"]
    preview = run_cli(["plan", "--stat", "--exit-code", *off], project)
    assert preview.exit_code == 1
    deleted = {line[2:] for line in preview.stdout.splitlines() if line.startswith("- ")}
    assert "kubernetes/apps/monitoring/loki/ks.yaml" in deleted
    assert "kubernetes/apps/monitoring/tempo/ks.yaml" in deleted

    assert run_cli(["render", *off], project).exit_code == 0
    assert not (project / "kubernetes/apps/monitoring/loki").exists()
    assert not (project / "kubernetes/apps/monitoring/tempo").exists()
    drift = run_cli(["check"], project)  # cluster.yaml still says enabled: the tree drifted
    assert drift.exit_code == 1 and "run makeflux render and commit" in drift.stdout

    assert run_cli(["render"], project).exit_code == 0
    assert set(json.loads((project / ".makeflux-manifest.json").read_text())["files"]) == (
        generated
    )
    assert run_cli(["check"], project).exit_code == 0
    assert (project / "cluster.yaml").read_bytes() == (
        REPO_ROOT / "cluster.sample.yaml"
    ).read_bytes()
