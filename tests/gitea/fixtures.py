"""The pytest plugin that starts one real Gitea per test session (registered in
``tests/conftest.py``).

``gitea_binary`` (session)
    ``$FERRY_GITEA_BIN`` (set by tests/run), else whatever ``tests/gitea/build`` prints; the
    static files' directory is read from the cache beside it.
``gitea`` (session)
    A started ``GiteaServer`` on a free port of 127.0.0.1: SQLite, webhooks allowed to
    127.0.0.1, an administrator whose token is ``gitea.admin_token``. Stopped by pid.
``gitea_api`` (session)
    A ``GiteaApi`` as that administrator; ``as_user(user)`` for anyone else.

Tests that use them are marked ``gitea`` automatically; Gitea's log tail is attached to the
report of every failing one. Like the cluster, Gitea is never skipped: a failed build fails.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.cluster.processes import built_path, tail
from tests.gitea.api import GiteaApi
from tests.gitea.server import GiteaServer

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "tests" / "gitea" / "build"
GITEA_FIXTURES = frozenset({"gitea", "gitea_api"})

_server_key = pytest.StashKey[GiteaServer]()


def _announce(config: pytest.Config, message: str) -> None:
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            sys.stderr.write(f"\n[gitea] {message}\n")
            sys.stderr.flush()


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if GITEA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.gitea)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    server = item.config.stash.get(_server_key, None)
    if report.failed and server is not None and GITEA_FIXTURES & set(
            getattr(item, "fixturenames", ())):
        report.sections.append((f"gitea log ({server.log_path})", tail(server.log_path)))
    return report


@pytest.fixture(scope="session")
def gitea_binary() -> Path:
    binary = built_path(BUILD_SCRIPT, "FERRY_GITEA_BIN")
    static_root = binary.parent.parent / "static-root"
    if not binary.is_file() or not static_root.is_file():
        pytest.fail(f"{binary} or {static_root} is missing: run tests/gitea/build",
                    pytrace=False)
    return binary


@pytest.fixture(scope="session")
def gitea(
    request: pytest.FixtureRequest, gitea_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GiteaServer]:
    static_root = Path((gitea_binary.parent.parent / "static-root").read_text().strip())
    server = GiteaServer(binary=gitea_binary, static_root=static_root,
                         directory=tmp_path_factory.mktemp("gitea", numbered=False))
    request.config.stash[_server_key] = server
    started = time.monotonic()
    try:
        server.start()
        _announce(request.config,
                  f"Gitea {server.version()} ready at {server.url} in "
                  f"{time.monotonic() - started:.1f}s; log {server.log_path}")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gitea_api(gitea: GiteaServer) -> GiteaApi:
    return GiteaApi(gitea)
