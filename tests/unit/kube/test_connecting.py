"""The Kubernetes client's token refresh, throttled (`ci.kube.connecting.throttled`)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client import configuration as configuration_module

from ci.kube.connecting import api_client, throttled
from ci.settings import KubernetesSettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_refresh_runs_on_the_first_call_and_then_once_per_interval() -> None:
    calls: list[Any] = []
    clock = Clock()
    refresh = throttled(calls.append, seconds=10.0, clock=clock)
    configuration = SimpleNamespace(refresh_api_key_hook=None)
    refresh(configuration)
    assert calls == [configuration]  # the first request has fresh credentials
    for _ in range(50):
        clock.now += 0.1  # 50 requests within five seconds
        refresh(configuration)
    assert len(calls) == 1
    clock.now = 110.0  # ten seconds after the first refresh
    refresh(configuration)
    assert len(calls) == 2


def test_a_failed_refresh_is_tried_again_on_the_next_call() -> None:
    attempts: list[float] = []
    clock = Clock()

    def failing(configuration: Any) -> None:
        attempts.append(clock.now)
        if len(attempts) == 1:
            raise OSError("token file unreadable")

    refresh = throttled(failing, seconds=10.0, clock=clock)
    configuration = SimpleNamespace(refresh_api_key_hook=None)
    with pytest.raises(OSError, match="unreadable"):
        refresh(configuration)
    clock.now += 0.1
    refresh(configuration)  # not throttled: the failed refresh did not count
    assert len(attempts) == 2


def test_the_throttle_stays_in_place_when_the_clients_loader_installs_its_hook_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a real kubeconfig and the client's own loader, whose refresh installs its hook
    again each time: a hundred calls refresh the token (and read the proxies) once."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "test", "user": {"token": "secret-token"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    client = api_client(KubernetesSettings(kubeconfig=kubeconfig))
    try:
        configuration = client.configuration
        proxy_reads: list[int] = []
        real = configuration_module.getproxies
        monkeypatch.setattr(configuration_module, "getproxies",
                            lambda: proxy_reads.append(1) or real())
        hook = configuration.refresh_api_key_hook
        for _ in range(100):
            assert configuration.get_api_key_with_prefix("BearerToken") == "Bearer secret-token"
        assert configuration.refresh_api_key_hook is hook
        assert len(proxy_reads) == 1
    finally:
        client.close()
