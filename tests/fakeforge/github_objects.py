"""The objects the fake GitHub answers with, cut from the description's own examples.

Each starts from the example GitHub publishes beside the operation (`components/examples` of
contracts/github/full/api.github.com.json), so it carries every field the response schema
requires, and the fake overrides only what it knows (ids, names, states, times). The fake's
answers are then validated against the response schemas (`validation.response_problems`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ci.forges.types import ForgeKind
from tests.fakeforge.descriptions import description_document

API = "https://api.github.com"
WEB = "https://github.com"


def example(name: str) -> Any:
    """A fresh copy of the description's example `name` (its `value`)."""
    examples = description_document(ForgeKind.GITHUB)["components"]["examples"]
    return copy.deepcopy(examples[name]["value"])


def user(login: str, identifier: int = 1) -> dict[str, Any]:
    found: dict[str, Any] = example("issue-comment")["user"]
    found.update(
        login=login,
        id=identifier,
        url=f"{API}/users/{login}",
        html_url=f"{WEB}/{login}",
    )
    return found


def content_file(repository: str, path: str, *, content: str, size: int) -> dict[str, Any]:
    found: dict[str, Any] = example("content-file")
    url = f"{API}/repos/{repository}/contents/{path}"
    found.update(
        size=size,
        name=path.rsplit("/", 1)[-1],
        path=path,
        content=content,
        url=url,
        html_url=f"{WEB}/{repository}/blob/main/{path}",
        download_url=f"https://raw.githubusercontent.com/{repository}/main/{path}",
    )
    found["_links"] = {**found["_links"], "self": url}
    return found


def full_repository(repository: str, default_branch: str) -> dict[str, Any]:
    found: dict[str, Any] = example("full-repository-default-response")
    owner, _, name = repository.partition("/")
    found.update(name=name, full_name=repository, default_branch=default_branch,
                 html_url=f"{WEB}/{repository}", url=f"{API}/repos/{repository}")
    found["owner"] = {**found["owner"], "login": owner}
    # The published example lacks `language`, which the schema requires, and describes a
    # fork made from a template; this one is neither.
    found["language"] = None
    for key in ("template_repository", "parent", "source"):
        found.pop(key, None)
    found["fork"] = False
    return found


def branch(repository: str, name: str, sha: str) -> dict[str, Any]:
    found: dict[str, Any] = example("branch-get")
    found["name"] = name
    found["commit"]["sha"] = sha
    found["commit"]["url"] = f"{API}/repos/{repository}/commits/{sha}"
    found["_links"] = {"html": f"{WEB}/{repository}/tree/{name}",
                       "self": f"{API}/repos/{repository}/branches/{name}"}
    return found


def diff_entry(name: str, previous: str | None) -> dict[str, Any]:
    found: dict[str, Any] = example("diff-entry-items")[0]
    found.update(
        filename=name,
        status="renamed" if previous else "modified",
        blob_url=f"{WEB}/blob/{name}",
        raw_url=f"{WEB}/raw/{name}",
        contents_url=f"{API}/contents/{name}",
    )
    if previous:
        found["previous_filename"] = previous
    return found


def status(repository: str, sha: str, posted: Mapping[str, Any]) -> dict[str, Any]:
    """A commit status as GitHub lists it; `posted` holds what the client sent plus the
    fake's `id` and `created_at`."""
    found: dict[str, Any] = example("status")
    found.update(
        url=f"{API}/repos/{repository}/statuses/{sha}",
        node_id=f"SC_{posted['id']}",
        description=None,
        target_url=None,
        updated_at=posted["created_at"],
        creator=user("ferry-bot", 28),
    )
    found.update(posted)
    return found


def check_run(
    repository: str, identifier: int, fields: Mapping[str, Any], *, app_id: int | None,
    now: str,
) -> dict[str, Any]:
    """A check run as GitHub answers it, from the fields set on it so far (GitHub stamps
    `completed_at` when a conclusion is set without one)."""
    found: dict[str, Any] = example("check-run")
    found.update(
        id=identifier,
        node_id=f"CR_{identifier}",
        url=f"{API}/repos/{repository}/check-runs/{identifier}",
        html_url=f"{WEB}/{repository}/runs/{identifier}",
        external_id="",
        details_url=None,
        status="queued",
        conclusion=None,
        started_at=fields.get("started_at"),
        completed_at=None,
        pull_requests=[],
    )
    if app_id is not None:
        found["app"] = {**found["app"], "id": app_id}
    output = {"title": None, "summary": None, "text": None, **found["output"]}
    for key, value in fields.items():
        if key == "output":
            output.update({k: v for k, v in value.items() if k in ("title", "summary", "text")})
        elif key in found or key in ("head_sha", "name"):
            found[key] = value
    found["output"] = output
    if found["conclusion"] is not None and found["completed_at"] is None:
        found["completed_at"] = now
    return found


def issue_comment(repository: str, number: int, identifier: int, body: str) -> dict[str, Any]:
    found: dict[str, Any] = example("issue-comment")
    found.update(
        id=identifier,
        body=body,
        url=f"{API}/repos/{repository}/issues/comments/{identifier}",
        html_url=f"{WEB}/{repository}/issues/{number}#issuecomment-{identifier}",
        issue_url=f"{API}/repos/{repository}/issues/{number}",
        user=user("ferry-bot", 28),
    )
    return found


def collaborator_permission(login: str, level: str) -> dict[str, Any]:
    found: dict[str, Any] = example(
        "repository-collaborator-permission-response-if-user-has-admin-permissions"
    )
    found.update(permission=level, role_name=level)
    found["user"] = {**found["user"], **user(login), "role_name": level}
    return found


def pull_request(
    repository: str,
    number: int,
    *,
    head_sha: str,
    head_branch: str,
    author: str,
    head_repository: str | None = None,
    base_branch: str = "main",
    title: str = "A change",
    state: str = "open",
) -> dict[str, Any]:
    """A pull request as `GET /repos/{owner}/{repo}/pulls/{number}` answers it;
    `head_repository` is the fork's owner/name (None: the repository itself)."""
    found: dict[str, Any] = example("pull-request")
    found.update(
        # The published example's teams lack the `type` the schema now requires.
        requested_teams=[],
        number=number,
        state=state,
        title=title,
        user=user(author, 7),
        url=f"{API}/repos/{repository}/pulls/{number}",
        html_url=f"{WEB}/{repository}/pull/{number}",
    )

    def side(full_name: str, ref: str, sha: str) -> dict[str, Any]:
        owner = full_name.split("/", 1)[0]
        repo = {
            **found["base"]["repo"],
            "full_name": full_name,
            "name": full_name.split("/", 1)[1],
            "html_url": f"{WEB}/{full_name}",
            "clone_url": f"{WEB}/{full_name}.git",
            "url": f"{API}/repos/{full_name}",
            "owner": {**found["base"]["repo"]["owner"], "login": owner},
        }
        return {**found["base"], "label": f"{owner}:{ref}", "ref": ref, "sha": sha,
                "user": user(owner), "repo": repo}

    found["head"] = side(head_repository or repository, head_branch, head_sha)
    found["base"] = side(repository, base_branch, "0" * 40)
    return found


def git_commit(repository: str, sha: str, message: str) -> dict[str, Any]:
    found: dict[str, Any] = example("git-commit-2")
    found.update(
        sha=sha,
        message=message,
        url=f"{API}/repos/{repository}/git/commits/{sha}",
        html_url=f"{WEB}/{repository}/commit/{sha}",
    )
    return found


def installation_token(token: str, expires_at: str) -> dict[str, Any]:
    found: dict[str, Any] = example("installation-token")
    found.update(token=token, expires_at=expires_at)
    return found
