"""The manifest file: deterministic, diff-friendly, and never trusted when it looks wrong."""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

import pytest

from makeflux import manifest
from makeflux.errors import MakefluxError
from makeflux.manifest import Manifest, content_hash, read_manifest, render_manifest
from tests.conftest import run_cli
from tests.helpers.sync_project import make_project

DIGEST = content_hash(b"x")


def test_render_and_read_back(tmp_path: Path) -> None:
    manifest = Manifest("kubernetes", {"b/two.yaml": DIGEST, "a/one.yaml": content_hash(b"")})
    path = tmp_path / "m.json"
    path.write_bytes(render_manifest(manifest))
    assert read_manifest(path) == manifest
    assert read_manifest(tmp_path / "absent.json") is None


def test_bytes_do_not_depend_on_insertion_order() -> None:
    forward = {f"apps/{i:03}.yaml": DIGEST for i in range(50)}
    backward = dict(reversed(list(forward.items())))
    text = render_manifest(Manifest("k", forward)).decode()
    assert text == render_manifest(Manifest("k", backward)).decode()
    entries = [line.strip() for line in text.splitlines() if line.strip().startswith('"apps/')]
    assert len(entries) == 50 and entries == sorted(entries)  # one path per line, sorted


@pytest.mark.parametrize(
    "bad_path",
    ["/etc/passwd", "../up.yaml", "a/../../b", "./a.yaml", "a//b", "a\\b.yaml", "", "a/"],
)
def test_paths_that_could_leave_the_output_are_rejected(tmp_path: Path, bad_path: str) -> None:
    path = tmp_path / "m.json"
    document = {"makeflux_manifest": 1, "output": "k", "files": {bad_path: DIGEST}}
    path.write_text(json.dumps(document))
    with pytest.raises(MakefluxError, match="unsafe path"):
        read_manifest(path)


@pytest.mark.parametrize("digest", ["md5:abc", "sha256:XYZ", "sha256:" + "0" * 63, 42])
def test_hashes_must_be_sha256(tmp_path: Path, digest: object) -> None:
    path = tmp_path / "m.json"
    document = {"makeflux_manifest": 1, "output": "k", "files": {"a.yaml": digest}}
    path.write_text(json.dumps(document))
    with pytest.raises(MakefluxError, match="not sha256"):
        read_manifest(path)


def test_makejinja_toml_projects_get_a_manifest_next_to_it(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project / "makeflux.toml").unlink()
    (project / "makejinja.toml").write_text(
        '[makejinja]\ninputs = ["templates"]\noutput = "kubernetes"\ndata = ["cluster.yaml"]\n'
        'jinja_suffix = ".j2"\nundefined = "strict"\n'
        "[makejinja.delimiter]\n"
        'block_start = "#%"\nblock_end = "%#"\nvariable_start = "#{"\nvariable_end = "}#"\n'
        'comment_start = "#|"\ncomment_end = "#|"\n'
    )
    result = run_cli(["render"], project)
    assert result.exit_code == 0, result.output
    files = read_manifest(project / ".makeflux-manifest.json")
    assert files is not None and "apps/base/app.yaml" in files.files


def _safe_relative_by_pathlib(relative: object) -> bool:
    """What manifest._safe_relative answered when it asked pathlib (its answers must not move)."""
    if not isinstance(relative, str) or not relative or "\\" in relative or "\0" in relative:
        return False
    pure = PurePosixPath(relative)
    if pure.is_absolute() or pure.as_posix() != relative:
        return False
    return all(part not in ("", ".", "..") for part in relative.split("/")) and not os.path.isabs(
        relative
    )


@pytest.mark.parametrize(
    "relative",
    [
        "a.yaml",
        "a/b.yaml",
        "/a",
        "//a",
        "a//b",
        "a/",
        "./a",
        "a/./b",
        "a/..",
        "../a",
        "..",
        ".",
        "",
        "a\\b",
        "a\0b",
        ".hidden",
        "a/.b/c",
        "...",
        "a/.../b",
        " ",
        "a /b",
        3,
        None,
    ],
)
def test_safe_relative_answers_as_with_pathlib(relative: object):
    assert manifest._safe_relative(relative) == _safe_relative_by_pathlib(relative)


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "0" * 64,
        "sha256:" + "f" * 64,
        "sha256:" + "F" * 64,
        "sha256:" + "0" * 63,
        "sha256:" + "0" * 65,
        "sha256:" + "0" * 31 + "g" + "0" * 32,
        "sha256:" + "0" * 63 + "\n",
        "sha512:" + "0" * 64,
        "sha256" + "0" * 65,
        ":sha256:" + "0" * 63,
        "",
    ],
)
def test_valid_digest_is_sha256_and_64_lowercase_hex(digest: str):
    prefix, _, hexdigest = digest.partition(":")
    expected = (
        prefix == "sha256"
        and len(hexdigest) == 64
        and all(c in "0123456789abcdef" for c in hexdigest)
    )
    assert manifest._valid_digest(digest) == expected
