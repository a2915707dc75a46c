"""The forge clients against fake forges that validate every request against the API description."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ci.forges.client import ForgeClient, GitHubAppCredentials, TokenCredentials
from ci.forges.errors import (
    ForgeServerError,
    NotFoundError,
    RateLimitedError,
    UnauthorizedError,
    is_temporary,
)
from ci.forges.gitea.client import COMMIT_STATES as GITEA_STATES
from ci.forges.github.authentication import TOKEN_REFRESH_MARGIN_SECONDS
from ci.forges.github.client import CHECK_RUN_STATES, GitHubClient
from ci.forges.github.client import COMMIT_STATES as GITHUB_STATES
from ci.forges.gitlab.client import COMMIT_STATES as GITLAB_STATES
from ci.forges.registry import PROVIDERS
from ci.forges.statuses import Conclusion, Status
from ci.forges.types import InstallationId, ReportId, RepositoryName
from tests.fakeforge import FakeForge, Faults
from tests.fakeforge.connecting import connected
from tests.fakeforge.descriptions import description, description_document
from tests.fakeforge.serving import serve
from tests.fakeforge.validation import problems

pytestmark = pytest.mark.anyio

G, T, L = PROVIDERS.keys()
REPOSITORY = RepositoryName("acme/app")
NESTED = RepositoryName("acme/platform/app")  # GitLab subgroups
SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
SPEC = b"jobs:\n  test:\n    image: alpine\n"


def client_for(forge: FakeForge, http: httpx.AsyncClient, token: str = "test-token") -> ForgeClient:
    provider = PROVIDERS[forge.kind]
    return provider.client(http, api_url=forge.api_url, credentials=TokenCredentials(token))


def repository_for(forge: FakeForge) -> RepositoryName:
    return NESTED if forge.kind is L else REPOSITORY


@pytest.fixture(params=list(PROVIDERS), ids=str)
def forge(request: pytest.FixtureRequest) -> FakeForge:
    return FakeForge(request.param)


# The status tables hold only values the forges' own descriptions allow.


def _enum(document: dict[str, Any], *path: str) -> set[str]:
    node: Any = document
    for key in path:
        node = node[key]
    return set(node["enum"])


def test_status_tables_cover_every_conclusion_with_values_the_apis_accept() -> None:
    github = description_document(G)["paths"]
    body = "requestBody", "content", "application/json", "schema", "properties"
    statuses = _enum(github["/repos/{owner}/{repo}/statuses/{sha}"]["post"], *body, "state")
    check = github["/repos/{owner}/{repo}/check-runs"]["post"]
    check_states = _enum(check, *body, "status")
    check_conclusions = _enum(check, *body, "conclusion")
    gitea = description_document(T)["components"]["schemas"]["CreateStatusOption"]
    gitlab = description_document(L)["paths"]["/projects/{id}/statuses/{sha}"]["post"]
    for conclusion in Conclusion:
        assert GITHUB_STATES[conclusion] in statuses
        state, check_conclusion = CHECK_RUN_STATES[conclusion]
        assert state in check_states
        assert (check_conclusion is None) == (not conclusion.final)
        assert check_conclusion is None or check_conclusion in check_conclusions
        assert GITEA_STATES[conclusion] in _enum(gitea, "properties", "state")
        assert GITLAB_STATES[conclusion] in _enum(gitlab, *body, "state")
    assert GITLAB_STATES[Conclusion.CANCELLED] == "canceled"
    assert CHECK_RUN_STATES[Conclusion.CANCELLED] == ("completed", "cancelled")


# The calls every provider makes


async def test_read_file(forge: FakeForge) -> None:
    repository = repository_for(forge)
    forge.add_file(repository, SHA, ".ci.yaml", SPEC)
    forge.add_file(repository, SHA, "ci/nested spec.yaml", b"nested")
    async with connected(forge) as http:
        client = client_for(forge, http)
        assert await client.read_file(repository, ".ci.yaml", SHA) == SPEC
        assert await client.read_file(repository, "ci/nested spec.yaml", SHA) == b"nested"
        assert await client.read_file(repository, ".ci.yaml", "another-ref") is None
        assert await client.read_file(repository, "missing.yaml", SHA) is None


async def test_branch_head_and_default_branch(forge: FakeForge) -> None:
    repository = repository_for(forge)
    forge.set_branch(repository, "main", SHA)
    forge.set_branch(repository, "release/1.0", "1" * 40)
    async with connected(forge) as http:
        client = client_for(forge, http)
        assert await client.branch_head(repository, "main") == SHA
        assert await client.branch_head(repository, "release/1.0") == "1" * 40
        assert await client.branch_head(repository, "gone") is None
        assert await client.default_branch(repository) == "main"
        forge.set_default_branch(repository, "trunk")
        assert await client.default_branch(repository) == "trunk"
    forge.assert_no_violations()


async def test_changed_files_reads_every_page(forge: FakeForge) -> None:
    repository = repository_for(forge)
    names = [f"src/file{index:03}.py" for index in range(230)]
    forge.set_pull_request_files(repository, 7, [*names, ("docs/new.md", "docs/old.md")])
    async with connected(forge) as http:
        files = await client_for(forge, http).changed_files(repository, 7)
    assert files == tuple(sorted([*names, "docs/new.md", "docs/old.md"]))
    pages = [request for request in forge.requests if request.method == "GET"]
    assert len(pages) >= 3


@pytest.mark.parametrize("conclusion", list(Conclusion), ids=str)
async def test_report_status_in_the_forges_words(forge: FakeForge, conclusion: Conclusion) -> None:
    repository = repository_for(forge)
    status = Status(
        conclusion=conclusion,
        context="ferry/test",
        title="x" * 300,
        details_url="https://dashboard.example.com/runs/1",
    )
    async with connected(forge) as http:
        assert await client_for(forge, http).report_status(repository, SHA, status) is None
    (stored,) = forge.statuses_for(repository, SHA)
    if forge.kind is L:
        assert (stored["status"], stored["name"]) == (GITLAB_STATES[conclusion], "ferry/test")
    else:
        tables = {G: GITHUB_STATES, T: GITEA_STATES}
        assert (stored["state"], stored["context"]) == (
            tables[forge.kind][conclusion],
            "ferry/test",
        )
    assert stored["target_url"] == status.details_url
    assert len(stored["description"]) <= 255


def _status(conclusion: Conclusion, *, context: str = "ferry", title: str | None = None,
            details_url: str | None = "https://dashboard.example.com/runs/1") -> Status:
    words = {Conclusion.QUEUED: "Queued", Conclusion.RUNNING: "Running"}
    return Status(conclusion=conclusion, context=context,
                  title=title or words.get(conclusion, "Succeeded in 3s"),
                  details_url=details_url)


async def test_has_status_reads_back_the_newest_of_the_context(forge: FakeForge) -> None:
    repository = repository_for(forge)
    queued, running = _status(Conclusion.QUEUED), _status(Conclusion.RUNNING)
    async with connected(forge) as http:
        client = client_for(forge, http)
        assert not await client.has_status(repository, SHA, queued)  # nothing posted yet
        await client.report_status(repository, SHA, queued)
        await client.report_status(repository, SHA, _status(Conclusion.FAILURE, context="lint"))
        assert await client.has_status(repository, SHA, queued)
        await client.report_status(repository, SHA, running)
        # Queued and running are both "pending" on GitHub and Gitea: the description tells.
        assert await client.has_status(repository, SHA, running)
        assert not await client.has_status(repository, SHA, queued)
        # Another context's status is not ours, however alike.
        assert not await client.has_status(repository, SHA, _status(Conclusion.FAILURE))
        assert await client.has_status(repository, SHA, _status(Conclusion.FAILURE,
                                                                 context="lint"))
        # Another run's link (the same context on the same commit) is not this report.
        other_run = _status(Conclusion.RUNNING, details_url="https://dashboard.example.com/2")
        assert not await client.has_status(repository, SHA, other_run)
        assert not await client.has_status(repository, "0" * 40, running)
    forge.assert_no_violations()
    assert len(forge.statuses_for(repository, SHA)) == 3  # reading back posts nothing


async def test_has_status_without_a_link_and_with_a_long_title(forge: FakeForge) -> None:
    repository = repository_for(forge)
    status = _status(Conclusion.SUCCESS, title="Succeeded: " + "x" * 300, details_url=None)
    async with connected(forge) as http:
        client = client_for(forge, http)
        await client.report_status(repository, SHA, status)
        # Compared as posted: shortened to the forge's limit, no link.
        assert await client.has_status(repository, SHA, status)
        linked = _status(Conclusion.SUCCESS, title=status.title)
        assert not await client.has_status(repository, SHA, linked)
    forge.assert_no_violations()


async def test_has_status_reads_every_page(forge: FakeForge) -> None:
    repository = repository_for(forge)
    final = _status(Conclusion.SUCCESS)
    async with connected(forge) as http:
        client = client_for(forge, http)
        await client.report_status(repository, SHA, final)
        # Other contexts after ours: our status is on the last page whatever the order.
        for index in range(120):
            await client.report_status(
                repository, SHA, _status(Conclusion.RUNNING, context=f"job-{index}")
            )
        forge.requests.clear()
        assert await client.has_status(repository, SHA, final)
        assert not await client.has_status(repository, SHA, _status(Conclusion.FAILURE))
    forge.assert_no_violations()
    listed = [request for request in forge.requests if request.method == "GET"]
    if forge.kind is L:
        assert len(listed) == 2  # filtered by name on the forge: one page each
    else:
        assert len(listed) >= 4  # 121 statuses, at most 100 (Gitea: 50) a page, twice


async def test_has_status_honours_gitlab_latest_per_name() -> None:
    forge = FakeForge(L)
    repository = repository_for(forge)
    async with connected(forge) as http:
        client = client_for(forge, http)
        await client.report_status(repository, SHA, _status(Conclusion.RUNNING))
        await client.report_status(repository, SHA, _status(Conclusion.SUCCESS))
        assert await client.has_status(repository, SHA, _status(Conclusion.SUCCESS))
        assert not await client.has_status(repository, SHA, _status(Conclusion.RUNNING))
    (query,) = {tuple(sorted(r.query)) for r in forge.requests if r.method == "GET"}
    assert query == ("name", "per_page")
    forge.assert_no_violations()


async def test_has_status_failures_are_forge_errors(forge: FakeForge) -> None:
    forge.faults.fail_next(500)
    async with connected(forge) as http:
        client = client_for(forge, http)
        with pytest.raises(ForgeServerError):
            await client.has_status(repository_for(forge), SHA, _status(Conclusion.SUCCESS))
        with pytest.raises(UnauthorizedError):
            await client_for(forge, http, token="wrong").has_status(
                repository_for(forge), SHA, _status(Conclusion.SUCCESS))


async def test_comment_and_write_access(forge: FakeForge) -> None:
    repository = repository_for(forge)
    write, read = (30, 20) if forge.kind is L else ("write", "read")
    forge.set_permission(repository, "maintainer", write)
    forge.set_permission(repository, "maintainer-bot", read)  # a longer name matching the query
    forge.set_permission(repository, "visitor", read)
    async with connected(forge) as http:
        client = client_for(forge, http)
        await client.comment(repository, 7, "Waiting for `/ok-to-test` from a maintainer.")
        assert await client.has_write_access(repository, "maintainer")
        assert not await client.has_write_access(repository, "visitor")
        assert not await client.has_write_access(repository, "stranger")
    assert forge.comments == [(repository, 7, "Waiting for `/ok-to-test` from a maintainer.")]


@pytest.mark.parametrize("level", ["admin", "maintain", "write"])
async def test_github_write_levels(level: str) -> None:
    forge = FakeForge(G)
    forge.set_permission(REPOSITORY, "someone", level)
    async with connected(forge) as http:
        assert await client_for(forge, http).has_write_access(REPOSITORY, "someone")


# Errors


async def test_bad_credentials_are_unauthorized(forge: FakeForge) -> None:
    async with connected(forge) as http:
        with pytest.raises(UnauthorizedError) as caught:
            await client_for(forge, http, token="wrong").comment(repository_for(forge), 1, "x")
    assert not is_temporary(caught.value)
    assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)


async def test_injected_failures_are_temporary(forge: FakeForge) -> None:
    forge.faults.fail_next(500, 429)
    status = Status(conclusion=Conclusion.RUNNING, context="ferry", title="running")
    async with connected(forge) as http:
        client = client_for(forge, http)
        with pytest.raises(ForgeServerError) as server_error:
            await client.report_status(repository_for(forge), SHA, status)
        with pytest.raises(RateLimitedError) as rate_limited:
            await client.report_status(repository_for(forge), SHA, status)
        await client.report_status(repository_for(forge), SHA, status)
    assert is_temporary(server_error.value)
    assert rate_limited.value.retry_after == forge.faults.retry_after
    assert len(forge.statuses_for(repository_for(forge), SHA)) == 1


async def test_every_status_arrives_through_a_failing_forge(forge: FakeForge) -> None:
    forge.faults = Faults(rate=0.3, seed=7)
    repository = repository_for(forge)
    async with connected(forge) as http:
        client = client_for(forge, http)
        for index in range(40):
            status = Status(conclusion=Conclusion.SUCCESS, context=f"job-{index}", title="ok")
            while True:  # the controller's backoff, minus the waiting
                try:
                    await client.report_status(repository, SHA, status)
                    break
                except Exception as error:
                    assert is_temporary(error), error
    contexts = [
        stored.get("context", stored.get("name")) for stored in forge.statuses_for(repository, SHA)
    ]
    assert contexts == [f"job-{index}" for index in range(40)]
    assert forge.faults.injected > 0


async def test_the_fake_rejects_what_the_real_api_rejects() -> None:
    forge = FakeForge(G)
    headers = {"Authorization": "Bearer test-token"}
    async with httpx.AsyncClient(transport=forge.transport(), base_url=forge.api_url) as http:
        wrong_state = await http.post(
            f"/repos/acme/app/statuses/{SHA}", json={"state": "canceled"}, headers=headers
        )
        unknown = await http.get("/repos/acme/app/hooks", headers=headers)
        not_a_number = await http.get("/repos/acme/app/pulls/seven/files", headers=headers)
        incomplete = await http.post(
            "/repos/acme/app/check-runs",
            json={"name": "x", "head_sha": SHA, "status": "completed"},
            headers=headers,
        )
    assert [r.status_code for r in (wrong_state, unknown, not_a_number, incomplete)] == [422] * 4
    assert len(forge.violations) == 4
    with pytest.raises(AssertionError, match="canceled"):
        forge.assert_no_violations()


async def test_gitlab_fake_rejects_misspelt_fields() -> None:
    forge = FakeForge(L)
    async with httpx.AsyncClient(transport=forge.transport(), base_url=forge.api_url) as http:
        response = await http.post(
            f"/projects/acme%2Fapp/statuses/{SHA}",
            json={"status": "success"},  # the request field is `state`
            headers={"PRIVATE-TOKEN": "test-token"},
        )
    assert response.status_code == 422
    assert forge.violations


# GitHub App mode: check runs and installation tokens


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def app_forge(app_keys: tuple[str, str], clock: Clock) -> FakeForge:
    return FakeForge(G, tokens=set(), app_id="4242", app_public_key=app_keys[1], clock=clock)


def app_client(
    http: httpx.AsyncClient, forge: FakeForge, private_key: str, clock: Clock
) -> GitHubClient:
    credentials = GitHubAppCredentials(
        app_id="4242", private_key=private_key, installation_id=InstallationId(7)
    )
    return GitHubClient(http, api_url=forge.api_url, credentials=credentials, clock=clock)


async def test_check_run_is_created_then_updated(app_keys: tuple[str, str]) -> None:
    clock = Clock()
    forge = app_forge(app_keys, clock)
    async with connected(forge) as http:
        client = app_client(http, forge, app_keys[0], clock)
        queued = Status(
            conclusion=Conclusion.QUEUED, context="ferry/test", title="Queued", external_id="run-1"
        )
        report_id = await client.report_status(REPOSITORY, SHA, queued)
        failed = Status(
            conclusion=Conclusion.FAILURE,
            context="ferry/test",
            title="1 job failed",
            summary="| job | result |\n|---|---|\n| test | failed |",
            text="last lines of the log",
        )
        assert await client.report_status(REPOSITORY, SHA, failed, report_id=report_id) == report_id
        with pytest.raises(NotFoundError):
            await client.report_status(REPOSITORY, SHA, failed, report_id=ReportId("999999"))
    (run,) = forge.check_runs.values()
    assert str(run["id"]) == report_id
    assert (run["status"], run["conclusion"], run["head_sha"]) == ("completed", "failure", SHA)
    assert run["external_id"] == "run-1"
    assert run["output"]["text"] == "last lines of the log"
    assert forge.statuses == {}


async def test_a_check_run_is_found_by_its_name_and_external_id(
    app_keys: tuple[str, str],
) -> None:
    clock = Clock()
    forge = app_forge(app_keys, clock)
    ours = Status(conclusion=Conclusion.RUNNING, context="ferry/test", title="Running",
                  external_id="uid-1/job/test")
    async with connected(forge) as http:
        client = app_client(http, forge, app_keys[0], clock)
        assert await client.find_check_run(REPOSITORY, SHA, ours) is None
        # Another run's check run of the same name, and ours under another name: not ours.
        await client.report_status(REPOSITORY, SHA, replace(ours, external_id="uid-0/job/test"))
        await client.report_status(REPOSITORY, SHA, replace(ours, context="ferry/lint"))
        assert await client.find_check_run(REPOSITORY, SHA, ours) is None
        created = await client.report_status(REPOSITORY, SHA, ours)
        found = await client.find_check_run(REPOSITORY, SHA, ours)
        assert found is not None and found.report_id == created and found.current
        # The same check run, asked about a later state it does not show yet: found, stale.
        finished = replace(ours, conclusion=Conclusion.SUCCESS, title="Succeeded")
        stale = await client.find_check_run(REPOSITORY, SHA, finished)
        assert stale is not None and stale.report_id == created and not stale.current
        await client.report_status(REPOSITORY, SHA, finished, report_id=created)
        shown = await client.find_check_run(REPOSITORY, SHA, finished)
        assert shown is not None and shown.current
        # No external id: nothing tells ours apart, so nothing is asked.
        requests = len(forge.requests)
        assert await client.find_check_run(REPOSITORY, SHA, replace(ours, external_id=None)) is None
        assert len(forge.requests) == requests
        # Commit statuses are not check runs: `has_status` cannot say.
        assert not await client.has_status(REPOSITORY, SHA, finished)


async def test_find_check_run_reads_every_page_and_takes_the_newest(
    app_keys: tuple[str, str],
) -> None:
    clock = Clock()
    forge = app_forge(app_keys, clock)
    ours = Status(conclusion=Conclusion.QUEUED, context="ferry", title="Queued",
                  external_id="uid-1/run")
    async with connected(forge) as http:
        client = app_client(http, forge, app_keys[0], clock)
        first = await client.report_status(REPOSITORY, SHA, ours)
        for index in range(120):  # other runs' check runs of the same name: two pages more
            await client.report_status(REPOSITORY, SHA, replace(ours, external_id=f"x{index}"))
        second = await client.report_status(REPOSITORY, SHA, ours)  # a duplicate, newest
        found = await client.find_check_run(REPOSITORY, SHA, ours)
    assert found is not None and found.report_id == second != first
    listings = [r for r in forge.requests if r.path.endswith("/check-runs") and r.method == "GET"]
    assert len(listings) == 2
    assert listings[0].query == {"check_name": "ferry", "filter": "all", "per_page": "100"}


async def test_installation_token_is_cached_until_near_expiry(app_keys: tuple[str, str]) -> None:
    clock = Clock()
    forge = app_forge(app_keys, clock)
    status = Status(conclusion=Conclusion.RUNNING, context="ferry", title="running")
    async with connected(forge) as http:
        client = app_client(http, forge, app_keys[0], clock)
        await asyncio.gather(*(client.report_status(REPOSITORY, SHA, status) for _ in range(10)))
        assert len(forge.installation_tokens) == 1
        clock.now += 3600 - TOKEN_REFRESH_MARGIN_SECONDS - 1
        await client.report_status(REPOSITORY, SHA, status)
        assert len(forge.installation_tokens) == 1
        clock.now += 2
        await client.report_status(REPOSITORY, SHA, status)
        assert len(forge.installation_tokens) == 2
    minted = [r for r in forge.requests if r.path.endswith("/access_tokens")]
    assert [r.path for r in minted] == ["/app/installations/7/access_tokens"] * 2


async def test_app_jwt_from_another_key_is_refused(app_keys: tuple[str, str]) -> None:
    clock = Clock()
    forge = app_forge(app_keys, clock)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    async with connected(forge) as http:
        client = app_client(http, forge, other.decode(), clock)
        with pytest.raises(UnauthorizedError):
            await client.comment(REPOSITORY, 1, "x")


# Over real sockets, as the controller's end-to-end tests will use it


def test_served_over_a_socket() -> None:
    forge = FakeForge(T)
    forge.add_file(REPOSITORY, SHA, ".ci.yaml", SPEC)

    async def read(url: str) -> bytes | None:
        async with httpx.AsyncClient() as http:
            client = PROVIDERS[T].client(
                http, api_url=url, credentials=TokenCredentials("test-token")
            )
            return await client.read_file(REPOSITORY, ".ci.yaml", SHA)

    with serve(forge) as url:
        assert url.startswith("http://127.0.0.1:")
        assert asyncio.run(read(url)) == SPEC
    forge.assert_no_violations()
    assert json.loads(json.dumps([r.path for r in forge.requests])) == [
        "/api/v1/repos/acme/app/contents/.ci.yaml"
    ]


def test_descriptions_are_built_once_and_validate_quickly() -> None:
    assert description(G) is description(G)
    started = time.perf_counter()
    for number in range(200):
        problem = problems(
            G,
            method="POST",
            raw_path=f"/repos/acme/app/statuses/{number:040}",
            query=[],
            headers=[("content-type", "application/json")],
            body=b'{"state": "success", "context": "ferry"}',
        )
        assert problem is None
    # About 2 ms each on a laptop core; the bound only catches a pathological slowdown.
    assert time.perf_counter() - started < 10
    missing_auth = problems(
        T,
        method="GET",
        raw_path="/api/v1/repos/acme/app/contents/x",
        query=[],
        headers=[],
        body=b"",
    )
    assert missing_auth is not None
