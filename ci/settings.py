"""Ferry's settings: one documented group per component, loaded once and passed explicitly.

Sources, lowest precedence first: the defaults below, an optional config file (YAML, or
TOML by its `.toml` suffix) with one table per group, then environment variables named
`FERRY_<GROUP>_<FIELD>` (`FERRY_WEBHOOKS_PORT=9000`). A value that is a list or a table
(`FERRY_FORGES_BACKOFF_SECONDS=[1, 5, 30]`) is written as JSON.

Adding a component is adding a group: a frozen model below and one field on `Settings`;
the loader finds both without further wiring. The receiver (`ferry serve webhooks`) and the
controller (`ferry serve controller`) read the same file; each uses its own group and shares
`kubernetes`, `logging`.

This is the one home of every default (the plain values that other code needs too are in
`ci.defaults`, which imports nothing, so that `ferry run` does not load pydantic). It imports
no component (import-linter checks it):
each component builds what it runs with from its group (`ci.controller.settings.
controller_settings`, `ci.archive.configured.archive_settings`) or reads the group itself
(`ci.kube` takes `KubernetesSettings` as it is).
"""

from __future__ import annotations

import json
import os
import string
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ci.defaults import DEFAULT_MAX_LOG_BYTES, MAXIMUM_PAYLOAD_BYTES, STEP_PATH
from pipelines.tekton import DEFAULT_CLONE_IMAGE

ENV_PREFIX = "FERRY_"
CONFIG_FILE_ENV = "FERRY_CONFIG"
# The fields `controller.details_url_template` may name.
# `repository` is the forge's "owner/name", `repository_object` the Repository's name, `job`
# the pipeline task (a matrix variant's own; empty on the run's own status).
DETAILS_URL_FIELDS = frozenset({"namespace", "name", "uid", "repository", "repository_object",
                                "sha", "task_run", "job"})


class SettingsError(Exception):
    """The config file or an environment variable is not valid; the message says which."""


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KubernetesSettings(_Group):
    kubeconfig: Path | None = Field(
        default=None,
        description="A kubeconfig file. Unset: the pod's ServiceAccount when in a pod, else "
        "`$KUBECONFIG`; with neither, `ferry serve` runs pipelines on this machine.",
    )
    context: str | None = Field(default=None, description="The kubeconfig context to use.")
    request_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Seconds for one API call. A healthy API server answers in milliseconds; "
        "10 s rides out a leader election without holding a delivery for long.",
    )
    pool_size: int = Field(
        default=32,
        ge=1,
        description="HTTP connections to the API server. The client's default (4) serialises "
        "concurrent deliveries; 32 covers the receiver's worker threads.",
    )
    binding_secret_namespace: str = Field(
        default="ferry-system",
        min_length=1,
        description="Namespace of the Secret holding the key that binds each run to its "
        "Repository and commit (docs/controller.md); Ferry's own, where no team may read. "
        "deploy/ sets the pod's namespace.",
    )
    binding_secret_name: str = Field(
        default="ferry-binding-key",
        min_length=1,
        description="Name of that Secret. Created with a random key by the first component "
        "that finds it absent; deploy/ lets each account `get` only this name.",
    )
    binding_key_ttl_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Seconds the binding key is cached: a rotated key is used within this time.",
    )


class WebhookSettings(_Group):
    host: str = Field(default="0.0.0.0", description="Address to listen on (all, in a pod).")  # noqa: S104
    port: int = Field(default=8080, ge=1, le=65535, description="TCP port to listen on.")
    max_body_bytes: int = Field(
        default=MAXIMUM_PAYLOAD_BYTES,
        ge=1024,
        description="Bytes; larger bodies are refused with 413 while being read. 25 MB is "
        "GitHub's own cap on webhook payloads.",
    )
    request_timeout_seconds: float = Field(
        default=25.0,
        gt=0,
        description="Seconds for one delivery, body included. Under GitHub's 10 s and "
        "GitLab's 10 s delivery timeouts the forge already gave up, but the work is idempotent "
        "and a redelivery completes it; 25 s bounds a slow client or a stuck forge call.",
    )
    delivery_memory: int = Field(
        default=10_000,
        ge=0,
        description="Deliveries whose answer is remembered, so a redelivery is answered "
        "without work. The idempotent run name is the real guard; this only saves calls.",
    )
    delivery_memory_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="Seconds an answer is remembered; forges redeliver within the hour.",
    )
    credentials_ttl_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Seconds a Repository's Secret is cached: a rotated webhook secret is "
        "picked up within this time, and a burst of pushes reads it once.",
    )
    run_name_prefix: str = Field(
        default="", max_length=20, description="Prepended to every PipelineRun name."
    )
    clone_image: str = Field(
        default=DEFAULT_CLONE_IMAGE,
        description="The image of each job's clone step (needs git and a POSIX shell).",
    )
    readiness_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="Seconds a successful API server probe counts for /readyz, so frequent "
        "probes do not each cost an API call.",
    )


class ForgeSettings(_Group):
    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Seconds for one forge API call (read, connect, write). Forges answer "
        "in well under a second; 10 s fails a delivery before the forge's own timeout.",
    )
    connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Seconds to open a connection to a forge."
    )
    max_connections: int = Field(
        default=100,
        ge=1,
        description="Connections to all forges together, shared by every delivery.",
    )
    backoff_seconds: tuple[float, ...] = Field(
        default=(0.5, 2.0),
        description="Delays before retrying a temporary forge failure (5xx, 429, network) "
        "within one delivery; a `Retry-After` longer than the delay wins, up to "
        "`max_retry_after_seconds`. Two quick retries, then the delivery fails and the "
        "forge shows it.",
    )
    max_retry_after_seconds: float = Field(
        default=5.0,
        ge=0,
        description="The longest `Retry-After` a delivery waits for; longer waits fail it.",
    )


class ControllerGroupSettings(_Group):
    """The controller (`ferry serve controller`): PipelineRun statuses back to the forge."""

    namespaces: tuple[str, ...] = Field(
        default=(),
        description="Namespaces to watch (a JSON list in the environment). Empty: all, which "
        "needs deploy/'s cluster-wide list/watch; either way only runs in namespaces holding a "
        "Repository are reported.",
    )
    identity: str = Field(
        default="",
        description="This replica's name in the Lease and in logs. Empty: `<hostname>-<pid>`, "
        "unique without configuration; deploy/ sets the pod's name.",
    )
    details_url_template: str | None = Field(
        default=None,
        description="Link on every status, with {namespace} {name} {uid} {repository} "
        "{repository_object} {sha} {task_run} {job}, e.g. "
        "`https://tekton.example/#/namespaces/{namespace}/pipelineruns/{name}`. Unset: the "
        "web pages' run and job pages if `web.public_url` is set, else no link.",
    )
    context_prefix: str = Field(
        default="ferry",
        min_length=1,
        description="Commit status context and check run name prefix; branch protection rules "
        "match it, so changing it needs the rules changed too.",
    )
    workers: int = Field(
        default=32,
        ge=1,
        description="Runs reported at the same time; more wait in the queue, their events in "
        "order. A report is a few forge calls, so 32 keeps up with hundreds of busy runs.",
    )
    retry_backoff_seconds: tuple[Annotated[float, Field(ge=0)], ...] = Field(
        default=(1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
        min_length=1,
        description="Seconds between retries of a temporary forge failure (5xx, 429, network)."
        " The last delay repeats for as long as the failure lasts: a final status must arrive "
        "even after an hour-long forge outage.",
    )
    max_retry_after_seconds: float = Field(
        default=900.0,
        ge=0,
        description="Seconds; a `Retry-After` or rate-limit reset further away is capped, so a "
        "wrong clock on the forge cannot park a run for a day. GitHub resets hourly at most.",
    )
    leader_election: bool = Field(
        default=True,
        description="Elect one leader with a Lease, so two replicas never both report. Off "
        "only for a single replica outside Kubernetes' supervision.",
    )
    lease_namespace: str = Field(
        default="ferry-system",
        min_length=1,
        description="Namespace of the Lease; deploy/ sets the pod's own namespace.",
    )
    lease_name: str = Field(default="ferry-controller", min_length=1,
                            description="Name of the Lease.")
    lease_duration_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Seconds a lease lasts without renewal; a standby takes over this long "
        "after the leader dies. 15 as Kubernetes' own controllers.",
    )
    lease_renew_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between renewals; well under the duration so one slow API call "
        "loses nothing. Must be less than `lease_duration_seconds`.",
    )
    prune: bool = Field(
        default=True,
        description="Delete finished runs beyond each Repository's `keepRuns`, once their "
        "final status was acknowledged; off keeps every run (etcd grows).",
    )
    admit: bool = Field(
        default=True,
        description="Admit `PipelineRunPending` runs under their concurrency limit; off leaves "
        "held runs pending (for another admitter).",
    )
    schedule_interval_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Seconds between looks at the Repositories' `spec.schedules`: a scheduled "
        "run starts at most this long after its time (cron has a minute's precision).",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="TCP port of the Prometheus endpoint, on all interfaces. Unset: none, so "
        "a developer's run takes no port; deploy/ sets 9090, probed by the kubelet.",
    )
    log_tail_lines: int = Field(
        default=40,
        ge=0,
        description="Lines of a failing step's log shown on its check run: enough for a "
        "stack trace, short enough to read on the pull request.",
    )
    credentials_ttl_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Seconds a Repository's Secret is cached: a rotated token is used within "
        "this time, and a burst of reports reads it once.",
    )
    binding_window_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Seconds a run's binding may be signed before or after the run was created;"
        " a copy of a signed run made later (after the original was deleted) is refused. The "
        "receiver signs just before it creates, so this covers clock skew between its node and "
        "the API server's, with room to spare. The receiver judges a run it finds under its "
        "own name by the same window.",
    )
    forge_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Seconds for one forge call before it counts as failed and is retried. "
        "Longer than the receiver's 10 s: nobody waits on a report, and retrying costs calls.",
    )

    @field_validator("details_url_template")
    @classmethod
    def _known_fields_only(cls, template: str | None) -> str | None:
        # Refused at startup, not at the first report of a run.
        check_details_url_template(template)
        return template

    @field_validator("lease_renew_seconds")
    @classmethod
    def _renewed_before_it_lapses(cls, renew: float, info: ValidationInfo) -> float:
        # Declared after the duration, so a valid duration is in `info.data` by now.
        duration = info.data.get("lease_duration_seconds")
        if duration is not None and renew >= duration:
            raise ValueError(
                f"must be less than lease_duration_seconds ({duration}), or the lease lapses "
                "between renewals"
            )
        return renew


class LoggingSettings(_Group):
    level: str = Field(default="info", pattern="^(?i)(debug|info|warning|error)$",
                       description="The lowest level written.")
    json_lines: bool | None = Field(
        default=None,
        description="JSON lines (true), readable lines (false), or JSON unless on a "
        "terminal (unset).",
    )


class LocalRepository(_Group):
    """A repository `ferry serve` answers without a cluster (no Repository object to read)."""

    forge: str = Field(pattern="^(github|gitea|gitlab)$")
    url: str = Field(description="The web URL the forge sends in webhooks.")
    api_url: str | None = Field(default=None, description="Unset: the forge's default.")
    clone_url: str | None = Field(
        default=None,
        description="Where to fetch commits from. Unset: the clone URL of each delivery.",
    )
    webhook_secret: str = Field(repr=False, min_length=1)
    token: str | None = Field(default=None, repr=False, description="The forge API token.")
    spec_path: str = ".ci.yaml"
    cancel_in_progress: bool = False
    # The values of `ci.kube.repositories.UntrustedPolicy`, as a Repository's spec spells them.
    untrusted_pull_requests: Literal["runWithoutSecrets", "waitForOkToTest"] = (
        "runWithoutSecrets")


class LocalSettings(_Group):
    """The local backend: `ferry serve` with no cluster runs pipelines on this machine."""

    repositories: tuple[LocalRepository, ...] = ()
    state_directory: Path = Field(
        default=Path(".ferry"),
        description="Holds the in-flight run list (runs a restart interrupted are reported "
        "as errors on the next start) and the fetched repositories.",
    )
    parallel_jobs: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Jobs of one run at once; default: the number of cores.",
    )
    secrets: Mapping[str, str] = Field(
        default_factory=dict,
        repr=False,
        description="Values for spec `secrets`, by env name or `secret/key`.",
    )
    engine: Literal["host", "docker", "podman"] = Field(
        default="host",
        description="Where steps run. `host`: on this machine as the server's user, images "
        "ignored; not a sandbox, so untrusted pull requests do not run there (see "
        "`untrusted_on_host`). `docker` or `podman`: each step in its image, with "
        "no-new-privileges, the client found on the server's PATH at start.",
    )
    untrusted_on_host: bool = Field(
        default=False,
        description="Run pull requests from forks or from authors without write access on "
        "the `host` engine, where their code can read whatever the server's user can (this "
        "file, the state directory). Off: they wait for a maintainer's `/ok-to-test` "
        "whatever a repository's `untrusted_pull_requests` says. No effect on other engines.",
    )
    step_path: str = Field(
        default=STEP_PATH,
        min_length=1,
        description="PATH of steps on the `host` engine, which get no variable of the "
        "server's own environment: this PATH, a fresh HOME and TMPDIR per job, LANG "
        "C.UTF-8, then Ferry's, the spec's and the job's secrets.",
    )

    @property
    def holds_untrusted(self) -> bool:
        """Untrusted pull requests wait for `/ok-to-test` here, whatever a repository says."""
        return self.engine == "host" and not self.untrusted_on_host


class ArchiveGroupSettings(_Group):
    """The step-log archive (docs/logs.md): where the controller and `ferry serve`'s local
    backend keep every step's log, masked and gzipped, after its pod or run is gone."""

    store: Literal["none", "directory", "s3"] = Field(
        default="none",
        description="`directory` (deploy/ mounts a PersistentVolumeClaim), `s3` (any "
        "S3-compatible bucket) or `none`: logs live only as long as their pods.",
    )
    directory: Path | None = Field(
        default=None, description="The directory of the `directory` store; deploy/ sets "
        "/var/lib/ferry/logs, the volume's mount.")
    s3_endpoint_url: str = Field(
        default="", description="The `s3` store's endpoint, e.g. "
        "`https://s3.eu-west-1.amazonaws.com` or `http://minio.storage:9000`.")
    s3_bucket: str = Field(default="", description="The bucket (made beforehand).")
    s3_region: str = Field(default="us-east-1", min_length=1,
                           description="The bucket's region; S3-compatible servers ignore it.")
    s3_prefix: str = Field(
        default="", pattern=r"^([a-z0-9][a-z0-9._-]*/)*$",
        description="A folder of the bucket for Ferry's objects, ending in `/` (`ferry/`).")
    s3_access_key_id: str = Field(
        default="", repr=False, description="Empty: boto3's own chain (IRSA, instance "
        "profile, AWS_* variables). deploy/ reads it from a Secret into the environment.")
    s3_secret_access_key: str = Field(default="", repr=False,
                                      description="The access key's secret.")
    max_log_bytes: int = Field(
        default=DEFAULT_MAX_LOG_BYTES, ge=1024,
        description="Bytes of one step's log kept; the rest is cut with a marker line and "
        "the whole size recorded. 50 MB: bigger logs are downloaded, never read.")
    retention_days: float = Field(
        default=90.0, gt=0,
        description="Days a run's logs are kept, and a deleted Repository's logs after its "
        "deletion. 90: long enough to compare with the last release's runs.")
    retention_bytes_per_repository: int | None = Field(
        default=10 * 1024**3, ge=0,
        description="Bytes of compressed logs kept per Repository, newest runs first; unset "
        "(null): no limit. 10 GiB keeps thousands of ordinary runs.")
    retention_interval_seconds: float = Field(
        default=3600.0, gt=0,
        description="Seconds between retention passes (the controller's leader only).")
    workers: int = Field(
        default=8, ge=1,
        description="Step logs archived at once. Each is one API server stream and one core's "
        "share of gzip (60 MB/s); reporting has its own workers and never waits for these.")
    grace_seconds: float = Field(
        default=300.0, ge=0,
        description="Seconds after a run ended before steps that never terminated are "
        "recorded as lost, so its pruning is not held back for ever.")

    @model_validator(mode="after")
    def _store_is_complete(self) -> ArchiveGroupSettings:
        if self.store == "directory" and self.directory is None:
            raise ValueError("the directory store needs `archive.directory`")
        if self.store == "s3" and not (self.s3_endpoint_url and self.s3_bucket):
            raise ValueError("the s3 store needs `archive.s3_endpoint_url` and `archive.s3_bucket`")
        if bool(self.s3_access_key_id) != bool(self.s3_secret_access_key):
            raise ValueError("give both `archive.s3_access_key_id` and "
                             "`archive.s3_secret_access_key`, or neither")
        return self


class SignInProvider(_Group):
    """One forge people sign in with (OAuth2 authorization code flow)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$",
                      description="In URLs (`/ui/signin/NAME`) and on the sign-in button.")
    forge: Literal["github", "gitea", "gitlab"]
    url: str = Field(description="The forge's web address, e.g. `https://github.com`; the "
                     "OAuth2 authorize and token endpoints are under it.")
    api_url: str | None = Field(default=None, description="The forge's API; unset: the "
                                "usual one for `url` (`https://api.github.com` for github.com).")
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1, repr=False)


class WebSettings(_Group):
    """The web pages (`/ui`, docs/ui.md): runs and logs for people who can read the code."""

    public_url: str | None = Field(
        default=None,
        description="Where people reach the receiver, e.g. `https://ferry.example`. Set: the "
        "pages are served, and every status and check run links to its run or job page "
        "(unless `controller.details_url_template` says otherwise).")
    session_key: str = Field(
        default="", repr=False,
        description="Signs the session cookies (32 bytes or more). Every receiver replica needs "
        "the same one; empty: a random key per process, so sessions end at a restart.")
    session_hours: float = Field(default=12.0, gt=0,
                                 description="Hours a sign-in lasts.")
    access_cache_seconds: float = Field(
        default=300.0, ge=0,
        description="Seconds the forge's answer to \"may this person read (write) this "
        "repository\" is kept; a person who loses access loses it here within this time.")
    providers: tuple[SignInProvider, ...] = Field(
        default=(), description="The forges people sign in with; none: only repositories with "
        "`spec.publicLogs` are shown.")


class Settings(_Group):
    kubernetes: KubernetesSettings = KubernetesSettings()
    webhooks: WebhookSettings = WebhookSettings()
    controller: ControllerGroupSettings = ControllerGroupSettings()
    forges: ForgeSettings = ForgeSettings()
    logging: LoggingSettings = LoggingSettings()
    local: LocalSettings = LocalSettings()
    archive: ArchiveGroupSettings = ArchiveGroupSettings()
    web: WebSettings = WebSettings()


def load_settings(
    *,
    environ: Mapping[str, str],
    config_file: Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Settings from defaults, `config_file` (else `$FERRY_CONFIG`), `environ`, then
    `overrides` (command-line flags, by group and field; `None` values are not given)."""
    path = config_file or (Path(environ[CONFIG_FILE_ENV]) if environ.get(CONFIG_FILE_ENV) else None)
    values: dict[str, dict[str, Any]] = _read_file(path) if path is not None else {}
    # Where each value came from, so an error names what the operator has to fix.
    sources: dict[tuple[str, str], str] = {
        (group, name): f"{group}.{name} in {path}"
        for group, table in values.items() for name in table
    }
    for group, group_field in Settings.model_fields.items():
        model = group_field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        for name in model.model_fields:
            variable = f"{ENV_PREFIX}{group}_{name}".upper()
            raw = environ.get(variable)
            if raw is not None:
                values.setdefault(group, {})[name] = _env_value(raw, variable=variable)
                sources[group, name] = variable
    if "kubeconfig" not in values.get("kubernetes", {}) and environ.get("KUBECONFIG"):
        # The first file only: Ferry does not merge kubeconfigs.
        values.setdefault("kubernetes", {})["kubeconfig"] = environ["KUBECONFIG"].split(
            os.pathsep
        )[0]
        sources["kubernetes", "kubeconfig"] = "KUBECONFIG"
    for group, table in (overrides or {}).items():
        for name, value in table.items():
            if value is not None:
                values.setdefault(group, {})[name] = value
                sources[group, name] = f"the command line ({group}.{name})"
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(_problem(detail, sources) for detail in error.errors())
        raise SettingsError(f"invalid settings: {problems}") from error


def _problem(detail: Any, sources: Mapping[tuple[str, str], str]) -> str:
    """One validation error, named by where its value came from."""
    location = tuple(str(part) for part in detail["loc"])
    where = ".".join(location)
    if len(location) >= 2:
        group, name = location[0], location[1]
        where = sources.get((group, name), f"{group}.{name}") + "".join(
            f"[{part}]" for part in location[2:])
    message = str(detail["msg"]).removeprefix("Value error, ")
    value = detail.get("input")
    shown = "" if isinstance(value, dict) else f" (got {str(value)[:80]!r})"
    return f"{where}: {message}{shown}"


def check_details_url_template(template: str | None) -> None:
    """Fail at startup, not at the first report, on a template naming an unknown field."""
    if template is None:
        return
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None and name not in DETAILS_URL_FIELDS:
            raise ValueError(
                f"details URL template names {{{name}}}; known: {sorted(DETAILS_URL_FIELDS)}"
            )


def _read_file(path: Path) -> dict[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise SettingsError(f"cannot read the config file {path}: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SettingsError(f"{path}: expected one table per group (webhooks:, forges:, ...)")
    return {str(key): dict(value) for key, value in data.items()}


def _env_value(raw: str, *, variable: str) -> Any:
    text = raw.strip()
    if text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except ValueError as error:
            raise SettingsError(f"{variable}: not JSON: {text[:80]!r}") from error
    return raw
