"""Gitea/Forgejo REST client (`/api/v1`): files, pull request files, statuses, comments, access,
commit messages.

Requests follow ../shared/contracts/gitea/swagger-subset.json; the three calls that subset
lacks (issue comments, collaborator permission, a commit) follow Gitea's published API of the
same version and are checked by the fake forge against a supplement written from it, and
against the real Gitea in tests/gitea/test_real_api.py.
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
    MAXIMUM_PAGES,
    PAGE_SIZE,
    changed_file_paths,
    commit_of,
    file_content,
    get_json_or_none,
    json_of,
    message_of,
    named_branch,
    pages,
    send,
)
from ci.forges.types import ReportId, RepositoryName

# Gitea stores descriptions in a 255-byte column; long ones are cut by some databases.
DESCRIPTION_LIMIT = 255

COMMIT_STATES: Mapping[Conclusion, str] = {
    Conclusion.QUEUED: "pending",
    Conclusion.RUNNING: "pending",
    Conclusion.SUCCESS: "success",
    Conclusion.FAILURE: "failure",
    Conclusion.TIMED_OUT: "failure",
    Conclusion.CANCELLED: "error",
    Conclusion.ERROR: "error",
    # Gitea only learnt "skipped" in 1.24-era releases; "success" works on all of them and
    # does not block branch protection.
    Conclusion.SKIPPED: "success",
    Conclusion.NEUTRAL: "success",
}

WRITE_PERMISSIONS = frozenset({"owner", "admin", "write"})


def default_api_url(repository_url: str) -> str:
    parts = urllib.parse.urlsplit(repository_url)
    return f"{parts.scheme}://{parts.netloc}/api/v1"


def _repository_path(repository: RepositoryName) -> str:
    owner, _, name = repository.partition("/")
    if not owner or not name or "/" in name:
        raise ValueError(f"a Gitea repository is owner/name, not {repository!r}")
    return f"/repos/{urllib.parse.quote(owner, safe='')}/{urllib.parse.quote(name, safe='')}"


class GiteaClient:
    def __init__(self, http: httpx.AsyncClient, *, api_url: str, credentials: Credentials) -> None:
        if not isinstance(credentials, TokenCredentials):
            raise TypeError("Gitea takes an access token, not GitHub App credentials")
        self._http = http
        self._api_url = api_url.rstrip("/")
        self._headers = {
            "Accept": "application/json",
            "Authorization": f"token {credentials.token}",
        }

    def _url(self, repository: RepositoryName, tail: str) -> str:
        return f"{self._api_url}{_repository_path(repository)}{tail}"

    async def read_file(self, repository: RepositoryName, path: str, ref: str) -> bytes | None:
        url = self._url(repository, f"/contents/{urllib.parse.quote(path.lstrip('/'))}")
        body = await get_json_or_none(self._http, url, headers=self._headers,
                                      params={"ref": ref})
        return None if body is None else file_content(body, path=path, ref=ref)

    async def commit_message(self, repository: RepositoryName, sha: str) -> str | None:
        """The commit's message (`GET /git/commits/{sha}`, without its diff or signature
        check); None when there is no such commit."""
        url = self._url(repository, f"/git/commits/{urllib.parse.quote(sha, safe='')}")
        params = {"stat": "false", "verification": "false", "files": "false"}
        body = await get_json_or_none(self._http, url, headers=self._headers, params=params)
        return None if body is None else message_of(body, inside="commit")

    async def default_branch(self, repository: RepositoryName) -> str:
        response = await send(self._http, "GET", self._url(repository, ""), headers=self._headers)
        return named_branch(json_of(response))

    async def branch_head(self, repository: RepositoryName, branch: str) -> str | None:
        url = self._url(repository, f"/branches/{urllib.parse.quote(branch, safe='')}")
        body = await get_json_or_none(self._http, url, headers=self._headers)
        return None if body is None else commit_of(body, "id")

    async def changed_files(self, repository: RepositoryName, number: int) -> tuple[str, ...]:
        # Gitea caps `limit` at its MAX_RESPONSE_ITEMS (50 by default) silently, so a short
        # page does not mean the last one; X-HasMore does, and an empty page ends it anyway.
        url = self._url(repository, f"/pulls/{number}/files")
        files: set[str] = set()
        for page_number in range(1, MAXIMUM_PAGES + 1):
            response = await send(
                self._http,
                "GET",
                url,
                headers=self._headers,
                params={"page": page_number, "limit": PAGE_SIZE},
            )
            page = json_of(response)
            if not isinstance(page, list):
                raise UnexpectedResponseError("pull request files response is not a list")
            for entry in page:
                files.update(changed_file_paths(entry))
            has_more = response.headers.get("x-hasmore")
            if not page or has_more == "false":
                return tuple(sorted(files))
        raise UnexpectedResponseError(f"pull request {number}: over {MAXIMUM_PAGES} pages")

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
        listed = await self._statuses(repository, sha)
        # Gitea answers the state in `status`, though it is sent as `state`.
        newest = newest_status(listed, context=status.context, context_field="context",
                               state_field="status")
        return newest == PostedStatus.of_body(_commit_status_body(status))

    async def shown_contexts(self, repository: RepositoryName, sha: str) -> frozenset[str]:
        return contexts_of(await self._statuses(repository, sha), context_field="context")

    async def _statuses(self, repository: RepositoryName, sha: str) -> list[Any]:
        # Gitea caps `limit` at MAX_RESPONSE_ITEMS but builds its `Link` header from the
        # capped size, so following `Link` reads every page.
        listed: list[Any] = []
        async for page in pages(
            self._http,
            self._url(repository, f"/statuses/{sha}"),
            headers=self._headers,
            params={"limit": PAGE_SIZE},
        ):
            listed.extend(page)
        return listed

    async def comment(self, repository: RepositoryName, number: int, body: str) -> None:
        url = self._url(repository, f"/issues/{number}/comments")
        await send(self._http, "POST", url, headers=self._headers, json={"body": body})

    async def has_write_access(
        self, repository: RepositoryName, user: str, *, user_id: int | None = None
    ) -> bool:
        # Payloads name a pull request's author by login here, so `user_id` is never set.
        url = self._url(
            repository, f"/collaborators/{urllib.parse.quote(user, safe='')}/permission"
        )
        try:
            response = await send(self._http, "GET", url, headers=self._headers)
        except NotFoundError:
            return False
        body = json_of(response)
        if not isinstance(body, dict):
            raise UnexpectedResponseError("collaborator permission response is not an object")
        return body.get("permission") in WRITE_PERMISSIONS


def _commit_status_body(status: Status) -> dict[str, Any]:
    return commit_status_body(status, states=COMMIT_STATES, description_limit=DESCRIPTION_LIMIT)
