"""`webhooks.web.identity.Access`: the forge says who may read and write a repository, asked
with the viewer's own token, and the answer is kept `web.access_cache_seconds`.

| forge  | asked                       | read                          | write              |
|--------|-----------------------------|-------------------------------|--------------------|
| GitHub | `GET /repos/{owner}/{repo}` | `permissions.pull`            | `permissions.push` |
| Gitea  | `GET /repos/{owner}/{repo}` | `permissions.pull`            | `permissions.push` |
| GitLab | `GET /projects/:path`       | access level >= 20 (Reporter) | >= 30 (Developer)  |
|        |                             | or a public/internal project  |                    |

A viewer is only asked about repositories on the host of the forge they signed in with; on
any other, and whenever the forge fails or answers something unexpected, the answer is no
(and the failure is logged, without the token). Failures are not cached, so access comes back
as soon as the forge does. Anonymous viewers read only repositories with `spec.publicLogs`,
and never write.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from ci.kube.repositories import Repository
from webhooks.requests import forge_name
from webhooks.web.identity import Viewer
from webhooks.web.oauth import OAuthProvider, host_of

log = structlog.get_logger(__name__)

# Levels of GitLab's `access_level` (Reporter reads the code, Developer pushes).
GITLAB_REPORTER = 20
GITLAB_DEVELOPER = 30
# Entries kept at most; expired ones are dropped first when it is reached.
MAX_ENTRIES = 20_000


@dataclass(frozen=True, slots=True)
class Permission:
    read: bool
    write: bool


NONE = Permission(read=False, write=False)


class ForgeAccess:
    def __init__(self, providers: Mapping[str, OAuthProvider], *, cache_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._providers = providers
        self._seconds = cache_seconds
        self._clock = clock
        self._cache: dict[tuple[str, ...], tuple[float, Permission]] = {}
        # Questions on their way to the forge: a page asking about one repository many times
        # at once (or many pages) asks the forge once.
        self._asking: dict[tuple[str, ...], asyncio.Future[Permission | None]] = {}

    async def may_read(self, viewer: Viewer | None, repository: Repository) -> bool:
        if repository.public_logs:
            return True
        if viewer is None:
            return False
        return (await self.permission(viewer, repository)).read

    async def may_write(self, viewer: Viewer | None, repository: Repository) -> bool:
        if viewer is None:
            return False
        return (await self.permission(viewer, repository)).write

    async def permission(self, viewer: Viewer, repository: Repository) -> Permission:
        provider = self._providers.get(viewer.provider)
        if (provider is None or provider.forge != viewer.forge
                or provider.forge != repository.forge
                or host_of(provider.web_url) != host_of(repository.url)):
            return NONE
        # The token's digest is in the key: a new sign-in (a new token) asks again.
        token = hashlib.sha256(viewer.token.encode()).hexdigest()[:16]
        key = (viewer.provider, viewer.login, token, repository.key, repository.url)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and now < cached[0]:
            return cached[1]
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._ask(provider, viewer, repository))
            self._asking[key] = asking
            asking.add_done_callback(lambda _: self._asking.pop(key, None))
        # Shielded: one viewer leaving does not cancel the question for the others.
        answer = await asyncio.shield(asking)
        if answer is not None:
            self._keep(key, (self._clock() + self._seconds, answer), now)
            return answer
        return NONE

    def _keep(self, key: tuple[str, ...], entry: tuple[float, Permission], now: float) -> None:
        if len(self._cache) >= MAX_ENTRIES:
            for old in [k for k, (until, _) in self._cache.items() if until <= now]:
                del self._cache[old]
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
        self._cache[key] = entry

    async def _ask(self, provider: OAuthProvider, viewer: Viewer, repository: Repository
                   ) -> Permission | None:
        """The forge's answer; None when it failed (not cached)."""
        path = _api_path(provider.forge, forge_name(repository))
        if path is None:
            return NONE
        answer = await provider.get(viewer.token, path)
        if answer is None:
            return None
        if answer.status_code in (401, 403, 404):
            # No access (or a token the forge no longer accepts): a real answer, kept.
            return NONE
        body = _object(answer) if answer.status_code == 200 else None
        read = _gitlab if provider.forge == "gitlab" else _github_or_gitea
        permission = read(body) if body is not None else None
        if permission is None:
            log.warning("the forge failed an access check", provider=provider.name,
                        repository=repository.key, status=answer.status_code)
        return permission


def _api_path(forge: str, name: str) -> str | None:
    if forge == "gitlab":
        return f"/projects/{urllib.parse.quote(name, safe='')}"
    owner, _, repo = name.partition("/")
    if not owner or not repo or "/" in repo:
        return None
    return f"/repos/{urllib.parse.quote(owner, safe='')}/{urllib.parse.quote(repo, safe='')}"


def _object(answer: httpx.Response) -> dict[str, Any] | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _github_or_gitea(body: Mapping[str, Any]) -> Permission | None:
    permissions = body.get("permissions")
    if not isinstance(permissions, dict):
        # Shown the repository, but told nothing of the viewer's rights: a public one.
        if isinstance(body.get("private"), bool):
            return Permission(read=body["private"] is False, write=False)
        return None
    write = permissions.get("push") is True or permissions.get("admin") is True
    return Permission(read=write or permissions.get("pull") is True, write=write)


def _gitlab(body: Mapping[str, Any]) -> Permission | None:
    permissions = body.get("permissions")
    if not isinstance(permissions, dict) and "visibility" not in body:
        return None
    levels = [0]
    if isinstance(permissions, dict):
        for kind in ("project_access", "group_access"):
            access = permissions.get(kind)
            if isinstance(access, dict) and isinstance(access.get("access_level"), int):
                levels.append(access["access_level"])
    level = max(levels)
    visible = body.get("visibility") in ("public", "internal")
    return Permission(read=level >= GITLAB_REPORTER or visible, write=level >= GITLAB_DEVELOPER)
