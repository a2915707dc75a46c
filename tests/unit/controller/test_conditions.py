"""Every Tekton reason (REFERENCE.md section 5) maps to the conclusion the forge shows."""

from __future__ import annotations

import re

import pytest
import yaml

from ci.controller.conditions import TABLE, conclusion_of
from ci.controller.runs import Condition, RunSnapshot
from ci.forges.statuses import Conclusion
from tests.contracts import CONTRACTS
from tests.unit.controller.builders import pipeline_run

TEKTON = CONTRACTS / "tekton"
Q, R, S, F = Conclusion.QUEUED, Conclusion.RUNNING, Conclusion.SUCCESS, Conclusion.FAILURE
C, T, E, N = Conclusion.CANCELLED, Conclusion.TIMED_OUT, Conclusion.ERROR, Conclusion.NEUTRAL

PIPELINE_RUN_REASONS = [
    ("Unknown", "Started", Q),
    ("Unknown", "Running", R),
    ("Unknown", "PipelineRunPending", Q),
    ("Unknown", "ResolvingPipelineRef", Q),
    ("Unknown", "PipelineRunStopping", R),
    ("Unknown", "PipelineRunTimeoutRunningFinally", R),
    ("Unknown", "CancelledRunningFinally", R),
    ("Unknown", "StoppedRunningFinally", R),
    ("Unknown", "PipelineRunCouldntCancel", R),
    ("Unknown", "PipelineRunCouldntTimeOut", R),
    ("Unknown", "Cancelled", R),
    ("True", "Succeeded", S),
    ("True", "Completed", S),
    ("False", "Failed", F),
    ("False", "Cancelled", C),
    ("False", "PipelineRunTimeout", T),
    ("False", "CreateRunFailed", E),
    ("False", "CELEvaluationFailed", F),
    ("False", "CouldntGetPipelineResult", E),
    ("False", "PipelineValidationFailed", E),
    ("False", "CouldntGetPipeline", E),
    ("False", "CouldntGetTask", E),
    ("False", "InvalidPipelineResourceBindings", E),
    ("False", "InvalidWorkspaceBindings", E),
    ("False", "InvalidTaskRunSpecs", E),
    ("False", "ParameterTypeMismatch", E),
    ("False", "ObjectParameterMissKeys", E),
    ("False", "ParamArrayIndexingInvalid", E),
    ("False", "ParameterMissing", E),
    ("False", "PipelineInvalidGraph", E),
    ("False", "InvalidMatrixParameterTypes", E),
    ("False", "InvalidTaskResultReference", E),
    ("False", "InvalidPipelineResultReference", E),
    ("False", "RequiredWorkspaceMarkedOptional", E),
    ("False", "ResourceVerificationFailed", E),
    ("False", "InvalidParamValue", F),
    ("False", "CouldntCreateWorkspacePVC", E),
    ("False", "ReasonCouldntCreateOrUpdateAffinityAssistantStatefulSet", E),
    ("Unknown", "ResolvingTaskRef", Q),
]
TASK_RUN_REASONS = [
    ("Unknown", "Started", Q),
    ("Unknown", "Running", R),
    ("Unknown", "TaskRunPending", Q),
    ("Unknown", "ResolvingTaskRef", Q),
    ("Unknown", "ResolvingStepActionRef", Q),
    ("Unknown", "ToBeRetried", R),
    ("Unknown", "TaskRunCancelled", R),
    ("True", "Succeeded", S),
    ("False", "Failed", F),
    ("False", "StepFailed", F),
    ("False", "StepOOM", F),
    ("False", "TaskRunCancelled", C),
    ("False", "TaskRunTimeout", T),
    ("False", "FailureIgnored", N),
    ("False", "TaskRunImagePullFailed", F),
    ("False", "CreateContainerConfigError", F),
    ("False", "PodCreationFailed", E),
    ("False", "PodEvicted", F),
    ("False", "SidecarOOM", F),
    ("False", "SidecarFailed", F),
    ("False", "InitContainerOOM", F),
    ("False", "InitContainerFailed", F),
    ("False", "TaskRunResultLargerThanAllowedLimit", F),
    ("False", "TaskRunStopSidecarFailed", E),
    ("False", "InvalidParamValue", F),
    ("False", "TaskRunResolutionFailed", E),
    ("False", "TaskRunValidationFailed", E),
    ("False", "TaskValidationFailed", E),
    ("False", "ResourceVerificationFailed", E),
    ("Unknown", "Pending", Q),
    ("Unknown", "ExceededNodeResources", Q),
    ("Unknown", "ExceededResourceQuota", Q),
    ("Unknown", "PullImageFailed", Q),
    ("False", "PodAdmissionFailed", F),
]


@pytest.mark.parametrize(("status", "reason", "expected"), PIPELINE_RUN_REASONS + TASK_RUN_REASONS)
def test_reason_maps_to_conclusion(status: str, reason: str, expected: Conclusion) -> None:
    assert conclusion_of(status, reason) is expected
    assert (status, reason) in {(s.value, r) for s, r in TABLE}, "every reason has its own row"


def test_every_reason_the_reference_names_has_a_row() -> None:
    reference = TEKTON / "REFERENCE.md"
    section = reference.read_text().split("## 5.", 1)[1].split("## 6.", 1)[0]
    section = section.split("**PipelineRun status fields", 1)[0]
    named = set(re.findall(r"`([A-Z][A-Za-z]+)`", section)) - {"Unknown", "True", "False"}
    named -= {"Succeeded"}  # also the condition's type
    covered = {reason for _, reason in TABLE} | {"Succeeded"}
    assert named - covered == set()
    listed = {reason for _, reason, _ in PIPELINE_RUN_REASONS + TASK_RUN_REASONS}
    assert named - listed == set(), "the test table lists every reason too"


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [("Unknown", "SomethingNew", R), ("True", "SomethingNew", S), ("False", "SomethingNew", F),
     ("Maybe", "Running", R)],
)
def test_unseen_reasons_fall_back_on_the_status(
    status: str, reason: str, expected: Conclusion
) -> None:
    assert conclusion_of(status, reason) is expected


def test_no_condition_yet_is_queued() -> None:
    assert RunSnapshot.of(pipeline_run(condition=None)).conclusion is Q


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pipelinerun.failed.yaml", F),
        ("pipelinerun.succeeded.yaml", S),
        ("pipelinerun.succeeded-childreferences.yaml", S),
        ("taskrun.failed-validation.yaml", E),
        ("taskrun.succeeded.yaml", S),
        ("taskrun.succeeded-stepaction.yaml", S),
    ],
)
def test_tekton_examples(name: str, expected: Conclusion) -> None:
    path = TEKTON / "status" / name
    document = yaml.safe_load(path.read_text())
    # Some examples are the status block alone.
    run = document if "status" in document else {"status": document}
    condition = Condition.of(run)
    assert condition is not None and condition.conclusion is expected
