"""The fake forge's state, its ASGI app and the per-forge route tables."""

from __future__ import annotations

import asyncio
import base64
import functools
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ci.forges.types import ForgeKind
from tests.fakeforge import github_objects
from tests.fakeforge.descriptions import API_PREFIXES
from tests.fakeforge.faults import Faults
from tests.fakeforge.validation import problems, response_problems

# Installation tokens live an hour on GitHub.
INSTALLATION_TOKEN_SECONDS = 3600
_REDACTED = frozenset({"authorization", "private-token"})


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # as sent, still percent-encoded
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names; credentials redacted
    body: bytes
    json: Any


@dataclass(frozen=True)
class _Call:
    """One request as handlers see it."""

    method: str
    raw_path: str
    url: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    json: Any


Handler = Callable[["FakeForge", _Call, tuple[str, ...]], Response]


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeForge:
    """One fake forge of `kind`. Seed it with files, pull request files and permissions."""

    kind: ForgeKind
    tokens: set[str] = field(default_factory=lambda: {"test-token"})
    app_id: str | None = None
    app_public_key: str | None = None  # PEM; set to accept GitHub App JWTs
    clock: Callable[[], float] = time.time
    faults: Faults = field(default_factory=Faults)
    files: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    pull_request_files: dict[tuple[str, int], list[tuple[str, str | None]]] = field(
        default_factory=dict
    )
    permissions: dict[tuple[str, str], str | int] = field(default_factory=dict)
    # Commit messages, by (repository, sha), for `GET .../git/commits/{sha}` (GitHub, Gitea).
    commit_messages: dict[tuple[str, str], str] = field(default_factory=dict)
    # GitHub's pull requests, as `GET .../pulls/{number}` answers (`add_pull_request`).
    pull_requests: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    branches: dict[tuple[str, str], str] = field(default_factory=dict)  # head commits
    default_branches: dict[str, str] = field(default_factory=dict)  # "main" unless set
    user_ids: dict[str, int] = field(default_factory=dict)  # GitLab users' ids, by name
    statuses: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: list[tuple[str, int, str]] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    installation_tokens: dict[str, float] = field(default_factory=dict)
    # Check every request and answer against the forge's API description. Only a benchmark
    # turns it off, once the requests of each kind were checked: a check costs tens of ms.
    validate: bool = True
    _ids: Iterable[int] = field(default_factory=lambda: itertools.count(1000))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # Seeding

    def add_file(self, repository: str, ref: str, path: str, content: bytes | str) -> None:
        """`ref` "*" serves the file at every ref that has no file of its own there."""
        data = content.encode() if isinstance(content, str) else content
        self.files[(repository, ref, path)] = data

    def set_branch(self, repository: str, branch: str, sha: str) -> None:
        """`branch` of `repository` points at `sha`."""
        self.branches[(repository, branch)] = sha

    def set_default_branch(self, repository: str, branch: str) -> None:
        self.default_branches[repository] = branch

    def set_pull_request_files(
        self, repository: str, number: int, files: Iterable[str | tuple[str, str | None]]
    ) -> None:
        self.pull_request_files[(repository, number)] = [
            (entry, None) if isinstance(entry, str) else entry for entry in files
        ]

    def add_pull_request(self, repository: str, number: int, **fields: Any) -> None:
        """GitHub: a pull request to answer (`github_objects.pull_request`'s fields)."""
        self.pull_requests[(repository, number)] = github_objects.pull_request(
            repository, number, **fields
        )

    def set_permission(
        self, repository: str, user: str, permission: str | int, *, user_id: int | None = None
    ) -> None:
        """GitHub/Gitea: "admin", "write", "read", "none"; GitLab: an access level (30),
        and the user's id, by which GitLab's merge request payloads name an author."""
        self.permissions[(repository, user)] = permission
        if user_id is not None:
            self.user_ids[user] = user_id

    # Reading

    @property
    def api_url(self) -> str:
        return f"http://{self.kind.value}.fake{API_PREFIXES[self.kind]}"

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self)

    def statuses_for(self, repository: str, sha: str) -> list[dict[str, Any]]:
        return self.statuses.get((repository, sha), [])

    def assert_no_violations(self) -> None:
        if self.violations:
            listed = "\n  ".join(self.violations)
            raise AssertionError(
                f"requests the real {self.kind.value} API would reject (or answers it would "
                f"not give):\n  {listed}"
            )

    def next_id(self) -> int:
        return next(iter(self._ids))

    # ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self._respond(request)
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        body = await request.body()
        raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        raw_path = raw_path.split("?", 1)[0]
        query = list(urllib.parse.parse_qsl(request.url.query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in request.headers.items()}
        problem = problems(
            self.kind,
            method=request.method,
            raw_path=raw_path,
            query=query,
            headers=list(request.headers.items()),
            body=body,
        ) if self.validate else None
        if problem is not None:
            return self._violation(f"{request.method} {raw_path}: {problem}")
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return self._violation(f"{request.method} {raw_path}: body is not JSON")
        call = _Call(
            method=request.method,
            raw_path=raw_path,
            # Built from the raw path: Starlette's URL decodes GitLab's `group%2Fname`.
            url=f"{request.url.scheme}://{request.url.netloc}{raw_path}?{request.url.query}",
            query=dict(query),
            headers=headers,
            json=payload,
        )
        route = _route(self.kind, request.method, raw_path)
        if route is None:
            return self._violation(f"{request.method} {raw_path}: described but not faked")
        handler, groups = route
        unauthorized = self._authenticate(call, handler)
        if unauthorized is not None:
            return unauthorized
        failure = self.faults.roll()
        if failure is not None:
            headers_out = {"Retry-After": str(self.faults.retry_after)} if failure == 429 else {}
            return JSONResponse({"message": "injected failure"}, failure, headers=headers_out)
        with self._lock:
            response = handler(self, call, groups)
            answer_problem = response_problems(
                self.kind,
                method=request.method,
                raw_path=raw_path,
                query=query,
                headers=list(request.headers.items()),
                body=body,
                status_code=response.status_code,
                response_headers=response.headers,
                response_body=bytes(response.body),
            ) if self.validate else None
            if answer_problem is not None:
                # The fake's own bug: it answered what the real API never would.
                self.violations.append(
                    f"answer {response.status_code} to {request.method} {raw_path}: "
                    f"{answer_problem}"
                )
            if response.status_code < 400:
                self.requests.append(
                    RecordedRequest(
                        method=call.method,
                        path=raw_path,
                        query=call.query,
                        headers={
                            name: ("<redacted>" if name in _REDACTED else value)
                            for name, value in headers.items()
                        },
                        body=body,
                        json=payload,
                    )
                )
        if self.faults.hold and call.method != "GET":
            await asyncio.sleep(self.faults.hold)
        return response

    def _violation(self, message: str) -> Response:
        self.violations.append(message)
        return JSONResponse({"message": "Validation Failed", "fake_forge": message}, 422)

    # Authentication, as each forge reads credentials

    def _authenticate(self, call: _Call, handler: Handler) -> Response | None:
        if handler is _github_access_token:
            return self._authenticate_app(call)
        token = _credential(self.kind, call.headers)
        now = self.clock()
        valid = token in self.tokens or self.installation_tokens.get(token or "", 0.0) > now
        if valid:
            return None
        return JSONResponse({"message": "Bad credentials"}, 401)

    def _authenticate_app(self, call: _Call) -> Response | None:
        authorization = call.headers.get("authorization", "")
        if not authorization.startswith("Bearer ") or self.app_public_key is None:
            return JSONResponse({"message": "A JSON web token could not be decoded"}, 401)
        try:
            claims = jwt.decode(
                authorization.removeprefix("Bearer "),
                self.app_public_key,
                algorithms=["RS256"],
                # Times are checked below against the forge's clock, which tests move.
                options={
                    "require": ["iat", "exp", "iss"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as error:
            return JSONResponse({"message": f"JWT rejected: {error}"}, 401)
        now = self.clock()
        if not claims["iat"] - 60 <= now < claims["exp"]:
            return JSONResponse({"message": "JWT is expired or not yet valid"}, 401)
        if str(claims["iss"]) != str(self.app_id):
            return JSONResponse({"message": "JWT issuer is not this App"}, 401)
        if claims["exp"] - claims["iat"] > 600:
            self.violations.append("App JWT lives longer than GitHub's 10 minutes")
            return JSONResponse({"message": "'Expiration time' claim is too far"}, 401)
        return None


def _credential(kind: ForgeKind, headers: Mapping[str, str]) -> str | None:
    if kind is ForgeKind.GITLAB and "private-token" in headers:
        return headers["private-token"]
    scheme, _, value = headers.get("authorization", "").partition(" ")
    accepted = {"bearer", "token"}
    return value if scheme.lower() in accepted and value else None


# Shared helpers for handlers


def _page(
    call: _Call, items: list[Any], *, size_name: str, default_size: int
) -> tuple[list[Any], dict[str, str]]:
    page = int(call.query.get("page", "1") or 1)
    size = int(call.query.get(size_name, str(default_size)) or default_size)
    start = (page - 1) * size
    chunk = items[start : start + size]
    headers = {"X-Total-Count": str(len(items))}
    if start + size < len(items):
        parts = urllib.parse.urlsplit(call.url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        query["page"] = str(page + 1)
        following = parts._replace(query=urllib.parse.urlencode(query)).geturl()
        headers["Link"] = f'<{following}>; rel="next"'
    return chunk, headers


def _not_found() -> Response:
    return JSONResponse({"message": "Not Found"}, 404)


def _repository(groups: tuple[str, ...]) -> str:
    return f"{urllib.parse.unquote(groups[0])}/{urllib.parse.unquote(groups[1])}"


def _contents(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    repository, path = _repository(groups), urllib.parse.unquote(groups[2])
    ref = call.query.get("ref", "main")
    content = forge.files.get((repository, ref, path), forge.files.get((repository, "*", path)))
    if content is None:
        return _not_found()
    encoded = base64.encodebytes(content).decode()  # line-wrapped, as GitHub does
    if forge.kind is ForgeKind.GITHUB:
        return JSONResponse(
            github_objects.content_file(repository, path, content=encoded, size=len(content))
        )
    return JSONResponse(
        {
            "type": "file",
            "encoding": "base64",
            "size": len(content),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": "3d21ec53a331a6f037a91c368710b99387d012c1",
            "content": encoded,
        }
    )


def _repository_object(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    if forge.kind is ForgeKind.GITLAB:
        repository = urllib.parse.unquote(groups[0])
    else:
        repository = _repository(groups)
    branch = forge.default_branches.get(repository, "main")
    if forge.kind is ForgeKind.GITHUB:
        return JSONResponse(github_objects.full_repository(repository, branch))
    # Gitea's Repository and GitLab's project entity, as far as Ferry reads them.
    key = "path_with_namespace" if forge.kind is ForgeKind.GITLAB else "full_name"
    return JSONResponse({key: repository, "default_branch": branch})


def _branch(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    if forge.kind is ForgeKind.GITLAB:
        repository, name = urllib.parse.unquote(groups[0]), urllib.parse.unquote(groups[1])
    else:
        repository, name = _repository(groups), urllib.parse.unquote(groups[2])
    sha = forge.branches.get((repository, name))
    if sha is None:
        return _not_found()
    if forge.kind is ForgeKind.GITHUB:
        return JSONResponse(github_objects.branch(repository, name, sha))
    # Gitea's Branch and GitLab's branch entity: the commit under `commit.id`.
    return JSONResponse({"name": name, "protected": False, "commit": {"id": sha}})


def _add_status(
    forge: FakeForge, repository: str, sha: str, status: dict[str, Any]
) -> dict[str, Any]:
    stored = {"id": forge.next_id(), "created_at": _iso(forge.clock()), **status}
    forge.statuses.setdefault((repository, sha), []).append(stored)
    return stored


def _permission(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    user = urllib.parse.unquote(groups[2])
    level = forge.permissions.get((_repository(groups), user), "none")
    if forge.kind is ForgeKind.GITHUB:
        return JSONResponse(github_objects.collaborator_permission(user, str(level)))
    return JSONResponse({"permission": level, "role_name": level, "user": {"login": user, "id": 1}})


# GitHub


def _github_access_token(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    token = f"ghs_fake{forge.next_id()}"
    expires = forge.clock() + INSTALLATION_TOKEN_SECONDS
    forge.installation_tokens[token] = expires
    return JSONResponse(github_objects.installation_token(token, _iso(expires)), 201)


def _github_files(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    entries = forge.pull_request_files.get((_repository(groups), int(groups[2])))
    if entries is None:
        return _not_found()
    items = [github_objects.diff_entry(name, previous) for name, previous in entries]
    chunk, headers = _page(call, items, size_name="per_page", default_size=30)
    return JSONResponse(chunk, headers=headers)


def _github_pull_request(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    found = forge.pull_requests.get((_repository(groups), int(groups[2])))
    return _not_found() if found is None else JSONResponse(found)


def _github_git_commit(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    repository, sha = _repository(groups), groups[2]
    message = forge.commit_messages.get((repository, sha))
    if message is None:
        return _not_found()
    return JSONResponse(github_objects.git_commit(repository, sha, message))


def _github_status(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    repository, sha = _repository(groups), groups[2]
    stored = _add_status(forge, repository, sha, dict(call.json))
    return JSONResponse(github_objects.status(repository, sha, stored), 201)


def _github_list_statuses(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    # "Statuses are returned in reverse chronological order" (the description's own words).
    repository, sha = _repository(groups), urllib.parse.unquote(groups[2])
    posted = forge.statuses_for(repository, sha)
    items = [github_objects.status(repository, sha, status) for status in reversed(posted)]
    size = min(int(call.query.get("per_page", "30") or 30), 100)
    call = _Call(**{**call.__dict__, "query": {**call.query, "per_page": str(size)}})
    chunk, headers = _page(call, items, size_name="per_page", default_size=30)
    return JSONResponse(chunk, headers=headers)


def _check_run_rules(body: Mapping[str, Any]) -> str | None:
    # Documented in the description's prose, which a schema cannot say.
    if body.get("status") == "completed" and "conclusion" not in body:
        return "a completed check run needs a conclusion"
    if "completed_at" in body and "conclusion" not in body:
        return "completed_at needs a conclusion"
    return None


def _github_create_check_run(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    problem = _check_run_rules(call.json)
    if problem:
        return forge._violation(f"POST {call.raw_path}: {problem}")
    identifier = forge.next_id()
    run = {"id": identifier, "repository": _repository(groups), "status": "queued", **call.json}
    if "conclusion" in run:
        run["status"] = "completed"
    forge.check_runs[identifier] = run
    return JSONResponse(_check_run_answer(forge, run), 201)


def _github_update_check_run(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    run = forge.check_runs.get(int(groups[2]))
    if run is None or run["repository"] != _repository(groups):
        return _not_found()
    problem = _check_run_rules(call.json)
    if problem:
        return forge._violation(f"PATCH {call.raw_path}: {problem}")
    run.update(call.json)
    if "conclusion" in call.json:
        run["status"] = "completed"
    run.setdefault("updates", 0)
    run["updates"] += 1
    return JSONResponse(_check_run_answer(forge, run))


def _github_list_check_runs(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    repository, ref = _repository(groups), urllib.parse.unquote(groups[2])
    runs = [
        run for run in forge.check_runs.values()
        if run["repository"] == repository and run.get("head_sha") == ref
        and call.query.get("check_name") in (None, run.get("name"))
        and call.query.get("status") in (None, run.get("status"))
    ]
    if call.query.get("filter", "latest") == "latest":
        # Only the most recent check run of each name.
        newest = {run.get("name"): run for run in sorted(runs, key=lambda run: run["id"])}
        runs = [run for run in runs if newest[run.get("name")] is run]
    # GitHub promises no order; newest first, so a client that took the first would pass
    # only by luck where the order differs.
    items = [_check_run_answer(forge, run) for run in sorted(runs, key=lambda r: -r["id"])]
    size = min(int(call.query.get("per_page", "30") or 30), 100)
    call = _Call(**{**call.__dict__, "query": {**call.query, "per_page": str(size)}})
    chunk, headers = _page(call, items, size_name="per_page", default_size=30)
    headers.pop("X-Total-Count", None)
    return JSONResponse({"total_count": len(items), "check_runs": chunk}, headers=headers)


def _check_run_answer(forge: FakeForge, run: Mapping[str, Any]) -> dict[str, Any]:
    app_id = int(forge.app_id) if forge.app_id and forge.app_id.isdigit() else None
    return github_objects.check_run(
        run["repository"], run["id"], run, app_id=app_id, now=_iso(forge.clock())
    )


def _issue_comment(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    repository, number, body = _repository(groups), int(groups[2]), call.json["body"]
    forge.comments.append((repository, number, body))
    if forge.kind is ForgeKind.GITHUB:
        return JSONResponse(
            github_objects.issue_comment(repository, number, forge.next_id(), body), 201
        )
    return JSONResponse({"id": forge.next_id(), "body": body}, 201)


# Gitea


def _gitea_files(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    entries = forge.pull_request_files.get((_repository(groups), int(groups[2])))
    if entries is None:
        return _not_found()
    items = [
        {
            "filename": name,
            "status": "renamed" if previous else "changed",
            "additions": 1,
            "deletions": 0,
            "changes": 1,
            **({"previous_filename": previous} if previous else {}),
        }
        for name, previous in entries
    ]
    # Gitea caps the page size at MAX_RESPONSE_ITEMS (50 by default) without saying so.
    limit = min(int(call.query.get("limit", "30") or 30), 50)
    call = _Call(**{**call.__dict__, "query": {**call.query, "limit": str(limit)}})
    chunk, headers = _page(call, items, size_name="limit", default_size=30)
    headers["X-HasMore"] = "true" if "Link" in headers else "false"
    return JSONResponse(chunk, headers=headers)


def _gitea_commit(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    repository, sha = _repository(groups), groups[2]
    message = forge.commit_messages.get((repository, sha))
    if message is None:
        return _not_found()
    return JSONResponse({"sha": sha, "commit": {"message": message}})


def _gitea_status(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    stored = _add_status(forge, _repository(groups), groups[2], dict(call.json))
    return JSONResponse({**stored, "status": stored.get("state")}, 201)


def _gitea_list_statuses(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    posted = forge.statuses_for(_repository(groups), groups[2])
    items = [
        {"url": "", "target_url": "", "description": "", "updated_at": status["created_at"],
         **status, "status": status["state"]}
        for status in posted
        if call.query.get("state") in (None, status["state"])
    ]
    # Gitea sorts by creation time, newest first, unless asked otherwise; statuses created in
    # the same second come in no promised order.
    if call.query.get("sort") != "oldest":
        items.sort(key=lambda item: item["created_at"], reverse=True)
    limit = min(int(call.query.get("limit", "30") or 30), 50)  # MAX_RESPONSE_ITEMS
    call = _Call(**{**call.__dict__, "query": {**call.query, "limit": str(limit)}})
    chunk, headers = _page(call, items, size_name="limit", default_size=30)
    return JSONResponse(chunk, headers=headers)


# GitLab: the project is one URL-encoded path segment


def _project(groups: tuple[str, ...]) -> str:
    return urllib.parse.unquote(groups[0])


def _gitlab_raw_file(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    key = (_project(groups), call.query.get("ref", "main"), urllib.parse.unquote(groups[1]))
    content = forge.files.get(key)
    if content is None:
        return JSONResponse({"message": "404 File Not Found"}, 404)
    return Response(content, media_type="text/plain")


def _gitlab_diffs(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    entries = forge.pull_request_files.get((_project(groups), int(groups[1])))
    if entries is None:
        return JSONResponse({"message": "404 Not found"}, 404)
    items = [
        {
            "old_path": previous or name,
            "new_path": name,
            "a_mode": "100644",
            "b_mode": "100644",
            "new_file": False,
            "renamed_file": previous is not None,
            "deleted_file": False,
            "diff": "@@ -1 +1 @@\n",
        }
        for name, previous in entries
    ]
    chunk, headers = _page(call, items, size_name="per_page", default_size=20)
    return JSONResponse(chunk, headers=headers)


def _gitlab_status(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    body = dict(call.json)
    state = body.pop("state")
    # GitLab names the status from `name`, else `context`, else "default".
    name = body.get("name", body.get("context", "default"))
    stored = _add_status(forge, _project(groups), groups[1], {"status": state, **body,
                                                               "name": name})
    return JSONResponse(
        {
            "sha": groups[1],
            "name": body.get("name", body.get("context", "default")),
            "ref": body.get("ref"),
            "target_url": body.get("target_url"),
            "description": body.get("description"),
            "allow_failure": False,
            "author": {"username": "ferry-bot", "id": 28},
            **stored,
        },
        201,
    )


def _gitlab_list_statuses(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    posted = [
        status
        for status in forge.statuses_for(_project(groups), groups[1])
        if all(call.query.get(field) in (None, status.get(field)) for field in ("name", "ref"))
    ]
    if call.query.get("all") not in ("true", "1"):
        # Only the latest status of each name, as GitLab's default `latest` scope.
        latest = {status.get("name"): status for status in posted}
        posted = [status for status in posted if latest[status.get("name")] is status]
    items = [
        {"sha": groups[1], "ref": None, "target_url": None, "description": None,
         "allow_failure": False, "author": {"username": "ferry-bot", "id": 28}, **status}
        for status in posted  # GitLab orders them by id
    ]
    chunk, headers = _page(call, items, size_name="per_page", default_size=20)
    return JSONResponse(chunk, headers=headers)


def _gitlab_note(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    forge.comments.append((_project(groups), int(groups[1]), call.json["body"]))
    return JSONResponse({"id": forge.next_id(), "body": call.json["body"]}, 201)


def _gitlab_members(forge: FakeForge, call: _Call, groups: tuple[str, ...]) -> Response:
    project, query = _project(groups), call.query.get("query", "")
    wanted = {int(value) for value in call.query.get("user_ids", "").split(",") if value}
    members = [
        {"id": forge.user_ids.get(user, 10_000 + index), "username": user, "name": user,
         "state": "active", "access_level": level}
        for index, ((repository, user), level) in enumerate(forge.permissions.items())
        if repository == project and query.lower() in user.lower()
    ]
    if wanted:
        members = [member for member in members if member["id"] in wanted]
    return JSONResponse(members)


_REPO = r"/repos/([^/]+)/([^/]+)"
_ROUTES: Mapping[ForgeKind, tuple[tuple[str, str, Handler], ...]] = {
    ForgeKind.GITHUB: (
        ("POST", r"/app/installations/(\d+)/access_tokens", _github_access_token),
        ("GET", rf"{_REPO}/contents/(.+)", _contents),
        ("GET", rf"{_REPO}", _repository_object),
        ("GET", rf"{_REPO}/branches/([^/]+)", _branch),
        ("GET", rf"{_REPO}/pulls/(\d+)/files", _github_files),
        ("GET", rf"{_REPO}/pulls/(\d+)", _github_pull_request),
        ("GET", rf"{_REPO}/git/commits/([^/]+)", _github_git_commit),
        ("POST", rf"{_REPO}/statuses/([^/]+)", _github_status),
        ("GET", rf"{_REPO}/commits/(.+)/statuses", _github_list_statuses),
        ("POST", rf"{_REPO}/check-runs", _github_create_check_run),
        ("PATCH", rf"{_REPO}/check-runs/(\d+)", _github_update_check_run),
        ("GET", rf"{_REPO}/commits/(.+)/check-runs", _github_list_check_runs),
        ("POST", rf"{_REPO}/issues/(\d+)/comments", _issue_comment),
        ("GET", rf"{_REPO}/collaborators/([^/]+)/permission", _permission),
    ),
    ForgeKind.GITEA: (
        ("GET", rf"/api/v1{_REPO}/contents/(.+)", _contents),
        ("GET", rf"/api/v1{_REPO}", _repository_object),
        ("GET", rf"/api/v1{_REPO}/branches/([^/]+)", _branch),
        ("GET", rf"/api/v1{_REPO}/pulls/(\d+)/files", _gitea_files),
        ("GET", rf"/api/v1{_REPO}/git/commits/([^/]+)", _gitea_commit),
        ("POST", rf"/api/v1{_REPO}/statuses/([^/]+)", _gitea_status),
        ("GET", rf"/api/v1{_REPO}/statuses/([^/]+)", _gitea_list_statuses),
        ("POST", rf"/api/v1{_REPO}/issues/(\d+)/comments", _issue_comment),
        ("GET", rf"/api/v1{_REPO}/collaborators/([^/]+)/permission", _permission),
    ),
    ForgeKind.GITLAB: (
        ("GET", r"/api/v4/projects/([^/]+)/repository/files/([^/]+)/raw", _gitlab_raw_file),
        ("GET", r"/api/v4/projects/([^/]+)", _repository_object),
        ("GET", r"/api/v4/projects/([^/]+)/repository/branches/([^/]+)", _branch),
        ("GET", r"/api/v4/projects/([^/]+)/merge_requests/(\d+)/diffs", _gitlab_diffs),
        ("POST", r"/api/v4/projects/([^/]+)/statuses/([^/]+)", _gitlab_status),
        (
            "GET",
            r"/api/v4/projects/([^/]+)/repository/commits/([^/]+)/statuses",
            _gitlab_list_statuses,
        ),
        ("POST", r"/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes", _gitlab_note),
        ("GET", r"/api/v4/projects/([^/]+)/members/all", _gitlab_members),
    ),
}


@functools.cache
def _compiled(kind: ForgeKind) -> tuple[tuple[str, re.Pattern[str], Handler], ...]:
    return tuple(
        (method, re.compile(f"^{pattern}$"), handler) for method, pattern, handler in _ROUTES[kind]
    )


def _route(kind: ForgeKind, method: str, raw_path: str) -> tuple[Handler, tuple[str, ...]] | None:
    for route_method, pattern, handler in _compiled(kind):
        match = pattern.match(raw_path)
        if match and route_method == method:
            return handler, match.groups()
    return None
