"""How the simulated kubelet reads the pods Tekton makes (no cluster needed)."""

from __future__ import annotations

import base64

import pytest

from tests.cluster.kubelet import decode_scripts, entrypoint_args, parse_go_duration


def _place_scripts(*scripts: tuple[str, str]) -> str:
    # The shell program Tekton's pkg/pod/script.go writes, for each script.
    return "".join(
        f'scriptfile="{path}"\ntouch ${{scriptfile}} && chmod +x ${{scriptfile}}\n'
        f"cat > ${{scriptfile}} << '_EOF_'\n{base64.b64encode(body.encode()).decode()}\n_EOF_\n"
        f'/tekton/bin/entrypoint decode-script "${{scriptfile}}"\n'
        for path, body in scripts
    )


def test_scripts_are_decoded_from_the_place_scripts_init_container() -> None:
    scripts = {
        "/tekton/scripts/script-0-abcde": "#!/bin/sh\nset -e\necho 'a \"quoted\" $HOME'\n",
        "/tekton/scripts/script-1-fghij": "#!/usr/bin/env python3\nprint(1)",
    }
    pod = {
        "spec": {
            "initContainers": [
                {"name": "prepare", "args": []},
                {"name": "place-scripts", "args": ["-c", _place_scripts(*scripts.items())]},
            ]
        }
    }
    assert decode_scripts(pod) == scripts


def test_entrypoint_flags_and_command_are_separated() -> None:
    container = {
        "args": [
            "-wait_file",
            "/tekton/downward/ready",
            "-wait_file_content",
            "-post_file",
            "/tekton/run/0/out",
            "-on_error",
            "continue",
            "-results",
            "a,b",
            "-entrypoint",
            "/tekton/scripts/script-0-abcde",
            "--",
            "x",
            "--y",
        ]
    }
    flags, command = entrypoint_args(container)
    assert flags["wait_file"] == ["/tekton/downward/ready"]
    assert flags["on_error"] == ["continue"]
    assert flags["results"] == ["a,b"]
    assert command == ["/tekton/scripts/script-0-abcde", "x", "--y"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h0m0s", 3600), ("1m30s", 90), ("300ms", 0.3), ("2h", 7200), ("1.5s", 1.5)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)
