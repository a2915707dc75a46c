"""Gitea's own REST API (`/api/v1`), for what a test sets up and what it then reads back.

Everything a user would do in Gitea's web UI: users with tokens, organisations, repositories,
collaborators, webhooks, forks, pull requests, comments; and what a user then sees on a commit:
its statuses.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from tests.gitea.server import GiteaServer

TIMEOUT_SECONDS = 60.0
# What a Ferry webhook needs, as docs/install.md lists it: `pull_request` includes its
# comments and synchronisations; `create`/`delete` are sent for new and deleted refs.
HOOK_EVENTS = ("push", "create", "delete", "pull_request")


class GiteaApiError(AssertionError):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.request.method} {response.request.url} answered "
                         f"{response.status_code}: {response.text[:2000]}")
        self.status_code = response.status_code


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password: str
    token: str

    def basic_auth(self) -> str:
        """The `Authorization` header git sends (the token as the password)."""
        pair = base64.b64encode(f"{self.name}:{self.token}".encode()).decode()
        return f"Basic {pair}"


class GiteaApi:
    """Requests as one user (the site administrator unless `as_user` says otherwise)."""

    def __init__(self, server: GiteaServer, *, token: str | None = None) -> None:
        self.server = server
        self._token = token or server.admin_token

    def as_user(self, user: User) -> GiteaApi:
        return GiteaApi(self.server, token=user.token)

    def request(self, method: str, path: str, *, json: Any = None,
                params: dict[str, Any] | None = None, auth: httpx.Auth | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if auth is None:
            headers["Authorization"] = f"token {self._token}"
        response = httpx.request(method, f"{self.server.url}/api/v1{path}", json=json,
                                 params=params, headers=headers, auth=auth,
                                 timeout=TIMEOUT_SECONDS)
        if response.status_code >= 300:
            raise GiteaApiError(response)
        return response.json() if response.content else None

    # --- set-up --------------------------------------------------------------------------

    def create_user(self, name: str) -> User:
        password = secrets.token_urlsafe(16)
        self.request("POST", "/admin/users", json={
            "username": name, "email": f"{name}@example.com", "password": password,
            "must_change_password": False})
        token = self.request("POST", f"/users/{name}/tokens",
                             json={"name": "tests", "scopes": ["all"]},
                             auth=httpx.BasicAuth(name, password))
        return User(name=name, password=password, token=str(token["sha1"]))

    def create_org(self, name: str) -> dict[str, Any]:
        org: dict[str, Any] = self.request("POST", "/orgs", json={
            "username": name, "visibility": "public"})
        return org

    def create_repo(self, name: str, *, org: str | None = None, private: bool = False
                    ) -> dict[str, Any]:
        """An empty repository of organisation `org`, or of the caller."""
        body = {"name": name, "private": private, "default_branch": "main",
                "auto_init": False}
        path = f"/orgs/{org}/repos" if org else "/user/repos"
        repository: dict[str, Any] = self.request("POST", path, json=body)
        return repository

    def repository(self, full_name: str) -> dict[str, Any]:
        repository: dict[str, Any] = self.request("GET", f"/repos/{full_name}")
        return repository

    def add_collaborator(self, full_name: str, user: str, permission: str) -> None:
        self.request("PUT", f"/repos/{full_name}/collaborators/{user}",
                     json={"permission": permission})

    def create_hook(self, full_name: str, url: str, secret: str,
                    events: tuple[str, ...] = HOOK_EVENTS) -> int:
        hook = self.request("POST", f"/repos/{full_name}/hooks", json={
            "type": "gitea", "active": True, "events": list(events), "branch_filter": "*",
            "config": {"url": url, "content_type": "json", "secret": secret}})
        return int(hook["id"])

    def fork(self, full_name: str) -> dict[str, Any]:
        """Fork into the caller's account."""
        fork: dict[str, Any] = self.request("POST", f"/repos/{full_name}/forks", json={})
        return fork

    def create_pull(self, full_name: str, *, head: str, base: str = "main",
                    title: str = "A change") -> dict[str, Any]:
        """`head` is a branch of `full_name`, or `owner:branch` of a fork."""
        pull: dict[str, Any] = self.request("POST", f"/repos/{full_name}/pulls", json={
            "head": head, "base": base, "title": title})
        return pull

    def comment(self, full_name: str, number: int, body: str) -> None:
        self.request("POST", f"/repos/{full_name}/issues/{number}/comments",
                     json={"body": body})

    def permission(self, full_name: str, user: str) -> str:
        """What Gitea answers Ferry's write-access question with."""
        answer = self.request("GET", f"/repos/{full_name}/collaborators/{user}/permission")
        return str(answer["permission"])

    # --- what a user sees ----------------------------------------------------------------

    def statuses(self, full_name: str, sha: str) -> list[dict[str, Any]]:
        """Every status of the commit, oldest first, with Gitea's `status` also as `state`."""
        listed: list[dict[str, Any]] = []
        for page in range(1, 20):
            answer = self.request("GET", f"/repos/{full_name}/commits/{sha}/statuses",
                                  params={"sort": "oldest", "page": page, "limit": 50})
            listed.extend(answer)
            if len(answer) < 50:
                break
        return [{**status, "state": status.get("status")} for status in listed]
