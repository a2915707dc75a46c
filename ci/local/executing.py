"""Run one step's process: live output line by line, a timeout, and no process left behind.

The process starts in a session (and so a process group) of its own. That group is what
gets stopped: on a timeout or a cancellation, SIGTERM, then SIGKILL after a grace period,
so a `sleep` or a test server started by the script dies with it; and when the script ends,
whatever it left running in the background is killed, as the end of a container kills
every process in it on Tekton. A group of its own also keeps Ctrl-C in the terminal from
reaching steps directly: the runner decides how they stop.

stdout and stderr are one stream, as in a pod's log, so lines keep their order.

Threads, not an event loop (`ferry run` starts faster without asyncio's import): the calling
thread waits on a queue that three things may wake, whichever comes first: the process's
exit (a thread waits for it), the run's `Stop`, and the timeout. Another thread reads the
output as it comes.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from enum import Enum, StrEnum
from typing import IO

from msgspec import Struct

from ci.local.engines import Launch
from ci.local.stopping import Stop

# Long enough for a test runner to write its report, short enough for a Ctrl-C to feel prompt.
DEFAULT_GRACE_SECONDS = 5.0
# Output still held by a process that left the group (a daemon calling setsid) is not
# waited for longer than this after the step ended.
DRAIN_SECONDS = 2.0
READ_SIZE = 64 * 1024
EXIT_CANNOT_START = 127  # what a shell answers for a command it cannot run


class ProcessEnd(StrEnum):
    EXITED = "exited"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class ProcessOutcome(Struct, frozen=True, kw_only=True):
    end: ProcessEnd
    exit_code: int | None = None  # set when EXITED

    @property
    def succeeded(self) -> bool:
        return self.end is ProcessEnd.EXITED and self.exit_code == 0


class _Wake(Enum):
    EXITED = "exited"
    STOPPED = "stopped"


def run_process(
    launch: Launch,
    *,
    on_line: Callable[[str], None],
    timeout_seconds: float | None = None,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    stop: Stop | None = None,
) -> ProcessOutcome:
    """Run `launch` to its end, feeding each output line to `on_line` (from a thread of its
    own, one line at a time, never after this returns).

    Returns TIMED_OUT when `timeout_seconds` passes first, CANCELLED when `stop` is set
    first; either way the process group is stopped before this returns.
    """
    try:
        process = subprocess.Popen(  # noqa: S603 (the engine's argument list, no shell)
            launch.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=launch.directory,
            env=dict(launch.environment),
            start_new_session=True,
        )
    except OSError as error:
        on_line(f"ferry: cannot start the step: {error.strerror or error}")
        return ProcessOutcome(end=ProcessEnd.EXITED, exit_code=EXIT_CANNOT_START)
    assert process.stdout is not None
    output = _Output(process.stdout, on_line)
    wakes: queue.SimpleQueue[_Wake] = queue.SimpleQueue()
    threading.Thread(target=_wait_for_exit, args=(process, wakes), daemon=True,
                     name=f"ferry-step-{process.pid}").start()
    listening = (stop.listening(lambda: wakes.put(_Wake.STOPPED)) if stop is not None
                 else contextlib.nullcontext())
    try:
        with listening:
            end = _first_end(wakes, timeout_seconds)
            if end is not ProcessEnd.EXITED:
                _stop(process, wakes, grace_seconds=grace_seconds)
                return ProcessOutcome(end=end)
            return ProcessOutcome(end=ProcessEnd.EXITED, exit_code=process.returncode)
    finally:
        _signal_group(process.pid, signal.SIGKILL)  # what the script left in the background
        if launch.cleanup:
            _run_quietly(launch.cleanup)
        # The output of a daemon that escaped the group is not waited for longer.
        output.finish(DRAIN_SECONDS)


def _wait_for_exit(process: subprocess.Popen[bytes], wakes: queue.SimpleQueue[_Wake]) -> None:
    # The exit code of the step's own process, as soon as it has ended: not when its output
    # closes, which never happens while something it started in the background holds it.
    process.wait()
    wakes.put(_Wake.EXITED)


def _first_end(wakes: queue.SimpleQueue[_Wake], timeout_seconds: float | None) -> ProcessEnd:
    try:
        wake = wakes.get(timeout=None if timeout_seconds is None else max(0.0, timeout_seconds))
    except queue.Empty:
        return ProcessEnd.TIMED_OUT
    return ProcessEnd.EXITED if wake is _Wake.EXITED else ProcessEnd.CANCELLED


def _stop(process: subprocess.Popen[bytes], wakes: queue.SimpleQueue[_Wake], *,
          grace_seconds: float) -> None:
    """SIGTERM to the whole group, SIGKILL when it has not ended after the grace period."""
    _signal_group(process.pid, signal.SIGTERM)
    if not _exited(wakes, timeout_seconds=grace_seconds):
        _signal_group(process.pid, signal.SIGKILL)
        _exited(wakes, timeout_seconds=None)


def _exited(wakes: queue.SimpleQueue[_Wake], *, timeout_seconds: float | None) -> bool:
    """Has the process ended within the time? (Wake-ups from `Stop`, a second Ctrl-C, are
    passed over without making the wait longer.)"""
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            if wakes.get(timeout=left) is _Wake.EXITED:
                return True
        except queue.Empty:
            return False


def _signal_group(group: int, number: signal.Signals) -> None:
    # The group is gone once all its processes have ended; that is the good case.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, number)


class _Output:
    """Reads a step's output in a thread of its own and hands on whole lines."""

    def __init__(self, stream: IO[bytes], on_line: Callable[[str], None]) -> None:
        self._on_line = on_line
        self._lock = threading.Lock()
        self._open = True
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True,
                                        name="ferry-step-output")
        self._thread.start()

    def finish(self, timeout_seconds: float) -> None:
        """Wait for the end of the output, then pass on no more of it."""
        self._thread.join(timeout_seconds)
        with self._lock:
            self._open = False

    def _read(self, stream: IO[bytes]) -> None:
        # Chunks rather than lines: one line longer than any buffer must not end the step's
        # output.
        descriptor = stream.fileno()
        pending = b""
        try:
            while chunk := os.read(descriptor, READ_SIZE):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._hand_on(line)
            if pending:
                self._hand_on(pending)
        finally:
            stream.close()

    def _hand_on(self, line: bytes) -> None:
        with self._lock:
            if self._open:
                self._on_line(_decode(line))


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r")


def _run_quietly(argv: tuple[str, ...]) -> None:
    with contextlib.suppress(OSError):
        subprocess.run(argv, stdin=subprocess.DEVNULL,  # noqa: S603 (the engine's cleanup)
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
