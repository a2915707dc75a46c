"""A log is said to be what it is: archived, live (with its tail streamed), lost (and why),
or expired (neither archived nor in the cluster any more)."""

from __future__ import annotations

import json

from tests.unit.web.conftest import SECRET, Site, pipeline_run, task_run

RUN = "app-run-1"


def test_a_running_step_is_live_and_its_tail_streams(site: Site) -> None:
    site.cluster.runs[RUN] = pipeline_run(site.repository, RUN, [
        {"name": "build", "steps": ["compile", "test"]}], state="Running")
    site.cluster.task_runs[RUN] = [task_run(RUN, "build", {"compile": 0, "test": None},
                                            state="Running")]
    site.archive(RUN, "build", "compile", "compiled\n")
    site.cluster.logs[f"{RUN}-build-pod", "step-test"] = (
        f"first\nsecond {SECRET}\nhalf a li".encode())
    site.access.readers.add("reader")
    site.as_viewer("reader")
    html = site.client.get(f"{site.base}/runs/{RUN}/jobs/build").text
    # 17: the masked bytes of the two whole lines, "first\n" and "second ***\n".
    stream = f"{site.base}/runs/{RUN}/jobs/build/steps/test/stream?offset=17"
    # The whole lines so far; the rest comes by the stream, from the byte after them.
    assert (f'<div class="log" data-step="test" data-log-state="live" data-stream="{stream}"'
            ' data-next-line="3">') in html
    assert '<span class="text">second ***</span>' in html and "half a li" not in html
    assert '<details class="step" id="test" data-step="test" data-state="running" open>' in html
    assert '<div class="log" data-step="compile" data-log-state="archived">' in html
    # The step ends: the stream gives the rest, then the end.
    site.cluster.task_runs[RUN] = [task_run(RUN, "build", {"compile": 0, "test": 0})]
    site.cluster.logs[f"{RUN}-build-pod", "step-test"] += b"ne\n"
    body = site.client.get(stream).text
    events = [block for block in body.split("\n\n") if block.startswith("id:")
              or block.startswith("event:")]
    texts = "".join(json.loads(block.split("data: ", 1)[1])["text"] for block in events
                    if "event: log" in block)
    assert texts == "half a line\n"
    assert "event: end" in events[-1]


def test_a_lost_log_says_why(site: Site) -> None:
    site.lose(RUN, "build", "compile", "the pod was deleted before its log was read")
    site.access.readers.add("reader")
    site.as_viewer("reader")
    html = site.client.get(f"{site.base}/runs/{RUN}/jobs/build").text
    assert '<div class="log" data-step="compile" data-log-state="lost">' in html
    assert "The log was lost: the pod was deleted before its log was read" in html
    run = site.client.get(f"{site.base}/runs/{RUN}").text
    assert "The log was lost: the pod was deleted" in run


def test_a_log_neither_archived_nor_in_the_cluster_has_expired(site: Site) -> None:
    site.cluster.runs[RUN] = pipeline_run(site.repository, RUN, [
        {"name": "build", "steps": ["compile"]}], state="Failed")
    site.cluster.task_runs[RUN] = [task_run(RUN, "build", {"compile": 1}, state="Failed")]
    site.access.readers.add("reader")
    site.as_viewer("reader")
    html = site.client.get(f"{site.base}/runs/{RUN}/jobs/build").text
    assert '<div class="log" data-step="compile" data-log-state="expired">' in html
    assert "The log has expired" in html
    assert "The log has expired" in site.client.get(f"{site.base}/runs/{RUN}").text


def test_an_empty_archived_log_is_no_expired_one(site: Site) -> None:
    site.archive(RUN, "build", "compile", "")
    site.access.readers.add("reader")
    site.as_viewer("reader")
    html = site.client.get(f"{site.base}/runs/{RUN}/jobs/build").text
    assert 'data-log-state="archived"' in html and "(no output)" in html
