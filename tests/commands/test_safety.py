"""Attacks on a project: nothing makeflux did not generate is ever deleted, overwritten or exposed.

Each test is one of the ways a fresh clone was broken on purpose (issue 18): a crafted or
merge-mangled manifest, input that silently reads as empty, symlinked directories, mode and
owner, plaintext secrets, YAML alias bombs, signals and kill -9, two renders at once, settings
that crashed Jinja, and CI formats on bad input.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from makeflux.lock import held
from makeflux.settings import load_settings
from tests.conftest import REPO_ROOT, run_cli, run_subprocess, snapshot
from tests.helpers.sync_project import (
    BASE_FILES,
    ENCRYPTED_SECRET,
    files_on_disk,
    make_project,
    manifest,
    out,
    render,
    set_data,
    sha,
)

# A project rendering into the repository root, as the shipped makeflux.toml does.
ROOT_SETTINGS = """\
[makeflux]
inputs = ["templates"]
output = "."
data = ["cluster.yaml"]
"""


def _repo_project(tmp_path: Path) -> Path:
    project = make_project(tmp_path, ROOT_SETTINGS)
    (project / ".git").mkdir()
    (project / ".git/HEAD").write_text("ref: refs/heads/main\n")
    (project / ".git/config").write_text("[core]\n")
    (project / "README.md").write_text("# my cluster\n")
    return project


def _write_manifest(project: Path, files: dict[str, str]) -> None:
    document = {"makeflux_manifest": 1, "output": ".", "files": files}
    (project / ".makeflux-manifest.json").write_text(json.dumps(document, indent=2) + "\n")


# --- 1. a crafted or merge-mangled manifest ------------------------------------------------------


@pytest.mark.parametrize("force", [False, True], ids=["plain", "--force"])
def test_a_crafted_manifest_cannot_delete_repository_files(tmp_path: Path, force: bool) -> None:
    project = _repo_project(tmp_path)
    assert render(project).exit_code == 0
    crafted = dict(manifest(project))
    for name in (".git/HEAD", ".git/config", "makeflux.toml", "README.md", "cluster.yaml"):
        crafted[name] = sha((project / name).read_bytes())
    crafted["templates/apps/base/app.yaml.j2"] = sha(
        (project / "templates/apps/base/app.yaml.j2").read_bytes()
    )
    _write_manifest(project, crafted)
    before = {p: (project / p).read_bytes() for p in crafted}

    result = render(project, *(["--force"] if force else []))

    assert {p: (project / p).read_bytes() for p in crafted} == before
    if force:
        # The untrustworthy manifest is rebuilt from what was rendered; nothing is pruned.
        assert result.exit_code == 0, result.output
        assert "0 deleted" in result.stdout
        assert set(manifest(project)) == BASE_FILES
    else:
        assert result.exit_code == 2
        lines = result.stderr.splitlines()
        assert (
            ".makeflux-manifest.json: the manifest lists '.git/HEAD', which is inside .git/, "
            "which makeflux never touches; makeflux never generates or deletes it. Remove that "
            "entry (or restore the manifest from git); nothing was changed"
        ) in lines
        assert any("'makeflux.toml', which is the settings file makeflux.toml" in x for x in lines)
        assert any("'cluster.yaml', which is the data file cluster.yaml" in x for x in lines)
        template = "'templates/apps/base/app.yaml.j2', which is inside the template input"
        assert any(template in x for x in lines)
        assert "Traceback" not in result.output


def test_force_never_deletes_a_file_whose_content_changed(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    assert render(project).exit_code == 0
    edited = out(project) / "apps/tracing/tempo/tempo.yaml"
    edited.write_text("kind: Tempo\nname: mine\n")
    set_data(project, tracing=False)
    refused = render(project)
    assert refused.exit_code == 2 and "edited by hand" in refused.stderr

    result = render(project, "--force")
    assert result.exit_code == 0, result.output
    assert edited.read_text() == "kind: Tempo\nname: mine\n"
    assert "kept kubernetes/apps/tracing/tempo/tempo.yaml: no longer rendered" in result.stderr
    assert "apps/tracing/tempo/tempo.yaml" not in manifest(project)
    assert not (out(project) / "apps/tracing/tempo/agent.yaml").exists()  # unedited: pruned


def test_a_merge_mangled_manifest_stops_every_command_and_force_prunes_nothing(
    tmp_path: Path,
) -> None:
    project = _repo_project(tmp_path)
    assert render(project).exit_code == 0
    text = (project / ".makeflux-manifest.json").read_text()
    mangled = text.replace(
        '  "files": {\n',
        '  "files": {\n<<<<<<< HEAD\n    "README.md": "sha256:' + "0" * 64 + '",\n=======\n'
        ">>>>>>> feature\n",
    )
    (project / ".makeflux-manifest.json").write_text(mangled)
    before = snapshot(project)
    for command in ("render", "plan", "check"):
        result = run_cli([command], project)
        assert result.exit_code == 2, command
        assert "the manifest is not valid JSON" in result.stderr
    assert snapshot(project) == before
    set_data(project, tracing=False, name="other")
    result = render(project, "--force")
    assert result.exit_code == 0, result.output
    assert (project / "README.md").read_text() == "# my cluster\n"
    assert "0 deleted" in result.stdout


def test_a_template_rendering_onto_a_project_file_is_refused(tmp_path: Path) -> None:
    project = _repo_project(tmp_path)
    (project / "templates/makeflux.toml.j2").write_text("[makeflux]\n")
    (project / "templates/.git").mkdir()
    (project / "templates/.git/config.j2").write_text("[evil]\n")
    before = snapshot(project)
    result = render(project, "--force")
    assert result.exit_code == 2
    assert (
        "makeflux.toml: a template renders here, but this path is the settings file "
        "makeflux.toml; rename the template (--force cannot fix this)"
    ) in result.stderr
    assert ".git/config: a template renders here, but this path is inside .git/" in result.stderr
    assert snapshot(project) == before


# --- 2. input that silently reads as empty -------------------------------------------------------


def test_a_mistyped_input_directory_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path, ROOT_SETTINGS.replace('"templates"', '"template"'))
    result = run_subprocess(["render"], project)
    assert result.returncode == 2
    assert result.stderr == (
        "makeflux.toml: inputs: 'template' does not exist; fix 'inputs' (relative to the "
        "settings file)\n"
    )


def test_inputs_holding_no_template_are_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project / "makeflux.toml").write_text(
        (project / "makeflux.toml").read_text() + 'include_patterns = ["*.nothing"]\n'
    )
    result = render(project)
    assert result.exit_code == 2
    assert "makeflux.toml: no templates found in the inputs ('templates')" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("~\n", "the file holds only null ('~'), no settings; add your settings as 'key: value'"),
        ("", "the file is empty; add your settings as 'key: value' lines, or write {} to use"),
        ("# only a comment\n---\n", "the file is empty; add your settings"),
    ],
    ids=["tilde", "empty", "comments"],
)
def test_data_that_reads_as_nothing_is_refused(tmp_path: Path, content: str, message: str) -> None:
    project = make_project(tmp_path)
    assert render(project).exit_code == 0
    before = snapshot(out(project))
    (project / "cluster.yaml").write_text(content)
    for command in ("render", "check", "plan", "validate"):
        result = run_cli([command], project)
        assert result.exit_code == 2, command
        assert result.stderr.startswith(f"cluster.yaml: {message}"), result.stderr
    assert snapshot(out(project)) == before


def test_an_empty_mapping_is_allowed(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project / "cluster.yaml").write_text("{}\n")
    (project / "extra.yaml").write_text("name: demo\nreplicas: 1\ntracing: false\npassword: x\n")
    result = run_cli(["render", "--data", "cluster.yaml", "--data", "extra.yaml"], project)
    assert result.exit_code == 0, result.output


def test_a_data_file_of_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project / "cluster.yml.bak").write_text("name: demo\n")
    result = run_cli(["render", "--data", "cluster.yml.bak"], project)
    assert result.exit_code == 2
    assert result.stderr == (
        "cluster.yml.bak: not a data file makeflux reads (the name must end in .yaml, .yml, "
        ".toml, .json); rename it or fix 'data' in the settings\n"
    )


def test_a_data_directory_without_data_files_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project / "vars").mkdir()
    (project / "vars/notes.txt").write_text("nothing here\n")
    result = run_cli(["plan", "--data", "vars"], project)
    assert result.exit_code == 2
    assert result.stderr.startswith("vars: the data directory holds no data files")


def test_a_render_that_would_prune_most_of_the_tree_asks_first(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    (project / "templates/apps/base/app.yaml.j2").write_text(
        "#% if name != 'gone' %#kind: App\n#% endif %#"
    )
    (project / "templates/apps/base/config.yaml.j2").write_text(
        "#% if name != 'gone' %#replicas: 1\n#% endif %#"
    )
    assert render(project).exit_code == 0
    set_data(project, tracing=False, name="gone")  # 5 of the 6 generated files go
    before = snapshot(project)
    for command in ("render", "check"):
        result = run_cli([command], project)
        assert result.exit_code == 2, command
        assert (
            "makeflux: nothing written: this would delete 5 of the 6 files makeflux generated "
            "(more than half). Check 'inputs' and the data files; if turning that much off is "
            "what you meant, rerun with --allow-mass-prune"
        ) in result.stderr
    planned = run_cli(["plan", "--stat"], project)
    assert planned.exit_code == 0 and "render would stop here" in planned.stderr
    assert snapshot(project) == before

    result = render(project, "--allow-mass-prune")
    assert result.exit_code == 0, result.output
    assert files_on_disk(out(project)) == {"apps/secret.sops.yaml"}


def test_half_of_the_tree_is_not_a_mass_prune(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    assert render(project).exit_code == 0
    set_data(project, tracing=False)  # 3 of 6
    result = render(project)
    assert result.exit_code == 0, result.output
    assert files_on_disk(out(project)) == BASE_FILES


# --- 3. symlinked directories --------------------------------------------------------------------


def test_no_write_through_a_symlinked_directory(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (out(project) / "apps").mkdir(parents=True)
    (out(project) / "apps/base").symlink_to(outside, target_is_directory=True)
    result = render(project, "--force")
    assert result.exit_code == 2
    assert (
        "kubernetes/apps/base/app.yaml: 'apps/base' is a symlinked directory; makeflux never "
        "writes through a link (replace it with a real directory) (--force cannot fix this)"
    ) in result.stderr
    assert list(outside.iterdir()) == []
    assert not (project / ".makeflux-manifest.json").exists()


def test_no_prune_through_a_symlinked_directory(tmp_path: Path) -> None:
    project = make_project(tmp_path, tracing=True)
    assert render(project).exit_code == 0
    # The user moved tempo/ elsewhere and linked it back.
    elsewhere = tmp_path / "elsewhere"
    (out(project) / "apps/tracing/tempo").rename(elsewhere)
    (out(project) / "apps/tracing/tempo").symlink_to(elsewhere, target_is_directory=True)
    set_data(project, tracing=False)
    outside_before = snapshot(elsewhere)
    for force in ([], ["--force"]):
        result = render(project, *force)
        assert result.exit_code == 2
        assert (
            "'apps/tracing/tempo' is a symlinked directory; makeflux never deletes through a link"
        ) in result.stderr
    assert snapshot(elsewhere) == outside_before
    assert sorted(p.name for p in elsewhere.iterdir()) == ["agent.yaml", "tempo.yaml"]


# --- 4. mode and owner ---------------------------------------------------------------------------


def test_an_update_keeps_mode_and_owner(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert render(project).exit_code == 0
    config = out(project) / "apps/base/config.yaml"
    app = out(project) / "apps/base/app.yaml"
    config.chmod(0o600)
    app.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(config, 1234, 5678)
    set_data(project, replicas=5, name="renamed")
    result = render(project)
    assert result.exit_code == 0, result.output
    assert "2 updated" in result.stdout
    assert config.read_text() == "replicas: 5\n"
    assert config.stat().st_mode & 0o7777 == 0o600
    assert app.stat().st_mode & 0o7777 == 0o755
    if os.geteuid() == 0:
        assert (config.stat().st_uid, config.stat().st_gid) == (1234, 5678)


# --- 5. secrets ----------------------------------------------------------------------------------


def test_plaintext_secrets_are_private_announced_and_fail_check(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = render(project)
    assert result.exit_code == 0, result.output
    secret = out(project) / "apps/secret.sops.yaml"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert out(project).joinpath("apps/base/app.yaml").stat().st_mode & 0o077  # others: umask
    assert result.stderr == (
        "makeflux: 1 secret file(s) written in plaintext: encrypt them before committing "
        "(sops --encrypt --in-place kubernetes/apps/secret.sops.yaml)\n"
    )
    checked = run_cli(["check"], project)
    assert checked.exit_code == 1
    assert checked.stdout.splitlines() == [
        "! kubernetes/apps/secret.sops.yaml  (a secret in plaintext (no sops metadata); encrypt "
        "it before committing: sops --encrypt --in-place kubernetes/apps/secret.sops.yaml)",
        "makeflux: drift in 1 file(s); run makeflux render and commit",
    ]
    github = run_cli(["check", "--format", "github"], project)
    assert github.exit_code == 1
    assert github.stdout.startswith(
        "::error file=kubernetes/apps/secret.sops.yaml,line=1::kubernetes/apps/secret.sops.yaml: "
        "a secret in plaintext (no sops metadata)"
    )

    # A hand-written plaintext secret elsewhere under the output is caught too.
    (out(project) / "apps/mine.sops.yaml").write_text("token: abc\n")
    (out(project) / ".sops.yaml").write_text("creation_rules: []\n")  # sops' config, not a secret
    secret.write_text(ENCRYPTED_SECRET)
    checked = run_cli(["check"], project)
    assert checked.exit_code == 1
    assert "! kubernetes/apps/mine.sops.yaml  (a secret in plaintext" in checked.stdout
    assert "kubernetes/.sops.yaml" not in checked.stdout
    (out(project) / "apps/mine.sops.yaml").write_text(ENCRYPTED_SECRET)
    assert run_cli(["check"], project).exit_code == 0


def test_the_plaintext_warning_stays_one_readable_line_and_skips_ciphertext(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path)
    templates = project / "templates"
    for n in range(7):
        (templates / f"apps/extra{n}.sops.yaml.j2").write_text("token: plain\n")
    # A template may hold the ciphertext itself: nothing to encrypt, nothing to announce.
    (templates / "apps/sealed.sops.yaml.j2").write_text(ENCRYPTED_SECRET)
    result = render(project)
    assert result.exit_code == 0, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("makeflux: 8 secret file(s) written in plaintext: encrypt them ")
    assert line.endswith(" … and 3 more: makeflux check lists them)")
    assert "sealed" not in line
    assert (out(project) / "apps/sealed.sops.yaml").stat().st_mode & 0o777 != 0o600


def test_an_unchanged_encrypted_secret_is_not_rewritten_in_plaintext(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert render(project).exit_code == 0
    secret = out(project) / "apps/secret.sops.yaml"
    secret.write_text(ENCRYPTED_SECRET)
    set_data(project, replicas=9)
    result = render(project)
    assert result.exit_code == 0 and result.stderr == ""
    assert secret.read_text() == ENCRYPTED_SECRET


# --- 6. YAML resource limits ---------------------------------------------------------------------

LEVELS = "abcdefghi"
BILLION_LAUGHS = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{x}: &{x} [{', '.join(['*' + prev] * 9)}]" for prev, x in itertools.pairwise(LEVELS)]
    + ["name: demo", "replicas: 1", "tracing: false", "password: x", ""]
)


@pytest.mark.parametrize("command", ["validate", "render"])
def test_an_alias_bomb_is_refused_quickly(tmp_path: Path, command: str) -> None:
    project = make_project(tmp_path)
    (project / "makeflux.toml").write_text(
        (project / "makeflux.toml").read_text() + 'schema = "schema.json"\n'
    )
    (project / "schema.json").write_text(json.dumps({"type": "object"}))
    (project / "cluster.yaml").write_text(BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 1000
    done = run_subprocess([command], project, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("cluster.yaml:")
    assert "YAML aliases (*name) expand this value to over 1,000,000 values" in done.stderr


def test_shared_aliases_within_the_limit_still_load(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project / "cluster.yaml").write_text(
        "defaults: &d {cpu: 1, memory: 2}\napps:\n  a: *d\n  b: *d\n"
        "name: demo\nreplicas: 1\ntracing: false\npassword: x\n"
    )
    assert render(project).exit_code == 0


def test_huge_data_and_huge_strings_are_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    big = project / "cluster.yaml"
    with big.open("w") as fp:
        fp.write("name: demo\nblob: ")
        fp.write("x" * (9 * 1024 * 1024))
        fp.write("\n")
    done = run_subprocess(["validate"], project, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("cluster.yaml: 9.4 MB; data files over 8 MiB are refused")

    big.write_text("name: demo\nblob: " + "x" * (1024 * 1024 + 1) + "\n")
    done = run_subprocess(["validate"], project, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("cluster.yaml:2:7: a value of 1,048,577 characters")


# --- 7. signals, kill -9 and what they leave behind ----------------------------------------------


def _big_project(tmp_path: Path, count: int = 1500) -> Path:
    project = make_project(tmp_path)
    many = project / "templates/apps/many"
    many.mkdir(parents=True)
    for n in range(count):
        (many / f"file{n:04d}.yaml.j2").write_text(f"index: {n}\nreplicas: #{{ replicas }}#\n")
    return project


def _start_render(project: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-m", "makeflux", "render", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop_mid_write(project: Path, signum: int) -> tuple[int, str]:
    """Start a render of a changed value and send `signum` once it has begun writing."""
    started = _start_render(project, "--no-lint")
    sample = out(project) / "apps/many/file0200.yaml"  # written early, but not first
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and started.poll() is None:
        if "replicas: 2" in sample.read_text():
            break
        time.sleep(0.001)
    started.send_signal(signum)
    _, stderr = started.communicate(timeout=60)
    return started.returncode, stderr


def _assert_converges(project: Path) -> None:
    """The next render with yet another value succeeds without false hand-edit conflicts, and
    leaves nothing behind that check would flag."""
    set_data(project, replicas=3)
    result = run_cli(["render", "--no-lint"], project)
    assert result.exit_code == 0, result.stderr[:2000]
    assert not list(project.rglob("*.tmp")) and not list(project.rglob("*.pending"))
    (out(project) / "apps/secret.sops.yaml").write_text(ENCRYPTED_SECRET)
    checked = run_cli(["check", "--no-lint"], project)
    assert checked.exit_code == 0, checked.stdout[-2000:]
    recorded = manifest(project)
    assert set(recorded) == files_on_disk(out(project))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_sigterm_mid_write_records_what_was_written(tmp_path: Path, signum: int) -> None:
    project = _big_project(tmp_path)
    assert run_cli(["render", "--no-lint"], project).exit_code == 0
    set_data(project, replicas=2)
    returncode, stderr = _stop_mid_write(project, signum)
    assert returncode in (0, 128 + signum), stderr
    if returncode:
        assert f"makeflux: stopped by {signal.Signals(signum).name}" in stderr
    assert not list(project.rglob("*.tmp"))
    # The manifest describes the disk: every file listed has the recorded content.
    for relative, digest in manifest(project).items():
        assert sha((out(project) / relative).read_bytes()) == digest
    _assert_converges(project)


def test_kill_9_mid_write_leaves_nothing_the_next_render_mistakes(tmp_path: Path) -> None:
    project = _big_project(tmp_path)
    assert run_cli(["render", "--no-lint"], project).exit_code == 0
    set_data(project, replicas=2)
    _stop_mid_write(project, signal.SIGKILL)
    _assert_converges(project)


def test_leftovers_of_a_killed_render_are_reported_by_check_and_removed_by_render(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path)
    assert render(project).exit_code == 0
    (out(project) / "apps/secret.sops.yaml").write_text(ENCRYPTED_SECRET)
    # What kill -9 leaves in the middle of writing config.yaml: the new content in a temp file,
    # another file already renamed into place, and the journal of what was being written.
    set_data(project, replicas=2, name="next")
    (out(project) / "apps/base/.config.yaml.4242.tmp").write_text("replicas: 2\n")
    (out(project) / "apps/base/app.yaml").write_text("kind: App\nname: next\n")
    (out(project) / "apps/base/.mine.1.tmp").write_text("the user's own\n")
    journal = {
        "makeflux_journal": 1,
        "files": {
            "apps/base/app.yaml": sha(b"kind: App\nname: next\n"),
            "apps/base/config.yaml": sha(b"replicas: 2\n"),
        },
    }
    (project / ".makeflux-manifest.json.pending").write_text(json.dumps(journal))

    checked = run_cli(["check"], project)
    assert checked.exit_code == 1
    assert (
        "- kubernetes/apps/base/.config.yaml.4242.tmp  (left by an interrupted render; makeflux "
        "render removes it)"
    ) in checked.stdout
    assert "- .makeflux-manifest.json.pending  (left by an interrupted render" in checked.stdout

    result = render(project)  # no "edited by hand" for app.yaml: the journal vouches for it
    assert result.exit_code == 0, result.output
    assert not (out(project) / "apps/base/.config.yaml.4242.tmp").exists()
    assert not (project / ".makeflux-manifest.json.pending").exists()
    assert (out(project) / "apps/base/.mine.1.tmp").exists()  # not makeflux's
    assert run_cli(["check"], project).exit_code == 0


# --- 8. one render at a time ---------------------------------------------------------------------


def test_a_second_run_waits_then_names_the_process_holding_the_lock(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    before = snapshot(project)
    with held(load_settings(project)):
        done = run_subprocess(["render"], project, env={"MAKEFLUX_LOCK_WAIT": "0.3"})
    assert done.returncode == 2
    assert done.stderr == (
        f".makeflux.lock: another makeflux run (process {os.getpid()}) is writing this tree; "
        "wait for it to finish and run again (if no makeflux is running, delete this file)\n"
    )
    assert snapshot(project) == before
    assert render(project).exit_code == 0
    assert not (project / ".makeflux.lock").exists()


def test_two_renders_at_once_both_land_whole(tmp_path: Path) -> None:
    project = _big_project(tmp_path, 800)
    assert run_cli(["render", "--no-lint"], project).exit_code == 0
    first = _start_render(project, "--no-lint", "--set", "replicas=2")
    time.sleep(0.05)
    second = _start_render(project, "--no-lint", "--set", "replicas=3")
    for process in (first, second):
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    # Whichever ran last, the disk holds one whole render and the manifest says so.
    values = {
        (out(project) / f"apps/many/file{n:04d}.yaml").read_text().splitlines()[1]
        for n in range(800)
    }
    assert len(values) == 1
    for relative, digest in manifest(project).items():
        assert sha((out(project) / relative).read_bytes()) == digest


# --- 9. settings that used to crash inside Jinja -------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            'extensions = ["os.system"]\n',
            "makeflux.toml: extensions: 'os.system' is not a Jinja extension (a subclass of "
            "jinja2.ext.Extension); remove it or name an extension class\n",
        ),
        (
            '[makeflux.delimiter]\nblock_start = "#{"\n',
            "makeflux.toml: [makeflux.delimiter] block_start and variable_start are both '#{'; "
            "Jinja needs the block, variable and comment start delimiters to differ\n",
        ),
    ],
    ids=["extension", "delimiters"],
)
def test_settings_that_crashed_jinja_get_one_line(tmp_path: Path, extra: str, message: str) -> None:
    project = make_project(tmp_path)
    (project / "makeflux.toml").write_text((project / "makeflux.toml").read_text() + extra)
    done = run_subprocess(["render"], project)
    assert done.returncode == 2
    assert done.stderr == message


def test_an_internal_error_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from makeflux import pipeline

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline, "plan", broken)
    result = run_cli(["plan"], make_project(tmp_path))
    assert result.exit_code == 3
    assert result.stderr == (
        "makeflux: internal error: RuntimeError: a bug (rerun with --debug for the traceback, "
        "and please report it)\n"
    )


# --- 10. CI formats on bad input -----------------------------------------------------------------


def test_bad_input_is_annotated_for_github_and_reported_in_json(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project / "templates/apps/base/app.yaml.j2").write_text("name: #{ nme }#\n")
    for command in (["check"], ["lint"], ["plan"]):
        fmt = "json" if command == ["plan"] else "github"
        result = run_cli([*command, "--format", fmt], project)
        assert result.exit_code == 2, command
        assert result.stderr.startswith("templates/apps/base/app.yaml.j2:1: 'nme' is undefined")
        if fmt == "github":
            assert result.stdout.startswith(
                "::error file=templates/apps/base/app.yaml.j2,line=1::'nme' is undefined"
            )
    result = run_cli(["check", "--format", "json"], project)
    report = json.loads(result.stdout)
    assert report["error"][0]["path"] == "templates/apps/base/app.yaml.j2"
    assert report["error"][0]["line"] == 1
    assert report["error"][0]["message"].startswith("'nme' is undefined")


def test_set_waits_for_the_lock_and_names_its_holder(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    before = (project / "cluster.yaml").read_bytes()
    with held(load_settings(project)):
        done = run_subprocess(["set", "replicas=4"], project, env={"MAKEFLUX_LOCK_WAIT": "0.2"})
    assert done.returncode == 2
    assert f"(process {os.getpid()}) is writing this tree" in done.stderr
    assert (project / "cluster.yaml").read_bytes() == before
    assert run_cli(["set", "replicas=4"], project).exit_code == 0
    assert "replicas: 4" in (project / "cluster.yaml").read_text()


def test_a_tree_where_the_lock_cannot_be_made_is_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only checkout (EROFS for the lock file; root ignores chmod, so the file system's
    answer is injected): nothing will be written, so there is nothing to serialize, and a render
    with nothing to change still succeeds."""
    project = make_project(tmp_path)
    assert render(project).exit_code == 0
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path).endswith(".makeflux.lock"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    result = render(project)
    assert result.exit_code == 0, result.output
    assert " 0 created, 0 updated, 0 deleted" in result.stdout
    assert not (project / ".makeflux.lock").exists()
