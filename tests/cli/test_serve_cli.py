"""`ferry serve controller` and its alias `ferry controller` through the real CLI, in a
subprocess: a bad setting stops them before they start, exit 2, naming what to fix; SIGTERM
stops the controller cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# Only a bound for a broken command; refusing a setting takes well under a second.
COMMAND_LIMIT_SECONDS = 60
EXIT_SETTINGS = 2


def _ferry(*args: str, environ: Mapping[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    # Nothing from the developer's shell: only the variables the test names.
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith("FERRY_") and key != "KUBECONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "ci.cli", *args],
        cwd=ROOT, env={**clean, **(environ or {})}, capture_output=True, text=True, check=False,
        timeout=COMMAND_LIMIT_SECONDS,
    )


def test_serve_controller_refuses_a_bad_value_in_the_file(tmp_path: Path) -> None:
    config = tmp_path / "ferry.yaml"
    config.write_text("webhooks:\n  port: 8080\ncontroller:\n  workers: 0\n")
    done = _ferry("serve", "controller", "--config", str(config))
    assert done.returncode == EXIT_SETTINGS
    assert done.stderr.startswith("ferry serve controller: invalid settings: ")
    assert f"controller.workers in {config}: Input should be greater than or equal to 1" in (
        done.stderr)
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "environ", "named"),
    [
        (("serve", "controller"), {"FERRY_CONTROLLER_LEASE_RENEW_SECONDS": "20"},
         "FERRY_CONTROLLER_LEASE_RENEW_SECONDS: must be less than lease_duration_seconds"),
        (("controller", "--workers", "0"), {}, "the command line (controller.workers)"),
        (("controller",), {"FERRY_CONTROLLER_METRICS_PORT": "http"},
         "FERRY_CONTROLLER_METRICS_PORT"),
        (("serve", "controller", "--port", "8080"), {}, "--host and --port are the receiver's"),
    ],
)
def test_bad_settings_exit_2_naming_them(
    args: tuple[str, ...], environ: dict[str, str], named: str
) -> None:
    done = _ferry(*args, environ=environ)
    assert done.returncode == EXIT_SETTINGS, done.stderr
    assert named in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_controller_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """SIGTERM (what Kubernetes sends) is a clean stop, exit 0, even while the controller is
    still waiting for the API server (binding key, Lease); only a lost Lease exits non-zero."""
    with socket.socket() as probe:  # a port nothing listens on: the API server is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "down",
        "clusters": [{"name": "down", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "users": [{"name": "nobody", "user": {"token": "unused"}}],
        "contexts": [{"name": "down", "context": {"cluster": "down", "user": "nobody"}}],
    }))
    log = tmp_path / "controller.log"
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith("FERRY_") and key != "KUBECONFIG"}
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "ci.cli", "serve", "controller"], cwd=ROOT,
            env={**clean, "FERRY_KUBERNETES_KUBECONFIG": str(kubeconfig),
                 "FERRY_KUBERNETES_REQUEST_TIMEOUT_SECONDS": "1"},
            stdout=output, stderr=subprocess.STDOUT,
        )
        try:
            # Its first API call (the binding key, then the Lease) comes after the signal
            # handlers are installed.
            deadline = time.monotonic() + COMMAND_LIMIT_SECONDS
            while "binding key read failed" not in log.read_text() and process.poll() is None:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=COMMAND_LIMIT_SECONDS) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert '"controller stopped"' in log.read_text()
