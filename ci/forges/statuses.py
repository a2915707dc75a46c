"""The forge-neutral status of a run, which each provider maps to its own states, and the
newest commit status of a context (or GitHub check run of a name) as a forge lists it back."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ci.forges.errors import UnexpectedResponseError


class Conclusion(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"  # GitLab spells it "canceled"; each provider's table says so
    TIMED_OUT = "timed_out"
    ERROR = "error"  # Ferry or the cluster failed, not the user's code
    SKIPPED = "skipped"  # `when` filtered the run out
    NEUTRAL = "neutral"

    @property
    def final(self) -> bool:
        return self not in _IN_PROGRESS


_IN_PROGRESS = frozenset({Conclusion.QUEUED, Conclusion.RUNNING})


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """One status (commit status or check run) as Ferry wants the forge to show it.

    `context` names the check ("ferry/test"); it is what branch protection rules match, so it
    must stay stable across runs. `title` is the one-line description commit statuses show
    (providers truncate it to their limits); `summary` and `text` are Markdown shown only by
    GitHub check runs. `external_id` lets a GitHub check run be found from Ferry's side.
    """

    conclusion: Conclusion
    context: str
    title: str
    summary: str = ""
    text: str = ""
    details_url: str | None = None
    external_id: str | None = None


def shorten(text: str, limit: int) -> str:
    """Cut `text` to a forge's field limit, marking the cut."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def commit_status_body(
    status: Status,
    *,
    states: Mapping[Conclusion, str],
    description_limit: int,
    context_field: str = "context",
    url_limit: int | None = None,
) -> dict[str, Any]:
    """The request body of a commit status, as all three forges take it: `state` (in the
    forge's words), the context (GitLab calls it `name`), the shortened title, the link."""
    body: dict[str, Any] = {
        "state": states[status.conclusion],
        context_field: status.context,
        "description": shorten(status.title, description_limit),
    }
    if status.details_url:
        body["target_url"] = (shorten(status.details_url, url_limit) if url_limit is not None
                              else status.details_url)
    return body


@dataclass(frozen=True, slots=True, kw_only=True)
class PostedStatus:
    """A commit status in the fields Ferry sets, as the forge shows it (its own state word)."""

    state: str
    description: str
    target_url: str | None  # None when Ferry sends no link

    @classmethod
    def of_body(cls, body: Mapping[str, Any]) -> PostedStatus:
        """How a forge shows the commit status Ferry sends as `body` (its own state word)."""
        return cls(state=body["state"], description=body["description"],
                   target_url=body.get("target_url"))


def _newest(listed: Iterable[object], matches: Callable[[Mapping[str, object]], bool], *,
            what: str) -> tuple[Mapping[str, object], int] | None:
    """The entry with the greatest `id` among those `matches` accepts, and that id.

    Newest is the greatest `id`: GitHub, Gitea and GitLab number statuses and check runs from
    one growing sequence, whereas their listing orders differ (newest first, created-time
    with one-second ties, oldest first) and timestamps tie within a second.
    """
    newest: Mapping[str, object] | None = None
    newest_id = -1
    for entry in listed:
        if not isinstance(entry, Mapping) or not matches(entry):
            continue
        identifier = entry.get("id")
        if not isinstance(identifier, int):
            raise UnexpectedResponseError(f"{what} has no integer `id`")
        if identifier > newest_id:
            newest, newest_id = entry, identifier
    return None if newest is None else (newest, newest_id)


def contexts_of(listed: Iterable[object], *, context_field: str) -> frozenset[str]:
    """The contexts (or check run names) a forge's listing of a commit's statuses holds."""
    return frozenset(
        str(entry[context_field])
        for entry in listed
        if isinstance(entry, Mapping) and isinstance(entry.get(context_field), str)
    )


def newest_status(
    listed: Iterable[object], *, context: str, context_field: str, state_field: str
) -> PostedStatus | None:
    """Of a forge's listing of a commit's statuses, the newest (`_newest`) one of `context`."""
    found = _newest(listed, lambda entry: entry.get(context_field) == context,
                    what=f"commit status of {context!r}")
    if found is None:
        return None
    newest, _ = found
    target_url = newest.get("target_url")
    return PostedStatus(
        state=str(newest.get(state_field, "")),
        description=str(newest.get("description") or ""),
        # Forges answer an unset link as null or as "".
        target_url=str(target_url) if target_url else None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PostedCheckRun:
    """A GitHub check run in the fields Ferry sets, as GitHub lists it."""

    id: int
    status: str
    conclusion: str | None
    title: str
    details_url: str | None


def newest_check_run(
    listed: Iterable[object], *, name: str, external_id: str
) -> PostedCheckRun | None:
    """Of a listing of a commit's check runs, the newest one named `name` that Ferry created
    for `external_id`; newest is the greatest `id`, as for commit statuses.

    The name alone is not enough: every run of a pipeline at a commit (a re-run, a push and a
    pull request of the same commit) reports under the same name, and only `external_id`
    tells Ferry's run and report apart.
    """
    found = _newest(
        listed,
        lambda entry: entry.get("name") == name and entry.get("external_id") == external_id,
        what=f"check run {name!r}",
    )
    if found is None:
        return None
    newest, newest_id = found
    output = newest.get("output")
    title = output.get("title") if isinstance(output, Mapping) else None
    conclusion = newest.get("conclusion")
    details_url = newest.get("details_url")
    return PostedCheckRun(
        id=newest_id,
        status=str(newest.get("status", "")),
        conclusion=str(conclusion) if conclusion else None,
        title=str(title or ""),
        details_url=str(details_url) if details_url else None,
    )
