"""render's safety: manifest, prune, hand-edit guard, sops files, no churn, failures mid-write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from makeflux import sync
from tests.conftest import run_cli, run_subprocess, snapshot
from tests.helpers.sync_project import (
    BASE_FILES,
    ENCRYPTED_SECRET,
    SETTINGS,
    TRACING_FILES,
    files_on_disk,
    make_project,
    manifest,
    out,
    render,
    set_data,
    sha,
)

# --- the manifest and no churn -------------------------------------------------------------------


def test_first_render_writes_the_tree_and_a_manifest_of_it(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = render(project)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "makeflux: 3 created, 0 updated, 0 deleted, 0 unchanged, 4 skipped (empty)\n"
    )
    assert files_on_disk(out(project)) == BASE_FILES
    recorded = manifest(project)
    assert set(recorded) == BASE_FILES
    for relative, digest in recorded.items():
        assert digest == sha((out(project) / relative).read_bytes())
    text = (project / ".makeflux-manifest.json").read_text()
    # Diff-friendly: sorted, one path per line, newline at the end.
    path_lines = [line for line in text.splitlines() if "sha256:" in line]
    assert path_lines == sorted(path_lines) and len(path_lines) == 3
    assert '"output": "kubernetes"' in text and text.endswith("}\n")


def test_second_render_touches_no_file(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert render(project).exit_code == 0
    before = snapshot(project)
    result = render(project)
    assert result.exit_code == 0, result.output
    assert "0 created, 0 updated, 0 deleted, 3 unchanged" in result.stdout
    assert snapshot(project) == before  # content, mode and mtime of every file, manifest included


def test_a_change_updates_only_the_files_it_affects(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    before = snapshot(out(project))
    set_data(project, replicas=3)
    result = render(project)
    assert "0 created, 1 updated, 0 deleted, 2 unchanged" in result.stdout
    after = snapshot(out(project))
    assert after["apps/base/config.yaml"][0] == b"replicas: 3\n"
    assert {k: v for k, v in after.items() if k != "apps/base/config.yaml"} == {
        k: v for k, v in before.items() if k != "apps/base/config.yaml"
    }
    assert manifest(project)["apps/base/config.yaml"] == sha(b"replicas: 3\n")


# --- prune ---------------------------------------------------------------------------------------


def test_disabling_a_feature_removes_its_files_and_nothing_else(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    assert render(project).exit_code == 0
    assert files_on_disk(out(project)) == BASE_FILES | TRACING_FILES
    (out(project) / "apps/notes.txt").write_text("mine\n")  # a user file next to them
    before = snapshot(out(project))

    set_data(project, tracing=False)
    result = render(project)
    assert result.exit_code == 0, result.output
    assert "0 created, 0 updated, 3 deleted, 3 unchanged" in result.stdout
    assert files_on_disk(out(project)) == BASE_FILES | {"apps/notes.txt"}
    assert not (out(project) / "apps/tracing").exists()  # emptied directories are removed
    after = snapshot(out(project))
    assert after == {k: v for k, v in before.items() if k not in TRACING_FILES}
    assert set(manifest(project)) == BASE_FILES

    set_data(project, tracing=True)
    result = render(project)
    assert "3 created, 0 updated, 0 deleted, 3 unchanged" in result.stdout
    assert files_on_disk(out(project)) == BASE_FILES | TRACING_FILES | {"apps/notes.txt"}
    assert snapshot(out(project))["apps/base/app.yaml"] == before["apps/base/app.yaml"]


def test_prune_keeps_a_directory_that_still_holds_a_user_file(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    render(project)
    (out(project) / "apps/tracing/tempo/values.local.yaml").write_text("mine: true\n")
    set_data(project, tracing=False)
    assert render(project).exit_code == 0
    assert files_on_disk(out(project) / "apps/tracing") == {"tempo/values.local.yaml"}


def test_removed_template_is_pruned(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    (project / "templates/apps/base/config.yaml.j2").unlink()
    result = render(project)
    assert "1 deleted" in result.stdout
    assert not (out(project) / "apps/base/config.yaml").exists()
    assert (out(project) / "apps/base/app.yaml").exists()


def test_files_makeflux_did_not_generate_are_never_deleted(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    out(project).mkdir()
    (out(project) / "flux-system").mkdir()
    (out(project) / "flux-system/gotk-components.yaml").write_text("kind: List\n")
    render(project)
    set_data(project, tracing=True)
    render(project)
    set_data(project, tracing=False)
    assert render(project, "--force").exit_code == 0
    assert (out(project) / "flux-system/gotk-components.yaml").read_text() == "kind: List\n"


# --- the hand-edit guard -------------------------------------------------------------------------


def test_hand_edited_file_stops_render_and_nothing_is_written(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    render(project)
    (out(project) / "apps/base/app.yaml").write_text("kind: App\nname: edited-by-hand\n")
    set_data(project, tracing=False, name="renamed", replicas=5)  # would update, delete, prune
    before = snapshot(project)
    result = render(project)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        "kubernetes/apps/base/app.yaml: edited by hand since makeflux wrote it"
    )
    assert "nothing written" in result.stderr and "--force" in result.stderr
    assert snapshot(project) == before

    result = render(project, "--force")
    assert result.exit_code == 0, result.output
    assert (out(project) / "apps/base/app.yaml").read_text() == "kind: App\nname: renamed\n"
    assert files_on_disk(out(project)) == BASE_FILES


def test_hand_edited_file_that_is_no_longer_rendered_is_not_deleted(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    render(project)
    edited = out(project) / "apps/tracing/tempo/tempo.yaml"
    edited.write_text("kind: Tempo\n# tuned by hand\n")
    set_data(project, tracing=False)
    result = render(project)
    assert result.exit_code == 2
    assert "kubernetes/apps/tracing/tempo/tempo.yaml: no longer rendered, but edited by hand" in (
        result.stderr
    )
    assert edited.read_text() == "kind: Tempo\n# tuned by hand\n"
    assert files_on_disk(out(project)) == BASE_FILES | TRACING_FILES


def test_user_file_at_a_generated_path_is_protected(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (out(project) / "apps/base").mkdir(parents=True)
    (out(project) / "apps/base/config.yaml").write_text("replicas: 9  # mine\n")
    result = render(project)
    assert result.exit_code == 2
    assert "kubernetes/apps/base/config.yaml: not written by makeflux" in result.stderr
    assert files_on_disk(out(project)) == {"apps/base/config.yaml"}
    assert not (project / ".makeflux-manifest.json").exists()

    assert render(project, "--force").exit_code == 0
    assert (out(project) / "apps/base/config.yaml").read_text() == "replicas: 1\n"


def test_a_symlink_at_a_generated_path_is_never_followed_or_replaced(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    elsewhere = tmp_path / "elsewhere.yaml"
    app = out(project) / "apps/base/app.yaml"
    elsewhere.write_bytes(app.read_bytes())  # even with the very content makeflux would write
    app.unlink()
    app.symlink_to(elsewhere)
    for args in ([], ["--force"]):
        result = render(project, *args)
        assert result.exit_code == 2
        assert "kubernetes/apps/base/app.yaml: a symlink is in the way; move it" in result.stderr
    assert app.is_symlink() and elsewhere.read_bytes() != b""


def test_a_directory_at_a_generated_path_is_never_replaced(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (out(project) / "apps/base/app.yaml").mkdir(parents=True)
    (out(project) / "apps/base/app.yaml/notes.txt").write_text("mine\n")
    for args in ([], ["--force"]):
        result = render(project, *args)
        assert result.exit_code == 2
        assert "kubernetes/apps/base/app.yaml: a directory is in the way; move it" in result.stderr
        assert "--force cannot fix this" in result.stderr
    assert files_on_disk(out(project)) == {"apps/base/app.yaml/notes.txt"}
    planned = run_cli(["plan", "--stat"], project)
    expected = (
        "! kubernetes/apps/base/app.yaml  (a directory is in the way; move it; render stops here)"
    )
    assert expected in planned.stdout
    assert run_cli(["check"], project).exit_code == 1


def test_makejinja_force_setting_covers_only_files_outside_the_manifest(tmp_path: Path) -> None:
    project = make_project(tmp_path, settings=SETTINGS + "force = true\n")
    (out(project) / "apps/base").mkdir(parents=True)
    (out(project) / "apps/base/config.yaml").write_text("replicas: 9  # old makejinja output\n")
    assert render(project).exit_code == 0  # force = true: overwrite files makeflux did not write
    assert (out(project) / "apps/base/config.yaml").read_text() == "replicas: 1\n"

    (out(project) / "apps/base/app.yaml").write_text("edited\n")
    set_data(project, name="other")
    result = render(project)
    assert result.exit_code == 2  # a hand edit of a generated file still needs --force
    assert (out(project) / "apps/base/app.yaml").read_text() == "edited\n"


def test_first_render_adopts_files_that_already_match(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (out(project) / "apps/base").mkdir(parents=True)
    (out(project) / "apps/base/app.yaml").write_text("kind: App\nname: demo\n")
    os.utime(out(project) / "apps/base/app.yaml", ns=(1_000_000_000, 1_000_000_000))
    result = render(project)
    assert result.exit_code == 0, result.output
    assert "2 created, 0 updated, 0 deleted, 1 unchanged" in result.stdout
    assert (out(project) / "apps/base/app.yaml").stat().st_mtime_ns == 1_000_000_000
    assert set(manifest(project)) == BASE_FILES


def test_generated_file_deleted_by_the_user_is_recreated(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    (out(project) / "apps/base/config.yaml").unlink()
    result = render(project)
    assert result.exit_code == 0, result.output
    assert "recreated kubernetes/apps/base/config.yaml" in result.stdout
    assert "1 created, 0 updated, 0 deleted, 2 unchanged" in result.stdout
    assert (out(project) / "apps/base/config.yaml").read_text() == "replicas: 1\n"


def test_generated_file_deleted_by_the_user_and_no_longer_rendered(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    render(project)
    (out(project) / "apps/tracing/tempo/agent.yaml").unlink()
    set_data(project, tracing=False)
    result = render(project)
    assert result.exit_code == 0, result.output
    assert "2 deleted" in result.stdout
    assert set(manifest(project)) == BASE_FILES


# --- the manifest cannot be trusted ---------------------------------------------------------------

CORRUPTIONS = {
    "not json": (lambda p: p.write_text('{"files": {\n'), ".makeflux-manifest.json:2:"),
    "wrong shape": (lambda p: p.write_text('["a"]\n'), "not a makeflux manifest"),
    "unsafe path": (
        lambda p: p.write_text(
            '{"makeflux_manifest": 1, "output": "kubernetes", "files": {"../cluster.yaml": '
            '"sha256:' + "0" * 64 + '"}}\n'
        ),
        "unsafe path '../cluster.yaml'",
    ),
    "unreadable": (lambda p: (p.unlink(), p.mkdir()), "cannot read the manifest"),
    "not utf-8": (lambda p: p.write_bytes(b"\xff\xfe{"), "cannot read the manifest"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_manifest_stops_render_until_force(tmp_path: Path, case: str) -> None:
    project = make_project(tmp_path, tracing=True)
    render(project)
    corrupt, expected = CORRUPTIONS[case]
    corrupt(project / ".makeflux-manifest.json")
    set_data(project, tracing=False, replicas=2)
    before = snapshot(out(project))

    done = run_subprocess(["render"], project)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
    assert "git checkout -- .makeflux-manifest.json" in lines[0] and "--force" in lines[0]
    assert "Traceback" not in done.stderr
    assert snapshot(out(project)) == before

    if case == "unreadable":
        (project / ".makeflux-manifest.json").rmdir()
    result = render(project, "--force")
    assert result.exit_code == 0, result.output
    # Without a trustworthy manifest nothing is pruned; the rebuilt one lists this render.
    assert files_on_disk(out(project)) == BASE_FILES | TRACING_FILES
    assert set(manifest(project)) == BASE_FILES
    assert (project / "cluster.yaml").exists()


def test_manifest_location_is_configurable(tmp_path: Path) -> None:
    project = make_project(tmp_path, settings=SETTINGS + 'manifest = "state/generated.json"\n')
    (project / "state").mkdir()
    assert render(project).exit_code == 0
    assert not (project / ".makeflux-manifest.json").exists()
    assert '"output": "../kubernetes"' in (project / "state/generated.json").read_text()


def test_output_elsewhere_leaves_the_manifest_alone(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    render(project)
    before = snapshot(project)
    preview = tmp_path / "preview"
    result = run_cli(["render", "-o", str(preview), "--set", "tracing=false"], project)
    assert result.exit_code == 0, result.output
    assert files_on_disk(preview) == BASE_FILES
    assert snapshot(project) == before  # neither the real tree nor its manifest changed


def test_output_elsewhere_keeps_its_own_manifest_outside_it(tmp_path: Path) -> None:
    # The quick start renders into a scratch directory; plan and render -o it must then know
    # what makeflux wrote there: what a flag removes is a delete, not a conflict.
    project = make_project(tmp_path, tracing=True)
    preview = tmp_path / "preview"
    assert run_cli(["render", "-o", str(preview)], project).exit_code == 0
    assert files_on_disk(preview) == BASE_FILES | TRACING_FILES  # no manifest inside
    plan = run_cli(["plan", "--stat", "-o", str(preview), "--set", "tracing=false"], project)
    assert plan.exit_code == 0, plan.output
    assert "conflict" not in plan.output
    # Paths are relative to the working directory, even above it.
    assert all(f"- ../preview/{p}" in plan.output for p in TRACING_FILES), plan.output
    result = run_cli(["render", "-o", str(preview), "--set", "tracing=false"], project)
    assert result.exit_code == 0, result.output
    assert files_on_disk(preview) == BASE_FILES
    assert not (project / ".makeflux-manifest.json").exists()


def test_moving_the_output_starts_a_new_manifest_and_keeps_the_old_tree(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    before = snapshot(out(project))
    (project / "makeflux.toml").write_text(SETTINGS.replace('"kubernetes"', '"k8s"'))
    result = render(project)
    assert result.exit_code == 0, result.output
    assert "the output moved from 'kubernetes' to 'k8s'" in result.stderr
    assert snapshot(out(project)) == before  # never pruned: only the user may delete it
    assert files_on_disk(project / "k8s") == BASE_FILES
    assert '"output": "k8s"' in (project / ".makeflux-manifest.json").read_text()
    assert render(project).stderr == ""


# --- sops files ----------------------------------------------------------------------------------


def test_encrypted_secret_is_kept_while_its_plaintext_is_unchanged(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    secret = out(project) / "apps/secret.sops.yaml"
    secret.write_text(ENCRYPTED_SECRET)  # what `sops --encrypt --in-place` does
    before = snapshot(out(project))
    result = render(project)
    assert result.exit_code == 0, result.output
    assert "3 unchanged" not in result.stdout and "1 skipped (encrypted)" in result.stdout
    assert snapshot(out(project)) == before

    set_data(project, password="changed")
    result = render(project)
    assert result.exit_code == 0, result.output  # no guard for rewritten files
    assert secret.read_text() == "password: changed\n"


def test_plaintext_secret_edited_before_encryption_is_overwritten(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    render(project)
    secret = out(project) / "apps/secret.sops.yaml"
    secret.write_text("password: typed-in-by-hand\n")
    result = render(project)
    assert result.exit_code == 0, result.output
    assert secret.read_text() == "password: hunter2\n"


def test_rewritten_patterns_are_configurable(tmp_path: Path) -> None:
    project = make_project(tmp_path, settings=SETTINGS + 'rewritten_patterns = ["config.*"]\n')
    render(project)
    (out(project) / "apps/base/config.yaml").write_text("replicas: 7\n")
    (out(project) / "apps/secret.sops.yaml").write_text("password: mine\n")
    result = render(project)
    assert result.exit_code == 2
    assert "secret.sops.yaml: edited by hand" in result.stderr
    assert "config.yaml" not in result.stderr


# --- failures mid-write: every file old or new, a truthful manifest, convergence -----------------


def _fail_on_call(
    monkeypatch: pytest.MonkeyPatch, n: int, error: BaseException, *, after: bool = False
) -> None:
    """Fault injection: the n-th os.replace (the commit step of every write) raises `error`,
    before renaming, or just `after` it (an interrupt that lands once the file is in place)."""
    real_replace = os.replace
    calls = {"count": 0}
    cache_dir = os.environ.get("MAKEFLUX_CACHE_DIR", "\0")

    def replace(src, dst, *args, **kwargs):
        if os.fspath(dst).startswith(cache_dir):  # the cache's own files, not the output
            return real_replace(src, dst, *args, **kwargs)
        calls["count"] += 1
        if calls["count"] == n:
            if after:
                real_replace(src, dst, *args, **kwargs)
            raise error
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def _assert_manifest_describes_disk(project: Path) -> None:
    recorded = manifest(project)
    # Every file in these trees is generated: one missing from the manifest could never be pruned.
    assert files_on_disk(out(project)) == set(recorded)
    for relative, digest in recorded.items():
        path = out(project) / relative
        assert path.is_file(), f"manifest lists {relative}, which is not on disk"
        assert sha(path.read_bytes()) == digest, f"manifest hash for {relative} is stale"


FAULTS = {
    "disk full on write 1": (1, OSError(28, "No space left on device"), False),
    "disk full on write 3": (3, OSError(28, "No space left on device"), False),
    "interrupt on write 2": (2, KeyboardInterrupt(), False),
    "interrupt right after write 4": (4, KeyboardInterrupt(), True),
    "interrupt right after write 2": (2, KeyboardInterrupt(), True),
}


@pytest.mark.parametrize("threads", [False, True], ids=["one by one", "in threads"])
@pytest.mark.parametrize("case", sorted(FAULTS))
def test_failure_mid_render_leaves_each_file_old_or_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, threads: bool
) -> None:
    n, error, after = FAULTS[case]
    # Big trees are written by a few threads; here even six files are, when `threads`.
    monkeypatch.setattr(sync, "PARALLEL_WRITES_FROM", 1 if threads else 10_000)
    project = make_project(tmp_path)
    render(project)
    old = {p: (out(project) / p).read_bytes() for p in BASE_FILES}
    # The new render creates 3 files and updates 3: six writes, then the manifest.
    set_data(project, tracing=True, name="new", replicas=2, password="new")
    monkeypatch.chdir(project)
    new = {}
    run_cli(["render", "-o", str(tmp_path / "expected")], project)
    for p in BASE_FILES | TRACING_FILES:
        new[p] = (tmp_path / "expected" / p).read_bytes()

    _fail_on_call(monkeypatch, n, error, after=after)
    result = run_cli(["render"], project)
    monkeypatch.undo()
    if isinstance(error, KeyboardInterrupt):
        assert result.exit_code == 130 and "interrupted" in result.stderr
    else:
        assert result.exit_code == 2
        assert "cannot write: No space left on device" in result.stderr
        assert "rerun makeflux render" in result.stderr
    for p in BASE_FILES | TRACING_FILES:
        path = out(project) / p
        state = path.read_bytes() if path.exists() else None
        assert state in (old.get(p), new[p]), p
    assert not [p for p in out(project).rglob("*.tmp")]  # no half-written temp files
    _assert_manifest_describes_disk(project)

    # The next render converges to the new tree, and the one after changes nothing.
    result = run_cli(["render"], project)
    assert result.exit_code == 0, result.output
    assert {p: (out(project) / p).read_bytes() for p in files_on_disk(out(project))} == new
    assert "0 created, 0 updated, 0 deleted, 6 unchanged" in run_cli(["render"], project).stdout


def test_after_a_failed_render_going_back_prunes_what_it_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path)
    render(project)
    set_data(project, tracing=True, replicas=2)
    _fail_on_call(monkeypatch, 4, OSError(13, "Permission denied"))
    assert run_cli(["render"], project).exit_code == 2
    monkeypatch.undo()
    created_before_failure = files_on_disk(out(project)) - BASE_FILES
    assert created_before_failure  # the failed run did create some tracing files
    assert created_before_failure <= set(manifest(project))  # and recorded them

    set_data(project)  # change of mind: back to the original values
    result = run_cli(["render"], project)
    assert result.exit_code == 0, result.output
    assert files_on_disk(out(project)) == BASE_FILES
    assert (out(project) / "apps/base/config.yaml").read_text() == "replicas: 1\n"


def test_manifest_is_not_rewritten_when_a_file_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path)
    render(project)
    old_manifest = manifest(project)
    set_data(project, replicas=2)
    # The only file write fails, so nothing changed on disk: the manifest must stay as it was.
    _fail_on_call(monkeypatch, 1, OSError(5, "Input/output error"))
    assert run_cli(["render"], project).exit_code == 2
    monkeypatch.undo()
    assert manifest(project) == old_manifest
    assert (out(project) / "apps/base/config.yaml").read_text() == "replicas: 1\n"


@pytest.mark.parametrize(
    ("content", "encrypted"),
    [
        (ENCRYPTED_SECRET.encode(), True),
        (b'{\n    "data": "ENC[AES256_GCM,data:eA==,type:str]",\n    "sops": {\n', True),
        (b"TOKEN=ENC[AES256_GCM,data:eA==,type:str]\nsops_version=3.9.0\n", True),
        (b"[app]\ntoken = ENC[AES256_GCM,data:eA==]\n[sops]\nversion = 3.9.0\n", True),
        (b"password: hunter2\n", False),
        (b"stringData:\n  sops: not-metadata\n", False),  # indented: a value, not sops' key
    ],
)
def test_sops_formats_are_recognised_as_encrypted(content: bytes, encrypted: bool) -> None:
    from makeflux.sync import is_encrypted

    assert is_encrypted(content) is encrypted
