"""Signing in with the real Gitea as the OAuth2 provider, in a real browser, and who then sees
what: a private Gitea repository wired to Ferry as docs/install.md says, one real `git push`
of a failing .ci.yaml, run by the real Tekton; then

- issue #13's "Done when": the commit status's details link, read from Gitea, opened in a
  browser, signs a reader in on Gitea's own login form and lands on the failing line; the same
  link in a stranger's browser is a 404;
- the re-run buttons for a writer only, and no POST without the form's CSRF token;
- a stranger's 404 for the repository, its runs and its logs, on the pages and on the API;
- forged and expired session cookies, the sign-in's return URL, path traversal in log names.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Route, expect
from starlette.responses import Response

from tests.browser.screens import RUN_MILLISECONDS, Pages, job_item, line_with, shown_line_with
from tests.browser.signing_in import (
    callback_url,
    log_in_to_gitea,
    open_signed_in,
    provider_settings,
    sign_in,
)
from tests.cluster.control_plane import wait_for_service_account
from tests.cluster.kubelet import SimulatedKubelet
from tests.cluster.resources import Kube
from tests.cluster.tekton import ensure_namespace
from tests.e2e.delivering import wait_for
from tests.e2e.installation import Installation
from tests.e2e.real_gitea import GiteaTeam, gitea_team
from tests.gitea.api import GiteaApi, User
from tests.gitea.oauth import create_oauth_app, grant_access
from tests.gitea.server import GiteaServer
from webhooks.web.identity import Viewer
from webhooks.web.sessions import SESSION_COOKIE, SessionCookies

# Known here, so that a test can seal a session the receiver would accept but for its age.
SESSION_KEY = secrets.token_urlsafe(32)
SESSION_HOURS = 12.0
CHECK_SPEC = """\
jobs:
  check:
    image: docker.io/library/alpine:3.20
    steps:
      - name: check
        run: ./check.sh
"""
FAILING_LINE = "parser test failed: expected 3 got 4"
FAILING = f"#!/bin/sh\necho 'running the checks'\necho '{FAILING_LINE}' >&2\nexit 3\n"
EVIL = "evil.example"


@pytest.fixture(scope="module")
def web_settings(gitea: GiteaServer, gitea_api: GiteaApi, public_url: str) -> dict[str, Any]:
    app = create_oauth_app(gitea_api, redirect_uri=callback_url(public_url))
    return {"providers": [provider_settings(gitea, app)], "session_key": SESSION_KEY,
            "session_hours": SESSION_HOURS}


@dataclass
class Private:
    team: GiteaTeam
    pages: Pages
    sha: str
    run: str
    writer: User
    reader: User
    stranger: User


@pytest.fixture(scope="module")
def private(pages_ferry: Installation, public_url: str, kube: Kube, kubelet: SimulatedKubelet,
            gitea_api: GiteaApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Private]:
    """A private Gitea repository with a writer (the team's maintainer), a reader and a
    stranger, and the finished failing run of one push to it."""
    suffix = secrets.token_hex(3)
    namespace = f"browser-signin-{suffix}"
    ensure_namespace(kube, namespace, labels={"ferry.dev/test-namespace": "true"})
    wait_for_service_account(kube.api_client, namespace)
    kubelet.run_scripts_in(namespace)
    try:
        with gitea_team(pages_ferry, kube, namespace, gitea_api,
                        tmp_path_factory.mktemp("signin-work"), private=True) as team:
            reader = gitea_api.create_user(f"reader-{suffix}")
            grant_access(gitea_api, team.full_name, reader, "read")
            stranger = gitea_api.create_user(f"stranger-{suffix}")
            work = team.working_copy()
            sha = work.commit({".ci.yaml": CHECK_SPEC, "check.sh": FAILING},
                              message="Check the parser")
            work.push_branch("main")
            assert team.wait_for_final(sha) == "failure", team.statuses(sha)
            [run] = team.pipeline_runs(sha=sha)
            yield Private(team=team, pages=Pages(public_url, namespace), sha=sha,
                          run=run["metadata"]["name"], writer=team.maintainer, reader=reader,
                          stranger=stranger)
    finally:
        kube.delete(f"/api/v1/namespaces/{namespace}")


def test_details_link_of_the_failing_commit_shows_a_reader_the_failing_line_and_others_404(
    browser_contexts: Callable[[], Page], private: Private, gitea: GiteaServer, public_url: str
) -> None:
    """Issue #13's "Done when"."""
    [verdict] = private.team.finals(private.sha)
    assert verdict["state"] == "failure"
    details = str(verdict["target_url"])
    # The link Gitea shows beside the red cross, pointing at Ferry's page for the run.
    assert details.startswith(f"{private.pages.run(private.run)}"), details

    # The developer looks at the commit on Gitea, where the status links to Ferry.
    reader = browser_contexts()
    log_in_to_gitea(reader, private.reader, gitea=gitea)
    reader.goto(f"{private.team.repository['html_url']}/commit/{private.sha}")
    link = reader.locator(f"a[href='{details}']")
    expect(link.first).to_be_attached()
    status = open_signed_in(reader, str(link.first.get_attribute("href")), private.reader,
                            gitea=gitea, public_url=public_url)
    assert status == 200
    assert reader.url.split("#")[0] == details.split("#", maxsplit=1)[0]
    expect(reader.locator("#viewer")).to_have_text(private.reader.name)
    failing = shown_line_with(reader, "check", FAILING_LINE)
    expect(failing.first).to_be_visible()
    expect(failing.first).to_be_in_viewport()
    # The whole log of the failing job is one click away, the failing line on it too.
    reader.locator(job_item("check")).locator("a[href$='/jobs/check']").first.click()
    expect(line_with(reader, "check", FAILING_LINE)).to_be_visible()

    stranger = browser_contexts()
    status = open_signed_in(stranger, details, private.stranger, gitea=gitea,
                            public_url=public_url)
    assert status == 404
    expect(stranger.locator("#viewer")).to_have_text(private.stranger.name)
    assert FAILING_LINE not in stranger.content()


def test_rerun_buttons_for_a_writer_only_and_no_post_without_the_forms_csrf_token(
    browser_contexts: Callable[[], Page], private: Private, gitea: GiteaServer,
    public_url: str, kube: Kube
) -> None:
    run_page = private.pages.run(private.run)
    reader = browser_contexts()
    assert open_signed_in(reader, run_page, private.reader, gitea=gitea,
                          public_url=public_url) == 200
    expect(reader.locator(job_item("check"))).to_have_attribute("data-state", "failure")
    expect(reader.locator("form#rerun-failed, form#rerun-all, form#cancel")).to_have_count(0)

    writer = browser_contexts()
    assert open_signed_in(writer, run_page, private.writer, gitea=gitea,
                          public_url=public_url) == 200
    expect(writer.locator("form#rerun-failed button, form#rerun-failed [type=submit]")
           ).to_be_visible()
    expect(writer.locator("form#rerun-all")).to_have_count(1)

    def runs() -> int:
        return len(private.team.pipeline_runs(sha=private.sha))

    before = runs()
    # The writer's own session, without the form's token, or with a made-up one: refused.
    rerun = f"{run_page}/rerun"
    for form in ({"what": "failed"}, {"what": "failed", "csrf": "forged-token"}):
        answer = writer.request.post(rerun, form=form, max_redirects=0)
        assert answer.status == 403, (form, answer.status)
    # The reader, with a token of their own session, may not either.
    answer = reader.request.post(rerun, form={"what": "failed", "csrf": "x"}, max_redirects=0)
    assert answer.status in (403, 404), answer.status
    time.sleep(2.0)  # what a refused POST would have started has had time to appear
    assert runs() == before
    # The button itself works: a new run of the failed job.
    writer.locator("form#rerun-failed [type=submit], form#rerun-failed button").first.click()
    writer.wait_for_load_state()
    wait_for(private.team.ferry, lambda: runs() > before, what="the re-run's PipelineRun",
             timeout=RUN_MILLISECONDS / 1000)


def _service_account_token(kube: Kube, namespace: str, name: str) -> str:
    kube.create({"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": name, "namespace": namespace}})
    answer = kube.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3600}})
    return str(answer["status"]["token"])


def test_a_stranger_gets_404_for_the_repository_its_runs_and_logs(
    browser_contexts: Callable[[], Page], private: Private, gitea: GiteaServer,
    public_url: str, kube: Kube
) -> None:
    pages, run = private.pages, private.run
    stranger = browser_contexts()
    # The repository list is open to anyone (public repositories): sign in from its link.
    home = f"{public_url}/ui/signin?next=/ui/"
    assert open_signed_in(stranger, home, private.stranger, gitea=gitea,
                          public_url=public_url) == 200
    assert urlsplit(stranger.url).path == "/ui/"
    assert pages.namespace not in stranger.locator("body").inner_text()
    hidden = {
        "runs": pages.runs, "run": pages.run(run), "job": pages.job(run, "check"),
        "raw log": pages.raw(run, "check", "check"),
        "live tail": f"{pages.job(run, 'check')}/steps/check/stream",
    }
    for what, url in hidden.items():
        answer = stranger.request.get(url, max_redirects=0)
        assert answer.status == 404, (what, answer.status)
        assert FAILING_LINE not in answer.text(), what
    # The same page as for a repository that does not exist.
    stranger.goto(pages.runs)
    denied = stranger.locator("body").inner_text()
    missing = f"no-such-{secrets.token_hex(3)}"
    answer = stranger.goto(f"{public_url}/ui/{pages.namespace}/{missing}")
    assert answer is not None and answer.status == 404
    assert stranger.locator("body").inner_text().replace(missing, "app") == denied

    # The reader sees it listed, so the listing is not simply empty.
    reader = browser_contexts()
    open_signed_in(reader, home, private.reader, gitea=gitea, public_url=public_url)
    expect(reader.locator("body")).to_contain_text(pages.namespace)

    # The read API (`/api/v1`) knows Kubernetes identities, not forge sign-ins: the
    # stranger's Gitea token is no credential there at all (401), and a Kubernetes identity
    # without RBAC in the namespace is refused alike whether or not the repository exists.
    api = f"{public_url}/api/v1/namespaces/{pages.namespace}/repositories"
    gitea_token = {"Authorization": f"Bearer {private.stranger.token}"}
    with httpx.Client(timeout=60.0) as client:
        for path in ("/app/runs", f"/app/runs/{run}",
                     f"/app/runs/{run}/jobs/check/steps/check/log"):
            answer = client.get(f"{api}{path}", headers=gitea_token)
            assert answer.status_code == 401, (path, answer.text)
            assert FAILING_LINE not in answer.text
        outsider = {"Authorization": "Bearer " + _service_account_token(
            kube, pages.namespace, f"outsider-{secrets.token_hex(3)}")}
        existing = client.get(f"{api}/app/runs", headers=outsider)
        absent = client.get(f"{api}/{missing}/runs", headers=outsider)
        log = client.get(f"{api}/app/runs/{run}/jobs/check/steps/check/log", headers=outsider)
    assert existing.status_code == 404, existing.text
    assert (absent.status_code, absent.json()) == (existing.status_code, existing.json())
    assert log.status_code == existing.status_code
    assert FAILING_LINE not in log.text and run not in existing.text


def _session_cookie(page: Page) -> dict[str, Any]:
    [cookie] = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    return dict(cookie)


def _sealed(viewer: Viewer, *, signed_at: float) -> str:
    """A session cookie as the receiver would seal it at `signed_at`."""
    response = Response()
    SessionCookies(key=SESSION_KEY, hours=SESSION_HOURS, secure=False,
                   clock=lambda: signed_at).sign_in(response, viewer)
    header = response.headers["set-cookie"]
    return header.split(";", 1)[0].split("=", 1)[1]


def test_forged_and_expired_session_cookies_are_nobody(
    browser_contexts: Callable[[], Page], private: Private, gitea: GiteaServer, public_url: str
) -> None:
    runs = private.pages.runs
    reader = browser_contexts()
    assert open_signed_in(reader, runs, private.reader, gitea=gitea,
                          public_url=public_url) == 200
    genuine = _session_cookie(reader)
    value = str(genuine["value"])
    middle = len(value) // 2
    tampered = value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1:]
    viewer = Viewer(provider="gitea", forge="gitea", login=private.reader.name,
                    token=private.reader.token)
    now = time.time()
    cookies = {
        "tampered": tampered, "made up": secrets.token_urlsafe(48), "truncated": value[:-4],
        "expired": _sealed(viewer, signed_at=now - SESSION_HOURS * 3600 - 60),
        # The control: sealed the same way, but fresh, the reader is in.
        "fresh": _sealed(viewer, signed_at=now),
    }
    for what, cookie in cookies.items():
        page = browser_contexts()
        page.context.add_cookies([{**genuine, "value": cookie}])
        answer = page.goto(runs)
        assert answer is not None
        if what == "fresh":
            assert answer.status == 200 and urlsplit(page.url).path == urlsplit(runs).path
            expect(page.locator("#viewer")).to_have_text(private.reader.name)
            continue
        # Anonymous: sent to sign in, signed in as nobody.
        assert urlsplit(page.url).path == "/ui/signin", (what, page.url)
        expect(page.locator("#viewer")).to_have_count(0)
        assert FAILING_LINE not in page.content()


@pytest.mark.parametrize("target", [f"https://{EVIL}/x", f"//{EVIL}/x", f"/\\{EVIL}/x",
                                    f"https:{EVIL}"])
def test_sign_in_never_returns_to_another_site(
    target: str, page: Page, private: Private, gitea: GiteaServer, public_url: str
) -> None:
    visited: list[str] = []

    def elsewhere(route: Route) -> None:
        visited.append(route.request.url)
        route.fulfill(status=200, body="another site")

    page.context.route(f"**://{EVIL}/**", elsewhere)
    page.context.route(f"**://{EVIL}", elsewhere)
    answer = page.goto(f"{public_url}/ui/signin?next={quote(target, safe='')}")
    assert answer is not None and answer.status in (200, 400)
    if answer.status == 400:  # refused outright, with a clear answer
        return
    sign_in(page, private.reader, gitea=gitea)
    assert visited == []
    assert urlsplit(page.url).netloc == urlsplit(public_url).netloc, page.url
    expect(page.locator("#viewer")).to_have_text(private.reader.name)


def test_log_names_that_climb_out_are_refused(
    page: Page, private: Private, gitea: GiteaServer, public_url: str, tmp_path: Path
) -> None:
    pages, run = private.pages, private.run
    assert open_signed_in(page, pages.runs, private.reader, gitea=gitea,
                          public_url=public_url) == 200
    job = pages.job(run, "check")
    # The reader may read this repository's logs, so only the name can be refused.
    assert page.request.get(pages.raw(run, "check", "check")).status == 200
    climbing = [
        f"{job}/steps/..%2F..%2F..%2F..%2Fetc%2Fpasswd/raw",
        f"{job}/steps/%2e%2e%2f%2e%2e%2fetc%2fpasswd/raw",
        f"{job}/steps/check%2F..%2F..%2Fother/raw",
        f"{pages.run(run)}/jobs/..%2F..%2F..%2Fruns/steps/check/raw",
        f"{job}/steps/CHECK/raw",
        f"{job}/steps/check.log/raw",
        f"{job}/steps/check%00/raw",
        f"{job}/steps/{'a' * 300}/raw",
    ]
    for url in climbing:
        answer = page.request.get(url, max_redirects=0)
        assert answer.status in (404, 422), (url, answer.status)
        body = answer.text()
        assert "root:" not in body and FAILING_LINE not in body, url
