"""RenderedTree vs disk → Plan; apply a Plan safely. The only module that writes the output tree."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from makeflux.render import RenderedTree

CREATE, UPDATE, UNCHANGED = "create", "update", "unchanged"


@dataclass
class Plan:
    """What writing a RenderedTree would do to the disk, path by path."""

    tree: RenderedTree
    actions: dict[str, str] = field(default_factory=dict)  # relative path → CREATE/UPDATE/UNCHANGED

    def paths(self, action: str) -> list[str]:
        return sorted(p for p, a in self.actions.items() if a == action)

    @property
    def changed(self) -> bool:
        return any(a != UNCHANGED for a in self.actions.values())


def file_matches(path: Path, content: bytes) -> bool:
    """True when `path` holds exactly `content`; sizes are compared before reading."""
    try:
        if path.stat().st_size != len(content):
            return False
        return path.read_bytes() == content
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return False


def make_plan(tree: RenderedTree) -> Plan:
    plan = Plan(tree)
    for relative, content in tree.files.items():
        target = tree.root / relative
        if not target.exists():
            plan.actions[relative] = CREATE
        elif file_matches(target, content):
            plan.actions[relative] = UNCHANGED
        else:
            plan.actions[relative] = UPDATE
    return plan


def write_atomic(target: Path, content: bytes, stat_source: Path | None = None) -> None:
    """Replace `target` by a fully written temp file in the same directory (rename is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(content)
        if stat_source is not None:
            shutil.copystat(stat_source, tmp)
        else:
            # mkstemp creates 0600; give the file the mode an ordinary write would.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def apply_plan(plan: Plan) -> None:
    """Write every created or updated file; unchanged files are not touched (mtime stays)."""
    tree = plan.tree
    for relative in sorted(plan.actions):
        if plan.actions[relative] == UNCHANGED:
            continue
        source = tree.sources.get(relative) if relative in tree.copy_stat else None
        write_atomic(tree.root / relative, tree.files[relative], source)
    for relative in sorted(tree.dirs):
        (tree.root / relative).mkdir(parents=True, exist_ok=True)
