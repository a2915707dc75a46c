"""Whether a process the test started (or a step started) is still there, read off /proc."""

from __future__ import annotations

import time
from pathlib import Path


def alive(pid: int) -> bool:
    """Is `pid` a live process? A zombie (ended, not yet reaped by init) counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def dies(pid: int) -> bool:
    """Has `pid` ended, or does it end soon? A killed process closes its files (which is what
    the runner waits for) a moment before it leaves the process table."""
    deadline = time.monotonic() + 10
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
