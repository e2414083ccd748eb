"""The rendered tree holds each file compressed, with its size and hash beside it; the
sources it is rendered from are found and named as pathlib would."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from makeflux import render
from makeflux.manifest import content_hash
from makeflux.render import PackedFiles


def test_packed_files_give_back_every_byte_with_its_size_and_hash():
    files = PackedFiles()
    contents = {
        "b/config.yaml": b"replicas: 3\n" * 1000,
        "a/empty.yaml": b"",
        "c/binary.bin": bytes(range(256)) * 3,
    }
    for path, content in contents.items():
        files[path] = content
    assert list(files) == list(contents), "insertion order, like a dict"
    assert len(files) == 3 and "a/empty.yaml" in files and "nope" not in files
    for path, content in contents.items():
        assert files[path] == content
        assert files.size(path) == len(content)
        assert files.digest(path) == content_hash(content)
    assert dict(files.items()) == contents
    del files["a/empty.yaml"]
    assert list(files) == ["b/config.yaml", "c/binary.bin"]


def test_a_large_repetitive_file_is_held_in_a_fraction_of_its_size():
    files = PackedFiles()
    line = b"  - name: node-%03d\n    address: 10.0.0.%d\n"
    content = b"".join(line % (i, i) for i in range(200))
    files["nodes.yaml"] = content
    held = files._entries["nodes.yaml"]
    assert isinstance(held, bytes)  # one object a file: size, hash and compressed content
    assert files["nodes.yaml"] == content
    assert len(held) * 3 < len(content)


# discover_sources matches and names paths with strings; these are pathlib's answers.
MATCH_PATTERNS = [
    "*.partial.yaml.j2",
    "*.j2",
    "templates/*.j2",
    "*/*",
    "a/*/c.j2",
    "/abs/*/x.j2",
    "/abs",
    "//abs/x.j2",
    "[ab]*.j2",
    "?.j2",
    "b",
    "x/../y.j2",
    "./a.j2",
    "a//b.j2",
    "*.J2",
    "/",
]
MATCH_PATHS = [
    "/abs/a/x.j2",
    "/abs",
    "/abs/x.j2",
    "/t/templates/b.partial.yaml.j2",
    "/t/a/b/c.j2",
    "/t/.hidden.j2",
    "/t/a.j2",
    "/t/y.j2",
    "/t/x/y.j2",
    "/t/b",
    "/t/a.tar.j2",
    "/t/.j2",
    "/t/j2.",
    "/t/a..j2",
    "/",
]


@pytest.mark.parametrize("pattern", MATCH_PATTERNS)
def test_path_matcher_answers_as_pathlib_match(pattern: str):
    match = render.path_matcher(pattern)
    for text in MATCH_PATHS:
        path = PurePosixPath(text)
        assert match(path.parts) == path.match(pattern), (pattern, text)


def test_path_matcher_refuses_an_empty_pattern_as_pathlib_does():
    match = render.path_matcher("")  # made without complaint, as no path is matched yet
    with pytest.raises(ValueError):
        PurePosixPath("/t/a.j2").match("")
    with pytest.raises(ValueError):
        match(("/", "t", "a.j2"))


@pytest.mark.parametrize(
    "relative",
    ["a.j2", "d/a.yaml.j2", ".j2", "d/.j2", "a.", "d.x/a", "a..j2", "d/a.tar.gz", "noext", "d/"],
)
def test_suffix_is_pathlib_suffix(relative: str):
    assert render._suffix(relative) == PurePosixPath(relative).suffix


REWRITTEN_RELATIVES = [
    "a.sops.yaml",
    "apps/x/secret.sops.yaml",
    "apps/x/secret.yaml",
    ".sops.yaml",
    "a//b.sops.yaml",
    "./a.sops.yaml",
    "/abs/a.sops.yaml",
    "",
    "templates/b.j2",
    "a/b/c.j2",
    "b",
]


@pytest.mark.parametrize("pattern", [*MATCH_PATTERNS, "*.sops.*", "apps/*/*.sops.*"])
def test_is_rewritten_answers_as_pathlib_match(pattern: str):
    from makeflux import sync

    for relative in REWRITTEN_RELATIVES:
        expected = PurePosixPath(relative).match(pattern)
        assert sync.is_rewritten(relative, [pattern]) == expected, (pattern, relative)


@pytest.mark.parametrize("root", ["/", "/srv/out", "/srv/out/"])
def test_boundary_refusal_reads_paths_as_normpath_does(root: str):
    """Boundary.refusal joins a normal relative path onto the root without normpath; the answer
    is the one normpath gives, for normal paths and the others alike."""
    import os
    from pathlib import Path

    from makeflux.boundary import Boundary

    own_files = {Path("/srv/out/settings.toml"): "the settings file", Path("/x"): "x"}
    boundary = Boundary(Path(root), own_files, ((Path("/srv/out/templates"), "the input"),))
    for relative in [
        "settings.toml",
        "a/b.yaml",
        "templates",
        "templates/x.j2",
        "templates2/x",
        "a/../settings.toml",
        "./settings.toml",
        "a//b",
        "../x",
        "x",
        "srv/out/x",
    ]:
        path = os.path.normpath(os.path.join(root, *relative.split("/")))
        expected = boundary._file_texts.get(path)
        answer = boundary.refusal(relative)
        if expected is not None:
            assert answer == f"is {expected}", relative
        elif path == "/srv/out/templates" or path.startswith("/srv/out/templates/"):
            assert answer == "is inside the input", relative
        else:
            assert answer is None, relative


def test_the_recording_loader_finds_templates_as_a_choice_loader_does(tmp_path):
    import jinja2

    from makeflux.environment import RecordingLoader

    (tmp_path / "both.j2").write_text("from disk")
    (tmp_path / "disk.j2").write_text("disk only")
    loaders = [jinja2.DictLoader({"both.j2": "from dict", "dict.j2": "dict only"})]
    loaders.append(jinja2.FileSystemLoader(str(tmp_path)))
    env = jinja2.Environment()
    seen: list[str] = []
    recording, choice = RecordingLoader(loaders), jinja2.ChoiceLoader(loaders)
    recording.on_source = lambda name, source: seen.append(name)
    for name in ("both.j2", "disk.j2", "dict.j2"):
        assert recording.get_source(env, name)[:2] == choice.get_source(env, name)[:2]
    assert seen == ["both.j2", "disk.j2", "dict.j2"]
    for loader in (recording, choice):
        with pytest.raises(jinja2.TemplateNotFound):
            loader.get_source(env, "missing.j2")


def test_kept_empty_directories_leave_out_the_excluded_ones_as_pathlib_match_would(tmp_path):
    """keep_empty keeps the input's directories, except those an exclude pattern matches."""
    from makeflux.settings import settings_from_table

    for directory in ("apps/skip", "skip", "apps/keep/deep", "skipped"):
        (tmp_path / "templates" / directory).mkdir(parents=True)
    settings = settings_from_table(
        {"inputs": ["templates"], "output": "out", "keep_empty": True,
         "exclude_patterns": ["skip", "apps/keep/*"]},
        flavor="makejinja", source=None, base_dir=tmp_path,
    )  # fmt: skip
    expected = {
        path.relative_to(tmp_path / "templates").as_posix()
        for path in (tmp_path / "templates").glob("**/*")
        if not any(path.match(p) for p in settings.exclude_patterns)
    }
    assert render.discover_dirs(settings) == expected == {"apps", "apps/keep", "skipped"}
