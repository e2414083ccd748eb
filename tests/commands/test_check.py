"""makeflux check: the CI render-and-diff. 0 in sync, 1 drift, 2 bad input."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli, run_subprocess, snapshot
from tests.helpers.sync_project import (
    ENCRYPTED_SECRET,
    encrypt_secrets,
    make_project,
    out,
    render,
    set_data,
)

SKIPPED_SECRET = "  kubernetes/apps/secret.sops.yaml  (skipped: encrypted)\n"


def check(project: Path, *args: str):
    return run_cli(["check", *args], project)


def test_in_sync_after_render(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    encrypt_secrets(project)
    before = snapshot(project)
    done = run_subprocess(["check"], project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == SKIPPED_SECRET + "makeflux: in sync (3 files)\n"
    assert snapshot(project) == before


def test_drift_from_a_data_change_that_was_not_rendered(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    render(project)
    encrypt_secrets(project)
    set_data(project, tracing=False, replicas=2)  # committed cluster.yaml, forgot to render
    before = snapshot(project)
    done = run_subprocess(["check"], project)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[:4] == [
        "~ kubernetes/apps/base/config.yaml",
        "- kubernetes/apps/tracing/kustomization.yaml",
        "- kubernetes/apps/tracing/tempo/agent.yaml",
        "- kubernetes/apps/tracing/tempo/tempo.yaml",
    ]
    assert "-replicas: 1" in lines and "+replicas: 2" in lines
    assert lines[-1] == "makeflux: drift in 4 file(s); run makeflux render and commit"
    assert snapshot(project) == before


def test_hand_edit_and_missing_file_are_drift(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    (out(project) / "apps/base/app.yaml").write_text("kind: App\nname: hand\n")
    (out(project) / "apps/base/config.yaml").unlink()
    result = check(project)
    assert result.exit_code == 1
    assert "~ kubernetes/apps/base/app.yaml" in result.stdout
    assert "+ kubernetes/apps/base/config.yaml" in result.stdout
    assert "+name: demo" in result.stdout


def test_user_files_in_the_output_tree_are_not_drift(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    encrypt_secrets(project)
    (out(project) / "flux-system").mkdir()
    (out(project) / "flux-system/gotk-sync.yaml").write_text("kind: GitRepository\n")
    assert check(project).exit_code == 0


def test_github_annotations(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    render(project)
    encrypt_secrets(project)
    (out(project) / "apps/tracing/tempo/tempo.yaml").write_text(
        "kind: Tempo\nname: demo-tempo\nextra: 1\n"
    )
    set_data(project, tracing=True, name="prod")
    (out(project) / "apps/tracing/tempo/agent.yaml").unlink()
    result = check(project, "--format", "github")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "::error file=kubernetes/apps/base/app.yaml,line=2::kubernetes/apps/base/app.yaml "
        "differs from what the templates render; run makeflux render and commit",
        "::error file=templates/apps/tracing/tempo/agent.yaml.j2,line=1::"
        "kubernetes/apps/tracing/tempo/agent.yaml is missing; run makeflux render and commit",
        "::error file=kubernetes/apps/tracing/tempo/tempo.yaml,line=2::"
        "kubernetes/apps/tracing/tempo/tempo.yaml differs from what the templates render; "
        "run makeflux render and commit",
    ]


def test_json_report(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    encrypt_secrets(project)
    assert json.loads(check(project, "--format", "json").stdout)["in_sync"] is True
    set_data(project, replicas=5)
    result = check(project, "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["in_sync"] is False and report["hint"] == "run makeflux render and commit"
    assert [(c["path"], c["action"]) for c in report["changes"]] == [
        ("kubernetes/apps/base/config.yaml", "update")
    ]


def test_encrypted_secrets_are_skipped_unless_their_plaintext_changed(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    (out(project) / "apps/secret.sops.yaml").write_text(ENCRYPTED_SECRET)
    result = check(project)
    assert result.exit_code == 0, result.output
    assert "  kubernetes/apps/secret.sops.yaml  (skipped: encrypted)" in result.stdout

    set_data(project, password="rotated")  # the committed ciphertext is now stale
    result = check(project)
    assert result.exit_code == 1
    assert "~ kubernetes/apps/secret.sops.yaml  (encrypted on disk; its rendered plaintext" in (
        result.stdout
    )


def test_plaintext_secret_is_compared(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    (out(project) / "apps/secret.sops.yaml").write_text("password: wrong\n")
    result = check(project)
    assert result.exit_code == 1 and "+password: hunter2" in result.stdout


def test_without_a_manifest_encrypted_secrets_are_skipped(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    (out(project) / "apps/secret.sops.yaml").write_text(ENCRYPTED_SECRET)
    (project / ".makeflux-manifest.json").unlink()
    result = check(project)
    assert result.exit_code == 0, result.output
    assert "(skipped: encrypted)" in result.stdout


def test_bad_input_exits_2(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    (project / "templates/apps/base/app.yaml.j2").write_text("name: #{ nme }#\n")
    done = run_subprocess(["check"], project)
    assert done.returncode == 2
    assert done.stderr.startswith("templates/apps/base/app.yaml.j2:1: 'nme' is undefined")
    assert done.stdout == ""


def test_corrupt_manifest_is_bad_input(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    (project / ".makeflux-manifest.json").write_text("{")
    done = run_subprocess(["check", "--format", "github"], project)
    assert done.returncode == 2
    assert "the manifest is not valid JSON" in done.stderr and "Traceback" not in done.stderr
