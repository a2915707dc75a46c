"""Masking secret values in anything Ferry shows or keeps: logs of its own, step logs in the
archive, check-run tails, the live view and `ferry run`'s output. One rule, here.

A secret is masked in the forms a step can print it without trying hard to leak it:

- the value itself, and stripped of surrounding whitespace (Secrets often end in a newline);
- each line of a multi-line value (a private key printed line by line, or interleaved with
  other output) that is long enough to mask;
- its base64 encodings (standard and URL-safe, padded or not, of the value and of the value
  with a trailing newline, which is what `echo "$TOKEN" | base64` prints);
- its URL encodings (`%XX` and `+` for spaces), as in a URL a step prints or a git remote.

Values shorter than `MIN_MASKED_LENGTH` are not masked: they would blank ordinary words all
over the output. Longer forms are matched first, so a secret that contains another is masked
whole. Masking a stream needs `StreamMasker`, which holds back just enough of the text to see
a secret that a chunk boundary cuts in two.

Standard library only: `ferry run` imports this on its start-up path.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterable

MASK = "***"
# Shorter values would mask ordinary words ("on", "ci") all over the output.
MIN_MASKED_LENGTH = 4


def printed_forms(secret: str) -> set[str]:
    """Every form of `secret` that is masked (see the module's docstring)."""
    values = {secret, secret.strip()}
    values.update(line.strip() for line in secret.splitlines())
    forms: set[str] = set()
    for value in values:
        if len(value) < MIN_MASKED_LENGTH:
            continue
        forms.add(value)
        raw = value.encode()
        for data in (raw, raw + b"\n"):
            for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
                text = encoded.decode("ascii")
                forms.add(text)
                forms.add(text.rstrip("="))
        forms.add(urllib.parse.quote(value, safe=""))
        forms.add(urllib.parse.quote_plus(value, safe=""))
    return {form for form in forms if len(form) >= MIN_MASKED_LENGTH}


class Masker:
    """Masks a set of secrets that may grow (a process learns tokens as it mints them)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._longest = 0
        self._by_first: dict[str, list[str]] = {}  # the forms, by their first character
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        new = printed_forms(secret) - self._forms
        if new:
            self._forms |= new
            self._pattern = None  # compiled again on next use

    @property
    def longest(self) -> int:
        """The length of the longest masked form (0: nothing to mask)."""
        self._compiled()
        return self._longest

    def _compiled(self) -> re.Pattern[str] | None:
        if self._pattern is None and self._forms:
            # Longest first: regex alternation takes the first alternative that matches.
            ordered = sorted(self._forms, key=lambda form: (-len(form), form))
            self._pattern = re.compile("|".join(re.escape(form) for form in ordered))
            self._longest = len(ordered[0])
            by_first: dict[str, list[str]] = {}
            for form in ordered:
                by_first.setdefault(form[0], []).append(form)
            self._by_first = by_first
        return self._pattern

    def unfinished_from(self, text: str) -> int:
        """Where the tail of `text` that could be the start of a masked form begins
        (`len(text)`: none could). Text before it can be given out: nothing that starts
        there can be a secret continued by what comes next."""
        self._compiled()
        end = len(text)
        for start in range(max(0, end - (self._longest - 1)), end):
            for form in self._by_first.get(text[start], ()):
                if len(form) > end - start and text.startswith(form[: end - start], start):
                    return start
        return end

    def mask(self, text: str) -> str:
        pattern = self._compiled()
        return text if pattern is None else pattern.sub(MASK, text)

    def stream(self, *, eager: bool = False) -> StreamMasker:
        return StreamMasker(self, eager=eager)


class StreamMasker:
    """Masks text that arrives in chunks, as if it had arrived whole.

    It keeps back the last `longest - 1` characters of what it has seen (`eager`: only the
    shortest tail that could begin a secret), since a secret may begin there and end in the
    next chunk; `finish` gives out the rest. Either way what it gives out is a prefix of the
    whole text masked. Memory is bounded by the chunk size plus the longest secret form.
    """

    def __init__(self, masker: Masker, *, eager: bool = False) -> None:
        self._masker = masker
        self._eager = eager
        self._pending = ""

    def feed(self, chunk: str) -> str:
        text = self._pending + chunk
        pattern = self._masker._compiled()
        if pattern is None:
            self._pending = ""
            return text
        # Anything starting before `safe` fits in `text` whole, if it is a secret at all.
        # Eager: a secret longer than what is left would need the rest of `text` to begin
        # one, so only such a tail is held back (a live view shows a quiet step's last line
        # at once; it costs a scan of the tail per chunk, which archiving does not pay).
        safe = (self._masker.unfinished_from(text) if self._eager
                else max(0, len(text) - (self._masker.longest - 1)))
        out: list[str] = []
        position = 0
        for match in pattern.finditer(text):
            if match.start() >= safe:
                break
            out.append(text[position : match.start()])
            out.append(MASK)
            position = match.end()
        cut = max(position, safe)
        out.append(text[position:cut])
        self._pending = text[cut:]
        return "".join(out)

    def finish(self) -> str:
        rest, self._pending = self._pending, ""
        return self._masker.mask(rest)
