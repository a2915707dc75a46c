"""The sign-in's side of the pages as simple fakes (the real sessions and forge access
checks are tested with the sign-in): who may read and write, and a viewer by cookie."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from ci.kube.repositories import Repository
from webhooks.web.identity import Viewer

VIEWER_COOKIE = "test-viewer"


@dataclass
class FakeAccess:
    readers: set[str] = field(default_factory=set)
    writers: set[str] = field(default_factory=set)
    public: set[str] = field(default_factory=set)  # Repository keys

    async def may_read(self, viewer: Viewer | None, repository: Repository) -> bool:
        if repository.key in self.public:
            return True
        return viewer is not None and viewer.login in self.readers | self.writers

    async def may_write(self, viewer: Viewer | None, repository: Repository) -> bool:
        return viewer is not None and viewer.login in self.writers


class FakeSessions:
    """The viewer is the login in a plain cookie; the CSRF token derives from it."""

    def viewer(self, request: Request) -> Viewer | None:
        login = request.cookies.get(VIEWER_COOKIE)
        return Viewer(provider="github", forge="github", login=login,
                      token=f"oauth-{login}") if login else None

    def csrf_token(self, request: Request) -> str:
        viewer = self.viewer(request)
        return f"csrf-for-{viewer.login}" if viewer else ""

    def check_csrf(self, request: Request, token: str | None) -> bool:
        expected = self.csrf_token(request)
        return bool(expected) and token == expected
