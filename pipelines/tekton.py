"""Compile a `Plan` for an `Event` into a Tekton `tekton.dev/v1` PipelineRun (a plain dict).

Call order: `plan = planning.plan(spec, event)`, then
`run = compile_pipeline_run(plan, event, options=CompileOptions(...))`, then `to_yaml(run)`
for people or the dict itself for the Kubernetes API. `pipeline_run_name(event)` is the
idempotent run name the webhook uses to make a redelivered event a no-op.

The shape of the output, and why:

- The run embeds its `pipelineSpec` and each job's `taskSpec`: it is fully described by the
  commit it came from, and needs no Task objects in the cluster.
- One job is one pipeline task (one pod). Its first step, `clone`, fetches exactly `event.sha`
  into the `source` workspace, mounted at `/workspace/source` and the working directory of
  every step. `source` is bound to an `emptyDir` (one per TaskRun, so per job); a job with
  `share_workspace` binds it to the run's `shared` workspace instead, backed by a
  `volumeClaimTemplate`: the only PersistentVolumeClaim Ferry ever asks for, because volume
  attach is slow. Jobs on the shared volume skip the clone when it already holds the commit.
- Event data (attacker-controlled: branch names, titles) enters only as PipelineRun `params`,
  is passed to each task's params, and reaches steps only as `env` values
  (`FERRY_BRANCH: $(params.branch)`). It is never written into a `script`.
- Tekton substitutes `$(params.…)`, `$(context.…)`, `$(workspaces.…)` and the like in the
  scripts, images, env values and commands of an embedded taskSpec, with plain string
  replacement of the exact variable text (`pkg/substitution/substitution.go`
  `ApplyReplacements`; `pkg/reconciler/taskrun/resources/apply.go` applies it to steps,
  `stepTemplate`, sidecars and volumes, which is also how our `stepTemplate` env works). A
  user script saying `echo $(params.branch)` would therefore run the branch name as shell.
  Rewriting the text cannot keep shell meaning in every quoting context, so the linter and
  the compiler refuse spec text containing a Tekton variable (`TektonVariableError`) and
  point to the `FERRY_*` environment variables instead. In a shell, `$(params.branch)` would
  mean "run the command `params.branch`", so no real script is refused by this.
- Every step has a `script` (without one, Tekton asks the image registry for the entrypoint).
  A `run` starting with `#!` is used as it is. Otherwise the script starts with `#!/bin/sh`,
  re-executes itself with `bash -eo pipefail` when the image has bash, and runs under
  `set -e` either way: the behaviour `Step` documents, and the one that works on images with
  no bash (alpine, distroless-busybox).
- `allow_failure` becomes `onError: continue` on the pipeline task (beta, on by default).
  Tekton rejects it together with `retries`, so that combination is a `CompileError`
  (`pipelines.tekton_rules.refuse_untektonable`, as the Tekton variables are; the linter
  reports both first, with their positions).
- Timeouts: each task gets its job's timeout, or `CompileOptions.default_job_timeout_seconds`.
  Without a spec-level timeout, the run's timeout is the longest chain of task timeouts through
  the DAG (each times its attempts) plus the longest finally task, so a run never times out
  before its tasks could. With finally jobs, `timeouts.tasks` and `timeouts.finally` are set
  too (`pipeline` = `tasks` + `finally`, as Tekton requires), so finally jobs keep their time.
- Privileges: a run's pods get no Kubernetes API token unless `CompileOptions.service_account`
  names an account for a trusted run (`taskRunTemplate.serviceAccountName`); otherwise they
  run as the namespace's `default` account, named explicitly so that Tekton's configurable
  `default-service-account` never applies, with `podTemplate.automountServiceAccountToken:
  false` (Tekton copies the pod template's field into the pod it builds, and merges the
  template field by field with a cluster's `default-pod-template`, whose other fields still
  apply). Every step, the
  clone included (through `stepTemplate`), and every sidecar runs with
  `allowPrivilegeEscalation: false`: no setuid binary or file capability gives a process more
  than it started with. An untrusted run (`CompileOptions.untrusted`: a pull request whose
  author has no write access) never gets the account and carries the label
  `ferry.dev/untrusted: "true"`, which Tekton copies to its TaskRuns and pods, for a
  NetworkPolicy to select (`deploy/team/untrusted-runs-network-policy.yaml`).
- Output is deterministic: dicts are built in a fixed key order and `to_yaml` keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from msgspec import Struct

from pipelines.emitting import dump
from pipelines.events import Event
from pipelines.names import label_value, pipeline_run_name
from pipelines.planning import (
    Plan,
    PlannedJob,
    PlannedStep,
)
from pipelines.scripts import EVENT_PARAMS, SOURCE_PATH, event_values, shell_script
from pipelines.spec import DEFAULT_JOB_TIMEOUT_SECONDS
from pipelines.tekton_rules import refuse_untektonable

API_VERSION = "tekton.dev/v1"
DEFAULT_CLONE_IMAGE = "docker.io/alpine/git:2.45.2"
DEFAULT_SHARED_WORKSPACE_SIZE = "1Gi"
SOURCE_WORKSPACE = "source"
SHARED_WORKSPACE = "shared"
LABEL_PREFIX = "ferry.dev/"
# The account of pods that get no API token: every namespace has it (Kubernetes makes it).
TOKENLESS_SERVICE_ACCOUNT = "default"
UNTRUSTED_LABEL = f"{LABEL_PREFIX}untrusted"
# Kubernetes' `allowPrivilegeEscalation: false` (the no_new_privs flag) for steps and sidecars.
CONTAINER_SECURITY_CONTEXT: Mapping[str, Any] = {"allowPrivilegeEscalation": False}


_CLONE_SCRIPT = """\
#!/bin/sh
set -eu
# Event data arrives only through the environment, never in this text.
if [ -d .git ]; then
  head=$(git -c safe.directory='*' rev-parse HEAD 2>/dev/null || true)
  if [ "$head" = "$FERRY_SHA" ]; then
    echo "the shared workspace already holds $FERRY_SHA"
    exit 0
  fi
fi
git -c safe.directory='*' init --quiet .
git -c safe.directory='*' remote remove origin 2>/dev/null || true
git -c safe.directory='*' remote add origin "$FERRY_REPO_URL"
git -c safe.directory='*' fetch --quiet --depth 1 origin "$FERRY_SHA"
git -c safe.directory='*' checkout --quiet --detach FETCH_HEAD
"""

# With a clone Secret (private repositories), the fetch alone sends the token as an HTTP
# header set through git's environment config: never in argv, never written to .git/config,
# where later steps (the repository's own code) could read it. `x-access-token` is a user
# name GitHub, Gitea and GitLab all accept with a token as the password.
_PLAIN_FETCH = """\
git -c safe.directory='*' fetch --quiet --depth 1 origin "$FERRY_SHA"
"""
_FETCH_WITH_HEADER = """\
basic=$(printf 'x-access-token:%s' "$FERRY_CLONE_TOKEN" | base64 | tr -d '\\n')
GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader \\
  GIT_CONFIG_VALUE_0="Authorization: Basic $basic" \\
  git -c safe.directory='*' fetch --quiet --depth 1 origin "$FERRY_SHA"
unset basic
"""
CLONE_TOKEN_ENV = "FERRY_CLONE_TOKEN"  # noqa: S105 (a variable name, not a secret)
CLONE_TOKEN_KEY = "token"  # noqa: S105 (the key's name in the clone Secret, not a secret)


class CompileOptions(Struct, frozen=True, kw_only=True):
    """How to compile; everything the spec does not say.

    `namespace` None leaves `metadata.namespace` out (the client's namespace applies).
    `ferry_version` goes into labels and annotations, to trace a run to the compiler.
    """

    namespace: str | None = None
    name_prefix: str = ""  # prepended to `pipeline_run_name`, e.g. "ferry-"
    # The ServiceAccount whose API token a trusted run's pods get; None: no token at all.
    service_account: str | None = None
    # A pull request whose author has no write access: no `service_account` whatever it says,
    # and the `ferry.dev/untrusted` label for the NetworkPolicy.
    untrusted: bool = False
    clone_image: str = DEFAULT_CLONE_IMAGE
    ferry_version: str = "dev"
    default_job_timeout_seconds: int = DEFAULT_JOB_TIMEOUT_SECONDS
    shared_workspace_size: str = DEFAULT_SHARED_WORKSPACE_SIZE
    # A Secret in the run's namespace whose `token` key the clone step fetches with (private
    # repositories); None clones anonymously and leaves the output as it always was.
    clone_secret: str | None = None


def compile_pipeline_run(
    plan: Plan, event: Event, *, options: CompileOptions | None = None
) -> dict[str, Any]:
    """The PipelineRun for `plan` and `event` (see the module docstring)."""
    options = options or CompileOptions()
    refuse_untektonable(plan)
    metadata: dict[str, Any] = {"name": pipeline_run_name(event, prefix=options.name_prefix)}
    if options.namespace is not None:
        metadata["namespace"] = options.namespace
    metadata["labels"] = _run_labels(event, options)
    metadata["annotations"] = _run_annotations(event, options)

    uses_shared = any(job.share_workspace for job in plan.all_jobs)
    timeouts = _timeouts(plan, options)
    pipeline_spec: dict[str, Any] = {
        "params": [
            {"name": name, "type": "string", "description": description}
            for name, _, description in EVENT_PARAMS
        ],
        "workspaces": [{"name": SOURCE_WORKSPACE}]
        + ([{"name": SHARED_WORKSPACE}] if uses_shared else []),
        "tasks": [_pipeline_task(job, options, cap=timeouts.cap(job)) for job in plan.jobs],
    }
    if plan.finally_jobs:
        pipeline_spec["finally"] = [
            _pipeline_task(job, options, cap=timeouts.cap(job)) for job in plan.finally_jobs
        ]

    values = event_values(event)
    spec: dict[str, Any] = {
        "params": [
            {"name": name, "value": values[name]} for name, _, _ in EVENT_PARAMS
        ],
        "pipelineSpec": pipeline_spec,
        "timeouts": timeouts.as_spec(),
        "workspaces": _workspace_bindings(uses_shared=uses_shared, options=options),
    }
    spec["taskRunTemplate"] = _task_run_template(options)
    return {
        "apiVersion": API_VERSION,
        "kind": "PipelineRun",
        "metadata": metadata,
        "spec": spec,
    }


def _task_run_template(options: CompileOptions) -> dict[str, Any]:
    if options.service_account is not None and not options.untrusted:
        return {"serviceAccountName": options.service_account}
    return {
        "serviceAccountName": TOKENLESS_SERVICE_ACCOUNT,
        "podTemplate": {"automountServiceAccountToken": False},
    }


def _pipeline_task(job: PlannedJob, options: CompileOptions, *, cap: int) -> dict[str, Any]:
    task: dict[str, Any] = {"name": job.name}
    if job.needs:
        task["runAfter"] = list(job.needs)
    if job.allow_failure:
        task["onError"] = "continue"
    if job.retries:
        task["retries"] = job.retries
    task["timeout"] = go_duration(_job_timeout(job, options, cap=cap))
    task["params"] = [{"name": name, "value": f"$(params.{name})"} for name, _, _ in EVENT_PARAMS]
    task["workspaces"] = [
        {
            "name": SOURCE_WORKSPACE,
            "workspace": SHARED_WORKSPACE if job.share_workspace else SOURCE_WORKSPACE,
        }
    ]
    task["taskSpec"] = _task_spec(job, options)
    return task


def _task_spec(job: PlannedJob, options: CompileOptions) -> dict[str, Any]:
    labels = {
        f"{LABEL_PREFIX}job": job.name,
        f"{LABEL_PREFIX}spec-job": label_value(job.spec_job),
    }
    ferry_env = {env: f"$(params.{param})" for param, env, _ in EVENT_PARAMS}
    ferry_env |= {
        "CI": "true",
        "FERRY": "true",
        "FERRY_JOB": job.name,
        "FERRY_PIPELINE_RUN": "$(context.pipelineRun.name)",
    }
    task_spec: dict[str, Any] = {
        "metadata": {"labels": labels},
        "params": [{"name": name, "type": "string"} for name, _, _ in EVENT_PARAMS],
        "workspaces": [{"name": SOURCE_WORKSPACE, "mountPath": SOURCE_PATH}],
        # Ferry's own variables reach every step, the clone included, through the template.
        "stepTemplate": {
            "workingDir": SOURCE_PATH,
            "env": _env(ferry_env.items()),
            "securityContext": dict(CONTAINER_SECURITY_CONTEXT),
        },
        "steps": [_clone_step(options)] + [_step(job, step, ferry_env) for step in job.steps],
    }
    if job.services:
        task_spec["sidecars"] = [
            _container(
                name=service.name,
                image=service.image,
                env=_env(service.env.items()),
                command=service.command,
            )
            for service in job.services
        ]
    return task_spec


def _clone_step(options: CompileOptions) -> dict[str, Any]:
    if options.clone_secret is None:
        return {"name": "clone", "image": options.clone_image, "script": _CLONE_SCRIPT}
    secret = {"secretKeyRef": {"name": options.clone_secret, "key": CLONE_TOKEN_KEY}}
    return {
        "name": "clone",
        "image": options.clone_image,
        "env": [{"name": CLONE_TOKEN_ENV, "valueFrom": secret}],
        "script": _CLONE_SCRIPT.replace(_PLAIN_FETCH, _FETCH_WITH_HEADER),
    }


def _step(job: PlannedJob, step: PlannedStep, ferry_env: Mapping[str, str]) -> dict[str, Any]:
    # Ferry's variables describe the run and win a clash; secrets win over plain variables.
    secret_names = {secret.env for secret in job.secrets}
    plain = {
        key: value
        # `env_for` merges the step's own variables in; most steps have none.
        for key, value in (job.env_for(step) if step.env else job.env).items()
        if key not in ferry_env and key not in secret_names
    }
    env = _env(plain.items())
    env += [
        {
            "name": secret.env,
            "valueFrom": {"secretKeyRef": {"name": secret.secret, "key": secret.key}},
        }
        for secret in job.secrets
    ]
    compiled: dict[str, Any] = {"name": step.name, "image": step.image}
    if env:
        compiled["env"] = env
    compiled["script"] = shell_script(step.script)
    return compiled


def _container(
    *, name: str, image: str, env: list[dict[str, Any]], command: tuple[str, ...]
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image}
    if command:
        container["command"] = list(command)
    if env:
        container["env"] = env
    container["securityContext"] = dict(CONTAINER_SECURITY_CONTEXT)
    return container


def _env(items: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"name": name, "value": value} for name, value in items]


def _job_timeout(job: PlannedJob, options: CompileOptions, *, cap: int | None = None) -> int:
    """A job cannot outlive its section of the run: its timeout is cut to `cap`."""
    timeout = job.timeout_seconds or options.default_job_timeout_seconds
    return timeout if cap is None else min(timeout, cap)


class _Timeouts(Struct, frozen=True):
    """Seconds: the run's `spec.timeouts`, and the most each kind of task may be given."""

    pipeline: int
    tasks: int | None = None
    finally_: int | None = None

    def cap(self, job: PlannedJob) -> int:
        section = self.finally_ if job.is_finally else self.tasks
        return self.pipeline if section is None else section

    def as_spec(self) -> dict[str, str]:
        spec = {"pipeline": go_duration(self.pipeline)}
        if self.tasks is not None and self.finally_ is not None:
            spec |= {"tasks": go_duration(self.tasks), "finally": go_duration(self.finally_)}
        return spec


def _timeouts(plan: Plan, options: CompileOptions) -> _Timeouts:
    """`spec.timeouts`, keeping Tekton's rule `pipeline >= tasks + finally`."""

    def budget(job: PlannedJob, cap: int | None) -> int:
        return _job_timeout(job, options, cap=cap) * (job.retries + 1)

    total = plan.timeout_seconds
    finally_budget = max((budget(job, total) for job in plan.finally_jobs), default=0)
    if total is not None:
        # The spec's timeout is the whole run: keep the finally jobs' share out of the DAG's.
        if finally_budget and total > finally_budget:
            return _Timeouts(total, total - finally_budget, finally_budget)
        return _Timeouts(total)
    # The longest chain: jobs are in dependency order, so one pass suffices.
    finish: dict[str, int] = {}
    for job in plan.jobs:
        start = max((finish[need] for need in job.needs), default=0)
        finish[job.name] = start + budget(job, None)
    tasks_budget = max(finish.values(), default=0)
    if not finally_budget:
        return _Timeouts(tasks_budget)
    return _Timeouts(tasks_budget + finally_budget, tasks_budget, finally_budget)


def go_duration(seconds: int) -> str:
    """Seconds as Go's `time.Duration.String()` spells them (`1h30m0s`), as Tekton echoes it."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _workspace_bindings(*, uses_shared: bool, options: CompileOptions) -> list[dict[str, Any]]:
    bindings: list[dict[str, Any]] = [{"name": SOURCE_WORKSPACE, "emptyDir": {}}]
    if uses_shared:
        bindings.append(
            {
                "name": SHARED_WORKSPACE,
                "volumeClaimTemplate": {
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": options.shared_workspace_size}},
                    }
                },
            }
        )
    return bindings


def _run_labels(event: Event, options: CompileOptions) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/managed-by": "ferry",
        f"{LABEL_PREFIX}repository": label_value(event.repository.replace("/", ".")),
        f"{LABEL_PREFIX}event": event.kind.value,
        f"{LABEL_PREFIX}sha": label_value(event.sha),
    }
    if event.branch:
        labels[f"{LABEL_PREFIX}branch"] = label_value(event.branch)
    if event.tag:
        labels[f"{LABEL_PREFIX}tag"] = label_value(event.tag)
    if event.pull_request:
        labels[f"{LABEL_PREFIX}pull-request"] = str(event.pull_request.number)
    labels[f"{LABEL_PREFIX}version"] = label_value(options.ferry_version)
    if options.untrusted:
        labels[UNTRUSTED_LABEL] = "true"
    return {key: value for key, value in labels.items() if value}


def _run_annotations(event: Event, options: CompileOptions) -> dict[str, str]:
    annotations = {
        f"{LABEL_PREFIX}repository": event.repository,
        f"{LABEL_PREFIX}repository-url": event.repository_url,
        f"{LABEL_PREFIX}event": event.kind.value,
        f"{LABEL_PREFIX}sha": event.sha,
        f"{LABEL_PREFIX}ref": event.ref,
    }
    if event.branch:
        annotations[f"{LABEL_PREFIX}branch"] = event.branch
    if event.tag:
        annotations[f"{LABEL_PREFIX}tag"] = event.tag
    if event.pull_request:
        annotations[f"{LABEL_PREFIX}pull-request"] = str(event.pull_request.number)
    if event.happened_at:
        annotations[f"{LABEL_PREFIX}event-time"] = event.happened_at
    annotations[f"{LABEL_PREFIX}version"] = options.ferry_version
    return annotations


def to_yaml(run: Mapping[str, Any]) -> str:
    """Byte-stable YAML for a compiled run: the same dict always gives the same text.

    Block style, multi-line strings as `|` literals, keys in the order they were built: the
    bytes PyYAML's libyaml dumper writes (`pipelines.emitting` says how, and why not PyYAML).
    """
    return dump(run)
