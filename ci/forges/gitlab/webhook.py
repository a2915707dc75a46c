"""GitLab webhook deliveries: detect, verify `X-Gitlab-Token`, parse.

Facts: ../shared/contracts/gitlab/WEBHOOKS.md. GitLab sends the hook's secret token itself,
not a signature, so verifying is a constant-time comparison. The body's `object_kind` says
what happened; the `X-Gitlab-Event` header ("Push Hook", or "System Hook" for the same push
seen by an instance hook) is only recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ci.forges.deliveries import Comment, Delivery, Ignored, Parsed, PullRequestClosed
from ci.forges.errors import PayloadError
from ci.forges.payloads import (
    Fields,
    body_digest,
    decode,
    lower_headers,
    repository_ref,
    require_repository,
)
from ci.forges.refs import is_zero_sha, push_event, pushed_ref
from ci.forges.signatures import check_token, require_secret
from ci.forges.types import DeliveryId, ForgeKind, RepositoryRef
from pipelines.events import Event, EventKind, PullRequest

EVENT_HEADER = "x-gitlab-event"
AUTHENTICATION_HEADER = "x-gitlab-token"
# Idempotency-Key (17.4+) survives retries and "Resend Request"; the event UUID (14.8+) is
# the older per-event id.
DELIVERY_HEADERS = ("idempotency-key", "x-gitlab-event-uuid")
# GitLab lists at most the newest 20 commits; `total_commits_count` has the real number.
_RUN_ACTIONS = frozenset({"open", "reopen"})
_CLOSE_ACTIONS = frozenset({"close", "merge"})


def detect(headers: Mapping[str, str]) -> bool:
    return EVENT_HEADER in lower_headers(headers)


def verify(headers: Mapping[str, str], body: bytes, secret: str | bytes | None) -> None:
    key = require_secret(secret)
    check_token(secret=key, token=lower_headers(headers).get(AUTHENTICATION_HEADER))


def locate(headers: Mapping[str, str], body: bytes) -> RepositoryRef | None:
    """The repository a delivery names, and nothing else: read before the signature is
    checked, only to find the Repository whose secret checks it. Raises `PayloadError`."""
    return _project(decode(lower_headers(headers), body).optional_object("project"))


def parse(headers: Mapping[str, str], body: bytes) -> Delivery:
    lowered = lower_headers(headers)
    event_name = lowered.get(EVENT_HEADER, "").strip()
    if not event_name:
        raise PayloadError("the X-Gitlab-Event header is missing")
    payload = decode(lowered, body)
    object_kind = payload.text("object_kind")
    repository = _project(payload.optional_object("project"))
    handler = _HANDLERS.get(object_kind)
    parsed = (
        handler(payload, repository)
        if handler
        else Ignored(reason=f"{object_kind} events do not start pipelines")
    )
    delivery_id = next((lowered[name] for name in DELIVERY_HEADERS if lowered.get(name)), None)
    return Delivery(
        forge=ForgeKind.GITLAB,
        delivery_id=DeliveryId(delivery_id or body_digest(body)),
        event_name=event_name,
        parsed=parsed,
        repository=repository,
    )


def _project(fields: Fields | None) -> RepositoryRef | None:
    return repository_ref(
        fields, name="path_with_namespace", html_url="web_url", clone_url="git_http_url"
    )


def _require(repository: RepositoryRef | None) -> RepositoryRef:
    return require_repository(repository, field="project")


def _push(payload: Fields, repository: RepositoryRef | None) -> Parsed:
    """Push Hook and Tag Push Hook: the same shape, the ref says which."""
    before = payload.text("before")
    after = payload.text("after")
    pushed = pushed_ref(payload.text("ref"), after)
    if isinstance(pushed, Ignored):
        return pushed
    where = _require(repository)
    commits = payload.objects("commits")
    total = payload.optional_integer("total_commits_count")
    complete = (
        pushed.branch is not None
        and not is_zero_sha(before)
        and (total is None or total <= len(commits))
    )
    # For an annotated tag `after` is the tag object; `checkout_sha` is the commit to build.
    sha = payload.optional_text("checkout_sha") or after
    # Only a username is an author; tag pushes carry just the display name (`user_name`).
    author = payload.optional_text("user_username")
    # GitLab sends no time of the push itself; the built commit's is the nearest it has.
    head = next((commit for commit in commits if commit.optional_text("id") == sha), None)
    return push_event(
        pushed, where, sha=sha, author=author, commits=commits, complete=complete,
        happened_at=head.optional_moment("timestamp") if head else None,
        message=head.optional_text("message") if head else None,
    )


def merge_request_event(
    merge_request: Fields, repository: RepositoryRef, *, actor: Fields | None
) -> Event:
    """The event a merge request's head runs; Note Hooks carry the same object.

    GitLab's merge request payload names its author only by id (`author_id`); `user` is
    whoever triggered the hook: the author on `open`, but a maintainer who reopens,
    rebases or comments on a fork's merge request just as well. So the author's name is
    taken from `actor` only when the ids match, and trust is decided on `author_id`
    (asked of GitLab by id), never on the actor.
    """
    number = merge_request.integer("iid")
    author_id = merge_request.optional_integer("author_id")
    author = ""
    if actor is not None and author_id is not None and actor.optional_integer("id") == author_id:
        author = actor.optional_text("username") or ""
    target_branch = merge_request.text("target_branch")
    last_commit = merge_request.object("last_commit")
    return Event(
        kind=EventKind.PULL_REQUEST,
        repository=repository.name,
        repository_url=repository.clone_url,
        sha=last_commit.text("id"),
        ref=f"refs/merge-requests/{number}/head",
        branch=target_branch,
        pull_request=PullRequest(
            number=number,
            title=merge_request.text("title"),
            head_branch=merge_request.text("source_branch"),
            base_branch=target_branch,
            author=author,
            from_fork=merge_request.integer("source_project_id")
            != merge_request.integer("target_project_id"),
            author_id=author_id,
        ),
        author=author,
        happened_at=merge_request.optional_moment("updated_at"),
        message=last_commit.optional_text("message"),
    )


def _user(payload: Fields) -> str:
    user = payload.optional_object("user")
    return (user.optional_text("username") or "") if user else ""


def _merge_request(payload: Fields, repository: RepositoryRef | None) -> Parsed:
    attributes = payload.object("object_attributes")
    action = attributes.optional_text("action")
    if action is None:
        return Ignored(reason="merge request hook without an action")
    # An `update` fires for title and label edits too; `oldrev` is set only for new commits.
    if action in _RUN_ACTIONS or (action == "update" and attributes.has("oldrev")):
        return merge_request_event(
            attributes, _require(repository), actor=payload.optional_object("user")
        )
    if action in _CLOSE_ACTIONS:
        return PullRequestClosed(number=attributes.integer("iid"), merged=action == "merge")
    if action == "update":
        return Ignored(reason="merge request updated without new commits")
    return Ignored(reason=f"merge request action {action!r} does not start pipelines")


def _note(payload: Fields, repository: RepositoryRef | None) -> Parsed:
    attributes = payload.object("object_attributes")
    if attributes.optional_text("noteable_type") != "MergeRequest":
        return Ignored(reason="comment on something other than a merge request")
    where = _require(repository)
    merge_request = payload.object("merge_request")
    return Comment(
        number=merge_request.integer("iid"),
        body=attributes.text("note"),
        author=_user(payload),
        # The commenter is not the merge request's author: `author_id` is.
        pull_request=merge_request_event(
            merge_request, where, actor=payload.optional_object("user")
        ),
    )


_Handler = Callable[[Fields, RepositoryRef | None], Parsed]
_HANDLERS: Mapping[str, _Handler] = {
    "push": _push,
    "tag_push": _push,
    "merge_request": _merge_request,
    "note": _note,
}
