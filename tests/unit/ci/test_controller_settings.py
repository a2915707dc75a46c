"""The controller's settings group: the same file and `FERRY_*` variables as the receiver,
mapped to `ControllerSettings`; `ferry controller`'s flags win over both; bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.cli import build_parser
from ci.commands.controller import overrides_from
from ci.controller.settings import ControllerSettings
from ci.settings import (
    ControllerGroupSettings,
    SettingsError,
    controller_settings_from,
    load_settings,
)


def test_defaults_are_the_controllers_own() -> None:
    mapped = controller_settings_from(load_settings(environ={}))
    default = ControllerSettings()
    assert mapped.retry == default.retry
    assert mapped.leader == default.leader
    assert (mapped.namespaces, mapped.identity, mapped.details_url_template) == ((), "", None)
    assert (mapped.context_prefix, mapped.workers, mapped.forge_timeout) == ("ferry", 32, 15.0)
    assert (mapped.log_tail_lines, mapped.credentials_ttl) == (40, 30.0)
    assert (mapped.prune, mapped.admit, mapped.metrics_port) == (True, True, None)
    # Every worker may be in an API call at once, beside the watches and the Lease.
    assert mapped.kubernetes.pool_size == 32 + 8


def test_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "ferry.yaml"
    config.write_text(
        "kubernetes:\n  context: staging\n  request_timeout_seconds: 4\n  pool_size: 100\n"
        "controller:\n"
        "  namespaces: [team-a, team-b]\n"
        "  details_url_template: 'https://dash/#/namespaces/{namespace}/pipelineruns/{name}'\n"
        "  workers: 8\n"
        "  lease_name: from-file\n"
        "  retry_backoff_seconds: [1, 3]\n"
    )
    settings = load_settings(
        environ={
            "FERRY_CONFIG": str(config),
            "FERRY_CONTROLLER_WORKERS": "4",
            "FERRY_CONTROLLER_IDENTITY": "pod-1",
            "FERRY_CONTROLLER_LEASE_NAMESPACE": "ferry-system",
            "FERRY_CONTROLLER_LEASE_DURATION_SECONDS": "6",
            "FERRY_CONTROLLER_LEASE_RENEW_SECONDS": "1",
            "FERRY_CONTROLLER_LEADER_ELECTION": "false",
            "FERRY_CONTROLLER_PRUNE": "false",
            "FERRY_CONTROLLER_ADMIT": "false",
            "FERRY_CONTROLLER_METRICS_PORT": "9090",
            "FERRY_CONTROLLER_MAX_RETRY_AFTER_SECONDS": "60",
            "FERRY_CONTROLLER_LOG_TAIL_LINES": "10",
            "FERRY_CONTROLLER_CREDENTIALS_TTL_SECONDS": "5",
            "FERRY_CONTROLLER_FORGE_TIMEOUT_SECONDS": "3",
            "FERRY_CONTROLLER_CONTEXT_PREFIX": "ci",
        }
    )
    mapped = controller_settings_from(settings)
    assert mapped.namespaces == ("team-a", "team-b")
    assert mapped.details_url_template == "https://dash/#/namespaces/{namespace}/pipelineruns/{name}"
    assert mapped.workers == 4  # the environment wins over the file
    assert mapped.identity == "pod-1"
    assert mapped.context_prefix == "ci"
    assert mapped.forge_timeout == 3.0
    assert (mapped.log_tail_lines, mapped.credentials_ttl) == (10, 5.0)
    assert (mapped.prune, mapped.admit, mapped.metrics_port) == (False, False, 9090)
    assert mapped.retry.backoff == (1.0, 3.0)
    assert mapped.retry.max_retry_after == 60.0
    leader = mapped.leader
    assert (leader.enabled, leader.namespace, leader.name) == (False, "ferry-system", "from-file")
    assert (leader.duration, leader.renew_interval, leader.retry_interval) == (6.0, 1.0, 1.0)
    # The kubernetes group is the receiver's, shared; a pool bigger than the floor is kept.
    assert mapped.kubernetes.context == "staging"
    assert mapped.kubernetes.request_timeout == 4.0
    assert mapped.kubernetes.pool_size == 100


def test_controller_flags_win_over_environment_and_file(tmp_path: Path) -> None:
    config = tmp_path / "ferry.yaml"
    config.write_text("controller:\n  workers: 8\n  lease_name: from-file\n  identity: file\n")
    args = build_parser(only="controller").parse_args([
        "controller", "--config", str(config), "--workers", "2", "--backoff", "0.1, 0.5",
        "--lease-duration", "4", "--lease-renew", "1", "--no-prune", "--namespace", "a",
        "--namespace", "b", "--kubeconfig", "/k/config", "--log-level", "debug",
    ])
    settings = load_settings(
        environ={"FERRY_CONTROLLER_WORKERS": "6", "FERRY_CONTROLLER_IDENTITY": "env"},
        config_file=args.config,
        overrides=overrides_from(args),
    )
    mapped = controller_settings_from(settings)
    assert mapped.workers == 2
    assert mapped.identity == "env"  # no flag: the environment still wins over the file
    assert mapped.leader.name == "from-file"  # neither flag nor variable: the file
    assert mapped.leader.enabled is True  # the flag was not given
    assert (mapped.leader.duration, mapped.leader.renew_interval) == (4.0, 1.0)
    assert mapped.retry.backoff == (0.1, 0.5)
    assert mapped.prune is False
    assert mapped.namespaces == ("a", "b")
    assert mapped.kubernetes.kubeconfig == Path("/k/config")
    assert settings.logging.level == "debug"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"FERRY_CONTROLLER_WORKERS": "0"}, "FERRY_CONTROLLER_WORKERS"),
        ({"FERRY_CONTROLLER_WORKERS": "many"}, "FERRY_CONTROLLER_WORKERS"),
        ({"FERRY_CONTROLLER_METRICS_PORT": "70000"}, "FERRY_CONTROLLER_METRICS_PORT"),
        ({"FERRY_CONTROLLER_LEADER_ELECTION": "perhaps"}, "FERRY_CONTROLLER_LEADER_ELECTION"),
        ({"FERRY_CONTROLLER_RETRY_BACKOFF_SECONDS": "[]"},
         "FERRY_CONTROLLER_RETRY_BACKOFF_SECONDS"),
        ({"FERRY_CONTROLLER_RETRY_BACKOFF_SECONDS": "[1, -5]"},
         "FERRY_CONTROLLER_RETRY_BACKOFF_SECONDS[1]"),
        ({"FERRY_CONTROLLER_NAMESPACES": "[team-a"}, "FERRY_CONTROLLER_NAMESPACES"),
        ({"FERRY_CONTROLLER_LEASE_RENEW_SECONDS": "15"}, "FERRY_CONTROLLER_LEASE_RENEW_SECONDS"),
        ({"FERRY_CONTROLLER_DETAILS_URL_TEMPLATE": "https://dash/{run}"},
         "FERRY_CONTROLLER_DETAILS_URL_TEMPLATE"),
        ({"FERRY_CONTROLLER_FORGE_TIMEOUT_SECONDS": "0"},
         "FERRY_CONTROLLER_FORGE_TIMEOUT_SECONDS"),
    ],
)
def test_bad_values_name_their_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(environ=environ)
    assert f"{named}:" in str(raised.value)


def test_bad_values_in_the_file_name_the_file(tmp_path: Path) -> None:
    config = tmp_path / "ferry.yaml"
    config.write_text("controller:\n  lease_duration_seconds: -1\n  wrokers: 3\n")
    with pytest.raises(SettingsError) as raised:
        load_settings(environ={}, config_file=config)
    message = str(raised.value)
    assert f"controller.lease_duration_seconds in {config}" in message
    assert f"controller.wrokers in {config}" in message  # a typo is refused, not ignored


def test_every_setting_is_described_and_in_the_docs() -> None:
    table = (Path(__file__).resolve().parents[3] / "docs" / "controller.md").read_text()
    for name, field in ControllerGroupSettings.model_fields.items():
        assert field.description, f"controller.{name} says nothing of its unit or default"
        variable = f"FERRY_CONTROLLER_{name.upper()}"
        # Rows that share a prefix write the later names as `_NAME`.
        assert f"`{variable}`" in table or f"`_{name.upper()}`" in table, variable


def test_no_archive_unless_a_store_is_configured() -> None:
    assert controller_settings_from(load_settings(environ={})).archive is None


def test_the_archive_store_from_the_environment_secrets_kept_out_of_repr(tmp_path: Path) -> None:
    config = tmp_path / "ferry.yaml"
    config.write_text("archive:\n  store: s3\n  s3_endpoint_url: http://minio:9000\n"
                      "  s3_bucket: logs\n  retention_days: 30\n")
    settings = load_settings(environ={
        "FERRY_CONFIG": str(config),
        "FERRY_ARCHIVE_S3_ACCESS_KEY_ID": "ferry",
        "FERRY_ARCHIVE_S3_SECRET_ACCESS_KEY": "very-secret-key",
        "FERRY_ARCHIVE_RETENTION_BYTES_PER_REPOSITORY": "1000000",
    })
    archive = controller_settings_from(settings).archive
    assert archive is not None and archive.directory is None and archive.s3 is not None
    assert (archive.s3.endpoint_url, archive.s3.bucket) == ("http://minio:9000", "logs")
    assert (archive.s3.access_key_id, archive.s3.secret_access_key) == ("ferry",
                                                                        "very-secret-key")
    assert archive.retention.max_age_days == 30
    assert archive.retention.max_bytes_per_repository == 1_000_000
    assert "very-secret-key" not in repr(settings) + repr(archive)


@pytest.mark.parametrize(
    ("environ", "problem"),
    [({"FERRY_ARCHIVE_STORE": "directory"}, "needs `archive.directory`"),
     ({"FERRY_ARCHIVE_STORE": "s3", "FERRY_ARCHIVE_S3_BUCKET": "logs"},
      "needs `archive.s3_endpoint_url`"),
     ({"FERRY_ARCHIVE_STORE": "s3", "FERRY_ARCHIVE_S3_BUCKET": "logs",
       "FERRY_ARCHIVE_S3_ENDPOINT_URL": "http://s3", "FERRY_ARCHIVE_S3_ACCESS_KEY_ID": "k"},
      "or neither"),
     ({"FERRY_ARCHIVE_STORE": "tape"}, "FERRY_ARCHIVE_STORE")],
)
def test_an_incomplete_archive_store_is_refused_at_start(environ: dict[str, str],
                                                        problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        load_settings(environ=environ)


def test_a_public_url_links_statuses_to_the_web_pages_unless_a_template_says_otherwise(
) -> None:
    mapped = controller_settings_from(load_settings(
        environ={"FERRY_WEB_PUBLIC_URL": "https://ferry.example"}))
    assert mapped.details_url_template == (
        "https://ferry.example/ui/{namespace}/{repository_object}/runs/{name}")
    assert mapped.job_details_url_template == (
        "https://ferry.example/ui/{namespace}/{repository_object}/runs/{name}/jobs/{job}")
    mine = controller_settings_from(load_settings(environ={
        "FERRY_WEB_PUBLIC_URL": "https://ferry.example",
        "FERRY_CONTROLLER_DETAILS_URL_TEMPLATE": "https://dash/{namespace}/{name}/{job}"}))
    assert mine.details_url_template == "https://dash/{namespace}/{name}/{job}"
    assert mine.job_details_url_template is None
