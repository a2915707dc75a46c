"""Tekton v1 `Succeeded` conditions to Ferry's forge-neutral `Conclusion`.

Tables, not branches: every reason Tekton defines (../shared/contracts/tekton/REFERENCE.md
section 5, PipelineRun and TaskRun) has a row, so a new reason shows up as a missing row in the
tests instead of as a silently wrong check. A reason we have never seen falls back on the
condition's status: Unknown is still running, True succeeded, False failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from ci.forges.statuses import Conclusion


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


_FALLBACK: Mapping[ConditionStatus, Conclusion] = MappingProxyType(
    {
        ConditionStatus.UNKNOWN: Conclusion.RUNNING,
        ConditionStatus.TRUE: Conclusion.SUCCESS,
        ConditionStatus.FALSE: Conclusion.FAILURE,
    }
)

# Waiting to start: nothing of the user's has run yet.
_QUEUED_REASONS = (
    "Started",
    "PipelineRunPending",
    "ResolvingPipelineRef",
    "ResolvingTaskRef",
    "TaskRunPending",
    "ResolvingStepActionRef",
    "Pending",
    "ExceededNodeResources",
    "ExceededResourceQuota",
    "PullImageFailed",  # Unknown while the kubelet keeps retrying the pull
)
# Still moving, including while cancelling, stopping or running `finally` after a timeout:
# the final word comes with status False.
_RUNNING_REASONS = (
    "Running",
    "PipelineRunStopping",
    "PipelineRunTimeoutRunningFinally",
    "CancelledRunningFinally",
    "StoppedRunningFinally",
    "PipelineRunCouldntCancel",
    "PipelineRunCouldntTimeOut",
    "ToBeRetried",
)
# Ferry or the cluster failed before (or instead of) running the user's code: the compiled run
# or its environment is wrong, which the user's commit cannot fix.
_ERROR_REASONS = (
    "PipelineValidationFailed",
    "CouldntGetPipeline",
    "CouldntGetTask",
    "InvalidPipelineResourceBindings",
    "InvalidWorkspaceBindings",
    "InvalidTaskRunSpecs",
    "ParameterTypeMismatch",
    "ObjectParameterMissKeys",
    "ParamArrayIndexingInvalid",
    "ParameterMissing",
    "PipelineInvalidGraph",
    "InvalidMatrixParameterTypes",
    "InvalidTaskResultReference",
    "InvalidPipelineResultReference",
    "RequiredWorkspaceMarkedOptional",
    "ResourceVerificationFailed",
    "CreateRunFailed",
    "CouldntGetPipelineResult",
    "CouldntCreateWorkspacePVC",
    "ReasonCouldntCreateOrUpdateAffinityAssistantStatefulSet",
    "TaskRunResolutionFailed",
    "TaskRunValidationFailed",
    "TaskValidationFailed",
    "PodCreationFailed",
    "TaskRunStopSidecarFailed",
)
# The user's code (or image, or resources) failed.
_FAILURE_REASONS = (
    "Failed",
    "StepFailed",
    "StepOOM",
    "CELEvaluationFailed",
    "InvalidParamValue",
    "TaskRunImagePullFailed",
    "CreateContainerConfigError",
    "PodEvicted",
    "SidecarOOM",
    "SidecarFailed",
    "InitContainerOOM",
    "InitContainerFailed",
    "TaskRunResultLargerThanAllowedLimit",
    "PodAdmissionFailed",
)


def _rows(
    status: ConditionStatus, reasons: Sequence[str], conclusion: Conclusion
) -> dict[tuple[ConditionStatus, str], Conclusion]:
    return {(status, reason): conclusion for reason in reasons}


_UNKNOWN, _TRUE, _FALSE = ConditionStatus.UNKNOWN, ConditionStatus.TRUE, ConditionStatus.FALSE

TABLE: Mapping[tuple[ConditionStatus, str], Conclusion] = MappingProxyType(
    {
        **_rows(_UNKNOWN, _QUEUED_REASONS, Conclusion.QUEUED),
        **_rows(_UNKNOWN, _RUNNING_REASONS, Conclusion.RUNNING),
        # Unknown while Tekton is still cancelling; the final condition is False.
        **_rows(_UNKNOWN, ("Cancelled", "TaskRunCancelled"), Conclusion.RUNNING),
        **_rows(_TRUE, ("Succeeded", "Completed"), Conclusion.SUCCESS),
        **_rows(_FALSE, _FAILURE_REASONS, Conclusion.FAILURE),
        **_rows(_FALSE, _ERROR_REASONS, Conclusion.ERROR),
        **_rows(_FALSE, ("Cancelled", "TaskRunCancelled"), Conclusion.CANCELLED),
        **_rows(_FALSE, ("PipelineRunTimeout", "TaskRunTimeout"), Conclusion.TIMED_OUT),
        # `onError: continue` (a job with allow_failure): it failed, and it does not count.
        **_rows(_FALSE, ("FailureIgnored",), Conclusion.NEUTRAL),
    }
)


def conclusion_of(status: str, reason: str) -> Conclusion:
    """The conclusion for one `Succeeded` condition's status and reason."""
    try:
        condition_status = ConditionStatus(status)
    except ValueError:
        return Conclusion.RUNNING  # a malformed status is not a verdict
    found = TABLE.get((condition_status, reason))
    return found if found is not None else _FALLBACK[condition_status]


def succeeded_condition(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The `Succeeded` condition of a PipelineRun or TaskRun, if Tekton has set one."""
    status = obj.get("status") or {}
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Succeeded":
            found: Mapping[str, Any] = condition
            return found
    return None
