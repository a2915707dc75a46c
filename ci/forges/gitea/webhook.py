"""Gitea/Forgejo webhook deliveries: detect, verify `X-Gitea-Signature`, parse.

Header and payload facts: ../shared/contracts/gitea/WEBHOOKS.md. Differences from GitHub that
matter here: the signature header has no `sha256=` prefix and signs the JSON even for form
deliveries; push payloads have no created/deleted/forced flags; pull request actions are
`synchronized` (not `synchronize`); a deleted branch sends only a `delete` event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ci.forges.deliveries import Comment, Delivery, Ignored, Parsed, PullRequestClosed
from ci.forges.errors import PayloadError
from ci.forges.payloads import (
    Fields,
    body_digest,
    decode,
    form_payload,
    is_form,
    lower_headers,
    repository_ref,
    require_repository,
)
from ci.forges.refs import is_zero_sha, push_event, pushed_ref
from ci.forges.signatures import check_hmac_sha256, require_secret
from ci.forges.types import DeliveryId, ForgeKind, RepositoryRef
from pipelines.events import Event, EventKind, PullRequest

# Forgejo sends its own headers and Gitea's; a Forgejo header is preferred when both are there.
EVENT_HEADERS = ("x-forgejo-event", "x-gitea-event")
DELIVERY_HEADERS = ("x-forgejo-delivery", "x-gitea-delivery")
SIGNATURE_HEADERS = ("x-forgejo-signature", "x-gitea-signature")
_RUN_ACTIONS = frozenset({"opened", "synchronized", "reopened"})


def _first(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        value = headers.get(name)
        if value:
            return value
    return ""


def detect(headers: Mapping[str, str]) -> bool:
    lowered = lower_headers(headers)
    return any(name in lowered for name in EVENT_HEADERS)


def verify(headers: Mapping[str, str], body: bytes, secret: str | bytes | None) -> None:
    """Check the HMAC-SHA256 of the payload JSON (for a form delivery: of its `payload` field).

    Gitea always sends the header, empty when the hook has no secret; an empty signature is a
    rejection like a missing one.
    """
    key = require_secret(secret)
    lowered = lower_headers(headers)
    message = form_payload(body) if is_form(lowered) else body
    check_hmac_sha256(secret=key, message=message, signature=_first(lowered, SIGNATURE_HEADERS))


def locate(headers: Mapping[str, str], body: bytes) -> RepositoryRef | None:
    """The repository a delivery names, and nothing else: read before the signature is
    checked, only to find the Repository whose secret checks it. Raises `PayloadError`."""
    return repository_ref(decode(lower_headers(headers), body).optional_object("repository"))


def parse(headers: Mapping[str, str], body: bytes) -> Delivery:
    lowered = lower_headers(headers)
    event_name = _first(lowered, EVENT_HEADERS).strip()
    if not event_name:
        raise PayloadError("the X-Gitea-Event header is missing")
    payload = decode(lowered, body)
    repository = repository_ref(payload.optional_object("repository"))
    handler = _HANDLERS.get(event_name)
    parsed = (
        handler(payload, repository)
        if handler
        else Ignored(reason=f"{event_name} events do not start pipelines")
    )
    return Delivery(
        forge=ForgeKind.GITEA,
        delivery_id=DeliveryId(_first(lowered, DELIVERY_HEADERS) or body_digest(body)),
        event_name=event_name,
        parsed=parsed,
        repository=repository,
    )


def _login(user: Fields | None) -> str:
    if user is None:
        return ""
    return user.optional_text("login") or user.optional_text("username") or ""


def _push(payload: Fields, repository: RepositoryRef | None) -> Parsed:
    before = payload.text("before")
    after = payload.text("after")
    pushed = pushed_ref(payload.text("ref"), after)
    if isinstance(pushed, Ignored):
        return pushed
    where = require_repository(repository)
    commits = payload.objects("commits")
    total = payload.optional_integer("total_commits")
    # Gitea lists only the newest commits of a large push; `total_commits` tells (newer Gitea).
    complete = (
        pushed.branch is not None
        and not is_zero_sha(before)
        and (total is None or total <= len(commits))
    )
    # Gitea sends no time of the push itself; the head commit's is the nearest it has.
    head_commit = payload.optional_object("head_commit")
    # An annotated tag's `after` is the tag object; `head_commit` is the commit it points at
    # (for a branch, `after` is that commit).
    peeled = head_commit.optional_text("id") if head_commit and pushed.tag is not None else None
    return push_event(
        pushed, where, sha=peeled or after,
        author=_login(payload.optional_object("sender")) or _login(
            payload.optional_object("pusher")
        ),
        commits=commits, complete=complete,
        happened_at=head_commit.optional_moment("timestamp") if head_commit else None,
        message=head_commit.optional_text("message") if head_commit else None,
    )


def pull_request_event(pull_request: Fields, repository: RepositoryRef) -> Event:
    """The event a pull request's head runs; `issue_comment` payloads carry the same object."""
    number = pull_request.integer("number")
    head = pull_request.object("head")
    base = pull_request.object("base")
    author = _login(pull_request.optional_object("user"))
    return Event(
        kind=EventKind.PULL_REQUEST,
        repository=repository.name,
        repository_url=repository.clone_url,
        sha=head.text("sha"),
        ref=f"refs/pull/{number}/head",
        branch=base.text("ref"),
        pull_request=PullRequest(
            number=number,
            title=pull_request.text("title"),
            head_branch=head.text("ref"),
            base_branch=base.text("ref"),
            author=author,
            from_fork=head.integer("repo_id") != base.integer("repo_id"),
        ),
        author=author,
        happened_at=pull_request.optional_moment("updated_at"),
    )


def _pull_request(payload: Fields, repository: RepositoryRef | None) -> Parsed:
    action = payload.text("action")
    pull_request = payload.object("pull_request")
    if action in _RUN_ACTIONS:
        return pull_request_event(pull_request, require_repository(repository))
    if action == "closed":
        return PullRequestClosed(
            number=pull_request.integer("number"), merged=pull_request.boolean("merged")
        )
    return Ignored(reason=f"pull_request action {action!r} does not start pipelines")


def _issue_comment(payload: Fields, repository: RepositoryRef | None) -> Parsed:
    action = payload.text("action")
    if not payload.boolean("is_pull"):
        return Ignored(reason="comment on an issue, not a pull request")
    if action != "created":
        return Ignored(reason=f"comment {action}, only new comments are commands")
    where = require_repository(repository)
    comment = payload.object("comment")
    issue = payload.object("issue")
    pull_request = payload.optional_object("pull_request")
    return Comment(
        number=issue.integer("number"),
        body=comment.text("body"),
        author=_login(comment.optional_object("user")),
        pull_request=pull_request_event(pull_request, where) if pull_request else None,
    )


def _deleted(payload: Fields, repository: RepositoryRef | None) -> Parsed:
    kind = payload.optional_text("ref_type") or "ref"
    return Ignored(reason=f"{kind} deleted")


_Handler = Callable[[Fields, RepositoryRef | None], Parsed]
_HANDLERS: Mapping[str, _Handler] = {
    "push": _push,
    "pull_request": _pull_request,
    "issue_comment": _issue_comment,
    "delete": _deleted,
}
