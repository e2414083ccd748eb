"""RenderedTree vs disk + manifest → Plan; apply it safely. The only module writing the output tree.

Safety rules (see README: Plan, check and prune):
- a path is deleted only when the manifest says makeflux generated it and the disk still holds
  what makeflux wrote there (or with --force);
- a file is overwritten only when makeflux wrote it and nobody edited it since, or when its content
  already matches, or with --force;
- files matching `rewritten_patterns` (sops) are expected to differ and skip the guard;
- a failed or interrupted apply leaves each file old or new, and a manifest that says so.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from makeflux.errors import MakefluxError, Problem
from makeflux.errors import display_path as _display
from makeflux.manifest import (
    Manifest,
    ManifestError,
    content_hash,
    manifest_path,
    output_label,
    read_manifest,
    render_manifest,
)
from makeflux.pipeline import Run
from makeflux.render import RenderedTree
from makeflux.settings import Settings

CREATE, UPDATE, UNCHANGED = "create", "update", "unchanged"
RECREATE = "recreate"  # listed in the manifest, deleted by the user: written again
DELETE = "delete"  # listed in the manifest, no longer rendered: pruned
ENCRYPTED = "encrypted"  # a rewritten file, encrypted on disk, whose plaintext did not change

DEFAULT_REWRITTEN_PATTERNS = ("*.sops.*",)

# sops metadata: a `sops` key (YAML/JSON), `sops_*` lines (dotenv), a [sops] section (INI),
# ENC[...] values (every format, binary included).
_SOPS_MARKERS = re.compile(
    rb'ENC\[[A-Z0-9_]+,|^"?sops"?\s*:|^sops_\w+\s*=|"sops"\s*:\s*\{|^\[sops\]', re.MULTILINE
)


class WriteError(MakefluxError):
    """The output tree could not be written (disk full, permissions ...)."""


class HandEditError(MakefluxError):
    """render would overwrite or delete files makeflux did not write (or no longer wrote)."""


@dataclass(frozen=True)
class Conflict:
    """A path render refuses to touch without --force, and why."""

    path: str
    reason: str
    forceable: bool = True


@dataclass
class Plan:
    """What writing a RenderedTree would do to the disk, path by path."""

    tree: RenderedTree
    actions: dict[str, str] = field(default_factory=dict)  # relative path → action constant
    conflicts: list[Conflict] = field(default_factory=list)
    encrypted_on_disk: set[str] = field(default_factory=set)  # rewritten files holding ciphertext
    previous: Manifest | None = None  # the manifest this plan was made against
    manifest_file: Path | None = None  # where the new manifest goes (None: not kept this run)
    notes: list[str] = field(default_factory=list)  # things the user should know, one per line

    def paths(self, *actions: str) -> list[str]:
        return sorted(p for p, a in self.actions.items() if a in actions)

    @property
    def changed(self) -> bool:
        return bool(self.conflicts) or any(
            a not in (UNCHANGED, ENCRYPTED) for a in self.actions.values()
        )

    def unverifiable(self, relative: str) -> bool:
        """Encrypted on disk with no manifest hash: whether its plaintext changed is unknowable."""
        known = self.previous.files if self.previous else {}
        return relative in self.encrypted_on_disk and relative not in known

    def manifest_label(self) -> str:
        if self.manifest_file is None:
            return self.tree.root.as_posix()
        return output_label(self.manifest_file, self.tree.root)


def tree_file_matches(
    tree: RenderedTree, relative: str, known: os.stat_result | None = None
) -> bool:
    """True when the disk holds exactly what the tree has for `relative` (sizes first).

    `known` is the target's stat, when the caller already has it."""
    target = tree.root / relative
    try:
        status = known or target.stat()
        if not stat.S_ISREG(status.st_mode) or status.st_size != tree.files.size(relative):
            return False
        return content_hash(target.read_bytes()) == tree.files.digest(relative)
    except OSError:  # missing, a directory, unreadable: not the content we would write
        return False


def file_matches(path: Path, content: bytes) -> bool:
    """True when `path` holds exactly `content`; sizes are compared before reading."""
    try:
        if path.stat().st_size != len(content):
            return False
        return path.read_bytes() == content
    except OSError:  # missing, a directory, unreadable: not the content we would write
        return False


def is_rewritten(relative: str, patterns: Iterable[str]) -> bool:
    """True for outputs a later step rewrites (e.g. sops encryption of *.sops.*)."""
    pure = PurePosixPath(relative)
    return any(pure.match(pattern) for pattern in patterns)


def is_encrypted(content: bytes) -> bool:
    """True when `content` carries sops metadata or ENC[...] values, i.e. is no longer plaintext."""
    return _SOPS_MARKERS.search(content) is not None


def load_previous(
    settings: Settings,
    *,
    force: bool = False,
) -> tuple[Manifest | None, Path | None, list[str]]:
    """The manifest that applies to this run's output, where the next one goes, and notes.

    A corrupt manifest stops the run (ManifestError) unless `force`: then it is treated as absent,
    so nothing is pruned, and rebuilt. When the configured output moved, the old tree is left
    alone and a new manifest is started. (`-o DIR` gets its own manifest in DIR: pipeline.load.)
    """
    notes: list[str] = []
    if not settings.keep_manifest:
        return None, None, notes
    path = manifest_path(settings)
    try:
        previous = read_manifest(path)
    except ManifestError:
        if not force:
            raise
        notes.append(f"makeflux: rebuilding the unreadable manifest {_display(path)} (--force)")
        previous = None
    label = output_label(path, settings.output)
    if previous is not None and previous.output != label:
        # The settings' output moved: never prune the old tree, start a manifest for the new one.
        notes.append(
            f"makeflux: the output moved from '{previous.output}' to '{label}'; the files in "
            f"'{previous.output}' are no longer tracked (delete them yourself if unused)"
        )
        return None, path, notes
    return previous, path, notes


def make_plan(
    tree: RenderedTree,
    previous: Manifest | None = None,
    *,
    manifest_file: Path | None = None,
    rewritten_patterns: Iterable[str] = DEFAULT_REWRITTEN_PATTERNS,
    force: bool = False,
    force_unmanaged: bool = False,
) -> Plan:
    """Compare the rendered tree with the disk and the previous manifest; decide every path.

    `force` allows overwriting/deleting hand-edited files; `force_unmanaged` (makejinja's
    `force = true`) allows overwriting files the manifest does not list.
    """
    patterns = tuple(rewritten_patterns)
    known = dict(previous.files) if previous else {}
    plan = Plan(tree, previous=previous, manifest_file=manifest_file)
    root = tree.root
    for relative in sorted(known):
        if relative not in tree.files:
            _plan_prune(plan, relative, known[relative], patterns, force)
    pruned = set(plan.paths(DELETE))
    directories: set[str] = set()  # parents already seen to be directories
    for relative in sorted(tree.files):
        target = root / relative
        blocker = _blocking_ancestor(root, relative, pruned, directories)
        if blocker is not None:
            plan.conflicts.append(
                Conflict(
                    relative,
                    f"'{blocker}' is a file, not a directory; move it out of the way",
                    forceable=False,
                )
            )
            continue
        # One lstat per file answers what used to take several is_*/exists calls.
        try:
            status: os.stat_result | None = os.lstat(target)
        except OSError as exc:
            if exc.errno not in _MISSING_ERRNOS:
                raise  # e.g. permission denied: as pathlib's exists() would
            status = None
        if status is not None and (stat.S_ISLNK(status.st_mode) or stat.S_ISDIR(status.st_mode)):
            kind = "symlink" if stat.S_ISLNK(status.st_mode) else "directory"
            plan.conflicts.append(
                Conflict(relative, f"a {kind} is in the way; move it", forceable=False)
            )
            continue
        if status is None:
            plan.actions[relative] = RECREATE if relative in known else CREATE
            continue
        if tree_file_matches(tree, relative, status):
            plan.actions[relative] = UNCHANGED
            continue
        if is_rewritten(relative, patterns):
            on_disk = _read(target)
            if on_disk is not None and is_encrypted(on_disk):
                plan.encrypted_on_disk.add(relative)
                # Same plaintext as last render: keep the ciphertext instead of churning it.
                if known.get(relative) == tree.files.digest(relative):
                    plan.actions[relative] = ENCRYPTED
                    continue
            plan.actions[relative] = UPDATE
            continue
        if relative in known:
            on_disk = _read(target)
            if force or (on_disk is not None and content_hash(on_disk) == known[relative]):
                plan.actions[relative] = UPDATE
            else:
                plan.conflicts.append(Conflict(relative, "edited by hand since makeflux wrote it"))
            continue
        if force or force_unmanaged:
            plan.actions[relative] = UPDATE
        else:
            plan.conflicts.append(
                Conflict(
                    relative,
                    "not written by makeflux (not in the manifest) and its content differs",
                )
            )
    return plan


def plan_for(
    tree: RenderedTree,
    settings: Settings,
    *,
    force: bool = False,
    ignore_guard: bool = False,
) -> Plan:
    """make_plan with this run's manifest and settings.

    `force` is --force (also rebuilds a corrupt manifest); makejinja's `force = true` covers
    files outside the manifest. `ignore_guard` (check) plans as if forced but still refuses a
    corrupt manifest: drift is drift, whoever caused it.
    """
    previous, path, notes = load_previous(settings, force=force)
    plan = make_plan(
        tree,
        previous,
        manifest_file=path,
        rewritten_patterns=settings.rewritten_patterns,
        force=force or ignore_guard,
        force_unmanaged=force or ignore_guard or settings.force,
    )
    plan.notes[:0] = notes
    return plan


def plan_run(run: Run, *, force: bool = False, ignore_guard: bool = False) -> Plan:
    """plan_for a pipeline Run."""
    assert run.tree is not None, "render the run first"
    return plan_for(run.tree, run.settings, force=force, ignore_guard=ignore_guard)


def _plan_prune(
    plan: Plan, relative: str, recorded: str, patterns: tuple[str, ...], force: bool
) -> None:
    target = plan.tree.root / relative
    if target.is_symlink() or not target.is_file():
        return  # already gone (or replaced by something makeflux never wrote): nothing to prune
    if force or is_rewritten(relative, patterns):
        plan.actions[relative] = DELETE
        return
    on_disk = _read(target)
    if on_disk is not None and content_hash(on_disk) == recorded:
        plan.actions[relative] = DELETE
    else:
        plan.conflicts.append(
            Conflict(
                relative,
                "no longer rendered, but edited by hand since "
                "makeflux wrote it; delete it yourself or keep "
                "it by moving it",
            )
        )


# What pathlib's exists() reads as "not there".
_MISSING_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})


def _blocking_ancestor(
    root: Path, relative: str, pruned: set[str], directories: set[str]
) -> str | None:
    """A parent of `relative` that is a file (and not about to be pruned), if any.

    `directories` remembers parents seen to be directories, so each is checked once."""
    parts = relative.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        parent = "/".join(parts[:depth])
        if parent in directories:
            continue
        candidate = root / parent
        if candidate.is_dir():
            directories.add(parent)
            continue
        if candidate.exists() or candidate.is_symlink():
            return None if parent in pruned else parent
        return None
    return None


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def check_conflicts(plan: Plan) -> None:
    """Raise HandEditError listing every conflict; render writes nothing in that case."""
    if not plan.conflicts:
        return
    problems = [
        Problem(
            c.reason + ("" if c.forceable else " (--force cannot fix this)"),
            _display(plan.tree.root / c.path),
        )
        for c in plan.conflicts
    ]
    forceable = any(c.forceable for c in plan.conflicts)
    problems.append(
        Problem(
            f"makeflux: nothing written: {len(plan.conflicts)} file(s) above would be lost. "
            "Move your change into the template, or "
            + ("rerun with --force to overwrite them" if forceable else "clear the path")
        )
    )
    raise HandEditError(problems)


def write_atomic(
    target: Path,
    content: bytes,
    stat_source: Path | None = None,
    known_dirs: set[Path] | None = None,
) -> None:
    """Replace `target` by a fully written temp file in the same directory (rename is atomic).

    `known_dirs` remembers directories that exist, sparing a mkdir per file on big trees.
    """
    parent = target.parent
    if known_dirs is None or parent not in known_dirs:
        parent.mkdir(parents=True, exist_ok=True)
        if known_dirs is not None:
            known_dirs.add(parent)
    tmp = parent / f".{target.name}.{os.getpid()}.tmp"
    try:
        # 0o666 through the umask: the mode an ordinary write gives a new file.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o666)
        with os.fdopen(fd, "wb") as fp:
            fp.write(content)
        if stat_source is not None:
            shutil.copystat(stat_source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def apply_plan(plan: Plan) -> None:
    """Prune, write every created/updated file, then the manifest. Unchanged files are not touched.

    Refuses (HandEditError) when the plan has conflicts. If a write fails or is interrupted, the
    manifest is updated with exactly the operations that completed, so it still describes the
    disk, and the error propagates (a WriteError for OSError); the next render converges.
    """
    check_conflicts(plan)
    tree = plan.tree
    recorded: dict[str, str] = dict(plan.previous.files) if plan.previous else {}
    current = ""
    try:
        for relative in plan.paths(DELETE):
            current = relative
            (tree.root / relative).unlink(missing_ok=True)
            recorded.pop(relative, None)
        _remove_empty_parents(tree.root, plan.paths(DELETE), keep=tree.dirs)
        writes: list[str] = []
        for relative in sorted(plan.actions):
            if relative not in tree.files:
                continue
            if plan.actions[relative] in (CREATE, RECREATE, UPDATE):
                writes.append(relative)
            else:
                recorded[relative] = tree.files.digest(relative)
        _write_files(tree, writes, recorded)
        for relative in sorted(tree.dirs):
            current = relative
            (tree.root / relative).mkdir(parents=True, exist_ok=True)
    except _WritesStopped as stopped:
        for relative in stopped.failed:
            _settle(plan, relative, recorded)
        _write_manifest(plan, recorded, partial=True)
        error = stopped.error
        if not isinstance(error, OSError):
            raise error from None
        raise WriteError(_write_problem(tree, stopped.failed[0], error)) from error
    except OSError as exc:
        _settle(plan, current, recorded)
        _write_manifest(plan, recorded, partial=True)
        raise WriteError(_write_problem(tree, current, exc)) from exc
    except BaseException:
        _settle(plan, current, recorded)
        _write_manifest(plan, recorded, partial=True)
        raise
    try:
        _write_manifest(plan, {p: tree.files.digest(p) for p in tree.files}, partial=False)
    except OSError as exc:
        assert plan.manifest_file is not None
        raise WriteError(
            Problem(
                f"cannot write the manifest: {exc.strerror or exc}; every file was written. "
                "Fix the cause and rerun makeflux render (it will adopt them)",
                _display(plan.manifest_file),
            )
        ) from exc


def _write_problem(tree: RenderedTree, relative: str, exc: OSError) -> Problem:
    reason = exc.strerror or str(exc)
    return Problem(
        f"cannot write: {reason}; files already written are recorded in the manifest, "
        "the rest are unchanged. Fix the cause and rerun makeflux render",
        _display(tree.root / relative),
    )


# Creating a file costs about as much in the kernel as rendering it: from this many files on,
# a few threads write them (the system calls run in parallel; the GIL is released in them).
PARALLEL_WRITES_FROM = 64
WRITE_THREADS = 4


class _WritesStopped(Exception):
    """A write failed or was interrupted; `failed` (in path order) may hold its new content."""

    def __init__(self, failed: list[str], error: BaseException) -> None:
        super().__init__(str(error))
        self.failed, self.error = failed, error


def _write_files(tree: RenderedTree, writes: list[str], recorded: dict[str, str]) -> None:
    """Write each path of `writes` and record its hash once written.

    Raises _WritesStopped once no write is in flight any more, so `recorded` lists exactly the
    writes that completed.
    """
    known_dirs: set[Path] = set()
    # Each directory once, parents first: cheaper than trying them again for every file.
    first_write_in: dict[Path, str] = {}
    for relative in writes:
        first_write_in.setdefault((tree.root / relative).parent, relative)
    for directory in sorted(first_write_in):
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _WritesStopped([first_write_in[directory]], exc) from exc
        known_dirs.add(directory)

    def write(relative: str) -> str:
        source = tree.sources.get(relative) if relative in tree.copy_stat else None
        stat_source = source.path if source else None
        write_atomic(tree.root / relative, tree.files[relative], stat_source, known_dirs)
        return tree.files.digest(relative)

    if len(writes) < PARALLEL_WRITES_FROM:
        for relative in writes:
            try:
                recorded[relative] = write(relative)
            except BaseException as exc:
                raise _WritesStopped([relative], exc) from exc
        return
    # Plain threads taking paths from one iterator: a Future per file (a lock and a condition
    # each) cost ~1 KB apiece, 10 MB on a tree of ten thousand files.
    import threading

    pending = iter(writes)
    take = threading.Lock()
    stop = threading.Event()
    failed: dict[str, BaseException] = {}

    def drain() -> None:
        while not stop.is_set():
            with take:
                relative = next(pending, None)
            if relative is None:
                return
            try:
                recorded[relative] = write(relative)  # a dict item set is atomic under the GIL
            except BaseException as exc:  # recorded; the other writes go on, as one by one
                failed[relative] = exc

    threads = [
        threading.Thread(target=drain, name=f"makeflux-write-{n}", daemon=True)
        for n in range(WRITE_THREADS)
    ]
    interrupted: BaseException | None = None
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException as exc:  # Ctrl-C while waiting: finish what is in flight, start nothing
        interrupted = exc
        stop.set()
        for thread in threads:
            if thread.is_alive():
                thread.join()
    if interrupted is not None:
        raise _WritesStopped(sorted(failed), interrupted)
    if failed:
        first = min(failed)
        raise _WritesStopped(sorted(failed), failed[first])


def _settle(plan: Plan, relative: str, recorded: dict[str, str]) -> None:
    """The path in flight when a write stopped may already hold its new content (the interrupt
    came after the rename): record what is really there, so the manifest stays truthful."""
    if relative in plan.tree.files and tree_file_matches(plan.tree, relative):
        recorded[relative] = plan.tree.files.digest(relative)


def _write_manifest(plan: Plan, files: Mapping[str, str], *, partial: bool) -> None:
    """Write the manifest only when its bytes change (no churn). A partial write may not fail."""
    if plan.manifest_file is None:
        return
    manifest = Manifest(plan.manifest_label(), dict(files))
    content = render_manifest(manifest)
    if file_matches(plan.manifest_file, content):
        return
    try:
        write_atomic(plan.manifest_file, content)
    except BaseException:
        if not partial:
            raise
        # The write failure is what the user must see; the old manifest still lets the next
        # render converge (files already equal to the output are adopted, not blocked).


def _remove_empty_parents(root: Path, deleted: Iterable[str], keep: Iterable[str]) -> None:
    """Remove directories that pruning left empty; never one that still holds anything."""
    kept = set(keep)
    candidates: set[str] = set()
    for relative in deleted:
        parts = relative.split("/")[:-1]
        candidates.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    # Deepest first, so a parent is tried after its children.
    for directory in sorted(candidates, key=lambda d: d.count("/"), reverse=True):
        if directory in kept:
            continue
        try:
            (root / directory).rmdir()
        except OSError:
            continue  # not empty (or already gone): leave it
