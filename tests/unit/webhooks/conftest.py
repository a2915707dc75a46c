from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ci.forges.types import ForgeKind
from ci.settings import LocalRepository
from tests.fakeforge import FakeForge
from tests.unit.webhooks.fakes import RecordingBackend, local_repository, settings_for
from webhooks.app import create_app

HELLO_WORLD = "https://github.com/Codertocat/Hello-World"

Serve = Callable[..., TestClient]


@pytest.fixture
def forge() -> Iterator[FakeForge]:
    fake = FakeForge(ForgeKind.GITHUB)
    yield fake
    fake.assert_no_violations()


@pytest.fixture
def backend() -> RecordingBackend:
    return RecordingBackend()


@pytest.fixture
def serve(
    tmp_path: Path, forge: FakeForge, backend: RecordingBackend
) -> Iterator[Serve]:
    """Start the real app (local mode, its lifespan run) with the recording backend."""
    clients: list[TestClient] = []

    def start(
        repositories: list[LocalRepository] | None = None,
        *,
        fake: FakeForge | None = None,
        local: dict[str, object] | None = None,
        **webhooks: object,
    ) -> TestClient:
        chosen = repositories or [local_repository(ForgeKind.GITHUB, HELLO_WORLD)]
        app = create_app(
            settings_for(tmp_path / "state", chosen, local=local, **webhooks),
            forge_transport=(fake or forge).transport(),
        )
        client = TestClient(app, raise_server_exceptions=True)
        client.__enter__()
        clients.append(client)
        app.state.runtime.receiver.backend = backend
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)
