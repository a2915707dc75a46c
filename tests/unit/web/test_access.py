"""Who may read and write a repository's runs: the forge's answer to the viewer's own token,
kept `access_cache_seconds`, and a no whenever the forge cannot be trusted to have said yes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from ci.kube.repositories import Repository, SecretKeys
from tests.unit.web.forges import TOKEN, OAuthForge, github_example, provider_settings
from webhooks.web.access import ForgeAccess
from webhooks.web.identity import Viewer
from webhooks.web.oauth import OAuthProvider

URLS = {"github": "https://github.com/octocat/Hello-World",
        "gitea": "https://gitea.example/acme/shop",
        "gitlab": "https://gitlab.example/acme/backend/shop"}
PATHS = {"github": "/repos/octocat/Hello-World", "gitea": "/repos/acme/shop",
         "gitlab": "/projects/acme%2Fbackend%2Fshop"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def repository(forge: str, *, url: str | None = None, public_logs: bool = False) -> Repository:
    return Repository(namespace="team", name="shop", uid="u1", forge=forge,
                      url=url or URLS[forge], secret=SecretKeys(name="s"),
                      public_logs=public_logs)


def viewer(forge: str, *, token: str = TOKEN, provider: str | None = None) -> Viewer:
    return Viewer(provider=provider or forge, forge=forge, login="octocat", token=token)


def access_for(forge: OAuthForge, clock: Clock | None = None, *,
               seconds: float = 300.0) -> ForgeAccess:
    provider = OAuthProvider(provider_settings(forge.forge),
                             httpx.AsyncClient(transport=forge.transport()))
    return ForgeAccess({provider.name: provider}, cache_seconds=seconds, clock=clock or Clock())


def answers(access: ForgeAccess, who: Viewer | None, repo: Repository) -> tuple[bool, bool]:
    async def both() -> tuple[bool, bool]:
        return await access.may_read(who, repo), await access.may_write(who, repo)
    return asyncio.run(both())


def gitlab_project(*, project: int | None = None, group: int | None = None,
                   visibility: str = "private") -> dict[str, Any]:
    """`GET /projects/:id` as GitLab's API docs show it (projects.md "Get a single
    project"): `permissions` holds the caller's own levels, null where none."""
    return {"id": 3, "path_with_namespace": "acme/backend/shop", "visibility": visibility,
            "permissions": {
                "project_access": None if project is None else {"access_level": project,
                                                                "notification_level": 3},
                "group_access": None if group is None else {"access_level": group,
                                                            "notification_level": 3}}}


def test_github_published_repository_example_is_read_but_not_write() -> None:
    # GitHub's own example of GET /repos/{owner}/{repo}: permissions pull, no push.
    example = github_example("/repos/{owner}/{repo}")
    assert example["permissions"] == {"pull": True, "push": False, "admin": False}
    forge = OAuthForge(forge="github", repositories={PATHS["github"]: example})
    assert answers(access_for(forge), viewer("github"), repository("github")) == (True, False)
    (asked,) = forge.api_calls()  # checked against GitHub's description by the fake
    assert asked.url.path == "/repos/octocat/Hello-World"


@pytest.mark.parametrize(("permissions", "expected"), [
    ({"pull": True, "push": True, "admin": False}, (True, True)),
    ({"pull": True, "push": False, "admin": False}, (True, False)),
    ({"pull": False, "push": False, "admin": False}, (False, False)),
    ({"pull": False, "push": False, "admin": True}, (True, True)),
])
@pytest.mark.parametrize("kind", ["github", "gitea"])
def test_github_and_gitea_permissions(kind: str, permissions: dict[str, bool],
                                      expected: tuple[bool, bool]) -> None:
    body = {**github_example("/repos/{owner}/{repo}"), "permissions": permissions}
    forge = OAuthForge(forge=kind, repositories={PATHS[kind]: body})
    assert answers(access_for(forge), viewer(kind), repository(kind)) == expected


@pytest.mark.parametrize(("project", "expected"), [
    (gitlab_project(project=30), (True, True)),  # Developer
    (gitlab_project(group=40), (True, True)),  # Maintainer through the group
    (gitlab_project(project=20), (True, False)),  # Reporter
    (gitlab_project(project=10), (False, False)),  # Guest of a private project
    (gitlab_project(project=10, group=20), (True, False)),  # the higher level counts
    (gitlab_project(visibility="public"), (True, False)),
    (gitlab_project(visibility="internal"), (True, False)),
    (gitlab_project(), (False, False)),
])
def test_gitlab_access_levels(project: dict[str, Any], expected: tuple[bool, bool]) -> None:
    forge = OAuthForge(forge="gitlab", repositories={PATHS["gitlab"]: project})
    assert answers(access_for(forge), viewer("gitlab"), repository("gitlab")) == expected
    assert forge.api_calls()[0].url.raw_path == b"/api/v4/projects/acme%2Fbackend%2Fshop"


@pytest.mark.parametrize("kind", ["github", "gitea", "gitlab"])
def test_a_repository_the_forge_hides_is_no_access(kind: str) -> None:
    forge = OAuthForge(forge=kind)  # 404 for every repository
    assert answers(access_for(forge), viewer(kind), repository(kind)) == (False, False)


def test_the_answer_is_kept_for_the_cache_time_and_then_asked_again() -> None:
    clock = Clock()
    body = {"permissions": {"pull": True, "push": True}}
    forge = OAuthForge(forge="gitea", repositories={PATHS["gitea"]: body})
    access = access_for(forge, clock, seconds=300)
    who, repo = viewer("gitea"), repository("gitea")
    assert answers(access, who, repo) == (True, True)
    assert len(forge.api_calls()) == 1  # one question answers read and write
    # The person loses access on the forge: still allowed until the cache time is over...
    forge.repositories.clear()
    clock.now += 299
    assert answers(access, who, repo) == (True, True)
    assert len(forge.api_calls()) == 1
    # ...and not a moment after.
    clock.now += 1
    assert answers(access, who, repo) == (False, False)
    assert len(forge.api_calls()) == 2


def test_questions_asked_at_once_reach_the_forge_once() -> None:
    forge = OAuthForge(forge="gitea", repositories={
        PATHS["gitea"]: {"permissions": {"pull": True, "push": False}}})
    access = access_for(forge)

    async def many() -> list[bool]:
        return await asyncio.gather(*(access.may_read(viewer("gitea"), repository("gitea"))
                                      for _ in range(20)))
    assert asyncio.run(many()) == [True] * 20
    assert len(forge.api_calls()) == 1


def test_each_person_and_each_sign_in_is_asked_for_separately() -> None:
    body = {"permissions": {"pull": True, "push": False}}
    forge = OAuthForge(forge="gitea", repositories={PATHS["gitea"]: body})
    access = access_for(forge)
    repo = repository("gitea")
    answers(access, viewer("gitea"), repo)
    answers(access, Viewer(provider="gitea", forge="gitea", login="eve", token=TOKEN), repo)
    assert len(forge.api_calls()) == 2
    with pytest.raises(AssertionError):  # another token: asked again (the fake wants TOKEN)
        answers(access, viewer("gitea", token="other"), repo)


@pytest.mark.parametrize("status", [500, 502, 429, 200])
def test_a_failing_forge_is_a_no_that_is_not_kept(status: int) -> None:
    forge = OAuthForge(forge="gitea", status=status)  # 200 with a non-repository body
    access = access_for(forge)
    who, repo = viewer("gitea"), repository("gitea")
    with capture_logs() as logs:
        assert answers(access, who, repo) == (False, False)
    assert any(entry["event"] == "the forge failed an access check" for entry in logs)
    assert TOKEN not in str(logs)
    forge.status = None
    forge.repositories[PATHS["gitea"]] = {"permissions": {"pull": True, "push": False}}
    assert answers(access, who, repo) == (True, False)


def test_an_unreachable_forge_is_a_no() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    provider = OAuthProvider(provider_settings("github"),
                             httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    access = ForgeAccess({"github": provider}, cache_seconds=300)
    with capture_logs() as logs:
        assert answers(access, viewer("github"), repository("github")) == (False, False)
    assert TOKEN not in str(logs)


@pytest.mark.parametrize("repo", [
    repository("gitea", url="https://elsewhere.example/acme/shop"),  # another host
    repository("gitea", url="https://gitea.example:8443/acme/shop"),  # another port
    repository("github", url="https://gitea.example/acme/shop"),  # another kind of forge
])
def test_a_sign_in_counts_only_on_its_own_forge(repo: Repository) -> None:
    forge = OAuthForge(forge="gitea", repositories={
        PATHS["gitea"]: {"permissions": {"pull": True, "push": True}}})
    assert answers(access_for(forge), viewer("gitea"), repo) == (False, False)
    assert not forge.api_calls()


def test_a_provider_no_longer_configured_gives_no_access() -> None:
    forge = OAuthForge(forge="gitea", repositories={
        PATHS["gitea"]: {"permissions": {"pull": True, "push": True}}})
    assert answers(access_for(forge), viewer("gitea", provider="gone"),
                   repository("gitea")) == (False, False)


def test_anonymous_viewers_read_only_public_logs_and_never_write() -> None:
    forge = OAuthForge(forge="gitea")
    access = access_for(forge)
    assert answers(access, None, repository("gitea", public_logs=True)) == (True, False)
    assert answers(access, None, repository("gitea")) == (False, False)
    assert not forge.api_calls()


def test_public_logs_are_read_by_anyone_but_written_only_by_writers() -> None:
    forge = OAuthForge(forge="gitea", repositories={
        PATHS["gitea"]: {"permissions": {"pull": False, "push": False}}})
    assert answers(access_for(forge), viewer("gitea"),
                   repository("gitea", public_logs=True)) == (True, False)
