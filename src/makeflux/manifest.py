"""The manifest: which files makeflux generated, and the sha256 of what it wrote to each.

It lives next to the settings file (`.makeflux-manifest.json`, or `manifest = "..."` in
makeflux.toml) and is meant to be committed. `render` reads it to know what it may prune and
which files were edited by hand since; `check` reads it to find files that should be gone.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from makeflux.errors import ManifestError, Problem
from makeflux.errors import display_path as _display
from makeflux.settings import Settings

MANIFEST_FILE = ".makeflux-manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """Generated paths (posix, relative to `output`) → "sha256:<hex>" of the content written."""

    output: str  # the output directory, relative to the manifest's directory when below it
    files: Mapping[str, str] = field(default_factory=dict)
    # What a render that was killed before it finished (kill -9, power loss) was writing, from
    # its journal: content with these hashes is makeflux's too, not a hand edit.
    pending: Mapping[str, str] = field(default_factory=dict)

    def written_by_makeflux(self, relative: str, digest: str) -> bool:
        return digest in (self.files.get(relative), self.pending.get(relative))


def content_hash(content: bytes) -> str:
    return digest_text(hashlib.sha256(content).digest())


def digest_text(sha256: bytes) -> str:
    """A raw sha256 digest as the manifest writes hashes: "sha256:<hex>"."""
    return "sha256:" + sha256.hex()


def manifest_path(settings: Settings) -> Path:
    """Where this run's manifest lives: `manifest` from makeflux.toml, else next to the settings."""
    if settings.manifest is not None:
        return settings.manifest
    directory = settings.source.parent if settings.source is not None else settings.base_dir
    return directory / MANIFEST_FILE


def scratch_manifest_path(output: Path, cache_dir: Path | None) -> Path | None:
    """The manifest of an `-o DIR` render: in the user's cache, keyed on DIR, so that DIR holds
    exactly the rendered files. None without a usable cache (--no-cache): then nothing is
    pruned in DIR and every file that differs is protected."""
    from makeflux import cache

    if cache_dir is None:
        return None
    directory = cache_dir / "manifests"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    key = hashlib.sha256(str(output.resolve()).encode()).hexdigest()[:24]
    path = directory / f"{key}.json"
    cache.mark_used(path)  # read on every -o DIR run: pruning keeps it while DIR is in use
    return path


def output_label(manifest_file: Path, output: Path) -> str:
    """How the manifest names the output directory: relative to the manifest, so that a clone
    elsewhere (a CI checkout) still recognises it."""
    try:
        return Path(os.path.relpath(output.resolve(), manifest_file.parent.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return output.resolve().as_posix()


def journal_path(manifest_file: Path) -> Path:
    """Where a render lists what it is about to write, until the manifest records it."""
    return manifest_file.with_name(manifest_file.name + ".pending")


def read_journal(manifest_file: Path) -> dict[str, str]:
    """The paths and hashes an interrupted render was writing; {} when there is no journal.

    An unreadable journal counts as none: it only ever widens what counts as makeflux's."""
    try:
        raw = json.loads(journal_path(manifest_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    files = raw.get("files") if isinstance(raw, dict) else None
    if not isinstance(files, dict):
        return {}
    return {
        relative: digest
        for relative, digest in files.items()
        if _safe_relative(relative) and isinstance(digest, str) and _valid_digest(digest)
    }


def render_journal(files: Mapping[str, str]) -> bytes:
    document = {"makeflux_journal": MANIFEST_VERSION, "files": dict(sorted(files.items()))}
    return (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def read_manifest(path: Path) -> Manifest | None:
    """The manifest at `path`; None when there is none. ManifestError when it cannot be trusted."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _corrupt(path, f"cannot read the manifest ({reason})", None) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _corrupt(path, f"the manifest is not valid JSON ({exc.msg})", exc.lineno) from None
    if not isinstance(raw, dict) or raw.get("makeflux_manifest") != MANIFEST_VERSION:
        raise _corrupt(path, "not a makeflux manifest (version 1 expected)", None)
    output, files = raw.get("output"), raw.get("files")
    if not isinstance(output, str) or not isinstance(files, dict):
        raise _corrupt(path, "the manifest needs 'output' (a string) and 'files' (a table)", None)
    for relative, digest in files.items():
        if not _safe_relative(relative):
            # A path that leaves the output directory must never reach the pruner.
            raise _corrupt(path, f"the manifest lists an unsafe path {relative!r}", None)
        if not isinstance(digest, str) or not _valid_digest(digest):
            raise _corrupt(path, f"the manifest's hash for {relative!r} is not sha256:<hex>", None)
    return Manifest(output=output, files=dict(files))


def render_manifest(manifest: Manifest) -> bytes:
    """Deterministic, diff-friendly JSON: sorted, one path per line, trailing newline."""
    document = {
        "makeflux_manifest": MANIFEST_VERSION,
        "output": manifest.output,
        "files": dict(sorted(manifest.files.items())),
    }
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _safe_relative(relative: object) -> bool:
    if not isinstance(relative, str) or not relative or "\\" in relative or "\0" in relative:
        return False
    # No empty, "." or ".." part: so not absolute (a leading "/" makes an empty part), and
    # already in the form PurePosixPath would give it (it only drops empty and "." parts).
    return all(part not in ("", ".", "..") for part in relative.split("/"))


def _valid_digest(digest: str) -> bool:
    """ "sha256:" and 64 lowercase hex digits (strip leaves nothing only when all are)."""
    return len(digest) == 71 and digest.startswith("sha256:") and not digest[7:].strip(_HEX)


_HEX = "0123456789abcdef"


def _corrupt(path: Path, reason: str, line: int | None) -> ManifestError:
    return ManifestError(
        Problem(
            f"{reason}; nothing was changed. Restore it from git "
            f"(git checkout -- {_display(path)}), "
            "or run 'makeflux render --force' to rebuild it (that run prunes nothing and "
            "overwrites files that differ)",
            _display(path),
            line,
        )
    )
