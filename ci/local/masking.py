"""Masking secret values in a local run's output.

The rule is `ci.logs.Redactor.mask`'s, so a secret looks the same in `ferry run` and in
Ferry's logs; it is repeated here because `ci.logs` brings structlog (and with it `rich`),
which would more than double the start-up time of `ferry run`.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"
# Shorter values would mask ordinary words ("on", "ci") all over the output.
MIN_MASKED_LENGTH = 4


class Masker:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted(
            {secret for secret in secrets if len(secret) >= MIN_MASKED_LENGTH},
            key=len,
            reverse=True,
        )

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text
