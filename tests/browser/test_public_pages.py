"""What anyone sees of a Repository with public logs (`spec.publicLogs: true`), in a real
browser: the run list, a failing job's log with its failing line, log text that is HTML (shown
as text, never run), ANSI colours, the live tail of a running step, and no buttons (nobody
signed in has write access).

Runs are real: signed pushes from a fake Gitea to the receiver, PipelineRuns on the real
Tekton, steps run as scripts by the simulated kubelet; nothing on a page is made up by a test.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Page, expect

from ci.forges.types import ForgeKind
from tests.browser.screens import (
    RUN_MILLISECONDS,
    Pages,
    job_item,
    line_number,
    line_with,
    load_until_shown,
    log_lines,
    run_row,
    shown_line_with,
    step_log,
    wait_for_state,
)
from tests.cluster.control_plane import wait_for_service_account
from tests.cluster.kubelet import SimulatedKubelet
from tests.cluster.resources import Kube
from tests.cluster.tekton import ensure_namespace
from tests.e2e.delivering import Team, deliver, push_payload, sha_of, team, wait_for
from tests.e2e.installation import Installation

# A build whose log has colour and a script tag, then a test job that fails on a known line.
FAILING_SPEC = r"""
jobs:
  build:
    image: docker.io/library/alpine:3.20
    steps:
      - name: compile
        run: |
          printf '\033[31mred warning\033[0m plain after\n'
          echo '<script>window.ferryInjected = 1; alert("injected")</script><b>not bold</b>'
          echo compiled
  test:
    image: docker.io/library/alpine:3.20
    needs: build
    steps:
      - name: unit
        run: |
          echo "collected 3 tests"
          echo "FAILED test_parser: expected 3, got 4"
          exit 1
"""
FAILING_LINE = "FAILED test_parser: expected 3, got 4"
# A step that prints a line a second for long enough to be watched while it runs.
TICKS = 90
LIVE_SPEC = f"""
jobs:
  watch:
    image: docker.io/library/alpine:3.20
    steps:
      - name: ticks
        run: |
          for i in $(seq 1 {TICKS}); do echo "tick $i"; sleep 1; done
"""


@dataclass
class PublicRepository:
    team: Team
    pages: Pages
    failing_run: str


@pytest.fixture(scope="module")
def public_repository(pages_ferry: Installation, public_url: str, kube: Kube,
                      kubelet: SimulatedKubelet) -> Iterator[PublicRepository]:
    """A Repository with public logs, and one finished failing run of FAILING_SPEC."""
    namespace = f"browser-public-{secrets.token_hex(3)}"
    ensure_namespace(kube, namespace, labels={"ferry.dev/test-namespace": "true"})
    wait_for_service_account(kube.api_client, namespace)
    kubelet.run_scripts_in(namespace)
    # The fake forge serves no git repository: the checkout is the one step not run.
    kubelet.force_exit_code(namespace, "clone", 0)
    try:
        with team(kube, namespace, ForgeKind.GITEA) as repository:
            kube.merge_patch(
                f"/apis/ferry.dev/v1alpha1/namespaces/{namespace}/repositories/app",
                {"spec": {"publicLogs": True}})
            sha = sha_of(f"{namespace} failing")
            repository.forge.add_file(repository.owner_name, sha, ".ci.yaml", FAILING_SPEC)
            [run] = deliver(pages_ferry, repository, "push", push_payload(repository, sha))
            wait_for(pages_ferry, lambda: repository.final_status(sha) is not None,
                     what="the failing run's verdict")
            yield PublicRepository(team=repository, pages=Pages(public_url, namespace),
                                   failing_run=run)
    finally:
        kube.delete(f"/api/v1/namespaces/{namespace}")


def test_run_list_and_failing_jobs_log_show_the_failing_line(
    page: Page, public_repository: PublicRepository, shoot: Callable[[Page, str], Path]
) -> None:
    pages, run = public_repository.pages, public_repository.failing_run
    # The run list: the run, failed, on its branch.
    wait_for_state(page, pages.runs, run_row(run), "failure")
    row = page.locator(run_row(run))
    expect(row).to_be_visible()
    expect(row).to_contain_text("main")
    shoot(page, "run-list")
    # Nobody signed in may write: no buttons anywhere.
    row.locator(f"a[href$='/runs/{run}']").click()
    page.wait_for_url(f"{pages.run(run)}*")
    expect(page.locator(job_item("test"))).to_have_attribute("data-state", "failure")
    expect(page.locator(job_item("build"))).to_have_attribute("data-state", "success")
    expect(page.locator("form#rerun-failed, form#rerun-all, form#cancel")).to_have_count(0)
    # The run page shows the failing job's log tail with its failing line.
    expect(shown_line_with(page, "unit", FAILING_LINE).first).to_be_visible()
    shoot(page, "run")

    page.locator(job_item("test")).locator("a[href$='/jobs/test']").first.click()
    page.wait_for_url(f"{pages.job(run, 'test')}*")
    failing = line_with(page, "unit", FAILING_LINE)
    expect(failing).to_have_count(1)
    expect(failing).to_be_visible()
    assert line_number(failing, "unit") == 2
    shoot(page, "failing-job-log")
    state = step_log(page, "unit").get_attribute("data-log-state")
    assert state in ("live", "archived"), state  # the log is there, not lost or expired
    # Its line number links to the line itself.
    link = failing.locator("a.ln")
    expect(link).to_have_attribute("href", "#unit-L2")
    link.click()
    assert page.url.endswith("#unit-L2")


def test_log_text_is_shown_as_text_with_its_colours(
    page: Page, public_repository: PublicRepository
) -> None:
    pages, run = public_repository.pages, public_repository.failing_run
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    page.goto(pages.job(run, "build"))
    hostile = line_with(page, "compile", "window.ferryInjected")
    expect(hostile).to_have_count(1)
    # Shown as the characters the step printed, markup and all ...
    expect(hostile).to_contain_text(
        '<script>window.ferryInjected = 1; alert("injected")</script><b>not bold</b>')
    # ... and never made into elements, never run.
    assert hostile.locator("script, b").count() == 0
    assert page.evaluate("typeof window.ferryInjected") == "undefined"
    page.reload()
    assert dialogs == []

    coloured = line_with(page, "compile", "red warning")
    expect(coloured).to_have_count(1)
    # The escape codes are gone from the text, the colour is on a span of its own.
    expect(coloured).not_to_contain_text("[31m")
    red = coloured.locator("span", has_text="red warning").last
    plain_colour = coloured.evaluate("e => getComputedStyle(e).color")
    red_colour = red.evaluate("e => getComputedStyle(e).color")
    assert red_colour != plain_colour
    r, g, b = (int(part) for part in red_colour.removeprefix("rgb(").rstrip(")").split(",")[:3])
    assert r > g and r > b, red_colour
    assert "plain after" not in red.inner_text()


def test_live_tail_grows_while_the_step_runs(
    pages_ferry: Installation, page: Page, public_repository: PublicRepository,
    shoot: Callable[[Page, str], Path]
) -> None:
    repository, pages = public_repository.team, public_repository.pages
    sha = sha_of(f"{pages.namespace} live")
    repository.forge.add_file(repository.owner_name, sha, ".ci.yaml", LIVE_SPEC)
    [run] = deliver(pages_ferry, repository, "push",
                    push_payload(repository, sha, branch="watched"))
    wait_for_state(page, pages.run(run), job_item("watch"), "running")
    # Once the step prints: its first ticks on the page, as a live log.
    load_until_shown(page, pages.job(run, "watch"),
                     ".log[data-step='ticks'][data-log-state='live'] .line")
    expect(line_with(page, "ticks", "tick 1")).to_have_count(1)
    # Then more of them, without reloading the page.
    shown = log_lines(page, "ticks").count()
    url = page.url
    page.wait_for_function(
        "([selector, shown]) => document.querySelectorAll(selector).length >= shown + 3",
        arg=[".log[data-step='ticks'] .line", shown], timeout=RUN_MILLISECONDS)
    assert page.url == url
    newest = log_lines(page, "ticks").last
    assert line_number(newest, "ticks") >= shown + 3
    expect(newest).to_contain_text("tick ")
    expect(newest).to_be_visible()
    shoot(page, "live-tail")
    wait_for(pages_ferry, lambda: repository.final_status(sha) is not None,
             what="the watched run's verdict", timeout=RUN_MILLISECONDS / 1000 + TICKS)
