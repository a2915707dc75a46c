"""GitHub REST client: files, pull request files, statuses (or check runs), comments, access.

Requests follow GitHub's REST description (../shared/contracts/github/full/api.github.com.json);
the fake forge in tests/fakeforge validates each one, and its answers, against it.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx

from ci.forges.client import Credentials, ShownCheckRun
from ci.forges.errors import NotFoundError, PayloadError, UnexpectedResponseError
from ci.forges.github.authentication import GitHubAuthentication
from ci.forges.github.webhook import pull_request_event
from ci.forges.payloads import Fields, repository_ref
from ci.forges.statuses import (
    Conclusion,
    PostedStatus,
    Status,
    commit_status_body,
    contexts_of,
    newest_check_run,
    newest_status,
    shorten,
)
from ci.forges.transport import (
    PAGE_SIZE,
    Clock,
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
from pipelines.events import Event

DEFAULT_API_URL = "https://api.github.com"
# GitHub cuts longer commit status descriptions with a 422.
DESCRIPTION_LIMIT = 140
# Check run `output.summary` and `output.text` are capped at 65535 characters each.
OUTPUT_LIMIT = 65535

COMMIT_STATES: Mapping[Conclusion, str] = {
    Conclusion.QUEUED: "pending",
    Conclusion.RUNNING: "pending",
    Conclusion.SUCCESS: "success",
    Conclusion.FAILURE: "failure",
    Conclusion.TIMED_OUT: "failure",
    # Commit statuses have no "cancelled": "error" says it did not fail on its merits.
    Conclusion.CANCELLED: "error",
    Conclusion.ERROR: "error",
    # A run that `when` skipped must not block branch protection.
    Conclusion.SKIPPED: "success",
    Conclusion.NEUTRAL: "success",
}

# Check runs: (status, conclusion); GitHub spells it "cancelled" and has no "error".
CHECK_RUN_STATES: Mapping[Conclusion, tuple[str, str | None]] = {
    Conclusion.QUEUED: ("queued", None),
    Conclusion.RUNNING: ("in_progress", None),
    Conclusion.SUCCESS: ("completed", "success"),
    Conclusion.FAILURE: ("completed", "failure"),
    Conclusion.TIMED_OUT: ("completed", "timed_out"),
    Conclusion.CANCELLED: ("completed", "cancelled"),
    Conclusion.ERROR: ("completed", "failure"),
    Conclusion.SKIPPED: ("completed", "skipped"),
    Conclusion.NEUTRAL: ("completed", "neutral"),
}

# Permission levels that can push. The legacy `permission` field folds "maintain" into
# "write"; `role_name` keeps it (and custom roles).
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


def default_api_url(repository_url: str) -> str:
    """github.com uses api.github.com; GitHub Enterprise Server serves `/api/v3` on its host."""
    parts = urllib.parse.urlsplit(repository_url)
    if parts.hostname in (None, "github.com", "www.github.com"):
        return DEFAULT_API_URL
    return f"{parts.scheme}://{parts.netloc}/api/v3"


def _repository_path(repository: RepositoryName) -> str:
    owner, _, name = repository.partition("/")
    if not owner or not name or "/" in name:
        raise ValueError(f"a GitHub repository is owner/name, not {repository!r}")
    return f"/repos/{urllib.parse.quote(owner, safe='')}/{urllib.parse.quote(name, safe='')}"


class GitHubClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_url: str = DEFAULT_API_URL,
        credentials: Credentials,
        clock: Clock = time.time,
    ) -> None:
        self._http = http
        self._api_url = api_url.rstrip("/")
        self._authentication = GitHubAuthentication(
            credentials, http=http, api_url=self._api_url, clock=clock
        )

    def _url(self, repository: RepositoryName, tail: str) -> str:
        return f"{self._api_url}{_repository_path(repository)}{tail}"

    async def installation_token(self) -> str:
        return await self._authentication.token()

    async def _send(self, method: str, url: str, *, json: object = None) -> httpx.Response:
        return await send(
            self._http, method, url, headers=await self._authentication.headers(), json=json
        )

    async def read_file(self, repository: RepositoryName, path: str, ref: str) -> bytes | None:
        # Slashes stay literal: GitHub routes `contents/dir/file`, not `dir%2Ffile`.
        url = self._url(repository, f"/contents/{urllib.parse.quote(path.lstrip('/'))}")
        body = await get_json_or_none(self._http, url,
                                      headers=await self._authentication.headers(),
                                      params={"ref": ref})
        return None if body is None else file_content(body, path=path, ref=ref)

    async def pull_request(self, repository: RepositoryName, number: int) -> Event | None:
        """The event pull request `number`'s head runs, read from the API (the head commit
        and author an `issue_comment` payload lacks); None when there is no such pull
        request, or it is closed."""
        try:
            response = await self._send("GET", self._url(repository, f"/pulls/{number}"))
        except NotFoundError:
            return None
        body = json_of(response)
        if not isinstance(body, dict):
            raise UnexpectedResponseError("pull request response is not an object")
        fields = Fields(body)
        try:
            if fields.text("state") != "open":
                return None
            where = repository_ref(fields.object("base").object("repo"))
            if where is None:
                raise PayloadError("the pull request's base has no repository")
            return pull_request_event(fields, number, where)
        except PayloadError as error:
            raise UnexpectedResponseError(f"pull request {number}: {error}") from error

    async def commit_message(self, repository: RepositoryName, sha: str) -> str | None:
        url = self._url(repository, f"/git/commits/{urllib.parse.quote(sha, safe='')}")
        body = await get_json_or_none(self._http, url,
                                      headers=await self._authentication.headers())
        return None if body is None else message_of(body)

    async def default_branch(self, repository: RepositoryName) -> str:
        response = await send(self._http, "GET", self._url(repository, ""),
                              headers=await self._authentication.headers())
        return named_branch(json_of(response))

    async def branch_head(self, repository: RepositoryName, branch: str) -> str | None:
        url = self._url(repository, f"/branches/{urllib.parse.quote(branch, safe='')}")
        body = await get_json_or_none(self._http, url,
                                      headers=await self._authentication.headers())
        return None if body is None else commit_of(body, "sha")

    async def changed_files(self, repository: RepositoryName, number: int) -> tuple[str, ...]:
        files: set[str] = set()
        async for page in pages(
            self._http,
            self._url(repository, f"/pulls/{number}/files"),
            headers=await self._authentication.headers(),
            params={"per_page": PAGE_SIZE},
        ):
            for entry in page:
                files.update(changed_file_paths(entry))
        return tuple(sorted(files))

    async def report_status(
        self,
        repository: RepositoryName,
        sha: str,
        status: Status,
        *,
        report_id: ReportId | None = None,
    ) -> ReportId | None:
        if self._authentication.app_mode:
            return await self._report_check_run(repository, sha, status, report_id=report_id)
        body = _commit_status_body(status)
        await self._send("POST", self._url(repository, f"/statuses/{sha}"), json=body)
        return None

    async def has_status(self, repository: RepositoryName, sha: str, status: Status) -> bool:
        if self._authentication.app_mode:
            return False  # check runs are found with `find_check_run` (see the protocol)
        listed = await self._commit_statuses(repository, sha)
        newest = newest_status(listed, context=status.context, context_field="context",
                               state_field="state")
        return newest == PostedStatus.of_body(_commit_status_body(status))

    async def shown_contexts(self, repository: RepositoryName, sha: str) -> frozenset[str]:
        if self._authentication.app_mode:
            return contexts_of(await self._check_runs(repository, sha), context_field="name")
        listed = await self._commit_statuses(repository, sha)
        return contexts_of(listed, context_field="context")

    async def _commit_statuses(self, repository: RepositoryName, sha: str) -> list[Any]:
        listed: list[Any] = []
        async for page in pages(
            self._http,
            self._url(repository, f"/commits/{sha}/statuses"),
            headers=await self._authentication.headers(),
            params={"per_page": PAGE_SIZE},
        ):
            listed.extend(page)
        return listed

    async def _check_runs(self, repository: RepositoryName, sha: str, *,
                          name: str | None = None) -> list[Any]:
        """The commit's check runs (of `name`, or every name), every one: `filter=all`, since
        the default `latest` hides older check runs of the same name."""
        params: dict[str, str | int] = {"filter": "all", "per_page": PAGE_SIZE}
        if name is not None:
            params["check_name"] = name
        listed: list[Any] = []
        async for page in pages(
            self._http,
            self._url(repository, f"/commits/{urllib.parse.quote(sha)}/check-runs"),
            headers=await self._authentication.headers(),
            params=params,
            items="check_runs",
        ):
            listed.extend(page)
        return listed

    async def find_check_run(
        self, repository: RepositoryName, sha: str, status: Status
    ) -> ShownCheckRun | None:
        if not status.external_id:
            return None  # nothing tells Ferry's check run from another run's of that name
        listed = await self._check_runs(repository, sha, name=status.context)
        found = newest_check_run(listed, name=status.context, external_id=status.external_id)
        if found is None:
            return None
        state, conclusion = CHECK_RUN_STATES[status.conclusion]
        current = (
            found.status == state
            and found.conclusion == conclusion
            and found.title == status.title
            and found.details_url == (status.details_url or None)
        )
        return ShownCheckRun(report_id=ReportId(str(found.id)), current=current,
                             completed=found.status == "completed")

    async def _report_check_run(
        self,
        repository: RepositoryName,
        sha: str,
        status: Status,
        *,
        report_id: ReportId | None,
    ) -> ReportId:
        state, conclusion = CHECK_RUN_STATES[status.conclusion]
        body: dict[str, Any] = {
            "name": status.context,
            "status": state,
            "output": {
                "title": status.title,
                "summary": shorten(status.summary or status.title, OUTPUT_LIMIT),
                **({"text": shorten(status.text, OUTPUT_LIMIT)} if status.text else {}),
            },
        }
        if conclusion is not None:
            body["conclusion"] = conclusion
        if status.details_url:
            body["details_url"] = status.details_url
        if status.external_id:
            body["external_id"] = status.external_id
        if report_id is not None:
            url = self._url(repository, f"/check-runs/{report_id}")
            response = await self._send("PATCH", url, json=body)
        else:
            body["head_sha"] = sha
            response = await self._send("POST", self._url(repository, "/check-runs"), json=body)
        created = json_of(response)
        identifier = created.get("id") if isinstance(created, dict) else None
        if not isinstance(identifier, int):
            raise UnexpectedResponseError("check run response has no integer `id`")
        return ReportId(str(identifier))

    async def comment(self, repository: RepositoryName, number: int, body: str) -> None:
        url = self._url(repository, f"/issues/{number}/comments")
        await self._send("POST", url, json={"body": body})

    async def has_write_access(
        self, repository: RepositoryName, user: str, *, user_id: int | None = None
    ) -> bool:
        # Payloads name a pull request's author by login here, so `user_id` is never set.
        url = self._url(
            repository, f"/collaborators/{urllib.parse.quote(user, safe='')}/permission"
        )
        try:
            response = await self._send("GET", url)
        except NotFoundError:
            return False  # no such user
        body = json_of(response)
        if not isinstance(body, dict):
            raise UnexpectedResponseError("collaborator permission response is not an object")
        levels = {body.get("permission"), body.get("role_name")}
        return not WRITE_PERMISSIONS.isdisjoint(levels)


def _commit_status_body(status: Status) -> dict[str, Any]:
    return commit_status_body(status, states=COMMIT_STATES, description_limit=DESCRIPTION_LIMIT)
