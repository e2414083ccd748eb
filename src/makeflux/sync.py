"""RenderedTree vs disk + manifest → Plan; apply it safely. The only module writing the output tree.

Safety rules (see README: Plan, check and prune):
- only paths inside the Boundary (boundary.py) are ever written or deleted, and never through a
  symlinked directory;
- a path is deleted only when the manifest says makeflux generated it and the disk still holds
  what makeflux wrote there; --force never deletes a file whose content changed;
- a file is overwritten only when makeflux wrote it and nobody edited it since, or when its content
  already matches, or with --force; an overwrite keeps the file's mode and owner;
- files matching `rewritten_patterns` (sops) are expected to differ and skip the guard, and are
  written readable by their owner only while they hold plaintext;
- a failed, interrupted or killed apply leaves each file old or new, and a manifest (or, after
  kill -9, a journal) that says which.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import shutil
import signal
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from makeflux.boundary import Boundary, boundary_for, inside
from makeflux.errors import HandEditError, MassPruneError, Problem, WriteError
from makeflux.errors import display_path as _display
from makeflux.manifest import (
    Manifest,
    ManifestError,
    content_hash,
    journal_path,
    manifest_path,
    output_label,
    read_journal,
    read_manifest,
    render_journal,
    render_manifest,
)
from makeflux.render import RenderedTree, path_matcher
from makeflux.settings import DEFAULT_REWRITTEN_PATTERNS, Settings

CREATE, UPDATE, UNCHANGED = "create", "update", "unchanged"
RECREATE = "recreate"  # listed in the manifest, deleted by the user: written again
DELETE = "delete"  # listed in the manifest, no longer rendered: pruned
ENCRYPTED = "encrypted"  # a rewritten file, encrypted on disk, whose plaintext did not change


# sops metadata: a `sops` key (YAML/JSON), `sops_*` lines (dotenv), a [sops] section (INI),
# ENC[...] values (every format, binary included).
_SOPS_MARKERS = re.compile(
    rb'ENC\[[A-Z0-9_]+,|^"?sops"?\s*:|^sops_\w+\s*=|"sops"\s*:\s*\{|^\[sops\]', re.MULTILINE
)


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
    # Temp files and a journal that an interrupted render left behind: render removes them.
    leftovers: list[Path] = field(default_factory=list)
    # Files matching rewritten_patterns that hold plaintext on disk (filled in by check).
    plaintext_secrets: list[str] = field(default_factory=list)
    rewritten_patterns: tuple[str, ...] = DEFAULT_REWRITTEN_PATTERNS

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

    @property
    def mass_prune(self) -> bool:
        """True when this plan deletes more than half of what makeflux generated."""
        generated = len(self.previous.files) if self.previous else 0
        deleted = len(self.paths(DELETE))
        return deleted > 0 and deleted * 2 > generated

    def secrets_written(self) -> list[str]:
        """Rewritten (sops) files this plan writes in plaintext."""
        files = self.tree.files
        return [
            p
            for p in self.paths(CREATE, RECREATE, UPDATE)
            if is_rewritten(p, self.rewritten_patterns)
            and p in files
            and not is_encrypted(files[p])  # a template that holds the ciphertext itself
        ]

    def manifest_label(self) -> str:
        if self.manifest_file is None:
            return self.tree.root.as_posix()
        return output_label(self.manifest_file, self.tree.root)


def tree_file_matches(
    tree: RenderedTree, relative: str, known: os.stat_result | None = None
) -> bool:
    """True when the disk holds exactly what the tree has for `relative` (sizes first).

    `known` is the target's stat, when the caller already has it."""
    target = os.path.join(tree.root, relative)  # a str: no Path made per file
    try:
        status = known or os.stat(target)
        if not stat.S_ISREG(status.st_mode) or status.st_size != tree.files.size(relative):
            return False
        with open(target, "rb") as fp:
            return content_hash(fp.read()) == tree.files.digest(relative)
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
    """True for outputs a later step rewrites (e.g. sops encryption of *.sops.*): what
    PurePosixPath(relative).match(pattern) says for a pattern, each pattern parsed once a run."""
    parts = tuple(relative.split("/"))
    if "" in parts or "." in parts:  # not in normal form: as pathlib reads it
        parts = PurePosixPath(relative).parts
    return any(_matcher(pattern)(parts) for pattern in patterns)


@functools.lru_cache(maxsize=64)
def _matcher(pattern: str) -> Callable[[tuple[str, ...]], bool]:
    return path_matcher(pattern)


def is_encrypted(content: bytes) -> bool:
    """True when `content` carries sops metadata or ENC[...] values, i.e. is no longer plaintext."""
    return _SOPS_MARKERS.search(content) is not None


def plaintext_secrets(
    root: Path, patterns: Iterable[str], boundary: Boundary | None = None
) -> list[str]:
    """Files under `root` matching `patterns` (sops secrets) that hold no sops metadata.

    Hidden files and directories are passed over (`.sops.yaml` is sops' configuration, `.git`
    its history), as is what `boundary` says is not output (templates named secret.sops.yaml.j2
    in an input directory), and links are not followed."""
    patterns = tuple(patterns)
    found: list[str] = []

    def output_path(relative: str) -> bool:
        return boundary is None or boundary.refusal(relative) is None

    top = os.fspath(root)
    for directory, dirnames, filenames in os.walk(top):
        base = Path(directory)
        # os.walk joins names onto `top`: what is below it is the relative path (no pathlib)
        prefix = "" if directory == top else directory[len(os.path.join(top, "")) :] + "/"
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and output_path(f"{prefix}{d}")]
        for name in filenames:
            relative = f"{prefix}{name}"
            if name.startswith(".") or not is_rewritten(relative, patterns):
                continue
            if not output_path(relative):
                continue
            content = _read(base / name)
            if content is not None and not is_encrypted(content):
                found.append(relative)
    return sorted(found)


def load_previous(
    settings: Settings,
    *,
    force: bool = False,
    boundary: Boundary | None = None,
) -> tuple[Manifest | None, Path | None, list[str]]:
    """The manifest that applies to this run's output, where the next one goes, and notes.

    A corrupt manifest, or one naming a path outside the Boundary, stops the run (ManifestError)
    unless `force`: then it is treated as absent, so nothing is pruned, and rebuilt. When the
    configured output moved, the old tree is left alone and a new manifest is started. (`-o DIR`
    gets its own manifest in DIR: pipeline.load.) A journal left by a killed render is read in.
    """
    notes: list[str] = []
    if not settings.keep_manifest:
        return None, None, notes
    path = manifest_path(settings)
    boundary = boundary or boundary_for(settings)
    try:
        previous = read_manifest(path)
        if previous is not None:
            _check_entries(previous, path, boundary)
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
    pending = {
        relative: digest
        for relative, digest in read_journal(path).items()
        if boundary.refusal(relative) is None
    }
    if pending:
        previous = Manifest(label, previous.files if previous else {}, pending)
    return previous, path, notes


def _check_entries(manifest: Manifest, path: Path, boundary: Boundary) -> None:
    """Refuse a manifest naming anything makeflux could not have generated (.git/, the settings,
    a template ...): merged or crafted, it must never steer the pruner there."""
    problems = []
    for relative in sorted(manifest.files):
        reason = boundary.refusal(relative)
        if reason is not None:
            problems.append(
                Problem(
                    f"the manifest lists '{relative}', which {reason}; makeflux never generates "
                    "or deletes it. Remove that entry (or restore the manifest from git); "
                    "nothing was changed",
                    _display(path),
                )
            )
    if problems:
        raise ManifestError(problems)


def make_plan(
    tree: RenderedTree,
    previous: Manifest | None = None,
    *,
    manifest_file: Path | None = None,
    rewritten_patterns: Iterable[str] = DEFAULT_REWRITTEN_PATTERNS,
    force: bool = False,
    force_unmanaged: bool = False,
    keep_edited: bool = False,
    boundary: Boundary | None = None,
) -> Plan:
    """Compare the rendered tree with the disk and the previous manifest; decide every path.

    `force` allows overwriting hand-edited files; `force_unmanaged` (makejinja's `force = true`)
    allows overwriting files the manifest does not list. A file no longer rendered whose
    content changed is never deleted: a conflict, or with `keep_edited` (render --force) kept
    and left out of the manifest, with a note.
    """
    patterns = tuple(rewritten_patterns)
    plan = Plan(tree, previous=previous, manifest_file=manifest_file, rewritten_patterns=patterns)
    boundary = boundary or Boundary(Path(os.path.realpath(tree.root)))
    disk = _Disk(tree.root)
    known = previous or Manifest("")
    for relative in sorted({*known.files, *known.pending}):
        if relative not in tree.files:
            _plan_prune(plan, relative, known, disk, keep_edited)
    pruned = set(plan.paths(DELETE))
    for relative in sorted(tree.files):
        refusal = boundary.refusal(relative)
        if refusal is not None:
            plan.conflicts.append(
                Conflict(
                    relative,
                    f"a template renders here, but this path {refusal}; rename the template",
                    forceable=False,
                )
            )
            continue
        blocker = disk.blocking_ancestor(relative, pruned)
        if blocker is not None:
            plan.conflicts.append(Conflict(relative, blocker, forceable=False))
            continue
        status = disk.lstat(relative)
        if status is not None and (stat.S_ISLNK(status.st_mode) or stat.S_ISDIR(status.st_mode)):
            kind = "symlink" if stat.S_ISLNK(status.st_mode) else "directory"
            plan.conflicts.append(
                Conflict(relative, f"a {kind} is in the way; move it", forceable=False)
            )
            continue
        if status is None:
            plan.actions[relative] = RECREATE if relative in known.files else CREATE
            continue
        if tree_file_matches(tree, relative, status):
            plan.actions[relative] = UNCHANGED
            continue
        target = tree.root / relative
        if is_rewritten(relative, patterns):
            on_disk = _read(target)
            if on_disk is not None and is_encrypted(on_disk):
                plan.encrypted_on_disk.add(relative)
                # Same plaintext as last render: keep the ciphertext instead of churning it.
                if known.files.get(relative) == tree.files.digest(relative):
                    plan.actions[relative] = ENCRYPTED
                    continue
            plan.actions[relative] = UPDATE
            continue
        on_disk = _read(target)
        ours = on_disk is not None and known.written_by_makeflux(relative, content_hash(on_disk))
        if ours or force or (force_unmanaged and relative not in known.files):
            plan.actions[relative] = UPDATE
        elif relative in known.files:
            plan.conflicts.append(Conflict(relative, "edited by hand since makeflux wrote it"))
        else:
            plan.conflicts.append(
                Conflict(
                    relative,
                    "not written by makeflux (not in the manifest) and its content differs",
                )
            )
    plan.leftovers = _leftovers(plan, disk)
    return plan


def plan_for(
    tree: RenderedTree,
    settings: Settings,
    *,
    force: bool = False,
    ignore_guard: bool = False,
    boundary: Boundary | None = None,
) -> Plan:
    """make_plan with this run's manifest and settings.

    `force` is --force (also rebuilds a corrupt manifest); makejinja's `force = true` covers
    files outside the manifest. `ignore_guard` (check) plans as if forced but still refuses a
    corrupt manifest: drift is drift, whoever caused it.
    """
    boundary = boundary or boundary_for(settings)
    previous, path, notes = load_previous(settings, force=force, boundary=boundary)
    plan = make_plan(
        tree,
        previous,
        manifest_file=path,
        rewritten_patterns=settings.rewritten_patterns,
        force=force or ignore_guard,
        force_unmanaged=force or ignore_guard or settings.force,
        keep_edited=force and not ignore_guard,
        boundary=boundary,
    )
    plan.notes[:0] = notes
    return plan


def check_mass_prune(plan: Plan, *, allowed: bool) -> None:
    """Stop a run that would delete more than half of what makeflux generated, unless allowed.

    Input that silently reads as empty (a mistyped input directory, a data file holding `~`)
    looks exactly like this, and Flux would prune the apps on the next push."""
    if not plan.mass_prune or allowed:
        return
    generated = len(plan.previous.files) if plan.previous else 0
    deleted = len(plan.paths(DELETE))
    raise MassPruneError(
        f"makeflux: nothing written: this would delete {deleted} of the {generated} files "
        "makeflux generated (more than half). Check 'inputs' and the data files; if turning "
        "that much off is what you meant, rerun with --allow-mass-prune"
    )


def _plan_prune(plan: Plan, relative: str, known: Manifest, disk: _Disk, keep_edited: bool) -> None:
    linked = disk.linked_ancestor(relative)
    if linked is not None:
        plan.conflicts.append(
            Conflict(
                relative,
                f"no longer rendered, but '{linked}' is a symlinked directory; makeflux never "
                "deletes through a link: remove the link or delete the file yourself",
                forceable=False,
            )
        )
        return
    status = disk.lstat(relative)
    if status is None or not stat.S_ISREG(status.st_mode):
        return  # already gone (or replaced by something makeflux never wrote): nothing to prune
    on_disk = _read(plan.tree.root / relative)
    if on_disk is None:
        return
    if known.written_by_makeflux(relative, content_hash(on_disk)) or (
        is_rewritten(relative, plan.rewritten_patterns) and is_encrypted(on_disk)
    ):
        plan.actions[relative] = DELETE
    elif keep_edited:
        plan.notes.append(
            f"makeflux: kept {_display(plan.tree.root / relative)}: no longer rendered, but "
            "edited since makeflux wrote it (--force never deletes a changed file); it is no "
            "longer tracked, delete it yourself if unused"
        )
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


class _Disk:
    """The output tree as lstat sees it, each directory looked at once, links never followed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = os.fspath(root)
        self.kinds: dict[str, str] = {}  # relative directory → "dir", "link", "file", "missing"

    def lstat(self, relative: str) -> os.stat_result | None:
        try:
            return os.lstat(os.path.join(self._root, relative) if relative else self._root)
        except OSError as exc:
            if exc.errno not in _MISSING_ERRNOS:
                raise  # e.g. permission denied: as pathlib's exists() would
            return None

    def kind(self, directory: str) -> str:
        kind = self.kinds.get(directory)
        if kind is None:
            status = self.lstat(directory)
            if status is None:
                kind = "missing"
            elif stat.S_ISDIR(status.st_mode):
                kind = "dir"
            elif stat.S_ISLNK(status.st_mode):
                kind = "link"
            else:
                kind = "file"
            self.kinds[directory] = kind
        return kind

    def parents(self, relative: str) -> list[str]:
        parts = relative.split("/")[:-1]
        return ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]

    def linked_ancestor(self, relative: str) -> str | None:
        """The first directory on the way to `relative` that is a symlink, if any."""
        for parent in self.parents(relative):
            kind = self.kind(parent)
            if kind == "link":
                return parent
            if kind != "dir":
                return None
        return None

    def blocking_ancestor(self, relative: str, pruned: set[str]) -> str | None:
        """Why a parent of `relative` stops it being written (a symlink, or a file not about to
        be pruned); None when every parent is a directory or does not exist yet."""
        for parent in self.parents(relative):
            kind = self.kind(parent)
            if kind == "dir":
                continue
            if kind == "link":
                return (
                    f"'{parent}' is a symlinked directory; makeflux never writes through a link "
                    "(replace it with a real directory)"
                )
            if kind == "file" and parent not in pruned:
                return f"'{parent}' is a file, not a directory; move it out of the way"
            return None
        return None

    def directory_entries(self, directory: str) -> list[str]:
        if directory and any(self.kind(p) != "dir" for p in [*self.parents(directory + "/x")]):
            return []
        try:
            return os.listdir(self.root / directory if directory else self.root)
        except OSError:
            return []


# A temp file write_atomic makes: `.NAME.PID.tmp` beside NAME.
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.\d+\.tmp$")


def _leftovers(plan: Plan, disk: _Disk) -> list[Path]:
    """Temp files of makeflux's own writes that a killed render left, and its journal.

    Only `.NAME.PID.tmp` beside a NAME that makeflux writes there counts: a user's own temp
    files are none of makeflux's business."""
    names_by_dir: dict[str, set[str]] = {}
    known = plan.previous.files if plan.previous else {}
    for relative in (*plan.tree.files, *known):
        directory, _, name = relative.rpartition("/")
        names_by_dir.setdefault(directory, set()).add(name)
    found: list[Path] = []
    for directory, names in sorted(names_by_dir.items()):
        for entry in disk.directory_entries(directory):
            match = _TEMP_NAME.match(entry)
            if match and match["name"] in names:
                found.append(plan.tree.root / directory / entry)
    if plan.manifest_file is not None:
        journal = journal_path(plan.manifest_file)
        own = {plan.manifest_file.name, journal.name}
        try:
            entries = os.listdir(plan.manifest_file.parent)
        except OSError:
            entries = []
        for entry in entries:
            match = _TEMP_NAME.match(entry)
            if (match and match["name"] in own) or entry == journal.name:
                found.append(plan.manifest_file.parent / entry)
    return sorted(set(found))


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
    *,
    private: bool = False,
) -> None:
    """Replace `target` by a fully written temp file in the same directory (rename is atomic).

    The new file keeps the mode and owner of the one it replaces (or, with `stat_source`,
    takes that file's mode and times); `private` makes it readable by its owner only (a
    plaintext secret). `known_dirs` remembers directories that exist, sparing a mkdir per file.
    """
    parent = target.parent
    if known_dirs is None or parent not in known_dirs:
        parent.mkdir(parents=True, exist_ok=True)
        if known_dirs is not None:
            known_dirs.add(parent)
    try:
        existing: os.stat_result | None = os.lstat(target)
    except OSError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        existing = None
    tmp = parent / f".{target.name}.{os.getpid()}.tmp"
    try:
        # 0o666 through the umask: the mode an ordinary write gives a new file.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o600 if private else 0o666)
        with os.fdopen(fd, "wb") as fp:
            if existing is not None:
                _keep_owner_and_mode(fp.fileno(), existing, private)
            elif private:
                os.fchmod(fp.fileno(), 0o600)
            fp.write(content)
        if stat_source is not None:
            shutil.copystat(stat_source, tmp)
            if private:
                os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _keep_owner_and_mode(fd: int, existing: os.stat_result, private: bool) -> None:
    mode = 0o600 if private else stat.S_IMODE(existing.st_mode)
    if existing.st_uid != os.geteuid() or existing.st_gid != os.getegid():
        # Only root may give a file away; otherwise it belongs to whoever rendered it.
        with contextlib.suppress(OSError):
            os.fchown(fd, existing.st_uid, existing.st_gid)
    os.fchmod(fd, mode)  # after chown, which clears setuid/setgid bits


def apply_plan(plan: Plan) -> None:
    """Prune, write every created/updated file, then the manifest. Unchanged files are not touched.

    Refuses (HandEditError) when the plan has conflicts. Before the first change a journal
    lists what is about to be written, so even a render killed outright (kill -9) leaves
    nothing the next one mistakes for a hand edit. If a write fails or is interrupted, the
    manifest is updated with exactly the operations that completed, so it still describes the
    disk, and the error propagates (a WriteError for OSError); the next render converges.
    """
    check_conflicts(plan)
    tree = plan.tree
    recorded: dict[str, str] = dict(plan.previous.files) if plan.previous else {}
    journal = journal_path(plan.manifest_file) if plan.manifest_file else None
    for leftover in plan.leftovers:
        if leftover != journal:
            leftover.unlink(missing_ok=True)
    writes = [p for p in plan.paths(CREATE, RECREATE, UPDATE) if p in tree.files]
    if journal is not None and (writes or plan.paths(DELETE)):
        pending = {p: tree.files.digest(p) for p in writes}
        try:
            # Written in place: a torn journal reads as none, which only protects more.
            journal.write_bytes(render_journal(pending))
        except OSError as exc:
            raise WriteError(
                Problem(
                    f"cannot write: {exc.strerror or exc}; nothing was written. Fix the cause "
                    "and rerun makeflux render",
                    _display(journal),
                )
            ) from exc
    root_real = os.path.realpath(tree.root)
    current = ""
    try:
        for relative in plan.paths(DELETE):
            current = relative
            target = tree.root / relative
            _stay_inside(root_real, target)
            target.unlink(missing_ok=True)
            recorded.pop(relative, None)
        _remove_empty_parents(tree.root, plan.paths(DELETE), keep=tree.dirs)
        for relative in plan.paths(UNCHANGED, ENCRYPTED):
            recorded[relative] = tree.files.digest(relative)
        _write_files(plan, writes, recorded, root_real)
        for relative in sorted(tree.dirs):
            current = relative
            _stay_inside(root_real, tree.root / relative)
            (tree.root / relative).mkdir(parents=True, exist_ok=True)
        current = ""
        # Inside the `try`: a signal landing before the manifest write defers it is still
        # caught below, and the manifest records what the disk holds.
        _write_final_manifest(plan)
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
    except WriteError:
        raise  # the final manifest could not be written; every file was
    except BaseException:
        _settle(plan, current, recorded)
        _write_manifest(plan, recorded, partial=True)
        raise


def _write_final_manifest(plan: Plan) -> None:
    tree = plan.tree
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


class _Escape(OSError):
    """A path that, with links followed, leaves the output directory (a link made mid-run)."""


def _stay_inside(root_real: str, path: Path) -> None:
    if not inside(root_real, path.parent):
        raise _Escape(
            errno.EXDEV, "a symlinked directory leads outside the output; nothing is written there"
        )


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


def _write_files(plan: Plan, writes: list[str], recorded: dict[str, str], root_real: str) -> None:
    """Write each path of `writes` and record its hash once written.

    Raises _WritesStopped once no write is in flight any more, so `recorded` lists exactly the
    writes that completed.
    """
    tree = plan.tree
    secrets = set(plan.secrets_written())
    known_dirs: set[Path] = set()
    # Each directory once, parents first: cheaper than trying them again for every file.
    first_write_in: dict[Path, str] = {}
    for relative in writes:
        first_write_in.setdefault((tree.root / relative).parent, relative)
    for directory in sorted(first_write_in):
        try:
            _stay_inside(root_real, directory / "x")
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _WritesStopped([first_write_in[directory]], exc) from exc
        known_dirs.add(directory)

    def write(relative: str) -> str:
        source = tree.sources.get(relative) if relative in tree.copy_stat else None
        stat_source = source.path if source else None
        write_atomic(
            tree.root / relative,
            tree.files[relative],
            stat_source,
            known_dirs,
            private=relative in secrets,
        )
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
    pending = iter(writes)
    take = threading.Lock()
    stop = threading.Event()
    failed: dict[str, BaseException] = {}

    def drain(finished: threading.Event) -> None:
        try:
            while not stop.is_set():
                with take:
                    relative = next(pending, None)
                if relative is None:
                    return
                try:
                    recorded[relative] = write(relative)  # a dict item set is atomic (GIL)
                except BaseException as exc:  # recorded; the other writes go on, as one by one
                    failed[relative] = exc
        finally:
            finished.set()

    finished = [threading.Event() for _ in range(WRITE_THREADS)]
    interrupted: BaseException | None = None
    try:
        # Started with stop signals blocked: every worker starts, and inherits the mask.
        with _stop_signals_deferred():
            for n, done in enumerate(finished):
                threading.Thread(
                    target=drain, args=(done,), name=f"makeflux-write-{n}", daemon=True
                ).start()
    except BaseException as exc:  # a signal held back during the start
        interrupted = exc
        stop.set()
    # Waited for on events, not Thread.join: a join that Ctrl-C interrupts can mark a thread
    # still writing as stopped (CPython 3.11, bpo-45274), and the manifest would then miss it.
    for done in finished:
        while not done.is_set():
            try:
                done.wait()
            except BaseException as exc:  # Ctrl-C: finish what is in flight, start nothing
                interrupted = interrupted or exc
                stop.set()
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
    """Write the manifest only when its bytes change (no churn). A partial write may not fail.

    Ctrl-C, SIGTERM and SIGHUP wait until it is written: stopped halfway, the manifest would
    no longer say what is on disk (the signal is acted on right after)."""
    if plan.manifest_file is None:
        return
    manifest = Manifest(plan.manifest_label(), dict(files))
    content = render_manifest(manifest)
    with _stop_signals_deferred():
        try:
            if not file_matches(plan.manifest_file, content):
                write_atomic(plan.manifest_file, content)
        except BaseException:
            if not partial:
                raise
            # The write failure is what the user must see; the old manifest and the journal
            # still let the next render converge (files equal to what was being written are
            # makeflux's).
            return
        # The manifest now says what is on disk: the journal has done its job.
        journal_path(plan.manifest_file).unlink(missing_ok=True)


_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


@contextlib.contextmanager
def _stop_signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP back for the `with` block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


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
