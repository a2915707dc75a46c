"""Run one step's process: live output line by line, a timeout, and no process left behind.

The process starts in a session (and so a process group) of its own. That group is what
gets stopped: on a timeout or a cancellation, SIGTERM, then SIGKILL after a grace period,
so a `sleep` or a test server started by the script dies with it; and when the script ends,
whatever it left running in the background is killed, as the end of a container kills
every process in it on Tekton. A group of its own also keeps Ctrl-C in the terminal from
reaching steps directly: the runner decides how they stop.

stdout and stderr are one stream, as in a pod's log, so lines keep their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ci.local.engines import Launch

# Long enough for a test runner to write its report, short enough for a Ctrl-C to feel prompt.
DEFAULT_GRACE_SECONDS = 5.0
# Output still held by a process that left the group (a daemon calling setsid) is not
# waited for longer than this after the step ended.
DRAIN_SECONDS = 2.0
READ_SIZE = 64 * 1024
EXIT_POLL_SECONDS = 0.05  # only matters for a script that leaves a process behind
EXIT_CANNOT_START = 127  # what a shell answers for a command it cannot run


class ProcessEnd(StrEnum):
    EXITED = "exited"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessOutcome:
    end: ProcessEnd
    exit_code: int | None = None  # set when EXITED

    @property
    def succeeded(self) -> bool:
        return self.end is ProcessEnd.EXITED and self.exit_code == 0


async def run_process(
    launch: Launch,
    *,
    on_line: Callable[[str], None],
    timeout_seconds: float | None = None,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> ProcessOutcome:
    """Run `launch` to its end, feeding each output line to `on_line`.

    Returns TIMED_OUT when `timeout_seconds` passes first. If the calling task is cancelled,
    the process group is stopped and `CancelledError` propagates (after the cleanup).
    """
    try:
        process = await asyncio.create_subprocess_exec(
            *launch.argv,
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
    reader = asyncio.create_task(_read_lines(process.stdout, on_line))
    try:
        try:
            async with asyncio.timeout(timeout_seconds):
                exit_code = await _exited(process)
        except TimeoutError:
            await _stop(process, grace_seconds=grace_seconds)
            return ProcessOutcome(end=ProcessEnd.TIMED_OUT)
        except asyncio.CancelledError:
            await _stop(process, grace_seconds=grace_seconds)
            raise
        return ProcessOutcome(end=ProcessEnd.EXITED, exit_code=exit_code)
    finally:
        _signal_group(process.pid, signal.SIGKILL)  # what the script left in the background
        if launch.cleanup:
            await _run_quietly(launch.cleanup)
        # On a timeout wait_for cancels the reader: the output of an escaped daemon is lost.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader, DRAIN_SECONDS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), DRAIN_SECONDS)  # closes the transport


async def _exited(process: asyncio.subprocess.Process) -> int:
    """The exit code of the step's own process, as soon as it has ended.

    `Process.wait()` also waits for the output pipe to close, which never happens while
    something the script started in the background holds it; the exit code is known
    earlier, so look at it too (the fast path stays `wait()`, which returns at once when
    the script leaves nothing behind).
    """
    waiter = asyncio.ensure_future(process.wait())
    try:
        while process.returncode is None:
            done, _ = await asyncio.wait({waiter}, timeout=EXIT_POLL_SECONDS)
            if done:
                return waiter.result()
        return process.returncode
    finally:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter


async def _stop(process: asyncio.subprocess.Process, *, grace_seconds: float) -> None:
    """SIGTERM to the whole group, SIGKILL when it has not ended after the grace period."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(process.wait()), grace_seconds)
    except TimeoutError:
        _signal_group(process.pid, signal.SIGKILL)
        await process.wait()


def _signal_group(group: int, number: signal.Signals) -> None:
    # The group is gone once all its processes have ended; that is the good case.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, number)


async def _read_lines(stream: asyncio.StreamReader, on_line: Callable[[str], None]) -> None:
    # Chunks rather than readline(): one line longer than the reader's limit must not end
    # the step's output.
    pending = b""
    while chunk := await stream.read(READ_SIZE):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            on_line(_decode(line))
    if pending:
        on_line(_decode(pending))


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r")


async def _run_quietly(argv: tuple[str, ...]) -> None:
    with contextlib.suppress(OSError):
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await process.wait()
