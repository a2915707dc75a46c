from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ci.local.workspaces import WorkspaceError, WorkspaceOrigin, Workspaces, WorkspaceSource
from pipelines.planning import PlannedJob


def _git(repository: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com", *args],
        cwd=repository, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "--quiet", "--initial-branch=main")
    (path / "kept.txt").write_text("committed\n")
    (path / "removed.txt").write_text("committed\n")
    (path / ".gitignore").write_text("ignored/\n")
    (path / "app").mkdir()
    (path / "app" / "main.py").write_text("print('hi')\n")
    _git(path, "add", ".")
    _git(path, "commit", "--quiet", "-m", "first")
    # Uncommitted: a change, a deletion, a new file, and an ignored one.
    (path / "kept.txt").write_text("changed\n")
    (path / "removed.txt").unlink()
    (path / "new.txt").write_text("new\n")
    (path / "ignored").mkdir()
    (path / "ignored" / "big.bin").write_text("x")
    return path


def _job(name: str, *, share_workspace: bool = False) -> PlannedJob:
    return PlannedJob(
        name=name, spec_job=name, matrix={}, image="alpine", steps=(), env={},
        share_workspace=share_workspace,
    )  # fmt: skip


def _origin(repository: Path, **fields: object) -> WorkspaceOrigin:
    return WorkspaceOrigin(repository=repository, sha=_git(repository, "rev-parse", "HEAD"),
                           **fields)  # type: ignore[arg-type]


def test_a_commit_checkout_ignores_uncommitted_changes_and_holds_git(repository: Path) -> None:
    with Workspaces(_origin(repository), parent=repository.parent) as workspaces:
        workspaces.prepare()
        workspace = workspaces.for_job(_job("test"), attempt=1)
        assert (workspace / "kept.txt").read_text() == "committed\n"
        assert (workspace / "removed.txt").exists()
        assert not (workspace / "new.txt").exists()
        assert _git(workspace, "rev-parse", "HEAD") == _git(repository, "rev-parse", "HEAD")
        root = workspaces.root
    assert not root.exists()


def test_the_working_tree_brings_changes_deletions_and_new_files_not_ignored_ones(
    repository: Path,
) -> None:
    origin = _origin(repository, source=WorkspaceSource.WORKING_TREE)
    with Workspaces(origin, parent=repository.parent) as workspaces:
        workspaces.prepare()
        workspace = workspaces.for_job(_job("test"), attempt=1)
        assert (workspace / "kept.txt").read_text() == "changed\n"
        assert not (workspace / "removed.txt").exists()
        assert (workspace / "new.txt").read_text() == "new\n"
        assert not (workspace / "ignored").exists()


def test_each_job_and_attempt_gets_its_own_copy_but_shared_jobs_share(repository: Path) -> None:
    with Workspaces(_origin(repository), parent=repository.parent) as workspaces:
        workspaces.prepare()
        first = workspaces.for_job(_job("a"), attempt=1)
        (first / "written.txt").write_text("by a\n")
        assert not (workspaces.for_job(_job("a"), attempt=2) / "written.txt").exists()
        assert not (workspaces.for_job(_job("b"), attempt=1) / "written.txt").exists()
        shared = workspaces.for_job(_job("c", share_workspace=True), attempt=1)
        (shared / "written.txt").write_text("by c\n")
        assert workspaces.for_job(_job("d", share_workspace=True), attempt=1) == shared


def test_a_subdirectory_is_the_workspace(repository: Path) -> None:
    origin = _origin(repository, subdirectory=Path("app"))
    with Workspaces(origin, parent=repository.parent) as workspaces:
        workspaces.prepare()
        workspace = workspaces.for_job(_job("test"), attempt=1)
        assert sorted(path.name for path in workspace.iterdir()) == ["main.py"]


def test_errors_say_what_is_missing(repository: Path) -> None:
    missing = WorkspaceOrigin(repository=repository, sha="0" * 40)
    with (
        Workspaces(missing, parent=repository.parent) as workspaces,
        pytest.raises(WorkspaceError, match="cannot check out 000000000000"),
    ):
        workspaces.prepare()
    uncommitted = _origin(repository, subdirectory=Path("docs"))
    with (
        Workspaces(uncommitted, parent=repository.parent) as workspaces,
        pytest.raises(WorkspaceError, match=r"`docs` is not in commit \w+: .* --dirty"),
    ):
        workspaces.prepare()
