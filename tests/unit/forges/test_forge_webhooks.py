"""Detecting, verifying and parsing deliveries beyond the contract payload table."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import urllib.parse
from typing import Any

import pytest

from ci.forges.deliveries import Comment, Ignored, PullRequestClosed
from ci.forges.errors import PayloadError, SignatureError
from ci.forges.registry import PROVIDERS, detect_forge, provider_for
from ci.forges.types import ForgeKind
from pipelines.events import Event, EventKind

from .contracts import CONTRACTS, headers_for, load, payload_files

G, T, L = ForgeKind.GITHUB, ForgeKind.GITEA, ForgeKind.GITLAB
SECRET = "It's a Secret to Everybody"


def contract(forge: ForgeKind, name: str) -> tuple[dict[str, str], bytes]:
    path = CONTRACTS / forge.value / "webhooks" / name
    return headers_for(forge, path), path.read_bytes()


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# Detection


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-GitHub-Event": "push"}, G),
        ({"x-github-event": "push"}, G),
        ({"X-Gitea-Event": "push", "X-GitHub-Event": "push", "X-Gogs-Event": "push"}, T),
        ({"X-Forgejo-Event": "push", "X-GitHub-Event": "push"}, T),
        ({"X-Gitlab-Event": "Push Hook"}, L),
        ({"User-Agent": "curl/8"}, None),
        ({"X-Gogs-Event": "push"}, None),
    ],
)
def test_forge_is_detected_from_headers_alone(
    headers: dict[str, str], expected: ForgeKind | None
) -> None:
    provider = detect_forge(headers)
    assert (provider.kind if provider else None) == expected
    # Exactly one provider claims a delivery, so the registry order never matters.
    assert sum(p.detect(headers) for p in PROVIDERS.values()) == (expected is not None)


def test_provider_for_names_in_repository_objects() -> None:
    assert provider_for("gitlab") is PROVIDERS[L]
    with pytest.raises(ValueError, match="bitbucket"):
        provider_for("bitbucket")


@pytest.mark.parametrize(
    ("forge", "url", "api"),
    [
        (G, "https://github.com/o/r", "https://api.github.com"),
        (G, "https://ghe.example.com/o/r", "https://ghe.example.com/api/v3"),
        (T, "https://codeberg.org/o/r.git", "https://codeberg.org/api/v1"),
        (L, "https://gitlab.example.com/group/sub/r", "https://gitlab.example.com/api/v4"),
    ],
)
def test_default_api_urls(forge: ForgeKind, url: str, api: str) -> None:
    assert PROVIDERS[forge].default_api_url(url) == api


# Signatures


def test_github_documented_test_vector() -> None:
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    PROVIDERS[G].verify({"X-Hub-Signature-256": signature}, b"Hello, World!", SECRET)
    with pytest.raises(SignatureError):
        PROVIDERS[G].verify({"X-Hub-Signature-256": signature}, b"Hello, World?", SECRET)


def _signed_headers(forge: ForgeKind, body: bytes, secret: str) -> dict[str, str]:
    if forge is G:
        return {"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={sign(body, secret)}"}
    if forge is T:
        return {"X-Gitea-Event": "push", "X-Gitea-Signature": sign(body, secret)}
    return {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret}


@pytest.mark.parametrize("forge", list(ForgeKind))
def test_every_payload_verifies_with_its_secret_and_only_that(forge: ForgeKind) -> None:
    provider = PROVIDERS[forge]
    for path in payload_files(forge):
        body = path.read_bytes()
        headers = _signed_headers(forge, body, SECRET)
        provider.verify(headers, body, SECRET)
        provider.verify(headers, body, SECRET.encode())
        with pytest.raises(SignatureError):
            provider.verify(headers, body, "another secret")
        with pytest.raises(SignatureError, match="no webhook secret"):
            provider.verify(headers, body, None)
        with pytest.raises(SignatureError, match="no webhook secret"):
            provider.verify(headers, body, "")
        if forge is not L:  # a GitLab token does not depend on the body
            with pytest.raises(SignatureError):
                provider.verify(headers, body + b" ", SECRET)


@pytest.mark.parametrize(
    ("forge", "headers"),
    [
        (G, {}),
        (G, {"X-Hub-Signature-256": ""}),
        (G, {"X-Hub-Signature-256": "sha256="}),
        (G, {"X-Hub-Signature": "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6"}),
        (G, {"X-Hub-Signature-256": "sha256=zz\u00e9"}),
        # Gitea sends an empty signature when the hook has no secret.
        (T, {"X-Gitea-Signature": ""}),
        (T, {"X-Hub-Signature-256": "sha256=" + "0" * 64}),
        (L, {}),
        (L, {"X-Gitlab-Token": ""}),
        (L, {"X-Gitlab-Token": SECRET + "x"}),
    ],
)
def test_missing_or_wrong_signatures_are_rejected(
    forge: ForgeKind, headers: dict[str, str]
) -> None:
    with pytest.raises(SignatureError):
        PROVIDERS[forge].verify(headers, b"{}", SECRET)


def test_forgejo_signature_header_is_preferred() -> None:
    body = b'{"ref": "refs/heads/main"}'
    headers = {"X-Forgejo-Signature": sign(body), "X-Gitea-Signature": "stale"}
    PROVIDERS[T].verify(headers, body, SECRET)


def _form(body: bytes) -> bytes:
    return urllib.parse.urlencode({"payload": body.decode()}).encode()


def test_github_form_delivery_signs_the_raw_form_body() -> None:
    headers, body = contract(G, "push.commits.json")
    form = _form(body)
    headers = {
        **headers,
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Hub-Signature-256": f"sha256={sign(form)}",
    }
    PROVIDERS[G].verify(headers, form, SECRET)
    assert PROVIDERS[G].parse(headers, form) == PROVIDERS[G].parse(
        headers_for(G, CONTRACTS / "github/webhooks/push.commits.json"), body
    )


def test_gitea_form_delivery_signs_the_json_inside() -> None:
    headers, body = contract(T, "push.json")
    form = _form(body)
    headers = {
        **headers,
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "X-Gitea-Signature": sign(body),
    }
    PROVIDERS[T].verify(headers, form, SECRET)
    parsed = PROVIDERS[T].parse(headers, form).parsed
    assert isinstance(parsed, Event)
    assert parsed.sha == load(CONTRACTS / "gitea/webhooks/push.json")["after"]


# Bad bodies


@pytest.mark.parametrize("forge", list(ForgeKind))
def test_truncated_payloads_are_payload_errors(forge: ForgeKind) -> None:
    for path in payload_files(forge):
        headers, body = headers_for(forge, path), path.read_bytes()
        for cut in (0, 1, len(body) // 2, len(body) - 2):
            with pytest.raises(PayloadError):
                PROVIDERS[forge].parse(headers, body[:cut])


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\x00garbage", b"[1, 2]", b"null", b'"text"', b"{" * 100_000, b"payload=%7B"],
)
@pytest.mark.parametrize("forge", list(ForgeKind))
def test_garbage_bodies_are_payload_errors(forge: ForgeKind, body: bytes) -> None:
    headers = headers_for(forge, payload_files(forge)[0])
    with pytest.raises(PayloadError):
        PROVIDERS[forge].parse(headers, body)


@pytest.mark.parametrize("forge", list(ForgeKind))
def test_missing_event_header_is_a_payload_error(forge: ForgeKind) -> None:
    with pytest.raises(PayloadError, match="header is missing"):
        PROVIDERS[forge].parse({}, payload_files(forge)[0].read_bytes())


@pytest.mark.parametrize(
    ("forge", "file", "path", "value", "message"),
    [
        (G, "push.commits.json", ["ref"], 5, "`ref`: expected a string, got int"),
        (G, "push.commits.json", ["repository"], None, "`repository` is missing"),
        (G, "push.commits.json", ["commits", 0, "added"], "x", "`commits[0].added`: expected"),
        (G, "pull_request.opened.json", ["number"], True, "`number`: expected an integer"),
        (G, "pull_request.opened.json", ["pull_request", "head"], [], "`pull_request.head`"),
        (T, "push.json", ["commits"], {}, "`commits`: expected a list, got an object"),
        (T, "pull_request.opened.json", ["pull_request", "base", "repo_id"], "1", "repo_id"),
        (L, "merge_request.json", ["object_attributes", "iid"], None, "`object_attributes.iid`"),
        (L, "push.json", ["object_kind"], None, "`object_kind` is missing"),
    ],
)
def test_wrong_fields_name_the_field(
    forge: ForgeKind, file: str, path: list[Any], value: object, message: str
) -> None:
    headers, body = contract(forge, file)
    payload = json.loads(body)
    target = payload
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    with pytest.raises(PayloadError, match=message.replace("[", r"\[").replace("]", r"\]")):
        PROVIDERS[forge].parse(headers, json.dumps(payload).encode())


# Shapes the contract files do not show


def _gitlab_merge_request(action: str, **attributes: object) -> tuple[dict[str, str], bytes]:
    headers, body = contract(L, "merge_request.json")
    payload = json.loads(body)
    payload["object_attributes"]["action"] = action
    payload["object_attributes"].update(attributes)
    return headers, json.dumps(payload).encode()


def test_gitlab_merge_request_actions() -> None:
    parse = PROVIDERS[L].parse
    assert isinstance(parse(*_gitlab_merge_request("reopen")).parsed, Event)
    pushed = parse(*_gitlab_merge_request("update", oldrev="a" * 40)).parsed
    assert isinstance(pushed, Event)
    assert pushed.kind is EventKind.PULL_REQUEST
    assert parse(*_gitlab_merge_request("update")).parsed == Ignored(
        reason="merge request updated without new commits"
    )
    assert parse(*_gitlab_merge_request("close")).parsed == PullRequestClosed(
        number=1, merged=False
    )
    assert parse(*_gitlab_merge_request("merge")).parsed == PullRequestClosed(number=1, merged=True)
    fork = parse(*_gitlab_merge_request("open", source_project_id=99)).parsed
    assert isinstance(fork, Event)
    assert fork.pull_request is not None
    assert fork.pull_request.from_fork


def test_gitlab_note_on_a_merge_request_is_a_comment() -> None:
    _, body = contract(L, "merge_request.json")
    merge_request = json.loads(body)
    note = {
        "object_kind": "note",
        "event_type": "note",
        "user": {"username": "maintainer"},
        "project": merge_request["project"],
        "object_attributes": {"note": "/ok-to-test\nthanks", "noteable_type": "MergeRequest"},
        "merge_request": merge_request["object_attributes"],
    }
    parsed = PROVIDERS[L].parse({"X-Gitlab-Event": "Note Hook"}, json.dumps(note).encode()).parsed
    assert isinstance(parsed, Comment)
    assert (parsed.number, parsed.author, parsed.command) == (1, "maintainer", "/ok-to-test")
    assert parsed.pull_request is not None
    assert parsed.pull_request.sha == merge_request["object_attributes"]["last_commit"]["id"]
    # The commenter is not the merge request's author.
    assert parsed.pull_request.author == ""
    note["object_attributes"]["noteable_type"] = "Issue"
    assert isinstance(
        PROVIDERS[L].parse({"X-Gitlab-Event": "Note Hook"}, json.dumps(note).encode()).parsed,
        Ignored,
    )


def test_gitea_comment_on_a_pull_request_carries_the_pull_request() -> None:
    _, body = contract(T, "pull_request.synchronized.json")
    source = json.loads(body)
    payload = {
        "action": "created",
        "is_pull": True,
        "issue": {"number": source["number"]},
        "pull_request": source["pull_request"],
        "comment": {"body": "/retest", "user": {"login": "reviewer"}},
        "repository": source["repository"],
        "sender": {"login": "reviewer"},
    }
    headers = {"X-Gitea-Event": "issue_comment", "X-Gitea-Event-Type": "pull_request_comment"}
    parsed = PROVIDERS[T].parse(headers, json.dumps(payload).encode()).parsed
    assert isinstance(parsed, Comment)
    assert parsed.command == "/retest"
    assert parsed.pull_request is not None
    assert parsed.pull_request.sha == source["pull_request"]["head"]["sha"]
    payload["is_pull"] = False
    assert isinstance(PROVIDERS[T].parse(headers, json.dumps(payload).encode()).parsed, Ignored)


def test_gitea_delete_event_and_tag_deletion_are_ignored() -> None:
    headers = {"X-Gitea-Event": "delete"}
    body = json.dumps({"ref": "feature", "ref_type": "branch", "pusher_type": "user"}).encode()
    assert PROVIDERS[T].parse(headers, body).parsed == Ignored(reason="branch deleted")
    _, push = contract(T, "push.json")
    payload = json.loads(push)
    payload.update(ref="refs/tags/v1", after="0" * 40, commits=[])
    deleted = PROVIDERS[T].parse({"X-Gitea-Event": "push"}, json.dumps(payload).encode())
    assert deleted.parsed == Ignored(reason="tag deleted")


def test_github_fork_pull_request_and_deleted_fork() -> None:
    headers, body = contract(G, "pull_request.opened.json")
    payload = json.loads(body)
    payload["pull_request"]["head"]["repo"]["full_name"] = "someone/Hello-World"
    parsed = PROVIDERS[G].parse(headers, json.dumps(payload).encode()).parsed
    assert isinstance(parsed, Event)
    assert parsed.pull_request is not None
    assert parsed.pull_request.from_fork
    payload["pull_request"]["head"]["repo"] = None
    parsed = PROVIDERS[G].parse(headers, json.dumps(payload).encode()).parsed
    assert isinstance(parsed, Event)
    assert parsed.pull_request is not None
    assert parsed.pull_request.from_fork


def test_github_push_with_the_maximum_commit_list_has_unknown_changed_files() -> None:
    headers, body = contract(G, "push.commits.json")
    payload = json.loads(body)
    payload["commits"] = [copy.deepcopy(payload["commits"][0]) for _ in range(2048)]
    parsed = PROVIDERS[G].parse(headers, json.dumps(payload).encode()).parsed
    assert isinstance(parsed, Event)
    assert parsed.changed_files is None


def test_github_edited_comment_is_not_a_command() -> None:
    headers, body = contract(G, "issue_comment.created-on-pull-request.json")
    payload = json.loads(body)
    payload["action"] = "edited"
    assert isinstance(PROVIDERS[G].parse(headers, json.dumps(payload).encode()).parsed, Ignored)


@pytest.mark.parametrize(
    ("body", "command"),
    [
        ("/retest", "/retest"),
        ("\n  /ok-to-test please\n", "/ok-to-test"),
        ("looks good\n/retest", None),
        ("/", None),
        ("", None),
    ],
)
def test_comment_command_is_the_first_word(body: str, command: str | None) -> None:
    assert Comment(number=1, body=body, author="a").command == command


def test_missing_delivery_id_falls_back_to_a_body_digest() -> None:
    _, body = contract(L, "push.json")
    first = PROVIDERS[L].parse({"X-Gitlab-Event": "Push Hook"}, body)
    again = PROVIDERS[L].parse({"X-Gitlab-Event": "Push Hook"}, body)
    assert first.delivery_id == again.delivery_id
    assert first.delivery_id.startswith("sha256-")
    keyed = PROVIDERS[L].parse({"X-Gitlab-Event": "Push Hook", "Idempotency-Key": "k1"}, body)
    assert keyed.delivery_id == "k1"
