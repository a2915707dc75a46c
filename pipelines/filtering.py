"""Does a `when` hold for an event? Pure functions that say *why not*, for "nothing runs" messages.

Rules (the same for a pipeline-level and a job-level `when`; every given condition must hold):

- `event`: the event's kind is one of the listed kinds. Empty: any kind.
- `branch` and `tag` together are ONE condition on the event's ref, as in GitHub Actions:
  when either is given, the event must carry a branch matching `branch` or a tag matching
  `tag`. So `branch: main` alone does not run tag events, `tag: v*` alone does not run
  pushes, and `{branch: main, tag: "v*"}` runs both. For a pull request, the branch is the
  base (target) branch (see `Event`).
- `paths`: at least one changed file matches an include pattern and no exclude pattern.
  Unknown changed files (`None`) always hold: we would rather run too much than skip a check.
  A known but empty list does not hold (nothing changed that the filter cares about).
- Patterns with a leading `!` are exclusions (the parser splits them into `Patterns.exclude`).
  A value holds when it matches some include (or there are none) and no exclude.

Glob syntax, written out here rather than borrowed from `fnmatch` (whose `*` crosses `/`):
`*` is any run of characters within one path segment, `?` one character other than `/`,
`**` any run of characters across segments, and `**/` zero or more whole leading segments,
so `**/*.py` matches `setup.py` and `src/a/b.py`. Everything else is literal; there are no
character classes. A pattern matches the whole text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from pipelines.events import Event
from pipelines.spec import Patterns, When


@functools.lru_cache(maxsize=1024)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob (see the module docstring) to a regex matching whole strings."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts), re.DOTALL)


def glob_matches(pattern: str, text: str) -> bool:
    return glob_to_regex(pattern).fullmatch(text) is not None


def patterns_match(patterns: Patterns, text: str) -> bool:
    """`text` matches an include (or there are none) and no exclude."""
    if patterns.include and not any(glob_matches(p, text) for p in patterns.include):
        return False
    return not any(glob_matches(p, text) for p in patterns.exclude)


def any_file_matches(patterns: Patterns, files: Iterable[str]) -> bool:
    return any(patterns_match(patterns, path) for path in files)


def why_not(when: When | None, event: Event) -> str | None:
    """None when `when` holds for `event`; otherwise a sentence saying which condition failed."""
    if when is None:
        return None
    if when.events and event.kind not in when.events:
        kinds = ", ".join(kind.value for kind in when.events)
        return f"event `{event.kind.value}` is not one of: {kinds}"
    reason = _why_not_ref(when, event)
    if reason is not None:
        return reason
    if not when.paths.is_empty and event.changed_files is not None:
        if not event.changed_files:
            return "no files changed, and `paths` is set"
        if not any_file_matches(when.paths, event.changed_files):
            return f"none of the {len(event.changed_files)} changed files match `paths`"
    return None


def _why_not_ref(when: When, event: Event) -> str | None:
    if when.branch.is_empty and when.tag.is_empty:
        return None
    # Pick the filter that concerns this event's ref; the other one does not apply to it.
    if event.branch is not None and not when.branch.is_empty:
        kind, value, patterns = "branch", event.branch, when.branch
    elif event.tag is not None and not when.tag.is_empty:
        kind, value, patterns = "tag", event.tag, when.tag
    else:
        given = "branch" if when.tag.is_empty else "tag"
        return f"the event has no {given} to match `{given}` against"
    if patterns_match(patterns, value):
        return None
    return f"{kind} `{value}` does not match `{kind}`"
