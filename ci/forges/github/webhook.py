"""GitHub webhook deliveries: detect from headers, verify `X-Hub-Signature-256`, parse.

Header and payload facts: ../shared/contracts/github/WEBHOOKS.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec.structs

from ci.forges.deliveries import (
    Comment,
    Delivery,
    Ignored,
    Parsed,
    Ping,
    PullRequestClosed,
    Rerun,
)
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
from ci.forges.signatures import check_hmac_sha256, require_secret
from ci.forges.types import DeliveryId, ForgeKind, InstallationId, RepositoryRef
from pipelines.events import Event, EventKind, PullRequest

EVENT_HEADER = "x-github-event"
DELIVERY_HEADER = "x-github-delivery"
SIGNATURE_HEADER = "x-hub-signature-256"
SIGNATURE_PREFIX = "sha256="
# Gitea and Forgejo send GitHub's headers too, for compatibility; their own header wins.
_IMITATORS = ("x-gitea-event", "x-forgejo-event", "x-gogs-event")
# GitHub lists at most this many commits in a push payload; at the cap the list is cut short.
MAXIMUM_PUSH_COMMITS = 2048
_RUN_ACTIONS = frozenset({"opened", "synchronize", "reopened"})


def detect(headers: Mapping[str, str]) -> bool:
    lowered = lower_headers(headers)
    return EVENT_HEADER in lowered and not any(name in lowered for name in _IMITATORS)


def verify(headers: Mapping[str, str], body: bytes, secret: str | bytes | None) -> None:
    """Check the HMAC-SHA256 of the raw body (the raw form body too, in form mode)."""
    key = require_secret(secret)
    signature = lower_headers(headers).get(SIGNATURE_HEADER, "")
    if not signature.startswith(SIGNATURE_PREFIX):
        signature = ""  # the legacy SHA-1 header alone is not accepted
    check_hmac_sha256(
        secret=key, message=body, signature=signature.removeprefix(SIGNATURE_PREFIX)
    )


def locate(headers: Mapping[str, str], body: bytes) -> RepositoryRef | None:
    """The repository a delivery names, and nothing else: read before the signature is
    checked, only to find the Repository whose secret checks it. Raises `PayloadError`."""
    return repository_ref(decode(lower_headers(headers), body).optional_object("repository"))


def parse(headers: Mapping[str, str], body: bytes) -> Delivery:
    lowered = lower_headers(headers)
    event_name = lowered.get(EVENT_HEADER, "").strip()
    if not event_name:
        raise PayloadError("the X-GitHub-Event header is missing")
    payload = decode(lowered, body)
    repository = repository_ref(payload.optional_object("repository"))
    installation = payload.optional_object("installation")
    handler = _HANDLERS.get(event_name)
    parsed = (
        handler(payload, repository)
        if handler
        else Ignored(reason=f"{event_name} events do not start pipelines")
    )
    return Delivery(
        forge=ForgeKind.GITHUB,
        delivery_id=DeliveryId(lowered.get(DELIVERY_HEADER) or body_digest(body)),
        event_name=event_name,
        parsed=parsed,
        repository=repository,
        installation_id=InstallationId(installation.integer("id")) if installation else None,
    )


def _push(payload: Fields, repository: RepositoryRef | None) -> Parsed:
    after = payload.text("after")
    pushed = pushed_ref(payload.text("ref"), after, deleted=payload.boolean("deleted"))
    if isinstance(pushed, Ignored):
        return pushed
    where = require_repository(repository)
    sender = payload.optional_object("sender")
    pusher = payload.optional_object("pusher")
    author = (sender.optional_text("login") if sender else None) or (
        pusher.optional_text("name") if pusher else None
    )
    commits = payload.objects("commits")
    repository_fields = payload.optional_object("repository")
    head_commit = payload.optional_object("head_commit")
    # The push's own time; the head commit's is when it was committed, which a push of an
    # older commit (a reset) would put before the runs it supersedes.
    pushed_at = repository_fields.optional_moment("pushed_at") if repository_fields else None
    happened_at = pushed_at or (
        head_commit.optional_moment("timestamp") if head_commit else None
    )
    # An annotated tag's `after` is the tag object; `head_commit` is the commit it points at
    # (for a branch, `after` is that commit).
    peeled = head_commit.optional_text("id") if head_commit and pushed.tag is not None else None
    # A new branch or a force push lists commits relative to nothing we know, so the changed
    # files would be a guess; None makes `when.paths` run rather than wrongly skip.
    complete = (
        pushed.branch is not None
        and not payload.boolean("created")
        and not payload.boolean("forced")
        and len(commits) < MAXIMUM_PUSH_COMMITS
    )
    return push_event(
        pushed, where, sha=peeled or after, author=author, commits=commits, complete=complete,
        happened_at=happened_at,
        message=head_commit.optional_text("message") if head_commit else None,
    )


def pull_request_event(
    pull_request: Fields, number: int, repository: RepositoryRef
) -> Event:
    """The event a pull request's head runs: from a `pull_request` payload, or from the API's
    pull request (`GET /repos/{owner}/{repo}/pulls/{number}`), which has the same shape."""
    head = pull_request.object("head")
    base = pull_request.object("base")
    head_repository = head.optional_object("repo")  # null once the fork is deleted
    base_repository = base.object("repo")
    from_fork = head_repository is None or (
        head_repository.text("full_name").lower() != base_repository.text("full_name").lower()
    )
    author = pull_request.object("user").text("login")
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
            from_fork=from_fork,
        ),
        author=author,
        happened_at=pull_request.optional_moment("updated_at"),
    )


def _pull_request(payload: Fields, repository: RepositoryRef | None) -> Parsed:
    action = payload.text("action")
    pull_request = payload.object("pull_request")
    number = payload.integer("number")
    if action in _RUN_ACTIONS:
        event = pull_request_event(pull_request, number, require_repository(repository))
        before = payload.optional_text("before") if action == "synchronize" else None
        if before and not is_zero_sha(before) and before != event.sha:
            event = msgspec.structs.replace(event, replaced_sha=before)
        return event
    if action == "closed":
        return PullRequestClosed(number=number, merged=pull_request.boolean("merged"))
    return Ignored(reason=f"pull_request action {action!r} does not start pipelines")


def _issue_comment(payload: Fields, repository: RepositoryRef | None) -> Parsed:
    action = payload.text("action")
    issue = payload.object("issue")
    if not issue.has("pull_request"):
        return Ignored(reason="comment on an issue, not a pull request")
    if action != "created":
        return Ignored(reason=f"comment {action}, only new comments are commands")
    require_repository(repository)
    comment = payload.object("comment")
    return Comment(
        number=issue.integer("number"),
        body=comment.text("body"),
        author=comment.object("user").text("login"),
    )


def _rerun_job(external_id: str) -> tuple[bool, str | None]:
    """Whether a check run's `external_id` is one of Ferry's run reports (`<run uid>/run`)
    or job reports (`<run uid>/job/<name>`, see `ci.controller.summaries`), and the job."""
    _, slash, key = external_id.partition("/")
    if not slash:
        return False, None
    if key == "run":
        return True, None
    kind, _, job = key.partition("/")
    return (True, job) if kind == "job" and job else (False, None)


def _suite_refs(suite: Fields | None) -> tuple[tuple[int, ...], str | None]:
    if suite is None:
        return (), None
    numbers = tuple(entry.integer("number") for entry in suite.objects("pull_requests"))
    return numbers, suite.optional_text("head_branch")


def _check_run(payload: Fields, repository: RepositoryRef | None) -> Parsed:
    """"Re-run" on one check run: GitHub sends it only to the App that created it."""
    action = payload.text("action")
    if action != "rerequested":
        return Ignored(reason=f"check_run {action}: only a re-run request starts pipelines")
    where = require_repository(repository)
    check_run = payload.object("check_run")
    ours, job = _rerun_job(check_run.optional_text("external_id") or "")
    if not ours:
        return Ignored(reason=f"check run {check_run.text('name')!r} is not one of Ferry's")
    numbers, branch = _suite_refs(check_run.optional_object("check_suite"))
    listed = tuple(entry.integer("number") for entry in check_run.objects("pull_requests"))
    sender = payload.optional_object("sender")
    return Rerun(
        source="check_run",
        sha=check_run.text("head_sha"),
        repository_url=where.clone_url,
        requester=(sender.optional_text("login") if sender else None) or "",
        job=job,
        pull_requests=listed or numbers,
        branch=branch,
    )


def _check_suite(payload: Fields, repository: RepositoryRef | None) -> Parsed:
    """"Re-run failed checks" or "Re-run all checks" on the suite of Ferry's check runs
    (`requested` is GitHub's own on a push, which the push event already ran)."""
    action = payload.text("action")
    if action != "rerequested":
        return Ignored(reason=f"check_suite {action}: only a re-run request starts pipelines")
    where = require_repository(repository)
    suite = payload.object("check_suite")
    numbers, branch = _suite_refs(suite)
    sender = payload.optional_object("sender")
    return Rerun(
        source="check_suite",
        sha=suite.text("head_sha"),
        repository_url=where.clone_url,
        requester=(sender.optional_text("login") if sender else None) or "",
        pull_requests=numbers,
        branch=branch,
    )


def _ping(payload: Fields, repository: RepositoryRef | None) -> Parsed:
    return Ping(hook_id=payload.optional_integer("hook_id"))


_Handler = Callable[[Fields, RepositoryRef | None], Parsed]
_HANDLERS: Mapping[str, _Handler] = {
    "push": _push,
    "pull_request": _pull_request,
    "issue_comment": _issue_comment,
    "check_run": _check_run,
    "check_suite": _check_suite,
    "ping": _ping,
}
