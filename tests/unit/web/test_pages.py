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
