"""The kinds of objects Ferry reads and writes, named once."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class ResourceKind:
    group: str
    version: str
    kind: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str, name: str | None = None, *,
             subresource: str | None = None) -> str:
        """The API server's path of this kind's objects in `namespace`, of the one named
        `name`, or of its `subresource` (`log`, `status`)."""
        path = f"{self._root}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        if name is not None:
            path += f"/{quote(name, safe='')}"
        return path if subresource is None else f"{path}/{subresource}"

    def collection(self, namespace: str | None) -> str:
        """The path of this kind's objects in `namespace`, or in every namespace (None)."""
        return self.path(namespace) if namespace is not None else f"{self._root}/{self.plural}"

    @property
    def _root(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


PIPELINE_RUN = ResourceKind("tekton.dev", "v1", "PipelineRun", "pipelineruns")
TASK_RUN = ResourceKind("tekton.dev", "v1", "TaskRun", "taskruns")
REPOSITORY = ResourceKind("ferry.dev", "v1alpha1", "Repository", "repositories")
RUN_REQUEST = ResourceKind("ferry.dev", "v1alpha1", "RunRequest", "runrequests")
SECRET = ResourceKind("", "v1", "Secret", "secrets")
POD = ResourceKind("", "v1", "Pod", "pods")
