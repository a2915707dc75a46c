"""Container logs through the API server's pod log endpoint: the last lines (check-run tails)
or the whole log as a stream (the archive)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ci.kube.errors import LogUnavailableError
from ci.kube.plain import send
from ci.kube.resources import POD

# (namespace, pod, container, lines) -> the log's last lines; raises if unavailable.
LogReader = Callable[[str, str, str, int], str]

# A step that printed a megabyte on one line must not become a megabyte check run.
MAXIMUM_LOG_BYTES = 64 * 1024


def open_log(api_client: Any, namespace: str, pod: str, container: str, *,
             timeout: float | tuple[float, float], **options: str | int) -> Any:
    """The API server's answer to a read of the container's log, its body not read yet
    (`plain.send`); `options`: `pods/log`'s own (`tailLines`, `limitBytes`, `follow`)."""
    return send(api_client, "GET", POD.path(namespace, pod, subresource="log"),
                query={"container": container, **options}, timeout=timeout)


def api_log_reader(api_client: Any, *, timeout: float) -> LogReader:
    def read(namespace: str, pod: str, container: str, lines: int) -> str:
        response = open_log(api_client, namespace, pod, container, timeout=timeout,
                            tailLines=lines, limitBytes=MAXIMUM_LOG_BYTES)
        data: bytes = response.read()
        return data.decode("utf-8", errors="replace")

    return read


# (namespace, pod, container) -> the whole log as it comes, in chunks; raises
# `LogUnavailableError` when there is none to read (the pod or container is gone).
LogStream = Callable[[str, str, str], Iterator[bytes]]
STREAM_CHUNK = 64 * 1024


def api_log_stream(api_client: Any, *, timeout: float) -> LogStream:
    """Whole container logs through `pods/log`, streamed: never held in memory at once.
    `timeout` bounds connecting and each read, not the whole (a log may be large)."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 (kept lazy)

    def stream(namespace: str, pod: str, container: str) -> Iterator[bytes]:
        try:
            response: Any = open_log(api_client, namespace, pod, container,
                                     timeout=(timeout, timeout)).response
        except ApiException as error:
            if error.status in (400, 404):
                # 404: the pod is gone; 400: the container never started or is unknown.
                raise LogUnavailableError(
                    f"the API server has no log of {namespace}/{pod} container {container} "
                    f"({error.status} {error.reason}): the pod was deleted, or the step "
                    "never started") from error
            raise
        try:
            yield from response.stream(STREAM_CHUNK, decode_content=True)
        finally:
            response.release_conn()

    return stream
