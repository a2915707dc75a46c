"""Settings: defaults, a config file, then `FERRY_*` variables; bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.kube.repositories import UntrustedPolicy
from ci.settings import MAXIMUM_PAYLOAD_BYTES, Settings, SettingsError, load_settings


def test_defaults_need_nothing() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.webhooks.max_body_bytes == MAXIMUM_PAYLOAD_BYTES
    assert settings.kubernetes.kubeconfig is None


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "ferry.yaml"
    config.write_text(
        "webhooks:\n  port: 9000\n  request_timeout_seconds: 5\n"
        "local:\n  repositories:\n    - {forge: gitea, url: 'https://git.example/a/b', "
        "webhook_secret: s3cret, untrusted_pull_requests: waitForOkToTest}\n"
    )
    settings = load_settings(
        environ={
            "FERRY_CONFIG": str(config),
            "FERRY_WEBHOOKS_PORT": "9100",
            "FERRY_FORGES_BACKOFF_SECONDS": "[1, 2.5]",
            "FERRY_LOGGING_JSON_LINES": "true",
        }
    )
    assert settings.webhooks.port == 9100
    assert settings.webhooks.request_timeout_seconds == 5
    assert settings.forges.backoff_seconds == (1.0, 2.5)
    assert settings.logging.json_lines is True
    [repository] = settings.local.repositories
    policy = UntrustedPolicy(repository.untrusted_pull_requests)
    assert policy is UntrustedPolicy.WAIT_FOR_OK_TO_TEST
    assert "s3cret" not in repr(settings)


def test_toml_files_and_kubeconfig_from_the_usual_variable(tmp_path: Path) -> None:
    config = tmp_path / "ferry.toml"
    config.write_text("[kubernetes]\ncontext = 'staging'\n")
    settings = load_settings(environ={"KUBECONFIG": "/a/config:/b/config"}, config_file=config)
    assert settings.kubernetes.context == "staging"
    assert settings.kubernetes.kubeconfig == Path("/a/config")


@pytest.mark.parametrize(
    "environ",
    [
        {"FERRY_WEBHOOKS_PORT": "eighty"},
        {"FERRY_WEBHOOKS_MAX_BODY_BYTES": "10"},
        {"FERRY_FORGES_BACKOFF_SECONDS": "[1,"},
        {"FERRY_CONFIG": "/does/not/exist.yaml"},
    ],
)
def test_bad_values_are_refused_with_their_name(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        load_settings(environ=environ)


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "ferry.yaml"
    config.write_text("webhooks:\n  prot: 1\n")
    with pytest.raises(SettingsError, match="prot"):
        load_settings(environ={}, config_file=config)
