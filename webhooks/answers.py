"""What the receiver answers a delivery with, in the words the forge's delivery log shows:
the answers of handled deliveries, and the table of refusals (which error is which 4xx or
5xx, with which metrics outcome).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from ci.forges.errors import ForgeError, PayloadError, SignatureError
from ci.kube.errors import ApiRefusedError, ApiUnavailableError, CredentialsError
from webhooks.bodies import BodyTooLargeError

log = structlog.get_logger(__name__)


class DeliveryRejectedError(Exception):
    """A delivery refused with `status_code` and a message for whoever reads the forge's log."""

    def __init__(self, status_code: int, message: str, *, outcome: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.outcome = outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    status_code: int
    body: Mapping[str, Any]
    outcome: str  # the metrics label: created, existing, skipped, ignored, ping, ...
    runs_created: int = 0


def skipped(reason: str, *, outcome: str) -> Answer:
    """202 with why nothing ran: the delivery was handled."""
    return Answer(status_code=202, body={"skipped": reason}, outcome=outcome)


# Refusals other than `DeliveryRejectedError`: (errors, status, metrics outcome, message).
_REFUSALS: tuple[tuple[tuple[type[Exception], ...], int, str, str], ...] = (
    # The message names what is missing or wrong, never the secret itself.
    ((SignatureError, CredentialsError), 401, "unauthorized", "signature rejected"),
    ((PayloadError,), 400, "bad-payload", "bad payload"),
    ((BodyTooLargeError,), 413, "too-large", "body too large"),
    ((ApiUnavailableError,), 503, "unavailable", "the Kubernetes API is unavailable"),
    ((ApiRefusedError,), 502, "kubernetes-refused", "the Kubernetes API refused"),
    ((TimeoutError,), 503, "timeout", "the delivery took too long; it is safe to redeliver"),
)


def answer_for_error(error: Exception, *, quiet: bool = False) -> Answer | None:
    """The answer for a refusal; None for anything else (a bug, which must surface).
    `quiet`: do not log (the caller only wants the answer's words)."""
    if isinstance(error, DeliveryRejectedError):
        return refused(error.status_code, str(error), outcome=error.outcome)
    for kinds, status_code, outcome, what in _REFUSALS:
        if isinstance(error, kinds):
            if not quiet:
                log.warning("delivery refused", outcome=outcome, reason=str(error))
            return refused(status_code, f"{what}: {error}" if str(error) else what, outcome=outcome)
    if isinstance(error, ForgeError):
        # A forge that is down or rate-limits: 503, so the delivery shows as failed and can
        # be redelivered; one that refuses for good (bad token, 404): 502.
        if not quiet:
            log.warning("forge call failed", error=str(error), temporary=error.temporary)
        status_code = 503 if error.temporary else 502
        return refused(status_code, f"the forge's API failed: {error}", outcome="forge-error")
    return None


def refused(status_code: int, message: str, *, outcome: str) -> Answer:
    return Answer(status_code=status_code, body={"error": message}, outcome=outcome)
