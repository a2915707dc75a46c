"""Who is sent where: sign in (303) for anonymous viewers of a repository that is not
public, whether or not it exists; 404, the same page, for a signed-in viewer who may not
read it and for what does not exist; bad names refused before any lookup."""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.web.conftest import Site, pipeline_run

RUN = "app-run-1"


def _pages(base: str) -> list[str]:
    run = f"{base}/runs/{RUN}"
    return [base, run, f"{run}/jobs/build", f"{run}/jobs/build/steps/compile/raw",
            f"{run}/jobs/build/steps/compile/stream"]


def _with_run(site: Site) -> None:
    site.cluster.runs[RUN] = pipeline_run(site.repository, RUN, [
        {"name": "build", "steps": ["compile"]}])
    site.archive(RUN, "build", "compile", "ok\n")


def test_anonymous_viewers_are_sent_to_sign_in_whether_or_not_it_exists(site: Site) -> None:
    _with_run(site)
    site.as_viewer(None)
    missing = f"/ui/{site.repository.namespace}/nothing-here"
    for path in [*_pages(site.base), *_pages(missing)]:
        answer = site.client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/ui/signin?next=%2Fui%2F"), path
    answer = site.client.get(f"{site.base}?branch=main", follow_redirects=False)
    assert answer.headers["location"] == f"/ui/signin?next={site.base.replace('/', '%2F')}" \
        "%3Fbranch%3Dmain"


def test_a_signed_in_viewer_without_access_sees_the_same_404_as_for_nothing(site: Site) -> None:
    _with_run(site)
    site.as_viewer("stranger")
    missing = f"/ui/{site.repository.namespace}/nothing-here"
    bodies = set()
    for path in [*_pages(site.base), *_pages(missing)]:
        answer = site.client.get(path)
        assert answer.status_code == 404, path
        bodies.add(answer.text)
    assert len(bodies) == 1  # nothing tells a hidden repository from a missing one
    assert "nothing here, or you may not see it" in bodies.pop()


def test_public_repositories_are_read_without_signing_in(site: Site) -> None:
    _with_run(site)
    site.access.public.add(site.repository.key)
    site.as_viewer(None)
    for path in _pages(site.base)[:4]:
        assert site.client.get(path).status_code == 200, path
    # A reader of a missing run or job of a readable repository: 404.
    assert site.client.get(f"{site.base}/runs/other-run").status_code == 404
    assert site.client.get(f"{site.base}/runs/{RUN}/jobs/build/steps/nope/raw").status_code \
        == 404


@pytest.mark.parametrize("path", [
    "/ui/local/..%2F..%2Fetc/runs/x",
    "/ui/local/app/runs/..%2F..",
    "/ui/local/app/runs/r/jobs/..%2Fbuild",
    "/ui/local/app/runs/r/jobs/build/steps/..%2F..%2Fsecret/raw",
    "/ui/local/app/runs/r/jobs/build/steps/Upper/raw",
    "/ui/Local/app",
    "/ui/local/app/runs/r/jobs/build/steps/x.log.gz/raw",
])
def test_names_that_are_no_dns_labels_are_refused(site: Site, path: str) -> None:
    site.access.public.add(site.repository.key)
    answer = site.client.get(path)
    assert answer.status_code in (404, 422), (path, answer.status_code)


def test_no_pages_without_the_web_side(site: Site) -> None:
    app = site.client.app
    app.state.runtime = dataclasses.replace(app.state.runtime, web=None)  # type: ignore[attr-defined]
    for path in ["/ui/", *_pages(site.base)]:
        assert site.client.get(path).status_code == 404, path


def test_pages_forbid_inline_script_and_framing(site: Site) -> None:
    answer = site.client.get("/ui/")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["cache-control"] == "no-store"
