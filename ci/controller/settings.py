"""The controller's settings: one documented dataclass, passed explicitly (never read from
globals). `ferry serve controller` builds it with `controller_settings` from the `controller`
group of `ci.settings` (the file and variables the receiver reads too), which holds every
default and says why; the dataclasses here have none of their own, so the two cannot drift."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ci.archive.configured import ArchiveSettings, archive_settings
from ci.controller.summaries import web_page_templates
from ci.kube.watching import WatchSettings
from ci.settings import KubernetesSettings, Settings

# API connections the controller needs beyond one per worker: its three watches and the Lease.
CONTROLLER_SPARE_CONNECTIONS = 8
# Seconds between a standby's attempts at the Lease, at most (Kubernetes' own: 2).
LEASE_RETRY_SECONDS = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrySettings:
    """Retries of forge calls that failed for a temporary reason (5xx, timeouts, 429)."""

    # Seconds between attempts; the last repeats for as long as the failure lasts.
    backoff: Sequence[float]
    # Seconds; a `Retry-After` or rate-limit reset further away than this is capped.
    max_retry_after: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaderSettings:
    """Leader election with a `coordination.k8s.io/v1` Lease: one replica reports."""

    enabled: bool
    namespace: str
    name: str
    # Seconds a leader's lease lasts without renewal; a standby takes over after this.
    duration: float
    # Seconds between renewals.
    renew_interval: float
    # Seconds between attempts while another replica leads.
    retry_interval: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerSettings:
    # The shared `kubernetes` group (its pool raised to the workers' needs); also where the
    # binding key's Secret is.
    kubernetes: KubernetesSettings
    retry: RetrySettings
    leader: LeaderSettings
    # Namespaces to watch; empty: all namespaces (cluster-wide RBAC).
    namespaces: tuple[str, ...]
    # This replica's name in the Lease and in logs; empty: `<hostname>-<pid>`.
    identity: str
    # Link on every status (`ci.settings.DETAILS_URL_FIELDS`); None: no link.
    details_url_template: str | None
    # A job's own status links here instead, when set (`web.public_url`: the job's page).
    job_details_url_template: str | None
    # Commit status context / check run name prefix; branch protection rules match it.
    context_prefix: str
    # Runs reported at the same time; more runs wait in the queue (their events in order).
    workers: int
    # Seconds for one forge call before it counts as failed (and is retried).
    forge_timeout: float
    # Lines of a failing step's log shown on its check run.
    log_tail_lines: int
    # Seconds a Repository's Secret is cached.
    credentials_ttl: float
    # Delete finished runs beyond each Repository's `keepRuns`.
    prune: bool
    # Admit `PipelineRunPending` runs under their concurrency limit.
    admit: bool
    # Seconds between looks at the Repositories' `spec.schedules` (ci/controller/scheduling.py).
    schedule_interval: float
    # Port for Prometheus metrics on all interfaces; None: no metrics server.
    metrics_port: int | None
    # Seconds between a run's creation and its binding's signing time beyond which it is
    # refused (a copy of a signed run, made after the original was deleted).
    binding_window: float
    # Where step logs are archived when their TaskRuns' steps end; None: not archived
    # (pruning then waits for nothing but the final report).
    archive: ArchiveSettings | None
    # Not an operator's setting: the watch loop's own timeouts and backoff.
    watch: WatchSettings = field(default_factory=WatchSettings)


def controller_settings(settings: Settings) -> ControllerSettings:
    """What `ferry serve controller` runs with: the controller group, with the shared
    `kubernetes` and `archive` groups. Pure: validation happened when `settings` was loaded."""
    controller = settings.controller
    # Links: the configured template; else, with a public URL, the web pages' run and job.
    run_page, job_page = controller.details_url_template, None
    if run_page is None and settings.web.public_url:
        run_page, job_page = web_page_templates(settings.web.public_url)
    # Every worker may be in an API call at once, beside the watches and the Lease; a smaller
    # pool would serialise them, so the shared pool size is a floor here, not a cap.
    pool_size = max(settings.kubernetes.pool_size,
                    controller.workers + CONTROLLER_SPARE_CONNECTIONS)
    return ControllerSettings(
        kubernetes=settings.kubernetes.model_copy(update={"pool_size": pool_size}),
        retry=RetrySettings(
            backoff=controller.retry_backoff_seconds,
            max_retry_after=controller.max_retry_after_seconds,
        ),
        leader=LeaderSettings(
            enabled=controller.leader_election,
            namespace=controller.lease_namespace,
            name=controller.lease_name,
            duration=controller.lease_duration_seconds,
            renew_interval=controller.lease_renew_seconds,
            # A standby retries often enough to take over soon after the lease lapses, and
            # never less often than the leader renews.
            retry_interval=min(LEASE_RETRY_SECONDS, controller.lease_renew_seconds),
        ),
        namespaces=controller.namespaces,
        identity=controller.identity,
        details_url_template=run_page,
        job_details_url_template=job_page,
        context_prefix=controller.context_prefix,
        workers=controller.workers,
        forge_timeout=controller.forge_timeout_seconds,
        log_tail_lines=controller.log_tail_lines,
        credentials_ttl=controller.credentials_ttl_seconds,
        prune=controller.prune,
        admit=controller.admit,
        schedule_interval=controller.schedule_interval_seconds,
        metrics_port=controller.metrics_port,
        binding_window=controller.binding_window_seconds,
        archive=archive_settings(settings.archive),
    )
