"""The kinds of objects Ferry reads and writes, named once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResourceKind:
    group: str
    version: str
    kind: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


PIPELINE_RUN = ResourceKind("tekton.dev", "v1", "PipelineRun", "pipelineruns")
TASK_RUN = ResourceKind("tekton.dev", "v1", "TaskRun", "taskruns")
REPOSITORY = ResourceKind("ferry.dev", "v1alpha1", "Repository", "repositories")
RUN_REQUEST = ResourceKind("ferry.dev", "v1alpha1", "RunRequest", "runrequests")
