"""Workspaces for a local run: one pristine tree per run, one copy of it per job attempt.

As on the cluster, where each job's pod clones the commit into its own `emptyDir`, every job
(and every retry of it) starts from a clean copy and cannot see what another job wrote. Jobs
with `share_workspace` share one copy, as they share one volume on Tekton.

The pristine tree is either a fresh checkout of a commit (a `git clone --shared` of the
developer's repository, so no object is copied) or that checkout with the working tree's
uncommitted changes laid over it (`--dirty`): tracked and untracked files that git does not
ignore, deletions included. Ignored files (virtualenvs, build output) never travel.

A spec in a subdirectory of the repository (`examples/hello/.ci.yaml`) gets that directory
as its workspace: the directory holding the spec plays the part of the repository root.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from enum import StrEnum
from pathlib import Path
from types import TracebackType

from msgspec import Struct

from ci.local.gitcli import GitError, git
from pipelines.planning import PlannedJob

_SHARED = "shared"


class WorkspaceSource(StrEnum):
    COMMIT = "commit"  # a fresh checkout of the commit
    WORKING_TREE = "working_tree"  # the commit plus the uncommitted changes


class WorkspaceError(Exception):
    """The repository cannot provide the requested tree (no such commit, not a repository)."""


class WorkspaceOrigin(Struct, frozen=True, kw_only=True):
    """Where job workspaces come from."""

    repository: Path  # the root of the developer's git checkout
    sha: str  # the commit to check out
    source: WorkspaceSource = WorkspaceSource.COMMIT
    subdirectory: Path = Path()  # relative to `repository`: the directory holding the spec


class Workspaces:
    """The temporary directories of one run; everything is removed when the context exits.

    Call order: `with Workspaces(origin) as workspaces:`, `prepare()` once, then
    `for_job(job, attempt=n)` for each attempt. Both block on disk and git: call them from a
    worker thread in async code.
    """

    def __init__(self, origin: WorkspaceOrigin, *, parent: Path | None = None) -> None:
        self.origin = origin
        self._parent = parent
        self._root: Path | None = None

    def __enter__(self) -> Workspaces:
        self._root = Path(tempfile.mkdtemp(prefix="ferry-run-", dir=self._parent))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    @property
    def root(self) -> Path:
        if self._root is None:
            raise RuntimeError("use Workspaces as a context manager")
        return self._root

    @property
    def pristine(self) -> Path:
        return self.root / "pristine"

    def prepare(self) -> None:
        """Check the commit out (and lay the uncommitted changes over it for WORKING_TREE)."""
        origin = self.origin
        # Plain git commands rather than `Repo` objects: this is on the path of every
        # `ferry run`, and a `Repo` reads config and starts helper processes it does not need.
        # No template: hook samples are files every job's copy would carry for nothing.
        try:
            git(
                origin.repository, "clone", "--quiet", "--template=", "--shared",
                "--no-checkout", "--", str(origin.repository), str(self.pristine),
            )  # fmt: skip
            git(self.pristine, "checkout", "--quiet", "--detach", origin.sha, "--")
            if origin.source is WorkspaceSource.WORKING_TREE:
                _overlay_working_tree(origin.repository, self.pristine)
        except GitError as error:
            raise WorkspaceError(
                f"cannot check out {origin.sha[:12]} from {origin.repository}: {error}"
            ) from error
        if not (self.pristine / origin.subdirectory).is_dir():
            raise WorkspaceError(
                f"`{origin.subdirectory}` is not in commit {origin.sha[:12]}: "
                "commit it, or run the working tree with --dirty"
            )

    def for_job(self, job: PlannedJob, *, attempt: int) -> Path:
        """A fresh copy for this attempt, or the run's shared copy for `share_workspace` jobs."""
        name = _SHARED if job.share_workspace else f"{job.name}-{attempt}"
        target = self.root / "jobs" / name
        if not target.exists():
            shutil.copytree(self.pristine / self.origin.subdirectory, target, symlinks=True)
        return target


def _overlay_working_tree(source: Path, target: Path) -> None:
    listed = git(source, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    wanted = {name for name in listed.split("\0") if name}
    committed = {name for name in git(target, "ls-files", "-z").split("\0") if name}
    for name in committed:
        if name not in wanted or not os.path.lexists(source / name):
            (target / name).unlink(missing_ok=True)
    for name in sorted(wanted):
        origin, copy = source / name, target / name
        if origin.is_symlink():
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.unlink(missing_ok=True)
            copy.symlink_to(origin.readlink())
        elif origin.is_file():  # submodules (directories) and deleted files are left out
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, copy)
