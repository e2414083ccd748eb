"""makeflux plan: what render would do, with diffs, written nowhere."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, run_cli, run_subprocess, snapshot
from tests.helpers.sync_project import ENCRYPTED_SECRET, make_project, out, render, set_data


def plan(project: Path, *args: str):
    return run_cli(["plan", *args], project)


def test_plan_shows_what_enabling_a_feature_would_do_and_writes_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    render(project)
    set_data(project, tracing=True, replicas=2)
    (out(project) / "apps/base/config.yaml").unlink()  # deleted by the user: recreated
    before = snapshot(project)

    result = plan(project, "--set", "tracing=false", "--set", "name=renamed")
    assert result.exit_code == 0, result.output
    assert snapshot(project) == before
    lines = result.stdout.splitlines()
    assert lines[:6] == [
        "~ kubernetes/apps/base/app.yaml",
        "+ kubernetes/apps/base/config.yaml  (missing on disk; render recreates it)",
        "- kubernetes/apps/tracing/kustomization.yaml",
        "- kubernetes/apps/tracing/tempo/agent.yaml",
        "- kubernetes/apps/tracing/tempo/tempo.yaml",
        "",
    ]
    diff = result.stdout.split("\n\n", 1)[1]
    assert diff.splitlines()[:6] == [
        "--- a/kubernetes/apps/base/app.yaml",
        "+++ b/kubernetes/apps/base/app.yaml",
        "@@ -1,2 +1,2 @@",
        " kind: App",
        "-name: demo",
        "+name: renamed",
    ]
    assert lines[-1] == (
        "makeflux: render would do: 1 created, 1 updated, 3 deleted, 1 unchanged, 4 skipped (empty)"
    )


def test_plan_for_a_new_feature_lists_created_files(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    result = plan(project, "--set", "tracing=true", "--stat")
    assert [line for line in result.stdout.splitlines() if line.startswith("+")] == [
        "+ kubernetes/apps/tracing/kustomization.yaml",
        "+ kubernetes/apps/tracing/tempo/agent.yaml",
        "+ kubernetes/apps/tracing/tempo/tempo.yaml",
    ]


def test_stat_lists_paths_without_diffs(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    result = plan(project, "--stat", "--set", "replicas=4")
    assert "~ kubernetes/apps/base/config.yaml" in result.stdout
    assert "@@" not in result.stdout and "+++" not in result.stdout


def test_exit_code_flag(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert plan(project, "--exit-code").exit_code == 1  # nothing rendered yet
    render(project)
    result = plan(project, "--exit-code")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].startswith("makeflux: no changes")
    assert plan(project, "--exit-code", "--set", "replicas=2").exit_code == 1
    assert plan(project, "--set", "replicas=2").exit_code == 0  # without the flag: always 0


def test_plan_warns_about_what_render_would_refuse(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    (out(project) / "apps/base/app.yaml").write_text("kind: App\nname: mine\n")
    result = plan(project, "--set", "name=new", "--exit-code")
    assert result.exit_code == 1
    assert (
        "! kubernetes/apps/base/app.yaml  (edited by hand since makeflux wrote it; "
        "render stops here unless --force)"
    ) in result.stdout
    assert "1 conflict(s)" in result.stdout
    forced = plan(project, "--set", "name=new", "--force")
    assert "~ kubernetes/apps/base/app.yaml" in forced.stdout
    assert "-name: mine" in forced.stdout


def test_json_format(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    render(project)
    (out(project) / "apps/secret.sops.yaml").write_text(ENCRYPTED_SECRET)
    result = plan(project, "--format", "json", "--set", "tracing=false", "--set", "replicas=3")
    report = json.loads(result.stdout)
    assert report["changed"] is True
    assert report["summary"] == {
        "created": 0, "updated": 1, "deleted": 3, "unchanged": 1, "conflicts": 0,
        "skipped_empty": 4, "skipped_encrypted": 1,
    }  # fmt: skip
    by_path = {c["path"]: c for c in report["changes"]}
    config = by_path["kubernetes/apps/base/config.yaml"]
    assert config["action"] == "update" and "-replicas: 1\n+replicas: 3\n" in config["diff"]
    assert by_path["kubernetes/apps/tracing/tempo/tempo.yaml"]["action"] == "delete"
    assert {"path": "kubernetes/apps/secret.sops.yaml", "reason": "encrypted"} in report["skipped"]


def test_encrypted_secret_whose_plaintext_changed_is_shown_without_a_diff(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    (out(project) / "apps/secret.sops.yaml").write_text(ENCRYPTED_SECRET)
    result = plan(project, "--set", "password=rotated")
    assert (
        "~ kubernetes/apps/secret.sops.yaml  (encrypted on disk; its rendered plaintext "
        "changed since the last render)"
    ) in result.stdout
    assert "ENC[" not in result.stdout and "rotated" not in result.stdout


def test_plain_output_when_piped_or_no_color(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    piped = run_subprocess(["plan", "--set", "replicas=2"], project)
    assert piped.returncode == 0
    assert "\x1b[" not in piped.stdout and "-replicas: 1" in piped.stdout
    on_tty = _run_on_a_terminal(["plan", "--set", "replicas=2"], project, {})
    assert "\x1b[" in on_tty and "replicas: 2" in on_tty
    no_color = _run_on_a_terminal(["plan", "--set", "replicas=2"], project, {"NO_COLOR": "1"})
    assert "\x1b[" not in no_color and "+replicas: 2" in no_color


def _run_on_a_terminal(args: list[str], cwd: Path, extra_env: dict[str, str]) -> str:
    """Run makeflux with stdout on a pseudo-terminal, as in an interactive shell."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["PYTHONPATH"] = str(REPO_ROOT / "src")
    env.update(extra_env)
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "makeflux", *args], cwd=cwd, env=env, stdout=follower,
        stderr=subprocess.PIPE,
    ) as proc:  # fmt: skip
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closes when the process exits
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")
