"""A fake forge for tests: GitHub, Gitea or GitLab, answering like the real API.

Every request is validated against the forge's own API description from
../shared/contracts (openapi-core); a request the real API would reject is answered 422 and
recorded in `FakeForge.violations`, which the `checked` fixture helpers turn into a test
failure. Accepted requests are recorded in `FakeForge.requests`. The forge can be told to
fail a share of calls with 500 or 429 (with `Retry-After`) for retry tests.

Use it in-process through `forge.transport()` (httpx.ASGITransport), or over real sockets
with `tests.fakeforge.serving.serve(forge)` for tests that run the controller as a process.
"""

from tests.fakeforge.faults import Faults
from tests.fakeforge.forge import FakeForge, RecordedRequest

__all__ = ["FakeForge", "Faults", "RecordedRequest"]
