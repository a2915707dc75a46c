"""What a viewer sees on each page, and who is sent where."""

from __future__ import annotations

import re

from tests.unit.web.conftest import SECRET, Site, pipeline_run, task_run

RUN = "app-run-1"


def _failed_run(site: Site) -> None:
    """A run in the cluster: build, then a matrix test (one variant failed after a retry),
    then deploy skipped; a finally job; logs archived."""
    repo = site.repository
    site.cluster.runs[RUN] = pipeline_run(repo, RUN, [
        {"name": "deploy", "steps": ["ship"], "needs": ["test-py312"]},
        {"name": "build", "steps": ["compile"]},
        {"name": "test-py311", "job": "test (3.11)", "steps": ["unit"], "needs": ["build"],
         "matrix": {"python": "3.11"}},
        {"name": "test-py312", "job": "test (3.12)", "steps": ["unit"], "needs": ["build"],
         "matrix": {"python": "3.12"}, "retries": 2},
    ], finally_tasks=({"name": "notify", "steps": ["tell"]},), state="Failed", pull_request="7")
    site.cluster.task_runs[RUN] = [
        task_run(RUN, "build", {"compile": 0}),
        task_run(RUN, "test-py311", {"unit": 0}),
        task_run(RUN, "test-py312", {"unit": 1}, state="Failed", retried=1),
        task_run(RUN, "notify", {"tell": 0}),
    ]
    site.archive(RUN, "build", "compile", "\x1b[32mok\x1b[0m compiled\n")
    site.archive(RUN, "test-py311", "unit", "all passed\n")
    site.archive(RUN, "test-py312", "unit",
                 "".join(f"line {n}\n" for n in range(1, 31))
                 + "<script>alert(1)</script>\n"
                 + f"using key {SECRET}\n"
                 + "\x1b[1;31mAssertionError: 2 != 3\x1b[0m\n"
                 + "summary: 1 test\n", code=1)
    site.archive(RUN, "notify", "tell", "told\n")


def test_the_run_page_shows_jobs_in_needs_order_with_the_failing_tail(site: Site) -> None:
    _failed_run(site)
    site.access.readers.add("reader")
    site.as_viewer("reader")
    page = site.client.get(f"{site.base}/runs/{RUN}")
    assert page.status_code == 200, page.text
    html = page.text
    jobs = re.findall(r'<li class="job" data-job="([a-z0-9-]+)" data-state="([a-z_]+)"', html)
    assert jobs == [("build", "success"), ("test-py311", "success"),
                    ("test-py312", "failure"), ("deploy", "skipped"), ("notify", "success")]
    assert "python=3.12" in html and "finally" in html and "retried 1 of 2" in html
    assert 'href="https://github.com/acme/app/pull/7"' in html
    assert 'href="https://github.com/acme/app/commit/0123456789abcdef0123456789abcdef01234567"' \
        in html
    assert "Add &lt;b&gt;bold&lt;/b&gt; things" in html
    # The failing step's last lines, escaped, masked, the failing line marked and linked.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert SECRET not in html and "using key ***" in html
    failing = re.search(r'<div class="line failing"><a class="ln" href="([^"]+)">(\d+)</a>'
                        r'<span class="text">(.*?)</span></div>', html)
    assert failing is not None
    assert failing.group(1).endswith(f"/runs/{RUN}/jobs/test-py312#unit-L33")
    assert "AssertionError: 2 != 3" in failing.group(3)
    assert ">line 14<" not in html and ">line 15<" in html  # the last 20 lines only
    # A reader has no buttons.
    assert 'id="rerun-failed"' not in html and 'id="cancel"' not in html


def test_the_job_page_shows_each_step_colours_anchors_and_escaped_text(site: Site) -> None:
    _failed_run(site)
    site.access.readers.add("reader")
    site.as_viewer("reader")
    html = site.client.get(f"{site.base}/runs/{RUN}/jobs/test-py312").text
    assert '<details class="step" id="unit" data-step="unit" data-state="failure" open>' in html
    assert '<div class="log" data-step="unit" data-log-state="archived">' in html
    assert ('<div class="line" id="unit-L1"><a class="ln" href="#unit-L1">1</a>'
            '<span class="text">line 1</span></div>') in html
    assert ('<div class="line failing" id="unit-L33"><a class="ln" href="#unit-L33">33</a>'
            '<span class="text"><span class="b fg-red">AssertionError: 2 != 3</span>'
            '</span></div>') in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert SECRET not in html
    assert 'id="log-search"' in html and 'src="/ui/static/log.js"' in html
    assert f'href="{site.base}/runs/{RUN}/jobs/test-py312/steps/unit/raw"' in html
    # A passing job's step is closed; its colours are spans too.
    build = site.client.get(f"{site.base}/runs/{RUN}/jobs/build").text
    assert 'data-step="compile" data-state="success">' in build
    assert '<span class="fg-green">ok</span> compiled' in build
    assert site.client.get(f"{site.base}/runs/{RUN}/jobs/nothing").status_code == 404


def test_the_raw_log_is_a_masked_text_download(site: Site) -> None:
    _failed_run(site)
    site.access.readers.add("reader")
    site.as_viewer("reader")
    raw = site.client.get(f"{site.base}/runs/{RUN}/jobs/test-py312/steps/unit/raw")
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "text/plain; charset=utf-8"
    assert raw.headers["content-disposition"] == (
        'attachment; filename="app-run-1-test-py312-unit.log"')
    assert "<script>alert(1)</script>\nusing key ***\n" in raw.text and SECRET not in raw.text


def test_runs_list_with_filters(site: Site) -> None:
    repo = site.repository
    site.cluster.runs["app-main-1"] = pipeline_run(repo, "app-main-1", [
        {"name": "build", "steps": ["compile"]}], state="Succeeded")
    site.cluster.runs["app-feature-1"] = pipeline_run(repo, "app-feature-1", [
        {"name": "build", "steps": ["compile"]}], state="Failed", branch="feature/<x>")
    site.archive("app-pruned", "build", "compile", "old\n", code=1, sha="feedface" * 5)
    site.access.readers.add("reader")
    site.as_viewer("reader")
    html = site.client.get(site.base).text
    rows = re.findall(r'<tr class="run" data-run="([a-z0-9-]+)" data-state="([a-z_]+)">', html)
    assert sorted(rows) == [("app-feature-1", "failure"), ("app-main-1", "success"),
                            ("app-pruned", "failure")]
    assert "feature/&lt;x&gt;" in html and "octocat" in html and "5m 0s" in html
    assert 'href="https://github.com/acme/app/commit/feedfacefeedfacefeedfacefeedfacefeedface"' \
        in html
    assert re.findall(r'data-run="([a-z0-9-]+)"',
                      site.client.get(site.base, params={"branch": "main"}).text) == [
        "app-main-1"]
    assert sorted(re.findall(r'data-run="([a-z0-9-]+)"', site.client.get(
        site.base, params={"state": "failure"}).text)) == ["app-feature-1", "app-pruned"]
    # An unknown state filters nothing out rather than failing.
    assert len(re.findall(r'data-run="', site.client.get(
        site.base, params={"state": "bogus"}).text)) == 3
    pruned = site.client.get(f"{site.base}/runs/app-pruned").text
    assert "only in the log archive" in pruned and 'data-job="build" data-state="failure"' in pruned


def test_the_repositories_page_lists_what_the_viewer_may_read(site: Site) -> None:
    site.as_viewer("stranger")
    html = site.client.get("/ui/").text
    assert 'id="viewer">stranger<' in html and "No repository here" in html
    site.access.readers.add("reader")
    site.as_viewer("reader")
    html = site.client.get("/ui/").text
    assert f'href="{site.base}"' in html
    site.as_viewer(None)
    anonymous = site.client.get("/ui/").text
    assert f'href="{site.base}"' not in anonymous and 'href="/ui/signin?next=%2Fui%2F"' in anonymous
    site.access.public.add(site.repository.key)
    assert f'href="{site.base}"' in site.client.get("/ui/").text
