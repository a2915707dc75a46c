"""What `ferry run` reads from the developer's checkout, with plain git commands."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ci.local.checkouts import CheckoutError, read_checkout

IDENTITY = ["-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.com"]


def _git(directory: Path, *args: str) -> str:
    done = subprocess.run(["git", *IDENTITY, "-C", str(directory), *args], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    path = tmp_path / "app"
    path.mkdir()
    _git(path, "init", "--quiet", "--initial-branch=main")
    (path / "sub").mkdir()
    (path / "sub" / "file").write_text("x\n")
    _git(path, "add", ".")
    _git(path, "commit", "--quiet", "-m", "first")
    return path


def test_head_branch_author_and_origin_from_a_subdirectory(repository: Path) -> None:
    _git(repository, "remote", "add", "origin", "git@forge.example.com:team/app.git")
    checkout = read_checkout(repository / "sub")
    assert checkout.root == repository.resolve()
    assert checkout.sha == _git(repository, "rev-parse", "HEAD")
    assert checkout.branch == "main"
    assert checkout.author == "Ada Lovelace"
    assert checkout.repository == "team/app"
    assert checkout.repository_url == "git@forge.example.com:team/app.git"
    assert checkout.tags == ()


def test_no_origin_names_the_directory(repository: Path) -> None:
    checkout = read_checkout(repository)
    assert (checkout.repository, checkout.repository_url) == ("local/app", str(repository))


def test_detached_head_has_no_branch_and_tags_are_listed_when_asked(repository: Path) -> None:
    first = _git(repository, "rev-parse", "HEAD")
    _git(repository, "commit", "--quiet", "--allow-empty", "-m", "second")
    _git(repository, "tag", "v1", first)
    _git(repository, "tag", "-a", "-m", "annotated", "v0", first)
    _git(repository, "checkout", "--quiet", "--detach", first)
    checkout = read_checkout(repository, tags=True)
    assert (checkout.sha, checkout.branch, checkout.tags) == (first, None, ("v0", "v1"))


def test_sha_asked_for_is_resolved_in_full(repository: Path) -> None:
    first = _git(repository, "rev-parse", "HEAD")
    _git(repository, "commit", "--quiet", "--allow-empty", "-m", "second")
    assert read_checkout(repository, sha=first[:9]).sha == first


@pytest.mark.parametrize("sha", ["0" * 40, "--output=/tmp/owned", "-h"])
def test_unknown_or_option_like_sha_is_a_clear_error(repository: Path, sha: str) -> None:
    with pytest.raises(CheckoutError, match=f"cannot find commit `{sha}`"):
        read_checkout(repository, sha=sha)
    assert not Path("/tmp/owned").exists()


def test_repository_without_a_commit_says_so(tmp_path: Path) -> None:
    _git(tmp_path, "init", "--quiet")
    with pytest.raises(CheckoutError, match="no commit yet"):
        read_checkout(tmp_path)


def test_outside_any_repository_says_to_git_init(tmp_path: Path) -> None:
    with pytest.raises(CheckoutError, match="not inside a git repository"):
        read_checkout(tmp_path)
