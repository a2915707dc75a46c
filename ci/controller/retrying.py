"""When to try a failed forge call again: backoff as data, the forge's own hints first.

Nothing here sleeps: the queue parks the run and the worker slot goes to other runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from ci.controller.settings import RetrySettings
from ci.forges.errors import ForgeError, is_temporary


@dataclass(frozen=True, slots=True)
class Retry:
    """Try the run again after `delay` seconds."""

    delay: float


def backoff_delay(delays: Sequence[float], attempt: int) -> float:
    """The delay before retry number `attempt` (0-based); the last delay repeats."""
    if not delays:
        return 1.0
    return next(itertools.islice(itertools.chain(delays, itertools.repeat(delays[-1])),
                                 attempt, None))


def retry_for(error: BaseException, *, attempt: int, settings: RetrySettings) -> Retry | None:
    """A `Retry` for a temporary failure (or any non-forge error: the cluster's), None for a
    permanent refusal, which no amount of retrying fixes."""
    if isinstance(error, ForgeError) and not is_temporary(error):
        return None
    delay = backoff_delay(settings.backoff, attempt)
    hinted = error.retry_after if isinstance(error, ForgeError) else None
    if hinted is not None:
        delay = max(delay, min(hinted, settings.max_retry_after))
    return Retry(delay)
