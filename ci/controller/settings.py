"""The controller's settings: one documented dataclass, passed explicitly (never read from
globals). `ferry serve controller` builds it from the `controller` group of `ci.settings`
(`ci.settings.controller_settings_from`), the file and variables the receiver reads too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ci.archive.configured import ArchiveSettings
from ci.kube.binding import DEFAULT_WINDOW
from ci.kube.binding_keys import BindingKeySettings
from ci.kube.connecting import KubernetesSettings
from ci.kube.watching import WatchSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrySettings:
    """Retries of forge calls that failed for a temporary reason (5xx, timeouts, 429)."""

    # Seconds between attempts; the last repeats for as long as the failure lasts (a run's
    # final status must arrive even after an hour-long forge outage).
    backoff: Sequence[float] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
    # Seconds; a `Retry-After` or rate-limit reset further away than this is capped, so a
    # wrong clock on the forge cannot park a run for a day.
    max_retry_after: float = 900.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaderSettings:
    """Leader election with a `coordination.k8s.io/v1` Lease: one replica reports."""

    enabled: bool = True
    namespace: str = "ferry-system"
    name: str = "ferry-controller"
    # Seconds a leader's lease lasts without renewal; a standby takes over after this when
    # the leader dies. Kubernetes' own controllers use 15.
    duration: float = 15.0
    # Seconds between renewals; well under `duration` so one slow API call loses nothing.
    renew_interval: float = 5.0
    # Seconds between attempts while another replica leads.
    retry_interval: float = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerSettings:
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    leader: LeaderSettings = field(default_factory=LeaderSettings)
    # Namespaces to watch; empty: all namespaces (cluster-wide RBAC). Either way only runs in
    # namespaces that hold a Repository are reported.
    namespaces: tuple[str, ...] = ()
    # This replica's name in the Lease and in logs; empty: `<hostname>-<pid>`.
    identity: str = ""
    # Link on every status, formatted with {namespace}, {name}, {uid}, {repository},
    # {repository_object}, {sha}, {task_run}, {job}; e.g. "https://tekton.example/#/namespaces/{namespace}/pipelineruns/{name}".
    details_url_template: str | None = None
    # A job's own status links here instead, when set (`web.public_url`: the job's page).
    job_details_url_template: str | None = None
    # Commit status context / check run name prefix; branch protection rules match it.
    context_prefix: str = "ferry"
    # Runs reported at the same time; more runs wait in the queue (their events in order).
    workers: int = 32
    # Seconds for one forge call before it counts as failed (and is retried).
    forge_timeout: float = 15.0
    # Lines of a failing step's log shown on its check run.
    log_tail_lines: int = 40
    # Seconds a Repository's Secret is cached.
    credentials_ttl: float = 30.0
    # Delete finished runs beyond each Repository's `keepRuns`.
    prune: bool = True
    # Admit `PipelineRunPending` runs under their concurrency limit.
    admit: bool = True
    # Seconds between looks at the Repositories' `spec.schedules` (ci/controller/scheduling.py).
    schedule_interval: float = 10.0
    # Port for Prometheus metrics on all interfaces; None: no metrics server.
    metrics_port: int | None = None
    # The Secret with the key that binds runs to their Repository (`ci.kube.binding`).
    binding: BindingKeySettings = field(default_factory=BindingKeySettings)
    # Seconds between a run's creation and its binding's signing time beyond which it is
    # refused (a copy of a signed run, made after the original was deleted).
    binding_window: float = DEFAULT_WINDOW
    # Where step logs are archived when their TaskRuns' steps end; None: not archived
    # (pruning then waits for nothing but the final report).
    archive: ArchiveSettings | None = None
