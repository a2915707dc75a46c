"""`run_process` on real processes; timeouts are short, and no assertion measures time."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

from ci.local.engines import Launch
from ci.local.executing import EXIT_CANNOT_START, ProcessEnd, run_process
from ci.local.stopping import Stop
from tests.pids import dies


def _run(script: str, tmp_path: Path, *, timeout: float | None = None):
    lines: list[str] = []
    launch = Launch(argv=("bash", "-c", script), environment={"PATH": "/usr/bin:/bin"},
                    directory=tmp_path)
    outcome = run_process(launch, on_line=lines.append, timeout_seconds=timeout, grace_seconds=1)
    return outcome, lines


def test_lines_of_stdout_and_stderr_arrive_in_order_with_the_exit_code(tmp_path: Path) -> None:
    outcome, lines = _run("echo one; echo two >&2; printf 'no newline'; exit 3", tmp_path)
    assert outcome.end is ProcessEnd.EXITED
    assert outcome.exit_code == 3
    assert not outcome.succeeded
    assert lines == ["one", "two", "no newline"]


def test_a_line_longer_than_the_read_size_is_kept_whole(tmp_path: Path) -> None:
    outcome, lines = _run("head -c 200000 /dev/zero | tr '\\0' x; echo; echo after", tmp_path)
    assert outcome.succeeded
    assert lines == ["x" * 200_000, "after"]


def test_a_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    outcome, _ = _run(f"sleep 300 & echo $! > {pid_file}; wait", tmp_path, timeout=0.5)
    assert outcome.end is ProcessEnd.TIMED_OUT
    assert dies(int(pid_file.read_text()))


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    outcome, _ = _run("trap '' TERM; sleep 300 & wait; sleep 300", tmp_path, timeout=0.5)
    assert outcome.end is ProcessEnd.TIMED_OUT


def test_background_processes_die_when_the_step_ends(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    outcome, _ = _run(f"sleep 300 >/dev/null & echo $! > {pid_file}", tmp_path)
    assert outcome.succeeded
    assert dies(int(pid_file.read_text()))


def test_a_stop_ends_the_step_cancelled_and_kills_the_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    launch = Launch(argv=("bash", "-c", f"sleep 300 & echo $! > {pid_file}; wait"),
                    environment={"PATH": "/usr/bin:/bin"}, directory=tmp_path)
    stop = Stop()

    def press_ctrl_c() -> None:
        while not pid_file.exists() or not pid_file.read_text().strip():
            time.sleep(0.02)
        stop.set()

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    outcome = run_process(launch, on_line=lambda line: None, stop=stop, grace_seconds=1)
    presser.join()
    assert outcome.end is ProcessEnd.CANCELLED
    assert dies(int(pid_file.read_text()))


def test_a_stop_set_before_the_start_ends_the_step_at_once(tmp_path: Path) -> None:
    stop = Stop()
    stop.set()
    launch = Launch(argv=("sleep", "300"), environment={"PATH": "/usr/bin:/bin"},
                    directory=tmp_path)
    assert run_process(launch, on_line=lambda line: None, stop=stop).end is ProcessEnd.CANCELLED


def test_the_exit_is_seen_while_an_escaped_daemon_holds_the_output(tmp_path: Path) -> None:
    # The script ends; a daemon it started in a session of its own keeps the pipe open.
    pid_file = tmp_path / "pid"
    try:
        outcome, lines = _run(f"echo before; setsid sleep 300 & echo $! > {pid_file}; "
                              "echo after; exit 4", tmp_path)
    finally:
        with contextlib.suppress(ProcessLookupError, ValueError, FileNotFoundError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert outcome.exit_code == 4
    assert lines == ["before", "after"]


def test_a_command_that_cannot_start_is_exit_127(tmp_path: Path) -> None:
    lines: list[str] = []
    launch = Launch(argv=(str(tmp_path / "missing"),), environment={}, directory=tmp_path)
    outcome = run_process(launch, on_line=lines.append)
    assert outcome.exit_code == EXIT_CANNOT_START
    assert lines[0].startswith("ferry: cannot start the step")


def test_ctrl_c_pressed_again_and_again_does_not_stretch_the_grace_period(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    launch = Launch(argv=("bash", "-c", f"trap '' TERM; echo $$ > {pid_file}; sleep 300"),
                    environment={"PATH": "/usr/bin:/bin"}, directory=tmp_path)
    stop = Stop()
    ended = threading.Event()

    def keep_pressing() -> None:  # every 20 ms, far more often than the grace period
        while not pid_file.exists() or not pid_file.read_text().strip():
            time.sleep(0.02)
        while not ended.wait(0.02):
            stop.set()

    presser = threading.Thread(target=keep_pressing, daemon=True)
    presser.start()
    outcomes = []
    runner = threading.Thread(target=lambda: outcomes.append(
        run_process(launch, on_line=lambda line: None, stop=stop, grace_seconds=0.5)))
    runner.start()
    runner.join(60)  # without a deadline each press would restart the grace period
    ended.set()
    assert outcomes and outcomes[0].end is ProcessEnd.CANCELLED
    assert dies(int(pid_file.read_text()))
