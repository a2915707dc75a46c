"""Container logs through the API server's pod log endpoint: the last lines (check-run tails)
or the whole log as a stream (the archive)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ci.kube.errors import LogUnavailableError

# (namespace, pod, container, lines) -> the log's last lines; raises if unavailable.
LogReader = Callable[[str, str, str, int], str]

# A step that printed a megabyte on one line must not become a megabyte check run.
MAXIMUM_LOG_BYTES = 64 * 1024


def api_log_reader(api_client: Any, *, timeout: float) -> LogReader:
    from kubernetes.client import CoreV1Api  # noqa: PLC0415 (kept out of import time)

    core = CoreV1Api(api_client)

    def read(namespace: str, pod: str, container: str, lines: int) -> str:
        text = core.read_namespaced_pod_log(
            pod, namespace, container=container, tail_lines=lines,
            limit_bytes=MAXIMUM_LOG_BYTES, _request_timeout=timeout,
        )
        return str(text)

    return read


# (namespace, pod, container) -> the whole log as it comes, in chunks; raises
# `LogUnavailableError` when there is none to read (the pod or container is gone).
LogStream = Callable[[str, str, str], Iterator[bytes]]
STREAM_CHUNK = 64 * 1024


def api_log_stream(api_client: Any, *, timeout: float) -> LogStream:
    """Whole container logs through `pods/log`, streamed: never held in memory at once.
    `timeout` bounds connecting and each read, not the whole (a log may be large)."""
    from kubernetes.client import CoreV1Api  # noqa: PLC0415 (kept out of import time)
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    core = CoreV1Api(api_client)

    def stream(namespace: str, pod: str, container: str) -> Iterator[bytes]:
        try:
            response: Any = core.read_namespaced_pod_log(
                pod, namespace, container=container, _preload_content=False,
                _request_timeout=(timeout, timeout),
            )
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
