"""Ferry's settings: one documented group per component, loaded once and passed explicitly.

Sources, lowest precedence first: the defaults below, an optional config file (YAML, or
TOML by its `.toml` suffix) with one table per group, then environment variables named
`FERRY_<GROUP>_<FIELD>` (`FERRY_WEBHOOKS_PORT=9000`). A value that is a list or a table
(`FERRY_FORGES_BACKOFF_SECONDS=[1, 5, 30]`) is written as JSON.

Adding a component is adding a group: a frozen model below and one field on `Settings`;
the loader finds both without further wiring.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ci.kube import connecting
from ci.kube.repositories import UntrustedPolicy

ENV_PREFIX = "FERRY_"
CONFIG_FILE_ENV = "FERRY_CONFIG"
# GitHub's documented maximum payload; bigger deliveries are cut by GitHub itself.
MAXIMUM_PAYLOAD_BYTES = 25 * 1024 * 1024


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

    def connection(self) -> connecting.KubernetesSettings:
        return connecting.KubernetesSettings(
            kubeconfig=self.kubeconfig,
            context=self.context,
            request_timeout=self.request_timeout_seconds,
            pool_size=self.pool_size,
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
        default="docker.io/alpine/git:2.45.2",
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
    untrusted_pull_requests: UntrustedPolicy = UntrustedPolicy.RUN_WITHOUT_SECRETS


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


class Settings(_Group):
    kubernetes: KubernetesSettings = KubernetesSettings()
    webhooks: WebhookSettings = WebhookSettings()
    forges: ForgeSettings = ForgeSettings()
    logging: LoggingSettings = LoggingSettings()
    local: LocalSettings = LocalSettings()


def load_settings(
    *, environ: Mapping[str, str], config_file: Path | None = None
) -> Settings:
    """Settings from defaults, `config_file` (else `$FERRY_CONFIG`), then `environ`."""
    path = config_file or (Path(environ[CONFIG_FILE_ENV]) if environ.get(CONFIG_FILE_ENV) else None)
    values: dict[str, dict[str, Any]] = _read_file(path) if path is not None else {}
    for group, group_field in Settings.model_fields.items():
        model = group_field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        for name in model.model_fields:
            raw = environ.get(f"{ENV_PREFIX}{group}_{name}".upper())
            if raw is not None:
                values.setdefault(group, {})[name] = _env_value(raw)
    if "kubeconfig" not in values.get("kubernetes", {}) and environ.get("KUBECONFIG"):
        # The first file only: Ferry does not merge kubeconfigs.
        values.setdefault("kubernetes", {})["kubeconfig"] = environ["KUBECONFIG"].split(
            os.pathsep
        )[0]
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        raise SettingsError(f"invalid settings: {error}") from error


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


def _env_value(raw: str) -> Any:
    text = raw.strip()
    if text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except ValueError as error:
            raise SettingsError(f"not JSON: {text[:80]!r}") from error
    return raw
