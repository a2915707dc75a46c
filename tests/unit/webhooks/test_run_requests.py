"""What the receiver makes of a RunRequest before any forge call: an unknown Repository is
said so, and what the commit's status will say about who started the run."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, cast

from ci.kube.repositories import Repository, SecretKeys
from ci.kube.run_requests import RunRequest
from webhooks.receiver import Receiver
from webhooks.requests import RunRequestWorker, forge_name, started_by


class _NoRepositories:
    synced = threading.Event()

    def get(self, namespace: str, name: str) -> Repository | None:
        return None


class _Store:
    def write_outcome(self, request: RunRequest, outcome: Any) -> bool:
        raise AssertionError("not written by handle()")


def _request(**fields: Any) -> RunRequest:
    base: dict[str, Any] = {"namespace": "team", "name": "shop-manual-x", "uid": "u1",
                            "repository": "shop", "event": "manual", "requested_by": "alice",
                            "branch": "main"}
    return RunRequest(**(base | fields))


def test_an_unknown_repository_is_an_outcome_naming_it() -> None:
    worker = RunRequestWorker(cast(Receiver, object()), repositories=_NoRepositories(),
                              store=_Store())
    outcome = asyncio.run(worker.handle(_request()))
    assert (outcome.outcome, outcome.message) == (
        "unknown-repository", "no Repository shop in namespace team")
    assert outcome.pipeline_run == ""


def test_the_commit_status_names_who_or_what_started_the_run() -> None:
    assert started_by(_request()) == "manual run by alice"
    assert started_by(_request(event="schedule", schedule="nightly",
                               requested_by="system:serviceaccount:ferry-system:ferry-controller")
                      ) == "schedule nightly"


def test_the_forge_name_comes_from_the_repository_url() -> None:
    def repository(url: str) -> Repository:
        return Repository(namespace="team", name="shop", uid="u", forge="gitlab", url=url,
                          secret=SecretKeys(name="s"))

    assert forge_name(repository("https://github.com/acme/shop")) == "acme/shop"
    assert forge_name(repository("https://gitlab.example.com/acme/platform/shop.git")) == (
        "acme/platform/shop")


def test_a_run_request_is_read_from_its_object() -> None:
    parsed = RunRequest.from_object({
        "metadata": {"namespace": "team", "name": "r", "uid": "u", "resourceVersion": "7"},
        "spec": {"repository": "shop", "event": "manual", "requestedBy": "alice",
                 "sha": "a" * 40, "params": {"TARGET": "staging"}},
    })
    assert (parsed.sha, parsed.branch, parsed.params, parsed.outcome, parsed.resource_version) == (
        "a" * 40, None, (("TARGET", "staging"),), None, "7")
