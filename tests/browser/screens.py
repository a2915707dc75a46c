"""What the browser tests look for on Ferry's pages: the URLs and DOM hooks of the contract in
`webhooks/web/__init__.py`, and nothing else of the templates."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from playwright.sync_api import Locator, Page

# Generous: a run goes through the API server, Tekton, the kubelet and two Ferry processes on
# a shared 2-core machine; the bound only matters when something is broken.
RUN_MILLISECONDS = 240_000
# Where `shoot` saves its screenshots when set (tests/browser/screenshots.py sets it).
SCREENSHOTS_ENV = "FERRY_SCREENSHOTS"


@dataclass(frozen=True, slots=True)
class Pages:
    """The pages of one Repository, at the receiver's public URL."""

    public_url: str
    namespace: str
    repository: str = "app"

    @property
    def runs(self) -> str:
        return f"{self.public_url}/ui/{self.namespace}/{self.repository}"

    def run(self, run: str) -> str:
        return f"{self.runs}/runs/{run}"

    def job(self, run: str, job: str) -> str:
        return f"{self.run(run)}/jobs/{job}"

    def raw(self, run: str, job: str, step: str) -> str:
        return f"{self.job(run, job)}/steps/{step}/raw"


def run_row(run: str) -> str:
    return f"table#runs tr.run[data-run='{run}']"


def job_item(job: str) -> str:
    return f"ol#jobs li.job[data-job='{job}']"


def step_log(page: Page, step: str) -> Locator:
    return page.locator(f".log[data-step='{step}']")


def log_lines(page: Page, step: str) -> Locator:
    return step_log(page, step).locator(".line")


def line_with(page: Page, step: str, text: str) -> Locator:
    return log_lines(page, step).filter(has_text=text)


def shown_line_with(page: Page, step: str, text: str) -> Locator:
    """A line of `step`'s log wherever a page shows it: the job page's whole log, or the tail
    a run page shows under a failing job."""
    return page.locator(f"[data-step='{step}'] .line").filter(has_text=text)


def line_number(line: Locator, step: str) -> int:
    """The `n` of a line's `id="{step}-L{n}"`."""
    identifier = line.get_attribute("id") or ""
    match = re.fullmatch(rf"{re.escape(step)}-L(\d+)", identifier)
    assert match, f"a log line's id is {identifier!r}, not {step}-L<n>"
    return int(match.group(1))


def load_until_shown(page: Page, url: str, selector: str) -> None:
    """Load `url` until something matches `selector` (server-rendered pages show what has
    happened meanwhile once they are asked for again)."""
    deadline = time.monotonic() + RUN_MILLISECONDS / 1000
    while True:
        page.goto(url)
        if page.locator(selector).count():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing on {url} matches {selector}")
        time.sleep(1.0)


def wait_for_state(page: Page, url: str, selector: str, state: str) -> None:
    """Load `url` until the element at `selector` has `data-state` `state`: the pages are
    server-rendered, so a finished run shows once the page is asked for again."""
    deadline = time.monotonic() + RUN_MILLISECONDS / 1000
    seen: str | None = None
    while True:
        page.goto(url)
        found = page.locator(selector)
        seen = found.first.get_attribute("data-state") if found.count() else None
        if seen == state:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} on {url} still says {seen!r}, not {state!r}")
        time.sleep(1.0)
