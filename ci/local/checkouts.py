"""The developer's checkout, and the event a local run pretends happened to it.

On the cluster the forge says what happened (a push to `main`, pull request 7). Locally the
checkout and the command line say it: the commit is HEAD (or `--sha`), the branch the one
checked out (or `--branch`), the repository's name comes from its `origin` remote. Changed
files are unknown, so `when.paths` filters hold, as the filter does for any unknown list.
"""

from __future__ import annotations

import re
from pathlib import Path

from msgspec import Struct

from ci.local.gitcli import GitError, git, succeeds
from pipelines.events import Event, EventKind, PullRequest


class CheckoutError(Exception):
    """Not a git repository, no commit yet, or an unknown `--sha`."""


class Checkout(Struct, frozen=True, kw_only=True):
    root: Path  # the working tree's top directory
    sha: str  # the commit asked for (HEAD by default), in full
    branch: str | None  # the branch checked out; None when HEAD is detached
    tags: tuple[str, ...]  # tags pointing at `sha`, sorted (when asked for)
    repository: str  # "owner/name" from `origin`, else "local/<directory name>"
    repository_url: str  # `origin`'s URL, else the working tree's path
    author: str  # the commit's author name


# `git@host:owner/name.git`, `https://host/owner/name(.git)`, `/srv/git/owner/name`.
_OWNER_AND_NAME = re.compile(r"([^/:]+)/([^/:]+?)(?:\.git)?/?$")


def read_checkout(directory: Path, *, sha: str | None = None, tags: bool = False) -> Checkout:
    """Describe the git checkout holding `directory` (raises `CheckoutError`).

    `tags`: also list the tags on the commit (one more git command; only tag events need it).
    """
    try:
        top, head = git(directory, "rev-parse", "--show-toplevel", "--symbolic-full-name",
                        "HEAD").splitlines()  # fmt: skip
    except (GitError, ValueError) as error:
        found_top = succeeds(directory, "rev-parse", "--show-toplevel")
        if found_top is None:
            raise CheckoutError(
                f"{directory} is not inside a git repository; `ferry run` checks the code out "
                "from one (run `git init` and commit first)"
            ) from error
        top, head = found_top, ""  # a branch with no commit yet: HEAD names nothing, said below
    root = Path(top.strip()).resolve()
    try:
        found, author = git(
            root, "log", "-1", "--format=%H%x00%an", "--end-of-options", sha or "HEAD", "--"
        ).rstrip("\n").split("\0", 1)
    except (GitError, ValueError) as error:
        what = f"`{sha}`" if sha else "HEAD (the repository has no commit yet)"
        raise CheckoutError(f"cannot find commit {what} in {root}") from error
    on_commit = (succeeds(root, "tag", "--points-at", found) or "").split() if tags else []
    url = (succeeds(root, "config", "--get", "remote.origin.url") or "").strip()
    return Checkout(
        root=root,
        sha=found,
        branch=head.removeprefix(_BRANCH_REF) if head.startswith(_BRANCH_REF) else None,
        tags=tuple(sorted(on_commit)),
        repository=_repository_name(url) or f"local/{root.name}",
        repository_url=url or str(root),
        author=author,
    )


_BRANCH_REF = "refs/heads/"


def _repository_name(url: str) -> str | None:
    match = _OWNER_AND_NAME.search(url)
    return f"{match.group(1)}/{match.group(2)}" if match else None


def local_event(
    checkout: Checkout,
    *,
    kind: EventKind,
    branch: str | None = None,
    tag: str | None = None,
) -> Event:
    """The event for a local run. `branch` defaults to the checked-out branch, `tag` to a tag
    on the commit; for a pull request, `branch` is the base (target) branch and the head
    branch is the one checked out, as a forge reports a pull request from it."""
    branch = branch or checkout.branch
    if kind is EventKind.TAG:
        tag = tag or (checkout.tags[0] if checkout.tags else None)
        return _event(checkout, kind=kind, ref=f"refs/tags/{tag or ''}", branch=None, tag=tag)
    if kind is EventKind.PULL_REQUEST:
        pull_request = PullRequest(
            number=0,  # no forge numbered it; `FERRY_PULL_REQUEST` is then "0"
            title="",
            head_branch=checkout.branch or "",
            base_branch=branch or "",
            author=checkout.author,
        )
        return _event(
            checkout, kind=kind, ref="refs/pull/0/head", branch=branch, pull_request=pull_request
        )
    ref = f"refs/heads/{branch}" if branch else "HEAD"
    return _event(checkout, kind=kind, ref=ref, branch=branch)


def _event(
    checkout: Checkout,
    *,
    kind: EventKind,
    ref: str,
    branch: str | None,
    tag: str | None = None,
    pull_request: PullRequest | None = None,
) -> Event:
    return Event(
        kind=kind,
        repository=checkout.repository,
        repository_url=checkout.repository_url,
        sha=checkout.sha,
        ref=ref,
        branch=branch,
        tag=tag,
        pull_request=pull_request,
        author=checkout.author,
        changed_files=None,
    )
