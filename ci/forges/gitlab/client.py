"""GitLab REST client (`/api/v4`): files, merge request files, commit statuses, notes, access.

GitLab publishes no OpenAPI description for these calls; they follow its API docs
(`doc/api/commits.md`, `repository_files.md`, `merge_requests.md`, `notes.md`,
`members.md`), and the fake forge checks them against a description written from those docs.
Projects are addressed by their URL-encoded path ("group%2Fsub%2Fname"), so no id lookup.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx

from ci.forges.client import Credentials, TokenCredentials
from ci.forges.errors import NotFoundError, UnexpectedResponseError
from ci.forges.statuses import (
    Conclusion,
    PostedStatus,
    Status,
    commit_status_body,
    contexts_of,
    newest_status,
)
from ci.forges.transport import (
    PAGE_SIZE,
    commit_of,
    get_json_or_none,
    json_of,
    named_branch,
    pages,
    send,
)
from ci.forges.types import ReportId, RepositoryName

DEFAULT_API_URL = "https://gitlab.com/api/v4"
# `description`, `target_url` and `ref` are capped at 255 characters.
FIELD_LIMIT = 255
# Developer (30) and above can push to unprotected branches.
DEVELOPER_ACCESS_LEVEL = 30

# GitLab spells it "canceled" and fails with "failed"; it has "skipped" but no "neutral".
COMMIT_STATES: Mapping[Conclusion, str] = {
    Conclusion.QUEUED: "pending",
    Conclusion.RUNNING: "running",
    Conclusion.SUCCESS: "success",
    Conclusion.FAILURE: "failed",
    Conclusion.TIMED_OUT: "failed",
    Conclusion.CANCELLED: "canceled",
    Conclusion.ERROR: "failed",
    Conclusion.SKIPPED: "skipped",
    Conclusion.NEUTRAL: "success",
}


def default_api_url(repository_url: str) -> str:
    parts = urllib.parse.urlsplit(repository_url)
    return f"{parts.scheme}://{parts.netloc}/api/v4"


def _project_path(repository: RepositoryName) -> str:
    if "/" not in repository.strip("/"):
        raise ValueError(f"a GitLab project is namespace/name, not {repository!r}")
    return f"/projects/{urllib.parse.quote(repository.strip('/'), safe='')}"


class GitLabClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_url: str = DEFAULT_API_URL,
        credentials: Credentials,
    ) -> None:
        if not isinstance(credentials, TokenCredentials):
            raise TypeError("GitLab takes an access token, not GitHub App credentials")
        self._http = http
        self._api_url = api_url.rstrip("/")
        self._headers = {"Accept": "application/json", "PRIVATE-TOKEN": credentials.token}

    def _url(self, repository: RepositoryName, tail: str) -> str:
        return f"{self._api_url}{_project_path(repository)}{tail}"

    async def read_file(self, repository: RepositoryName, path: str, ref: str) -> bytes | None:
        # The file path is one URL-encoded segment here, slashes included.
        encoded = urllib.parse.quote(path.lstrip("/"), safe="")
        url = self._url(repository, f"/repository/files/{encoded}/raw")
        try:
            response = await send(
                self._http, "GET", url, headers=self._headers, params={"ref": ref}
            )
        except NotFoundError:
            return None
        return response.content

    async def default_branch(self, repository: RepositoryName) -> str:
        response = await send(self._http, "GET", self._url(repository, ""), headers=self._headers)
        return named_branch(json_of(response))

    async def branch_head(self, repository: RepositoryName, branch: str) -> str | None:
        url = self._url(repository, f"/repository/branches/{urllib.parse.quote(branch, safe='')}")
        body = await get_json_or_none(self._http, url, headers=self._headers)
        return None if body is None else commit_of(body, "id")

    async def changed_files(self, repository: RepositoryName, number: int) -> tuple[str, ...]:
        files: set[str] = set()
        async for page in pages(
            self._http,
            self._url(repository, f"/merge_requests/{number}/diffs"),
            headers=self._headers,
            params={"per_page": PAGE_SIZE},
        ):
            for entry in page:
                files.update(_diff_paths(entry))
        return tuple(sorted(files))

    async def report_status(
        self,
        repository: RepositoryName,
        sha: str,
        status: Status,
        *,
        report_id: ReportId | None = None,
    ) -> ReportId | None:
        url = self._url(repository, f"/statuses/{sha}")
        await send(
            self._http, "POST", url, headers=self._headers, json=_commit_status_body(status)
        )
        return None

    async def has_status(self, repository: RepositoryName, sha: str, status: Status) -> bool:
        # Without `all`, GitLab lists only the latest status of each name; `name` narrows the
        # listing to ours. No `ref`, as `report_status` posts none.
        listed = await self._statuses(repository, sha, status.context)
        # Sent as `state` and `name`, answered as `status` and `name`.
        newest = newest_status(listed, context=status.context, context_field="name",
                               state_field="status")
        return newest == PostedStatus.of_body(_commit_status_body(status))

    async def shown_contexts(self, repository: RepositoryName, sha: str) -> frozenset[str]:
        # The latest status of each name is enough to know the names.
        return contexts_of(await self._statuses(repository, sha), context_field="name")

    async def _statuses(
        self, repository: RepositoryName, sha: str, name: str | None = None
    ) -> list[Any]:
        listed: list[Any] = []
        params: dict[str, str | int] = {"per_page": PAGE_SIZE}
        if name is not None:
            params["name"] = name
        async for page in pages(
            self._http,
            self._url(repository, f"/repository/commits/{sha}/statuses"),
            headers=self._headers,
            params=params,
        ):
            listed.extend(page)
        return listed

    async def comment(self, repository: RepositoryName, number: int, body: str) -> None:
        url = self._url(repository, f"/merge_requests/{number}/notes")
        await send(self._http, "POST", url, headers=self._headers, json={"body": body})

    async def has_write_access(
        self, repository: RepositoryName, user: str, *, user_id: int | None = None
    ) -> bool:
        # `members/all` includes members inherited from groups; `query` narrows by name and
        # `user_ids` by id, so the exact username, or the exact id, is matched here.
        params: dict[str, str | int] = {"per_page": PAGE_SIZE}
        if user_id is not None:
            params["user_ids"] = user_id
        else:
            params["query"] = user
        response = await send(
            self._http,
            "GET",
            self._url(repository, "/members/all"),
            headers=self._headers,
            params=params,
        )
        members = json_of(response)
        if not isinstance(members, list):
            raise UnexpectedResponseError("project members response is not a list")
        for member in members:
            if not isinstance(member, dict):
                continue
            if (member.get("id") == user_id) if user_id is not None else (
                member.get("username") == user
            ):
                level = member.get("access_level")
                return isinstance(level, int) and level >= DEVELOPER_ACCESS_LEVEL
        return False


def _commit_status_body(status: Status) -> dict[str, Any]:
    return commit_status_body(status, states=COMMIT_STATES, description_limit=FIELD_LIMIT,
                              context_field="name", url_limit=FIELD_LIMIT)


def _diff_paths(entry: object) -> tuple[str, ...]:
    if not isinstance(entry, dict):
        raise UnexpectedResponseError("merge request diff entry is not an object")
    paths = tuple(
        value for value in (entry.get("new_path"), entry.get("old_path")) if isinstance(value, str)
    )
    if not paths:
        raise UnexpectedResponseError("merge request diff entry has no path")
    return paths
