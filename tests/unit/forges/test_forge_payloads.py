"""Every webhook payload in the contracts parses to the delivery it means.

Expectations are built from the payload file itself (the table says *where* each value comes
from), so a wrong field choice in a parser fails here; changed-file lists are spelled out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ci.forges.deliveries import Comment, Ignored, Parsed, Ping, PullRequestClosed, Rerun
from ci.forges.payloads import moment_text
from ci.forges.registry import PROVIDERS, detect_forge
from ci.forges.types import ForgeKind
from pipelines.events import Event, EventKind, PullRequest

from .contracts import headers_for, load, payload_files

Expect = Callable[[Any], Parsed]


def ignored(reason: str) -> Expect:
    return lambda payload: Ignored(reason=reason)


def github_push(*, changed: tuple[str, ...] | None) -> Expect:
    def expect(p: Any) -> Parsed:
        ref = p["ref"]
        tag = ref.startswith("refs/tags/")
        return Event(
            kind=EventKind.TAG if tag else EventKind.PUSH,
            repository=p["repository"]["full_name"],
            repository_url=p["repository"]["clone_url"],
            # The commit: for an annotated tag `after` is the tag object.
            sha=p["head_commit"]["id"] if tag else p["after"],
            ref=ref,
            branch=None if tag else ref.removeprefix("refs/heads/"),
            tag=ref.removeprefix("refs/tags/") if tag else None,
            author=p["sender"]["login"],
            changed_files=changed,
            # The push's own time (Unix seconds), not the head commit's.
            happened_at=moment_text(p["repository"]["pushed_at"]),
            message=p["head_commit"]["message"],
        )

    return expect


def github_pull_request(p: Any) -> Parsed:
    pull = p["pull_request"]
    return Event(
        kind=EventKind.PULL_REQUEST,
        repository=p["repository"]["full_name"],
        repository_url=p["repository"]["clone_url"],
        sha=pull["head"]["sha"],
        ref=f"refs/pull/{p['number']}/head",
        branch=pull["base"]["ref"],
        pull_request=PullRequest(
            number=p["number"],
            title=pull["title"],
            head_branch=pull["head"]["ref"],
            base_branch=pull["base"]["ref"],
            author=pull["user"]["login"],
            from_fork=pull["head"]["repo"]["full_name"] != pull["base"]["repo"]["full_name"],
        ),
        author=pull["user"]["login"],
        happened_at=moment_text(pull["updated_at"]),
        # The head a new push replaced, whose waiting check the receiver completes.
        replaced_sha=p["before"] if p["action"] == "synchronize" else None,
    )


def github_closed(p: Any) -> Parsed:
    return PullRequestClosed(number=p["number"], merged=p["pull_request"]["merged"])


def github_comment(p: Any) -> Parsed:
    return Comment(
        number=p["issue"]["number"], body=p["comment"]["body"], author=p["comment"]["user"]["login"]
    )


def github_suite_rerun(p: Any) -> Parsed:
    suite = p["check_suite"]
    return Rerun(
        source="check_suite",
        sha=suite["head_sha"],
        repository_url=p["repository"]["clone_url"],
        requester=p["sender"]["login"],
        pull_requests=tuple(pull["number"] for pull in suite["pull_requests"]),
        branch=suite["head_branch"],
    )


def github_ping(p: Any) -> Parsed:
    return Ping(hook_id=p["hook_id"])


def gitea_push(*, changed: tuple[str, ...] | None) -> Expect:
    def expect(p: Any) -> Parsed:
        return Event(
            kind=EventKind.PUSH,
            repository=p["repository"]["full_name"],
            repository_url=p["repository"]["clone_url"],
            sha=p["after"],
            ref=p["ref"],
            branch=p["ref"].removeprefix("refs/heads/"),
            author=p["sender"]["login"],
            changed_files=changed,
            # Gitea sends no push time; the head commit's (absent from the 2017 example).
            happened_at=moment_text((p.get("head_commit") or {}).get("timestamp")),
            message=p["head_commit"]["message"] if p.get("head_commit") else None,
        )

    return expect


def gitea_pull_request(p: Any) -> Parsed:
    pull = p["pull_request"]
    return Event(
        kind=EventKind.PULL_REQUEST,
        repository=p["repository"]["full_name"],
        repository_url=p["repository"]["clone_url"],
        sha=pull["head"]["sha"],
        ref=f"refs/pull/{pull['number']}/head",
        branch=pull["base"]["ref"],
        pull_request=PullRequest(
            number=pull["number"],
            title=pull["title"],
            head_branch=pull["head"]["ref"],
            base_branch=pull["base"]["ref"],
            author=pull["user"]["login"],
            from_fork=pull["head"]["repo_id"] != pull["base"]["repo_id"],
        ),
        author=pull["user"]["login"],
        happened_at=moment_text(pull["updated_at"]),
    )


def gitea_closed(p: Any) -> Parsed:
    return PullRequestClosed(number=p["pull_request"]["number"], merged=p["pull_request"]["merged"])


def gitlab_push(*, tag: bool, author: Callable[[Any], str]) -> Expect:
    def expect(p: Any) -> Parsed:
        ref = p["ref"]
        return Event(
            kind=EventKind.TAG if tag else EventKind.PUSH,
            repository=p["project"]["path_with_namespace"],
            repository_url=p["project"]["git_http_url"],
            sha=p["checkout_sha"],
            ref=ref,
            branch=None if tag else ref.removeprefix("refs/heads/"),
            tag=ref.removeprefix("refs/tags/") if tag else None,
            author=author(p),
            # push.json lists 2 of its 4 commits: the changed files are unknown.
            changed_files=None,
            # The built commit's time, when the push lists it (a tag push lists none).
            happened_at=next((moment_text(c["timestamp"]) for c in p["commits"]
                              if c["id"] == p["checkout_sha"]), None),
            message=next(
                (c["message"] for c in p["commits"] if c["id"] == p["checkout_sha"]), None
            ),
        )

    return expect


def gitlab_merge_request(p: Any) -> Parsed:
    attributes = p["object_attributes"]
    # The published hook was triggered by `root` (id 1) on a merge request `author_id` 51
    # wrote: the actor is not the author, so no author name, and trust asks about id 51.
    assert p["user"]["id"] != attributes["author_id"]
    return Event(
        kind=EventKind.PULL_REQUEST,
        repository=p["project"]["path_with_namespace"],
        repository_url=p["project"]["git_http_url"],
        sha=attributes["last_commit"]["id"],
        ref=f"refs/merge-requests/{attributes['iid']}/head",
        branch=attributes["target_branch"],
        pull_request=PullRequest(
            number=attributes["iid"],
            title=attributes["title"],
            head_branch=attributes["source_branch"],
            base_branch=attributes["target_branch"],
            author="",
            from_fork=attributes["source_project_id"] != attributes["target_project_id"],
            author_id=attributes["author_id"],
        ),
        author="",
        happened_at=moment_text(attributes["updated_at"]),
        message=attributes["last_commit"]["message"],
    )


@dataclass(frozen=True)
class Case:
    forge: ForgeKind
    file: str
    expect: Expect


G, T, L = ForgeKind.GITHUB, ForgeKind.GITEA, ForgeKind.GITLAB
NOT_RUN = "events do not start pipelines"

CASES = [
    # Another App's check run (its `external_id` is not Ferry's): not Ferry's to re-run.
    Case(G, "check_run.rerequested.json", ignored("check run 'randscape' is not one of Ferry's")),
    Case(G, "check_suite.rerequested.json", github_suite_rerun),
    Case(G, "installation.created.json", ignored(f"installation {NOT_RUN}")),
    Case(G, "installation.deleted.json", ignored(f"installation {NOT_RUN}")),
    Case(G, "issue_comment.created-on-pull-request.json", github_comment),
    Case(G, "issue_comment.created.json", ignored("comment on an issue, not a pull request")),
    Case(G, "ping.json", github_ping),
    Case(G, "ping.with-app-id.json", github_ping),
    Case(G, "pull_request.closed-merged.json", github_closed),
    Case(G, "pull_request.closed.json", github_closed),
    Case(
        G,
        "pull_request.labeled.json",
        ignored("pull_request action 'labeled' does not start pipelines"),
    ),
    Case(G, "pull_request.opened.json", github_pull_request),
    Case(G, "pull_request.reopened.json", github_pull_request),
    Case(G, "pull_request.synchronize.json", github_pull_request),
    # A new branch: its commit list is not a diff against anything, so unknown.
    Case(G, "push.branch-create-no-username-committer.json", github_push(changed=None)),
    Case(G, "push.branch-create.json", github_push(changed=None)),
    Case(G, "push.branch-delete.json", ignored("branch deleted")),
    Case(
        G,
        "push.commits.json",
        github_push(
            changed=(
                "pipeline/shared/replace_secrets.go",
                "pipeline/shared/replace_secrets_test.go",
            )
        ),
    ),
    Case(G, "push.forced.json", github_push(changed=None)),
    Case(G, "push.tag-create.json", github_push(changed=None)),
    Case(G, "push.tag-delete-with-installation.json", ignored("tag deleted")),
    Case(G, "push.tag-delete.json", ignored("tag deleted")),
    Case(T, "pull_request.closed-merged.json", gitea_closed),
    Case(T, "pull_request.closed.json", gitea_closed),
    Case(
        T,
        "pull_request.label_updated.json",
        ignored("pull_request action 'label_updated' does not start pipelines"),
    ),
    Case(T, "pull_request.opened.json", gitea_pull_request),
    Case(T, "pull_request.reopened.json", gitea_pull_request),
    Case(T, "pull_request.synchronized.json", gitea_pull_request),
    Case(T, "push.branch-create.json", gitea_push(changed=None)),
    # The 2017 docs example has commits without added/modified/removed lists.
    Case(T, "push.docs-example.json", gitea_push(changed=None)),
    Case(T, "push.json", gitea_push(changed=("aa", "aaa"))),
    Case(L, "merge_request.json", gitlab_merge_request),
    Case(L, "push.branch-delete.json", ignored("branch deleted")),
    Case(L, "push.json", gitlab_push(tag=False, author=lambda p: p["user_username"])),
    # A tag push names the pusher only by display name, which is no login.
    Case(L, "tag_push.json", gitlab_push(tag=True, author=lambda p: "")),
    Case(L, "tag_push.tag-delete.json", ignored("tag deleted")),
]


def test_every_contract_payload_has_a_case() -> None:
    covered = {(case.forge, case.file) for case in CASES}
    present = {(forge, path.name) for forge in ForgeKind for path in payload_files(forge)}
    assert present == covered


def _path(case: Case) -> Path:
    return next(path for path in payload_files(case.forge) if path.name == case.file)


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.forge}/{case.file}")
def test_payload_parses_to_its_delivery(case: Case) -> None:
    path = _path(case)
    headers = headers_for(case.forge, path)
    provider = detect_forge(headers)
    assert provider is PROVIDERS[case.forge]

    delivery = provider.parse(headers, path.read_bytes())

    payload = load(path)
    assert delivery.forge is case.forge
    assert delivery.delivery_id == f"delivery-{path.stem}"
    assert delivery.parsed == case.expect(payload)
    if isinstance(delivery.parsed, Event):
        assert delivery.repository is not None
        assert delivery.repository.name == delivery.parsed.repository
        assert delivery.repository.clone_url == delivery.parsed.repository_url
        for name in delivery.parsed.changed_files or ():
            assert name.encode() in path.read_bytes()


@pytest.mark.parametrize(
    "file",
    [
        "push.branch-create.json",
        "pull_request.opened.json",
        "check_run.rerequested.json",
        "push.tag-delete-with-installation.json",
    ],
)
def test_github_installation_id_is_read_from_the_payload(file: str) -> None:
    path = CONTRACT_GITHUB / file
    delivery = PROVIDERS[G].parse(headers_for(G, path), path.read_bytes())
    assert delivery.installation_id == load(path)["installation"]["id"]


CONTRACT_GITHUB = payload_files(G)[0].parent
