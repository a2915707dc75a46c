"""A team's repository on a fake forge, and signed deliveries built from the forges' own
example payloads (../shared/contracts/<forge>/webhooks), moved to that repository."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ci.forges.types import ForgeKind
from tests.cluster.processes import wait_until
from tests.cluster.resources import Kube
from tests.contracts import CONTRACTS
from tests.e2e.installation import Installation, invite
from tests.fakeforge import FakeForge
from tests.fakeforge.serving import serve

WEBHOOK_SECRET = "e2e-webhook-secret"
TOKEN = "test-token"
HOSTS = {ForgeKind.GITHUB: "github.com", ForgeKind.GITEA: "gitea.example.com",
         ForgeKind.GITLAB: "gitlab.example.com"}
# Statuses that are not a verdict, by forge: GitHub and Gitea say "pending" while queued and
# running; GitLab says "pending" then "running".
UNFINISHED = frozenset({"pending", "running"})
# Generous: a run goes through the API server, Tekton, the kubelet and two Ferry processes
# on a shared 2-core machine; the bound only matters when something is broken.
RUN_SECONDS = 240.0
# Seconds during which a 404 means "the receiver's Repository index has not seen it yet".
INDEX_SECONDS = 30.0


@dataclass
class Team:
    """One namespace holding one Repository on one fake forge."""

    kube: Kube
    namespace: str
    forge: FakeForge
    api_url: str

    @property
    def kind(self) -> ForgeKind:
        return self.forge.kind

    @property
    def owner_name(self) -> str:
        return f"acme/{self.namespace}"

    @property
    def url(self) -> str:
        return f"https://{HOSTS[self.kind]}/{self.owner_name}"

    def statuses(self, sha: str) -> list[dict[str, Any]]:
        """Commit statuses, with GitLab's `status` read as `state` and its `name` as
        `context`."""
        return [{**s, "state": s.get("state", s.get("status")),
                 "context": s.get("context", s.get("name"))}
                for s in self.forge.statuses_for(self.owner_name, sha)]

    def final_status(self, sha: str) -> dict[str, Any] | None:
        """The run's verdict (context `ferry`; its jobs' checks end before it)."""
        finals = [s for s in self.statuses(sha)
                  if s["state"] not in UNFINISHED and s["context"] == "ferry"]
        return finals[-1] if finals else None

    def check_runs(self, sha: str) -> dict[str, dict[str, Any]]:
        """By name; the latest created wins where names repeat (see `check_run_names`)."""
        return {run["name"]: run for run in list(self.forge.check_runs.values())
                if run.get("head_sha") == sha}

    def check_run_names(self, sha: str) -> list[str]:
        """The name of every check run created on `sha`, repeats included."""
        return [run["name"] for run in list(self.forge.check_runs.values())
                if run.get("head_sha") == sha]


@contextlib.contextmanager
def team(kube: Kube, namespace: str, kind: ForgeKind, *, github_app: tuple[int, int] | None = None,
         private_key: str | None = None, public_key: str | None = None) -> Iterator[Team]:
    """Serve a fake forge; invite Ferry into `namespace`; create the Secret and Repository
    as docs/install.md says. Fails the test if the forge saw a request its API would reject."""
    forge = FakeForge(kind)
    if github_app is not None:
        forge.app_id, forge.app_public_key = str(github_app[0]), public_key
    with serve(forge) as api_url:
        invite(kube, namespace)
        data = {"webhook-secret": WEBHOOK_SECRET}
        data |= {"private-key": private_key} if private_key else {"token": TOKEN}
        kube.create({"apiVersion": "v1", "kind": "Secret",
                     "metadata": {"name": "forge", "namespace": namespace}, "stringData": data})
        created = Team(kube, namespace, forge, api_url)
        spec: dict[str, Any] = {"forge": kind.value, "url": created.url, "apiURL": api_url,
                                "secretRef": {"name": "forge"}}
        if github_app is not None:
            spec["githubApp"] = {"appID": github_app[0], "installationID": github_app[1]}
        kube.create({"apiVersion": "ferry.dev/v1alpha1", "kind": "Repository",
                     "metadata": {"name": "app", "namespace": namespace}, "spec": spec})
        yield created
    forge.assert_no_violations()


def sha_of(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _contract(kind: ForgeKind, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONTRACTS / kind.value / "webhooks" / name).read_bytes())
    return data


def push_payload(team: Team, sha: str, *, branch: str = "main") -> dict[str, Any]:
    """The forge's own example push, moved to `team`'s repository and commit."""
    url = team.url
    if team.kind is ForgeKind.GITLAB:
        payload = _contract(team.kind, "push.json")
        payload["project"] |= {"path_with_namespace": team.owner_name, "web_url": url,
                               "homepage": url, "git_http_url": f"{url}.git",
                               "http_url": f"{url}.git"}
        payload["repository"] |= {"homepage": url, "git_http_url": f"{url}.git"}
        payload |= {"checkout_sha": sha}
    else:
        name = "push.commits.json" if team.kind is ForgeKind.GITHUB else "push.json"
        payload = _contract(team.kind, name)
        payload["repository"] |= {"full_name": team.owner_name, "html_url": url,
                                  "clone_url": f"{url}.git"}
    payload |= {"after": sha, "ref": f"refs/heads/{branch}"}
    if payload.get("head_commit"):
        payload["head_commit"]["id"] = sha
    return payload


def pull_request_payload(team: Team, sha: str, *, number: int, action: str
                         ) -> dict[str, Any]:
    """GitHub's example pull request event (`opened` or `synchronize`) at head `sha`."""
    payload = _contract(ForgeKind.GITHUB, f"pull_request.{action}.json")
    repository = payload["repository"]
    repository |= {"full_name": team.owner_name, "html_url": team.url,
                   "clone_url": f"{team.url}.git"}
    pull_request = payload["pull_request"]
    pull_request["base"]["repo"] = copy.deepcopy(repository)
    pull_request["head"]["repo"] = copy.deepcopy(repository)
    pull_request["head"]["sha"] = sha
    pull_request["number"] = number
    payload |= {"number": number, "action": action}
    return payload


def comment_payload(team: Team, *, number: int, body: str, author: str) -> dict[str, Any]:
    """GitHub's example comment on a pull request, moved to `team`'s pull request `number`."""
    payload = _contract(ForgeKind.GITHUB, "issue_comment.created-on-pull-request.json")
    payload["repository"] |= {"full_name": team.owner_name, "html_url": team.url,
                              "clone_url": f"{team.url}.git"}
    payload["issue"]["number"] = number
    payload["comment"] |= {"body": body}
    payload["comment"]["user"]["login"] = author
    payload["sender"]["login"] = author
    return payload


def check_run_payload(team: Team, check_run: dict[str, Any], *, requester: str
                      ) -> dict[str, Any]:
    """GitHub's example "Re-run" of a check run, for the check run `check_run` Ferry made."""
    payload = _contract(ForgeKind.GITHUB, "check_run.rerequested.json")
    payload["repository"] |= {"full_name": team.owner_name, "html_url": team.url,
                              "clone_url": f"{team.url}.git"}
    payload["check_run"] |= {key: check_run[key] for key in ("id", "name", "head_sha",
                                                              "external_id")}
    payload["sender"]["login"] = requester
    return payload


def signed(kind: ForgeKind, event: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The body and headers the forge would send, signed with the Repository's secret."""
    body = json.dumps(payload).encode()
    digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    delivery = str(uuid.uuid4())
    headers = {"Content-Type": "application/json"}
    if kind is ForgeKind.GITHUB:
        headers |= {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
                    "X-Hub-Signature-256": f"sha256={digest}"}
    elif kind is ForgeKind.GITEA:
        headers |= {"X-Gitea-Event": event, "X-Gitea-Event-Type": event,
                    "X-Gitea-Delivery": delivery, "X-Gitea-Signature": digest}
    else:
        headers |= {"X-Gitlab-Event": "Push Hook" if event == "push" else event,
                    "X-Gitlab-Event-UUID": delivery, "X-Gitlab-Token": WEBHOOK_SECRET}
    return body, headers


def deliver(ferry: Installation, team: Team, event: str, payload: dict[str, Any]
            ) -> list[str]:
    """Post a signed delivery; the names of the runs it created. A 404 right after the
    Repository was created is the receiver's index catching up, so it is redelivered, as a
    forge would (a redelivery is always safe)."""
    body, headers = signed(team.kind, event, payload)
    deadline = time.monotonic() + INDEX_SECONDS
    while True:
        response = ferry.post(body, headers)
        if response.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 202, response.text
    runs: list[str] = response.json().get("pipelineRuns", [])
    assert runs, response.text
    return runs


def wait_for(ferry: Installation, predicate: Any, *, what: str,
             timeout: float = RUN_SECONDS) -> None:
    wait_until(predicate, what=what, timeout=timeout, watching=ferry.components(),
               interval=0.1)


def task_runs(kube: Kube, namespace: str, run: str) -> list[dict[str, Any]]:
    listed = kube.get(f"/apis/tekton.dev/v1/namespaces/{namespace}/taskruns",
                      labelSelector=f"tekton.dev/pipelineRun={run}")
    items: list[dict[str, Any]] = listed["items"]
    return items

