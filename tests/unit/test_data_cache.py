"""Data files as read are kept in the cache by content: a hit gives exactly what a fresh read
gives, any change to the bytes reads the file again, and a damaged entry is read again."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from makeflux import data

CLUSTER = """\
cluster_name: home
when: 2024-01-02
nodes: &nodes
  - {name: a, addr: 10.0.0.1}
  - {name: b, addr: 10.0.0.2}
again: *nodes
ratio: 0.5
"""


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("MAKEFLUX_CACHE_DIR", str(directory))
    return directory


def _entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "data").glob("*")) if (cache_dir / "data").exists() else []


def test_a_remembered_read_equals_a_fresh_one(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER)
    fresh = data.load_file(path, cache_dir)
    assert len(_entries(cache_dir)) == 1
    remembered = data.load_file(path, cache_dir)
    assert remembered == fresh
    assert remembered["when"] == datetime.date(2024, 1, 2)
    assert remembered["again"] is remembered["nodes"]  # aliases stay shared


def test_a_changed_file_is_read_again(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER)
    data.load_file(path, cache_dir)
    path.write_text(CLUSTER.replace("home", "lab"))
    assert data.load_file(path, cache_dir)["cluster_name"] == "lab"
    assert len(_entries(cache_dir)) == 2


def test_a_damaged_entry_is_read_again(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER)
    expected = data.load_file(path, cache_dir)
    (entry,) = _entries(cache_dir)
    blob = bytearray(entry.read_bytes())
    blob[-3] ^= 0xFF
    entry.write_bytes(bytes(blob))
    assert data.load_file(path, cache_dir) == expected
    assert entry.read_bytes() != bytes(blob)  # rewritten whole


def test_errors_are_never_remembered(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("a: 1\na: 2\n")
    for _ in range(2):
        with pytest.raises(data.DataError):
            data.load_file(path, cache_dir)
    assert _entries(cache_dir) == []


def test_without_the_cache_nothing_is_kept(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER)
    assert data.load_file(path, None)["cluster_name"] == "home"
    assert _entries(cache_dir) == []


def test_a_new_reader_reads_again(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key covers data.py's source and PyYAML's version: a new makeflux or PyYAML (another
    loader, other limits) never takes an entry the old one wrote."""
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER)
    data.load_file(path, cache_dir)
    monkeypatch.setattr(data, "_READER_VERSION", b"yaml 99\0another loader")
    data.load_file(path, cache_dir)
    assert len(_entries(cache_dir)) == 2


SETTINGS = '[makejinja]\ninputs = ["templates"]\noutput = "out"\n'


def test_the_settings_file_is_parsed_again_whenever_its_text_changes(
    tmp_path: Path, cache_dir: Path
) -> None:
    """The settings' TOML is kept by its text: a hit gives what a parse gives, any edit is
    parsed again, and text that is not TOML is reported every time, never kept."""
    from makeflux.errors import SettingsError
    from makeflux.settings import load_settings

    (tmp_path / "templates").mkdir()
    toml = tmp_path / "makejinja.toml"
    toml.write_text(SETTINGS)
    first = load_settings(tmp_path)
    assert len(_entries(cache_dir)) == 1
    assert load_settings(tmp_path) == first
    toml.write_text(SETTINGS.replace('"out"', '"elsewhere"'))
    assert load_settings(tmp_path).output == tmp_path / "elsewhere"
    assert len(_entries(cache_dir)) == 2
    toml.write_text(SETTINGS + "broken = [\n")
    for _ in range(2):
        with pytest.raises(SettingsError, match="not valid TOML"):
            load_settings(tmp_path)
    assert len(_entries(cache_dir)) == 2
    toml.write_text(SETTINGS.replace('"out"', '"third"'))
    uncached = load_settings(tmp_path, use_cache=False)
    assert uncached.output == tmp_path / "third" and uncached.cache_dir is None
    assert len(_entries(cache_dir)) == 2, "--no-cache keeps nothing"
