"""Structured logging for every Ferry process: JSON lines in a cluster, readable lines on a TTY.

Secrets never reach logs. Two guards, because either alone is leaky:
- values under keys that name a credential (`token`, `secret`, `password`, `authorization`,
  ...) are replaced before rendering, whatever they hold;
- values registered with `Redactor.add` (webhook secrets, API tokens, run secrets) are masked
  wherever they appear inside any logged string.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from ci.masking import MASK, Masker

# Remote bodies can be megabytes of HTML from a proxy; a log line needs only the start. The
# one length for every remote body or message Ferry quotes (forges' and the API server's).
BODY_EXCERPT_LIMIT = 300


def excerpt(text: str, limit: int = BODY_EXCERPT_LIMIT) -> str:
    """The start of a remote body, fit for an error message or a log line."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return f"{flat[:limit]}... ({len(flat) - limit} more characters)"


# Credential-looking keys: matched as whole words inside snake/kebab-case keys.
_SENSITIVE_KEY = re.compile(
    r"(^|[_-])(token|secret|password|passwd|authorization|api[_-]?key|private[_-]?key|"
    r"signature|cookie)s?($|[_-])",
    re.IGNORECASE,
)


class Redactor:
    """A structlog processor that masks credentials; shared by all loggers of a process."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._masker = Masker(secrets)

    def add(self, secret: str) -> None:
        self._masker.add(secret)

    def mask(self, text: str) -> str:
        """The rule of every place Ferry shows text: `ci.masking`."""
        return self._masker.mask(text)

    def _clean(self, key: str, value: Any) -> Any:
        if _SENSITIVE_KEY.search(key) and value not in (None, "", False):
            return MASK
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            cleaned = [self._clean(key, v) for v in value]
            # A named tuple (a spec's `Position`) cannot be rebuilt from one iterable.
            return cleaned if isinstance(value, list) else tuple(cleaned)
        return value

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            event_dict[key] = self._clean(key, event_dict[key])
        return event_dict


def configure(
    *,
    json: bool | None = None,
    level: str = "info",
    redactor: Redactor | None = None,
    stream: TextIO | None = None,
) -> Redactor:
    """Set up structlog for this process and return the redactor to register secrets with.

    `json=None` picks JSON when the stream is not a terminal (in a pod), readable otherwise.
    """
    out = stream or sys.stderr
    redactor = redactor or Redactor()
    use_json = not out.isatty() if json is None else json
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    return redactor
