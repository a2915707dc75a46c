"""Who is looking, and what the forge lets them see: the seam between the pages
(`webhooks.web.pages`) and the sign-in (`webhooks.web.signin`, `webhooks.web.access`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from starlette.requests import Request

from ci.kube.repositories import Repository


@dataclass(frozen=True, slots=True, kw_only=True)
class Viewer:
    """A person signed in with a forge (OAuth2)."""

    provider: str  # the configured sign-in provider's name (`web.providers[].name`)
    forge: str  # "github", "gitea" or "gitlab"
    login: str  # the forge's user name
    token: str = field(repr=False)  # the OAuth2 access token: never logged, never on a page


class Access(Protocol):
    """What the forge says `viewer` may do with `repository`. None is an anonymous viewer,
    who may read only repositories with `spec.publicLogs`. Answers are cached for
    `web.access_cache_seconds`."""

    async def may_read(self, viewer: Viewer | None, repository: Repository) -> bool: ...

    async def may_write(self, viewer: Viewer | None, repository: Repository) -> bool: ...


class Sessions(Protocol):
    """Signed, HttpOnly, SameSite session cookies (`webhooks.web.sessions` makes them)."""

    def viewer(self, request: Request) -> Viewer | None:
        """The signed-in viewer of `request`, None if there is no valid, unexpired session."""
        ...

    def csrf_token(self, request: Request) -> str:
        """The token every state-changing form on a page for `request` carries (`csrf`)."""
        ...

    def check_csrf(self, request: Request, token: str | None) -> bool:
        """Whether a POST's `csrf` form field belongs to `request`'s session."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSide:
    """What the pages need from the sign-in, on `Runtime.web` (None: the pages are off,
    since `web.public_url` is not set or the receiver has no cluster)."""

    access: Access
    sessions: Sessions
