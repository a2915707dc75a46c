"""The run page's buttons: only for writers, refused without the CSRF field (403) or
without write access (404), and through `/retest`'s and `/cancel`'s code."""

from __future__ import annotations

import re

from ci.backends import PreviousRun
from ci.forges.statuses import Conclusion
from tests.unit.web.conftest import Site, pipeline_run, task_run

RUN = "app-run-1"
SHA = "0123456789abcdef0123456789abcdef01234567"
SPEC = """\
jobs:
  build:
    image: alpine
    steps:
      - run: make
  test:
    image: alpine
    needs: build
    steps:
      - run: make test
  docs:
    image: alpine
    steps:
      - run: make docs
"""


def _failed(site: Site) -> None:
    site.cluster.runs[RUN] = pipeline_run(site.repository, RUN, [
        {"name": "build", "steps": ["make"]}, {"name": "test", "steps": ["make"],
                                               "needs": ["build"]},
        {"name": "docs", "steps": ["make"]}], state="Failed")
    site.cluster.task_runs[RUN] = [task_run(RUN, "build", {"make": 0}),
                                   task_run(RUN, "test", {"make": 2}, state="Failed"),
                                   task_run(RUN, "docs", {"make": 0})]
    site.backend.previous[SHA] = PreviousRun(
        name=RUN, trusted=True, finished=True, pull_request=None,
        jobs={"build": Conclusion.SUCCESS, "test": Conclusion.FAILURE,
              "docs": Conclusion.SUCCESS})
    site.forge.add_file("acme/app", SHA, ".ci.yaml", SPEC)
    site.forge.set_permission("acme/app", "writer", "write")
    site.access.readers.add("reader")
    site.access.writers.add("writer")


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', html)
    assert found is not None
    return found.group(1)


def test_buttons_are_for_writers_only(site: Site) -> None:
    _failed(site)
    site.as_viewer("reader")
    html = site.client.get(f"{site.base}/runs/{RUN}").text
    assert not re.search(r'id="(rerun-failed|rerun-all|cancel)"', html)
    site.as_viewer("writer")
    html = site.client.get(f"{site.base}/runs/{RUN}").text
    assert '<form id="rerun-failed" method="post"' in html
    assert '<form id="rerun-all" method="post"' in html
    assert 'id="cancel"' not in html  # the run is over
    assert 'name="csrf" value="csrf-for-writer"' in html


def test_a_post_without_the_csrf_field_is_refused(site: Site) -> None:
    _failed(site)
    site.as_viewer("writer")
    for field in ({}, {"csrf": "forged"}, {"csrf": "csrf-for-reader"}):
        answer = site.client.post(f"{site.base}/runs/{RUN}/rerun", data=field,
                                  follow_redirects=False)
        assert answer.status_code == 403, field
        answer = site.client.post(f"{site.base}/runs/{RUN}/cancel", data=field,
                                  follow_redirects=False)
        assert answer.status_code == 403, field
    assert site.backend.requests == [] and site.backend.cancelled_runs == []


def test_a_reader_cannot_post_even_with_a_valid_token(site: Site) -> None:
    _failed(site)
    site.as_viewer("reader")
    for action in ("rerun", "cancel"):
        answer = site.client.post(f"{site.base}/runs/{RUN}/{action}",
                                  data={"csrf": "csrf-for-reader"}, follow_redirects=False)
        assert answer.status_code == 404
    site.as_viewer(None)
    answer = site.client.post(f"{site.base}/runs/{RUN}/cancel", data={"csrf": ""},
                              follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/signin")
    assert site.backend.requests == [] and site.backend.cancelled_runs == []


def test_rerun_failed_runs_the_failed_job_and_what_needs_it(site: Site) -> None:
    _failed(site)
    site.as_viewer("writer")
    csrf = _csrf(site.client.get(f"{site.base}/runs/{RUN}").text)
    answer = site.client.post(f"{site.base}/runs/{RUN}/rerun",
                              data={"csrf": csrf, "what": "failed"}, follow_redirects=False)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(f"{site.base}/runs/{RUN}?done=rerun&started=")
    [request] = site.backend.requests
    assert sorted(job.name for job in request.plan.jobs) == ["test"]
    assert request.event.sha == SHA and request.event.branch == "main"
    assert request.name_prefix.startswith("retest-")
    page = site.client.get(location).text
    assert "Re-run started." in page


def test_rerun_all_runs_every_job(site: Site) -> None:
    _failed(site)
    site.as_viewer("writer")
    answer = site.client.post(f"{site.base}/runs/{RUN}/rerun",
                              data={"csrf": "csrf-for-writer", "what": "all"},
                              follow_redirects=False)
    assert answer.status_code == 303
    [request] = site.backend.requests
    assert sorted(job.name for job in request.plan.jobs) == ["build", "docs", "test"]


def test_the_forge_has_the_last_word_on_write_access(site: Site) -> None:
    _failed(site)
    site.access.writers.add("former")  # the cached answer says yes; the forge says no
    site.as_viewer("former")
    answer = site.client.post(f"{site.base}/runs/{RUN}/rerun",
                              data={"csrf": "csrf-for-former"}, follow_redirects=False)
    assert answer.headers["location"] == f"{site.base}/runs/{RUN}?done=refused"
    assert site.backend.requests == []


def test_cancel_stops_a_running_run(site: Site) -> None:
    site.cluster.runs[RUN] = pipeline_run(site.repository, RUN, [
        {"name": "build", "steps": ["make"]}], state="Running")
    site.cluster.task_runs[RUN] = [task_run(RUN, "build", {"make": None}, state="Running")]
    site.access.writers.add("writer")
    site.as_viewer("writer")
    html = site.client.get(f"{site.base}/runs/{RUN}").text
    assert '<form id="cancel" method="post"' in html and 'id="rerun-failed"' not in html
    answer = site.client.post(f"{site.base}/runs/{RUN}/cancel",
                              data={"csrf": "csrf-for-writer"}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{site.base}/runs/{RUN}?done=cancelled"
    assert site.backend.cancelled_runs == [(site.repository.key, RUN)]
    assert "Run cancelled." in site.client.get(answer.headers["location"]).text
    # A message is chosen by its code: words of a link's own never reach the page.
    page = site.client.get(f"{site.base}/runs/{RUN}?done=<b>pwned</b>&started=../x").text
    assert "pwned" not in page and "../x" not in page
