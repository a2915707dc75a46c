"""The last lines of one container's log, through the API server's pod log endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (namespace, pod, container, lines) -> the log's last lines; raises if unavailable.
LogReader = Callable[[str, str, str, int], str]

# A step that printed a megabyte on one line must not become a megabyte check run.
MAXIMUM_LOG_BYTES = 64 * 1024


def api_log_reader(api_client: Any, *, timeout: float = 10.0) -> LogReader:
    from kubernetes.client import CoreV1Api  # noqa: PLC0415 (kept out of import time)

    core = CoreV1Api(api_client)

    def read(namespace: str, pod: str, container: str, lines: int) -> str:
        text = core.read_namespaced_pod_log(
            pod, namespace, container=container, tail_lines=lines,
            limit_bytes=MAXIMUM_LOG_BYTES, _request_timeout=timeout,
        )
        return str(text)

    return read
