"""The read API's HTTP shape without a cluster: names refused before any lookup, a local
receiver saying it has no read API, and the SSE encoding of a log (carriage returns and
characters cut between chunks survive)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.testclient import TestClient

from ci.archive.layout import StepKey
from ci.archive.steps import StepDetails, StepRecord
from ci.masking import Masker
from webhooks.api import routes
from webhooks.api.events import log_events
from webhooks.api.following import LogFollower, Phase


def test_bad_names_are_refused_and_a_local_receiver_has_no_read_api() -> None:
    app = FastAPI()
    app.include_router(routes.router)
    client = TestClient(app)
    assert client.get("/api/v1/namespaces/Bad_NS/repositories/app/runs").status_code == 422
    answer = client.get("/api/v1/repositories")
    assert answer.status_code == 404
    assert "needs a cluster" in answer.json()["error"]


class _Archived:
    LOG = "progress 10%\rprogress 99%\r\nü done\n".encode()

    def record(self) -> StepRecord | None:
        return StepRecord(key=StepKey(namespace="t", repository="a", run="r", job="j", step="s"),
                          details=StepDetails(exit_code=0), size=len(self.LOG),
                          stored=len(self.LOG), truncated=False, lost=None, archived_at="x")

    def archived(self, offset: int) -> Iterator[bytes] | None:
        data = self.LOG[offset:]
        cut = data.index("ü".encode()) + 1  # inside the two bytes of "ü"
        return iter([data[:cut], data[cut:]])

    def phase(self) -> Phase:
        return Phase.ENDED

    def live(self, *, follow: bool) -> Iterator[bytes]:
        raise AssertionError("archived")


def test_server_sent_events_carry_the_log_exactly() -> None:
    body = b"".join(log_events(LogFollower(_Archived(), masker=Masker())))
    events = [block for block in body.decode().split("\n\n") if block and
              not block.startswith(":")]
    parsed = []
    for block in events:
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        parsed.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
    texts = "".join(data["text"] for _id, kind, data in parsed if kind == "log")
    assert texts == _Archived.LOG.decode()
    # Each id is the byte offset reached by whole characters: a reconnect resumes there.
    ids = [int(event_id) for event_id, kind, _ in parsed if kind == "log"]
    assert ids[-1] == len(_Archived.LOG)
    assert _Archived.LOG[: ids[0]].decode()  # the first id ends on a character boundary
    assert parsed[-1][1:] == ("end", {"offset": len(_Archived.LOG), "archived": True,
                                      "exitCode": 0, "lost": None})
