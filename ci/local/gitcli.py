"""Git commands as processes, for the `ferry run` path.

`ferry run` asks git a handful of questions (which commit, which branch, which remote) and
clones the commit once. Running `git` directly costs a few milliseconds a command; importing
GitPython first cost more than the whole run of ten steps (about 60 ms of imports on a quiet
machine, `python3 -m bench.local`). Arguments are passed as a list, never through a shell, and
revisions after `--end-of-options`, so a value from the command line is never an option.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


class GitError(Exception):
    """git failed, or is not installed; the message is the last line git printed."""


def git(directory: Path, *args: str) -> str:
    """The standard output of `git -C directory ARGS` (raises `GitError`)."""
    program = shutil.which("git")
    if program is None:
        raise GitError("git is not installed (or not on PATH)")
    try:
        done = subprocess.run(  # noqa: S603 (a list of arguments, no shell)
            [program, "-C", str(directory), *args],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except OSError as error:  # `directory` vanished, or git cannot start
        raise GitError(f"cannot run git: {error.strerror or error}") from error
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise GitError(lines[-1].strip() if lines else f"git {args[0]} failed")
    return done.stdout


def succeeds(directory: Path, *args: str) -> str | None:
    """The output of a git command whose failure is an answer (no remote, detached HEAD)."""
    try:
        return git(directory, *args)
    except GitError:
        return None
