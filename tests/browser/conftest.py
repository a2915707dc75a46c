"""The web pages in a real browser: Debian's headless chromium driven by Playwright, against
the real receiver and controller (deploy/'s, run by tests/e2e/installation.py) on the real
cluster, with the pages switched on (`web.public_url` the receiver's loopback address).

``chromium`` (session)
    One headless chromium (``/usr/bin/chromium``; tests/browser/install-chromium installs it).
``browser_contexts`` (function)
    ``browser_contexts()`` opens a fresh context (its own cookies: one person) with a page;
    closed after the test. When a test fails, every open page is screenshotted into the
    session's temp dir and the files are named in the report.
``page`` (function)
    The page of one such context.
``shoot`` (session)
    ``shoot(page, name)`` saves a screenshot of what the page shows as ``name.png``: into
    ``$FERRY_SCREENSHOTS`` when set (``python3 -m tests.browser.screenshots docs/ui`` sets it
    to make docs/ui.md's pictures), else into the session's temp dir.
``pages_ferry`` (module)
    The installation serving the pages at ``public_url``; a module whose tests sign in
    overrides ``web_settings`` (module scope) with its sign-in providers. One module at a
    time: its controller takes the others' Lease.

Tests that use the browser are marked ``browser`` automatically.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

from tests.browser.screens import SCREENSHOTS_ENV
from tests.cluster.control_plane import ControlPlane
from tests.cluster.kubelet import SimulatedKubelet
from tests.cluster.processes import free_port
from tests.cluster.resources import Kube
from tests.cluster.tekton import TektonController
from tests.e2e.installation import Installation, running

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_FIXTURES = frozenset({"chromium", "browser_contexts", "page"})
# Generous: pages are served by a receiver sharing two cores with a cluster and Tekton.
ACTION_MILLISECONDS = 60_000
# Phone-sized is checked elsewhere; screenshots and tests use an ordinary laptop window.
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}

_pages_key = pytest.StashKey[list[BrowserContext]]()
_shots_key = pytest.StashKey[Path]()


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test's open pages, as screenshots (the contexts are still open: fixtures are
    torn down after the call's report)."""
    report = yield
    contexts = item.stash.get(_pages_key, [])
    if report.when != "call" or not report.failed or not contexts:
        return report
    directory = item.stash[_shots_key]
    slug = re.sub(r"[^A-Za-z0-9]+", "-", item.name).strip("-")[:80]
    shown = []
    for c, context in enumerate(contexts):
        for p, open_page in enumerate(context.pages):
            path = directory / f"{slug}-{c}-{p}.png"
            try:
                open_page.screenshot(path=str(path), full_page=True)
            except Exception as error:  # a crashed page must not hide the test's failure
                shown.append(f"{open_page.url}: no screenshot ({error})")
                continue
            shown.append(f"{open_page.url}: {path}")
    report.sections.append(("browser screenshots", "\n".join(shown)))
    return report


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One browser per module. Not per session: while Playwright's sync API is started, its
    event loop counts as running in this thread, so every later `asyncio.run()` of the
    session (the unit tests of async code) would fail with "cannot be called from a running
    event loop". Stopped at the module's end, the thread is free again."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run tests/browser/install-chromium",
                    pytrace=False)
    playwright: Playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            # No user namespaces for chromium's sandbox where the tests run as root.
            args=["--no-sandbox"])
        yield browser
        browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def browser_contexts(request: pytest.FixtureRequest, chromium: Browser,
                     tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[Callable[[], Page]]:
    opened: list[BrowserContext] = []
    request.node.stash[_pages_key] = opened
    request.node.stash[_shots_key] = tmp_path_factory.getbasetemp() / "screenshots"
    request.node.stash[_shots_key].mkdir(exist_ok=True)

    def open_context() -> Page:
        context = chromium.new_context(viewport=VIEWPORT)
        context.set_default_timeout(ACTION_MILLISECONDS)
        context.set_default_navigation_timeout(ACTION_MILLISECONDS)
        opened.append(context)
        return context.new_page()

    yield open_context
    for context in opened:
        context.close()


@pytest.fixture
def page(browser_contexts: Callable[[], Page]) -> Page:
    return browser_contexts()


@pytest.fixture(scope="session")
def shoot(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Page, str], Path]:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    directory = Path(chosen) if chosen else tmp_path_factory.mktemp("pages")
    directory.mkdir(parents=True, exist_ok=True)

    def screenshot(page: Page, name: str) -> Path:
        path = directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return screenshot


# --- the receiver serving the pages -----------------------------------------------------


@pytest.fixture(scope="module")
def web_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def public_url(web_port: int) -> str:
    """What `web.public_url` says: where the browser (and Gitea's links) reach the pages."""
    return f"http://127.0.0.1:{web_port}"


@pytest.fixture(scope="module")
def web_settings() -> dict[str, Any]:
    """The `web` group besides `public_url`: no sign-in providers, so only `spec.publicLogs`
    repositories are shown. A module whose tests sign in overrides it."""
    return {"providers": []}


@pytest.fixture(scope="module")
def pages_ferry(cluster: ControlPlane, kube: Kube, tekton: TektonController,
                kubelet: SimulatedKubelet, cluster_bin_dir: Path,
                tmp_path_factory: pytest.TempPathFactory, web_port: int, public_url: str,
                web_settings: dict[str, Any]) -> Iterator[Installation]:
    web = {**web_settings, "public_url": public_url}
    with running(cluster, kube, cluster_bin_dir, tmp_path_factory.mktemp("ferry-web"),
                 port=web_port, web=web) as installed:
        yield installed
