"""Every published payload, signed and posted through the real app: 2xx or a deliberate 4xx.

With `raise_server_exceptions`, an unhandled exception (a 500) fails the test outright.
Hostile bodies (unsigned or signed) get a 4xx with a JSON message, never a 500.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci.forges.types import ForgeKind
from tests.fakeforge import FakeForge
from tests.unit.forges.contracts import headers_for, payload_files
from tests.unit.webhooks.conftest import HELLO_WORLD, Serve
from tests.unit.webhooks.fakes import RecordingBackend, local_repository, signed_headers

ALL_PAYLOADS = [(kind, path) for kind in ForgeKind for path in payload_files(kind)]
# Refusals a published payload may deliberately get: a payload naming no repository
# (GitHub App installation events, GitLab system hooks) cannot be matched to a secret.
DELIBERATE = {400, 404}


def _web_url(kind: ForgeKind, path: Path) -> str | None:
    data = json.loads(path.read_bytes())
    fields = data.get("project") if kind is ForgeKind.GITLAB else data.get("repository")
    return fields.get("web_url" if kind is ForgeKind.GITLAB else "html_url") if fields else None


def _repositories() -> list[object]:
    urls = {(kind, url) for kind, path in ALL_PAYLOADS if (url := _web_url(kind, path))}
    return [local_repository(kind, url) for kind, url in sorted(urls)]


@pytest.mark.parametrize(("kind", "path"), ALL_PAYLOADS, ids=lambda v: getattr(v, "name", v))
def test_every_contract_payload_gets_a_deliberate_answer(
    serve: Serve, backend: RecordingBackend, kind: ForgeKind, path: Path
) -> None:
    client = serve(_repositories(), fake=FakeForge(kind))  # type: ignore[arg-type]
    body = path.read_bytes()
    response = client.post("/hooks", content=body,
                           headers=signed_headers(kind, body, headers_for(kind, path)))
    assert response.status_code < 300 or response.status_code in DELIBERATE, response.text
    assert response.headers["content-type"] == "application/json"
    if response.status_code == 404:
        assert _web_url(kind, path) is None, response.text


HOSTILE = [
    b"",
    b"not json",
    b"[]",
    b'"a string"',
    b"null",
    b"{",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"repository": "not an object"}',
    b'{"repository": {"full_name": 7, "html_url": [], "clone_url": null}}',
    b"\xff\xfe\x00garbage",
    b'{"ref": "refs/heads/main", "after": "abc", "repository": {"full_name": "a/b", '
    b'"html_url": "https://github.com/Codertocat/Hello-World", "clone_url": "x"}}',
]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_hostile_bodies_get_a_4xx_with_a_message(
    serve: Serve, backend: RecordingBackend, body: bytes, signed: bool
) -> None:
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
    if signed:
        headers = signed_headers(ForgeKind.GITHUB, body, headers)
    response = serve().post("/hooks", content=body, headers=headers)
    assert 400 <= response.status_code < 500 or response.status_code == 202, response.text
    assert "error" in response.json() or "skipped" in response.json()
    assert backend.requests == []


def test_a_delivery_without_forge_headers_is_400(serve: Serve) -> None:
    response = serve().post("/hooks", content=b"{}", headers={"User-Agent": "curl"})
    assert response.status_code == 400 and "event header" in response.json()["error"]


def test_an_oversized_body_is_413_without_reading_it_all(serve: Serve) -> None:
    client = serve(max_body_bytes=4096)
    body = b"{" + b" " * 10_000 + b"}"
    response = client.post("/hooks", content=body, headers={"X-GitHub-Event": "push"})
    assert response.status_code == 413

    def trickle() -> object:
        yield b"{"
        for _ in range(10):
            yield b" " * 1000  # no Content-Length: the limit holds while reading

    response = client.post("/hooks", content=trickle(), headers={"X-GitHub-Event": "push"})
    assert response.status_code == 413


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    payload=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["repository", "ref", "after", "commits", "html_url", "full_name",
                             "clone_url", "pull_request", "action", "number", "deleted"]),
            children,
            max_size=6,
        ),
        max_leaves=25,
    ),
    event=st.sampled_from(["push", "pull_request", "issue_comment", "ping", "other"]),
)
def test_signed_random_payloads_never_crash_the_receiver(
    serve: Serve, payload: object, event: str
) -> None:
    client = _shared_client(serve)
    if isinstance(payload, dict) and isinstance(payload.get("repository"), dict):
        payload["repository"]["html_url"] = HELLO_WORLD  # reach past the lookup
    body = json.dumps(payload).encode()
    headers = signed_headers(
        ForgeKind.GITHUB, body, {"X-GitHub-Event": event, "Content-Type": "application/json"}
    )
    response = client.post("/hooks", content=body, headers=headers)
    assert response.status_code < 500, response.text


_CLIENTS: dict[int, object] = {}


def _shared_client(serve: Serve) -> object:
    # One app per test function, not per example: hypothesis calls the body many times.
    key = id(serve)
    if key not in _CLIENTS:
        _CLIENTS.clear()
        _CLIENTS[key] = serve()
    return _CLIENTS[key]
