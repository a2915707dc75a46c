"""What the read API needs of a run in the cluster: its TaskRuns, and a step's container log
through `pods/log`, whole or followed (`follow=true`) while the step runs.

Blocking calls: the read API runs them in worker threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ci.kube import labels
from ci.kube.errors import LogUnavailableError
from ci.kube.pipeline_runs import translate_api_errors
from ci.kube.pods import STREAM_CHUNK, open_log
from ci.kube.resources import TASK_RUN

# Seconds a followed log may stay quiet before the connection is read again from the start
# (a step that prints nothing for five minutes costs one re-read, not a broken stream).
FOLLOW_READ_TIMEOUT = 300.0


class StepLogs:
    def __init__(self, api_client: Any, *, timeout: float) -> None:
        from kubernetes.client import CustomObjectsApi  # noqa: PLC0415

        self._client = api_client
        self._custom = CustomObjectsApi(api_client)
        self._timeout = timeout

    def task_runs(self, namespace: str, pipeline_run: str) -> list[dict[str, Any]]:
        """The TaskRuns of one PipelineRun (by Tekton's own label)."""
        kind = TASK_RUN
        with translate_api_errors(f"list TaskRuns of {namespace}/{pipeline_run}"):
            listed: Any = self._custom.list_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural,
                label_selector=f"{labels.TEKTON_PIPELINE_RUN}={pipeline_run}",
                _request_timeout=self._timeout,
            )
        items: list[dict[str, Any]] = listed.get("items") or []
        return items

    def read(self, namespace: str, pod: str, container: str, *, follow: bool
             ) -> Iterator[bytes]:
        """The container's log from its first byte, as it comes; with `follow`, until the
        container ends (or the connection does). Raises `LogUnavailableError` at once when
        the API server has none."""
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        read_timeout = FOLLOW_READ_TIMEOUT if follow else self._timeout
        with translate_api_errors(f"read the log of {namespace}/{pod} {container}"):
            try:
                following = {"follow": "true"} if follow else {}
                response: Any = open_log(self._client, namespace, pod, container,
                                         timeout=(self._timeout, read_timeout),
                                         **following).response
            except ApiException as error:
                if error.status in (400, 404):
                    raise LogUnavailableError(
                        f"no log of {pod} {container} ({error.status}): the step has not "
                        "started, or its pod is gone") from error
                raise
        return _chunks(response)


def _chunks(response: Any) -> Iterator[bytes]:
    import urllib3  # noqa: PLC0415 (the Kubernetes client's transport)

    try:
        yield from response.stream(STREAM_CHUNK, decode_content=True)
    except (urllib3.exceptions.HTTPError, OSError):
        return  # a broken stream ends here; the caller reads again from the start
    finally:
        response.release_conn()
