"""The Kubernetes client's token refresh, throttled (`ci.kube.connecting.throttled`)."""

from __future__ import annotations

from typing import Any

import pytest

from ci.kube.connecting import throttled


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_refresh_runs_on_the_first_call_and_then_once_per_interval() -> None:
    calls: list[Any] = []
    clock = Clock()
    refresh = throttled(calls.append, seconds=10.0, clock=clock)
    configuration = object()
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
    with pytest.raises(OSError, match="unreadable"):
        refresh(None)
    clock.now += 0.1
    refresh(None)  # not throttled: the failed refresh did not count
    assert len(attempts) == 2
