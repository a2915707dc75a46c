from __future__ import annotations

import pytest

from pipelines.events import Event, EventKind, PullRequest
from pipelines.filtering import glob_matches, patterns_match, why_not
from pipelines.spec import Patterns, When


def patterns(*given: str) -> Patterns:
    return Patterns(
        include=tuple(p for p in given if not p.startswith("!")),
        exclude=tuple(p[1:] for p in given if p.startswith("!")),
    )


def event(
    kind: EventKind = EventKind.PUSH,
    *,
    branch: str | None = "main",
    tag: str | None = None,
    changed_files: tuple[str, ...] | None = None,
) -> Event:
    pull_request = None
    if kind is EventKind.PULL_REQUEST:
        pull_request = PullRequest(
            number=1, title="t", head_branch="feature", base_branch=branch or "", author="a"
        )
    return Event(
        kind=kind,
        repository="acme/widget",
        repository_url="https://example.invalid/acme/widget.git",
        sha="0" * 40,
        ref="refs/heads/main",
        branch=branch,
        tag=tag,
        pull_request=pull_request,
        changed_files=changed_files,
    )


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("main", "main", True),
        ("main", "mainline", False),
        ("release/*", "release/1.0", True),
        ("release/*", "release/1.0/hotfix", False),
        ("release/**", "release/1.0/hotfix", True),
        ("release/**", "release", False),
        ("*.py", "setup.py", True),
        ("*.py", "src/setup.py", False),
        ("**/*.py", "setup.py", True),
        ("**/*.py", "src/a/b.py", True),
        ("docs/**", "docs/index.md", True),
        ("docs/**", "src/docs/index.md", False),
        ("v?.0", "v1.0", True),
        ("v?.0", "v10.0", False),
        ("a.b", "axb", False),  # `.` is literal, not a regex wildcard
        ("[ab]", "[ab]", True),  # no character classes: brackets are literal
        ("feature-*", "feature-$(curl x)", True),
        ("src/**/test_*.py", "src/test_a.py", True),
        ("src/**/test_*.py", "src/x/y/test_a.py", True),
    ],
)
def test_glob(pattern: str, text: str, expected: bool) -> None:
    assert glob_matches(pattern, text) is expected


@pytest.mark.parametrize(
    ("given", "text", "expected"),
    [
        ((), "anything", True),
        (("main", "release/*"), "release/2", True),
        (("main", "release/*", "!release/old"), "release/old", False),
        (("!dependabot/**",), "dependabot/pip/x", False),
        (("!dependabot/**",), "main", True),
    ],
)
def test_patterns(given: tuple[str, ...], text: str, expected: bool) -> None:
    assert patterns_match(patterns(*given), text) is expected


PUSH_MAIN = event()
PUSH_DEV = event(branch="dev")
TAG_V1 = event(EventKind.TAG, branch=None, tag="v1.0.0")
TAG_RC = event(EventKind.TAG, branch=None, tag="v1.0.0-rc1")
PULL_REQUEST_TO_MAIN = event(EventKind.PULL_REQUEST, branch="main")


@pytest.mark.parametrize(
    ("when", "subject", "reason"),
    [
        (None, PUSH_MAIN, None),
        (When(), PUSH_MAIN, None),
        (When(events=(EventKind.PUSH,)), PUSH_MAIN, None),
        (When(events=(EventKind.TAG,)), PUSH_MAIN, "event `push` is not one of: tag"),
        (When(branch=patterns("main")), PUSH_MAIN, None),
        (When(branch=patterns("main")), PUSH_DEV, "branch `dev` does not match `branch`"),
        # A pull request's branch is its base branch.
        (When(branch=patterns("main")), PULL_REQUEST_TO_MAIN, None),
        # `branch` alone does not run tags; `tag` alone does not run pushes; both run both.
        (When(branch=patterns("main")), TAG_V1,
         "the event has no branch to match `branch` against"),
        (When(tag=patterns("v*")), PUSH_MAIN, "the event has no tag to match `tag` against"),
        (When(branch=patterns("main"), tag=patterns("v*")), TAG_V1, None),
        (When(branch=patterns("main"), tag=patterns("v*")), PUSH_MAIN, None),
        (When(branch=patterns("main"), tag=patterns("v*")), PUSH_DEV,
         "branch `dev` does not match `branch`"),
        (When(tag=patterns("v*", "!*-rc*")), TAG_RC, "tag `v1.0.0-rc1` does not match `tag`"),
        (When(tag=patterns("v*", "!*-rc*")), TAG_V1, None),
    ],
)
def test_events_and_refs(when: When | None, subject: Event, reason: str | None) -> None:
    assert why_not(when, subject) == reason


DOCS_ONLY = When(paths=patterns("docs/**", "!docs/drafts/**"))


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        (None, None),  # unknown: run rather than skip
        (("docs/index.md",), None),
        (("src/a.py", "docs/index.md"), None),
        (("src/a.py",), "none of the 1 changed files match `paths`"),
        (("docs/drafts/x.md",), "none of the 1 changed files match `paths`"),
        ((), "no files changed, and `paths` is set"),
    ],
)
def test_paths(changed: tuple[str, ...] | None, reason: str | None) -> None:
    assert why_not(DOCS_ONLY, event(changed_files=changed)) == reason


def test_every_condition_must_hold() -> None:
    when = When(events=(EventKind.PUSH,), branch=patterns("main"), paths=patterns("src/**"))
    assert why_not(when, event(changed_files=("src/a.py",))) is None
    assert why_not(when, event(changed_files=("README.md",))) is not None
    assert why_not(when, event(EventKind.PULL_REQUEST, changed_files=("src/a.py",))) is not None
