"""Label and annotation names that Ferry's processes agree on, named once.

The receiver writes most of them when it creates a PipelineRun (see `pipelines.tekton`); the
controller reads them, and writes only `REPORTED`, `ARCHIVED` and `spec.status` (admission).
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "ferry.dev/"

# Every object Ferry creates carries this; the controller watches nothing else.
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_FERRY: Final = "ferry"
MANAGED_SELECTOR: Final = f"{MANAGED_BY}={MANAGED_BY_FERRY}"

# Set by the compiler (`pipelines.tekton`): on the run (labels are label-safe, annotations
# keep the exact value) and, for JOB/SPEC_JOB, on each task's `taskSpec.metadata`.
REPOSITORY: Final = f"{PREFIX}repository"  # annotation: "owner/name" as the forge spells it
REPOSITORY_URL: Final = f"{PREFIX}repository-url"  # annotation
SHA: Final = f"{PREFIX}sha"  # annotation: the full commit sha
BRANCH: Final = f"{PREFIX}branch"
PULL_REQUEST: Final = f"{PREFIX}pull-request"
# Annotation: when the forge says the run's event happened (`Event.happened_at`, UTC
# `YYYY-MM-DDTHH:MM:SSZ`); cancelling superseded runs orders by it. Absent on runs of events
# whose payload had no time.
EVENT_TIME: Final = f"{PREFIX}event-time"
JOB: Final = f"{PREFIX}job"  # one per pipeline task; a matrix variant has its own
SPEC_JOB: Final = f"{PREFIX}spec-job"  # the `.ci.yaml` job a variant came from

# Concurrency (written by the receiver on runs it creates with `spec.status:
# PipelineRunPending`; the controller admits them in creation order).
# The group is a label so the controller can select a group's runs; its value is any
# label-safe string identifying the branch or pull request (the receiver hashes long names).
CONCURRENCY_GROUP: Final = f"{PREFIX}concurrency-group"
# How many runs of the group may be active at once (a decimal integer >= 1).
CONCURRENCY_LIMIT: Final = f"{PREFIX}concurrency-limit"

# Annotation written by the receiver: why the run is as it is (the trust decision for an
# untrusted pull request, or who said `/ok-to-test`), shown in the run's status description.
NOTE: Final = f"{PREFIX}note"

# Written by the receiver on every run it creates: its HMAC over the run's Repository,
# labels and annotations (`ci.kube.binding`). The controller reports no run without a valid one.
BINDING: Final = f"{PREFIX}binding"

# What the controller last reported for the run and its jobs, as JSON (see
# `ci.controller.reporting.Memory`). Written only after the forge acknowledged.
REPORTED: Final = f"{PREFIX}reported"

# Written by the controller once every step log of a finished run is in the archive (or
# recorded there as lost): JSON `{"steps": n, "lost": m, "at": time}`. Pruning waits for it.
ARCHIVED: Final = f"{PREFIX}archived"

# Tekton's own (REFERENCE.md section 6).
TEKTON_PIPELINE_RUN: Final = "tekton.dev/pipelineRun"
TEKTON_PIPELINE_TASK: Final = "tekton.dev/pipelineTask"
PENDING: Final = "PipelineRunPending"  # the `spec.status` value that holds a run back
