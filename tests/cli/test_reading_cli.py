"""`ferry runs`, `ferry logs`, `ferry cancel` without what they need: one clear line, exit 1.
(With a cluster: tests/integration/test_read_api.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.cli import main


def test_no_api_url_says_where_to_give_it(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FERRY_API_URL", raising=False)
    assert main(["runs", "app"]) == 1
    assert capsys.readouterr().err == (
        "ferry runs: where is Ferry's API? Pass --api URL or set FERRY_API_URL (the receiver's"
        " address, e.g. https://ferry.example.com)\n")


def test_no_kubeconfig_is_no_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FERRY_TOKEN", raising=False)
    missing = tmp_path / "nothing"
    assert main(["logs", "run-1", "--api", "https://ferry.example", "--kubeconfig",
                 str(missing)]) == 1
    assert capsys.readouterr().err == (
        f"ferry logs: no cluster: there is no kubeconfig at {missing} (set KUBECONFIG or pass "
        "--kubeconfig)\n")
    assert main(["cancel", "run-1", "--kubeconfig", str(missing)]) == 1
    assert "ferry cancel: no cluster: there is no kubeconfig" in capsys.readouterr().err


def test_an_unreachable_api_is_named(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_TOKEN", "a-token")
    # Port 9 on loopback: nothing listens (discard), the connection is refused at once.
    assert main(["runs", "team/app", "--api", "http://127.0.0.1:9"]) == 1
    assert capsys.readouterr().err.startswith(
        "ferry runs: cannot reach Ferry's API at http://127.0.0.1:9: ")
